// A loaded eBPF map addressed by file descriptor, with raw Buffer keys and values.
// Typed views live in map-layouts.ts; this file knows nothing about Fast's layouts.
import * as fs from 'node:fs';
import { libbpf, check, closeFd } from './libbpf.js';
import { ERRNO } from '../../sys/libc.js';

const BPF_ANY = 0n;

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export class BpfMap {
  constructor(
    readonly fd: number,
    readonly name: string,
    readonly keySize: number,
    readonly valueSize: number,
    readonly type: number,
    private readonly ownsFd: boolean,
  ) {}

  /** Wraps a map fd owned by a loaded object (the object closes it). */
  static fromFd(fd: number): BpfMap {
    const info = mapInfo(fd);
    return new BpfMap(fd, info.name, info.keySize, info.valueSize, info.type, false);
  }

  /** Opens a map pinned on bpffs (this is how fast-ctl reads maps while the agent is down). */
  static openPinned(path: string): BpfMap {
    const fd = check('bpf_obj_get', libbpf.objGet(path), path);
    const info = mapInfo(fd);
    return new BpfMap(fd, info.name, info.keySize, info.valueSize, info.type, true);
  }

  info(): MapInfo {
    return mapInfo(this.fd);
  }

  lookup(key: Buffer): Buffer | undefined {
    const value = Buffer.alloc(this.lookupSize());
    const rc = libbpf.mapLookupElem(this.fd, key, value);
    if (rc === -ERRNO.ENOENT) return undefined;
    check('bpf_map_lookup_elem', rc, this.name);
    return value;
  }

  update(key: Buffer, value: Buffer): void {
    check('bpf_map_update_elem', libbpf.mapUpdateElem(this.fd, key, value, BPF_ANY), this.name);
  }

  /** Returns false when the key was not there (deletes are idempotent for callers). */
  delete(key: Buffer): boolean {
    const rc = libbpf.mapDeleteElem(this.fd, key);
    if (rc === -ERRNO.ENOENT) return false;
    check('bpf_map_delete_elem', rc, this.name);
    return true;
  }

  keys(): Buffer[] {
    const keys: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const rc = libbpf.mapGetNextKey(this.fd, prev, next);
      if (rc === -ERRNO.ENOENT) return keys;
      check('bpf_map_get_next_key', rc, this.name);
      keys.push(next);
      prev = next;
    }
  }

  entries(): Array<[Buffer, Buffer]> {
    const out: Array<[Buffer, Buffer]> = [];
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value) out.push([key, value]); // an entry may vanish between the two calls
    }
    return out;
  }

  close(): void {
    if (this.ownsFd) closeFd(this.fd);
  }

  // Per-CPU maps return one value slot (rounded up to 8 bytes) per possible CPU.
  private lookupSize(): number {
    if (!isPerCpu(this.type)) return this.valueSize;
    return Math.ceil(this.valueSize / 8) * 8 * possibleCpus();
  }
}

const BPF_MAP_TYPE_PERCPU_HASH = 5;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;

export function isPerCpu(type: number): boolean {
  return type === BPF_MAP_TYPE_PERCPU_HASH || type === BPF_MAP_TYPE_PERCPU_ARRAY;
}

// struct bpf_map_info starts with: type, id, key_size, value_size, max_entries,
// map_flags (6 x u32) and name[16]. We ask for the first 40 bytes only.
function mapInfo(fd: number): MapInfo {
  const info = Buffer.alloc(80);
  const len = [info.length];
  check('bpf_obj_get_info_by_fd', libbpf.objGetInfoByFd(fd, info, len));
  const name = info.subarray(24, 40);
  const end = name.indexOf(0);
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    flags: info.readUInt32LE(20),
    name: name.subarray(0, end < 0 ? 16 : end).toString('latin1'),
  };
}

let cpuCount: number | undefined;
/** The kernel sizes per-CPU values by *possible* CPUs, which may exceed online ones. */
export function possibleCpus(): number {
  cpuCount ??= parseCpuRange(fs.readFileSync('/sys/devices/system/cpu/possible', 'utf8'));
  return cpuCount;
}

export function parseCpuRange(text: string): number {
  let max = -1;
  for (const part of text.trim().split(',')) {
    const [a, b] = part.split('-').map((x) => Number.parseInt(x, 10));
    max = Math.max(max, b ?? a!);
  }
  return max + 1;
}
