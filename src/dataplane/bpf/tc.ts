// Attaching programs to a device's clsact hooks through libbpf's bpf_tc_* API
// (netlink under the hood, in the calling thread's network namespace).
//
// Debian's libbpf 1.1 predates tcx links, so we use clsact + a cls_bpf filter in
// direct-action mode at a fixed handle/priority. Filters live in the kernel with the
// device, not with our process: an agent restart leaves the datapath running, and a
// re-attach with BPF_TC_F_REPLACE swaps programs atomically.
import { libbpf, check } from './libbpf.js';

export type TcDirection = 'ingress' | 'egress';

const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const BPF_TC_F_REPLACE = 1;
const ENOENT = 2;
const EEXIST = 17;
const EINVAL = 22;

/** Fast's filters always sit at this handle and priority, so they can be found again. */
export const FAST_TC_HANDLE = 0xfa57;
export const FAST_TC_PRIORITY = 1;

// struct bpf_tc_hook { size_t sz; int ifindex; enum attach_point; __u32 parent; }
function tcHook(ifindex: number, direction: TcDirection): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(24n, 0);
  b.writeInt32LE(ifindex, 8);
  b.writeUInt32LE(direction === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS, 12);
  return b;
}

// struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags, prog_id, handle, priority; }
function tcOpts(progFd: number, flags: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(32n, 0);
  b.writeInt32LE(progFd, 8);
  b.writeUInt32LE(flags, 12);
  b.writeUInt32LE(FAST_TC_HANDLE, 20);
  b.writeUInt32LE(FAST_TC_PRIORITY, 24);
  return b;
}

/** Creates the clsact qdisc if needed and (re)places Fast's filter on the hook. */
export function attachTc(ifindex: number, direction: TcDirection, progFd: number): void {
  const hook = tcHook(ifindex, direction);
  const rc = libbpf.tcHookCreate(hook);
  if (rc < 0 && rc !== -EEXIST) check('bpf_tc_hook_create', rc, `ifindex ${ifindex}`);
  check('bpf_tc_attach', libbpf.tcAttach(hook, tcOpts(progFd, BPF_TC_F_REPLACE)), `ifindex ${ifindex} ${direction}`);
}

/** Program id attached by Fast on the hook, or undefined when nothing is there. */
export function queryTc(ifindex: number, direction: TcDirection): number | undefined {
  const opts = tcOpts(0, 0);
  const rc = libbpf.tcQuery(tcHook(ifindex, direction), opts);
  if (rc === -ENOENT || rc === -EINVAL) return undefined;
  check('bpf_tc_query', rc, `ifindex ${ifindex}`);
  return opts.readUInt32LE(16);
}

/** Removes Fast's filter; a missing filter or device is not an error (idempotent). */
export function detachTc(ifindex: number, direction: TcDirection): void {
  const rc = libbpf.tcDetach(tcHook(ifindex, direction), tcOpts(0, 0));
  if (rc < 0 && rc !== -ENOENT && rc !== -EINVAL && rc !== -19 /* ENODEV */) check('bpf_tc_detach', rc);
}
