// Bindings to Debian's libbpf1 (libbpf.so.1) through koffi.
//
// Only the calls Fast needs are bound. Structs that libbpf reads are passed as
// explicitly laid-out Buffers (the `sz` field first, as libbpf's OPTS convention
// wants) so their layout is visible here rather than hidden in a declaration.
import koffi from 'koffi';
import { common } from '../../sys/libc.js';

const lib = koffi.load('libbpf.so.1');

export const BpfObjectPtr = koffi.pointer(koffi.opaque('bpf_object'));
export const BpfMapPtr = koffi.pointer(koffi.opaque('bpf_map'));
export const BpfProgramPtr = koffi.pointer(koffi.opaque('bpf_program'));

// Opaque handles are koffi external pointers; null when libbpf returned NULL.
export type Handle = unknown;

export const TestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'const void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'const void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

export const libbpf = {
  objectOpenFile: lib.func('bpf_object__open_file', BpfObjectPtr, ['const char *', 'void *']),
  objectLoad: lib.func('int bpf_object__load(bpf_object *obj)'),
  objectClose: lib.func('void bpf_object__close(bpf_object *obj)'),
  objectFindMap: lib.func('bpf_object__find_map_by_name', BpfMapPtr, [BpfObjectPtr, 'const char *']),
  objectFindProgram: lib.func('bpf_object__find_program_by_name', BpfProgramPtr, [BpfObjectPtr, 'const char *']),
  objectNextMap: lib.func('bpf_object__next_map', BpfMapPtr, [BpfObjectPtr, BpfMapPtr]),
  objectNextProgram: lib.func('bpf_object__next_program', BpfProgramPtr, [BpfObjectPtr, BpfProgramPtr]),
  mapName: lib.func('const char *bpf_map__name(const bpf_map *map)'),
  mapFd: lib.func('int bpf_map__fd(const bpf_map *map)'),
  mapSetPinPath: lib.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
  mapIsPinned: lib.func('bool bpf_map__is_pinned(const bpf_map *map)'),
  mapKeySize: lib.func('uint32_t bpf_map__key_size(const bpf_map *map)'),
  mapValueSize: lib.func('uint32_t bpf_map__value_size(const bpf_map *map)'),
  programName: lib.func('const char *bpf_program__name(const bpf_program *prog)'),
  programFd: lib.func('int bpf_program__fd(const bpf_program *prog)'),

  mapUpdateElem: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
  mapLookupElem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
  mapDeleteElem: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
  mapGetNextKey: lib.func('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next_key)'),
  objGet: lib.func('int bpf_obj_get(const char *pathname)'),
  objGetInfoByFd: lib.func('int bpf_obj_get_info_by_fd(int fd, _Inout_ void *info, _Inout_ uint32_t *len)'),

  tcHookCreate: lib.func('int bpf_tc_hook_create(void *hook)'),
  tcHookDestroy: lib.func('int bpf_tc_hook_destroy(void *hook)'),
  tcAttach: lib.func('int bpf_tc_attach(const void *hook, _Inout_ void *opts)'),
  tcDetach: lib.func('int bpf_tc_detach(const void *hook, const void *opts)'),
  tcQuery: lib.func('int bpf_tc_query(const void *hook, _Inout_ void *opts)'),

  // BPF links (tcx): libbpf 1.1 has no bpf_program__attach_tcx, but the raw link calls
  // pass any attach type through to the kernel.
  linkCreate: lib.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, const void *opts)'),
  linkUpdate: lib.func('int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)'),
  linkDetach: lib.func('int bpf_link_detach(int link_fd)'),
  objPin: lib.func('int bpf_obj_pin(int fd, const char *pathname)'),

  progTestRun: lib.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)'),
  setPrintNull: lib.func('void *libbpf_set_print(void *fn)'),
};

export const libcCalls = {
  close: common.close,
  setns: common.setns,
  strerror: common.strerror,
};

// libbpf prints warnings to stderr by default, which would corrupt the agent's
// JSON log stream; errors are reported through return codes instead.
libbpf.setPrintNull(null);

export class BpfError extends Error {
  constructor(public readonly op: string, public readonly errno: number, detail?: string) {
    super(`${op}: ${libcCalls.strerror(errno)} (errno ${errno})${detail ? `: ${detail}` : ''}`);
    this.name = 'BpfError';
  }
}

/** libbpf 1.x returns -errno from int functions. */
export function check(op: string, rc: number, detail?: string): number {
  if (rc < 0) throw new BpfError(op, -rc, detail);
  return rc;
}

/** Pointer-returning libbpf calls return NULL and set errno. */
export function checkPtr<T>(op: string, ptr: T, detail?: string): NonNullable<T> {
  if (ptr === null || ptr === undefined) throw new BpfError(op, koffi.errno() || 2, detail);
  return ptr as NonNullable<T>;
}

export function closeFd(fd: number): void {
  if (fd >= 0) libcCalls.close(fd);
}
