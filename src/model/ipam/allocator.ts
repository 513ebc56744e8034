// In-memory allocator model of one pool. The API server is the source of truth (one IpEndpoint
// per address, see naming.ts); an agent or the controller keeps one PoolAllocator per pool as
// its cache and decision maker:
//
//   allocate() → create IpEndpoint named after the address
//     201: done.
//     409: someone else holds it: forget(address), observe(theirRecord), allocate() again.
//   watch events: observe(record) for allocations of others, release*({ at }) for deletions;
//   restart: restore(all records of the pool).
//
// Blocks. The pool's allocatable addresses, in ascending order, are cut into blocks of
// `blockSize` consecutive addresses (by rank in the pool, not CIDR-aligned: Fast routes per
// pod, blocks only keep nodes apart). A node allocates in blocks it has affinity to, else claims
// a free block (first at a few positions hashed from its name, so that nodes deciding at the
// same time pick different blocks, then any touched unclaimed block, then the lowest untouched
// one), else borrows a free address from another node's block (Calico's approach). Blocks are
// created lazily: an IPv6 /64 pool costs nothing until used. Each block keeps a bitmap
// (allocated or cooling) and a count; open blocks are kept in sets, so an allocation inspects
// O(blockSize / 32) bitmap words plus O(1) set entries, never the whole pool. Affinity is soft
// state: restore() derives it from the records (a block belongs to the node holding most of its
// addresses), so no extra objects are needed.
//
// Cooldown. A released address rests for `cooldownMs` (default 30 s) before reuse, so stale
// conntrack entries and endpoints cannot reach a new pod. A static request may take a cooling
// address only when it comes from the same pod (namespace/name: a StatefulSet pod getting its
// address back) or with `ignoreCooldown`.

import { type IpAddress, formatIp, tryParseIp } from './address.js';
import type { AllocationRecord } from './naming.js';
import type { Pool } from './pool.js';
import type { IpSet } from './ranges.js';

export type { AllocationRecord } from './naming.js';

export const DEFAULT_BLOCK_SIZE = 64;
export const DEFAULT_COOLDOWN_MS = 30_000;
/** Pools are cut into at least this many blocks where possible (smaller pools, smaller blocks). */
export const MIN_BLOCKS_PER_POOL = 8;
const HASH_PROBES = 4;

/** Work counter for tests: incremented per bitmap word, set probe and cursor step. */
export interface OpCounter {
  steps: number;
}

export interface AllocatorOptions {
  /** Upper bound of the block size (default 64, a /26); the effective size is smaller for
   *  pools of fewer than 8 × blockSize addresses (largest power of two ≤ size / 8, ≥ 1). */
  blockSize?: number;
  cooldownMs?: number;
  /** Clock in milliseconds (default Date.now). */
  now?: () => number;
  counter?: OpCounter;
}

/** Who asks for an address. */
export interface AllocationRequest {
  node: string;
  podNamespace: string;
  podName: string;
  podUID: string;
  containerID: string;
  interface: string;
}

export type AllocErrorCode =
  | 'Exhausted'
  | 'Conflict'
  | 'Cooling'
  | 'NotInPool'
  | 'InvalidAddress'
  | 'ContainerHasOtherAddress'
  | 'ContainerConflict';

export interface AllocCounts {
  /** Allocatable addresses of the pool. */
  total: bigint;
  allocated: number;
  cooling: number;
  free: bigint;
}

export interface AllocError {
  code: AllocErrorCode;
  message: string;
  /** Current holder, for Conflict / ContainerConflict / Cooling (previous holder). */
  owner?: Readonly<AllocationRecord>;
  counts?: AllocCounts;
  /** For Exhausted and Cooling: when (ms) the next cooling address becomes free. */
  retryAt?: number;
}

export type AllocResult =
  | { ok: true; record: Readonly<AllocationRecord>; reused: boolean }
  | { ok: false; error: AllocError };

export interface ReleaseOptions {
  /** When the release happened (ms; default now), e.g. from a watch event. */
  at?: number;
  /** false: free the address at once (default true: cooldown). */
  cooldown?: boolean;
}

export type RestoreRejection = 'WrongPool' | 'InvalidAddress' | 'OutsidePool' | 'DuplicateAddress' | 'DuplicateContainer';

export interface RestoreReport {
  allocated: number;
  cooling: number;
  rejected: { record: AllocationRecord; reason: RestoreRejection; message: string }[];
}

interface Block {
  readonly index: bigint;
  /** Rank in the pool of the block's first address. */
  readonly start: bigint;
  readonly length: number;
  /** 1 = allocated or cooling; padding bits past `length` are 1. */
  readonly bits: Uint32Array;
  used: number;
  affinity: string | undefined;
}

interface Cooling {
  record: Readonly<AllocationRecord>;
  releasedAt: number;
}

interface HeapItem {
  expiresAt: number;
  value: bigint;
  releasedAt: number;
}

class MinHeap {
  private readonly a: HeapItem[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): HeapItem | undefined {
    return this.a[0];
  }
  push(x: HeapItem): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.expiresAt <= a[i]!.expiresAt) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): HeapItem | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.expiresAt < a[m]!.expiresAt) m = l;
        if (r < a.length && a[r]!.expiresAt < a[m]!.expiresAt) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.a.length = 0;
  }
}

/** Effective block size for a pool of `size` addresses. */
export function effectiveBlockSize(size: bigint, configured: number = DEFAULT_BLOCK_SIZE): number {
  const cap = Math.max(1, Math.floor(configured));
  const target = size / BigInt(MIN_BLOCKS_PER_POOL);
  let bs = 1;
  while (bs * 2 <= cap && BigInt(bs * 2) <= target) bs *= 2;
  return bs;
}

/** 64-bit FNV-1a of a string. */
function hash64(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

function containerKey(containerID: string, iface: string): string {
  return `${containerID}\u0000${iface}`;
}

function ownerText(r: Readonly<AllocationRecord>): string {
  return `pod ${r.podNamespace}/${r.podName} (uid ${r.podUID}, container ${r.containerID}, interface ${r.interface}, node ${r.node})`;
}

export class PoolAllocator {
  readonly poolName: string;
  readonly set: IpSet;
  readonly blockSize: number;
  readonly blockCount: bigint;
  readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly counter: OpCounter;

  private readonly blocks = new Map<bigint, Block>();
  /** node → its affine blocks that have a free address. */
  private readonly nodeOpen = new Map<string, Set<bigint>>();
  /** node → all its affine blocks. */
  private readonly nodeBlocks = new Map<string, Set<bigint>>();
  /** Claimed blocks with a free address (for borrowing). */
  private readonly claimedOpen = new Set<bigint>();
  /** Touched, unclaimed blocks with a free address. */
  private readonly unclaimedOpen = new Set<bigint>();
  /** Lowest block index that may be untouched. */
  private nextFresh = 0n;

  private readonly byAddress = new Map<bigint, Readonly<AllocationRecord>>();
  private readonly byContainer = new Map<string, bigint>();
  private readonly cooling = new Map<bigint, Cooling>();
  private readonly heap = new MinHeap();

  constructor(pool: Pool | { name: string; allocatable: IpSet }, options: AllocatorOptions = {}) {
    this.poolName = pool.name;
    this.set = pool.allocatable;
    this.blockSize = effectiveBlockSize(this.set.size, options.blockSize ?? DEFAULT_BLOCK_SIZE);
    this.blockCount = (this.set.size + BigInt(this.blockSize) - 1n) / BigInt(this.blockSize);
    this.cooldownMs = options.cooldownMs ?? DEFAULT_COOLDOWN_MS;
    this.now = options.now ?? Date.now;
    this.counter = options.counter ?? { steps: 0 };
  }

  // -------------------------------------------------------------------------
  // queries

  counts(): AllocCounts {
    this.expire();
    const allocated = this.byAddress.size;
    const cooling = this.cooling.size;
    return { total: this.set.size, allocated, cooling, free: this.set.size - BigInt(allocated + cooling) };
  }

  findByContainer(containerID: string, iface: string): Readonly<AllocationRecord> | undefined {
    const v = this.byContainer.get(containerKey(containerID, iface));
    return v === undefined ? undefined : this.byAddress.get(v);
  }

  findByAddress(address: string | IpAddress): Readonly<AllocationRecord> | undefined {
    const a = typeof address === 'string' ? tryParseIp(address) : address;
    return a && a.family === this.set.family ? this.byAddress.get(a.value) : undefined;
  }

  /** Whether the address is cooling down (released less than cooldownMs ago). */
  isCooling(address: string | IpAddress): boolean {
    this.expire();
    const a = typeof address === 'string' ? tryParseIp(address) : address;
    return !!a && a.family === this.set.family && this.cooling.has(a.value);
  }

  records(): Readonly<AllocationRecord>[] {
    return [...this.byAddress.values()];
  }

  /** Cooling addresses as records carrying releasedAt (RFC 3339). */
  coolingRecords(): AllocationRecord[] {
    this.expire();
    return [...this.cooling.values()].map((c) => ({ ...c.record, releasedAt: new Date(c.releasedAt).toISOString() }));
  }

  /** When (ms) the earliest cooling address becomes free, if any. */
  nextFreeAt(): number | undefined {
    this.expire();
    while (this.heap.size > 0) {
      const top = this.heap.peek()!;
      const c = this.cooling.get(top.value);
      if (c && c.releasedAt === top.releasedAt) return top.expiresAt;
      this.heap.pop(); // stale: taken back while cooling
    }
    return undefined;
  }

  /** Block indexes a node has affinity to. */
  blocksOf(node: string): bigint[] {
    return [...(this.nodeBlocks.get(node) ?? [])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Node with affinity to the block holding `address`, if any. */
  affinityOf(address: string | IpAddress): string | undefined {
    const loc = this.locate(address);
    return loc ? this.blocks.get(loc.index)?.affinity : undefined;
  }

  // -------------------------------------------------------------------------
  // allocation

  /** Dynamic allocation. Idempotent per (containerID, interface). */
  allocate(req: AllocationRequest): AllocResult {
    this.expire();
    const prior = this.priorFor(req);
    if (prior) return prior;

    const b = this.chooseBlock(req.node);
    if (!b) {
      const counts = this.counts();
      const retryAt = this.nextFreeAt();
      const cool =
        counts.cooling > 0
          ? `, ${counts.cooling} cooling down` +
            (retryAt !== undefined ? `, next free in ${Math.max(0, Math.ceil((retryAt - this.now()) / 1000))} s` : '')
          : '';
      return {
        ok: false,
        error: {
          code: 'Exhausted',
          message: `pool ${this.poolName} has no free address (${counts.allocated} of ${counts.total} allocated${cool})`,
          counts,
          ...(retryAt !== undefined ? { retryAt } : {}),
        },
      };
    }
    const offset = this.takeFree(b);
    const address = this.set.nth(b.start + BigInt(offset));
    return { ok: true, record: this.insert(req, address), reused: false };
  }

  /** Allocation of a chosen address (`fast.io/ip`, sticky StatefulSet addresses). */
  allocateStatic(req: AllocationRequest, address: string | IpAddress, opts: { ignoreCooldown?: boolean } = {}): AllocResult {
    this.expire();
    const a = typeof address === 'string' ? tryParseIp(address) : address;
    if (!a) return { ok: false, error: { code: 'InvalidAddress', message: `"${String(address)}" is not a valid IP address` } };
    const shown = formatIp(a);
    const loc = this.locate(a);
    if (!loc) {
      return { ok: false, error: { code: 'NotInPool', message: `address ${shown} is not an allocatable address of pool ${this.poolName}` } };
    }
    const prior = this.priorFor(req);
    if (prior) {
      if (!prior.ok || prior.record.address === shown) return prior;
      return {
        ok: false,
        error: {
          code: 'ContainerHasOtherAddress',
          message: `container ${req.containerID} interface ${req.interface} already holds ${prior.record.address} in pool ${this.poolName}, not ${shown}`,
          owner: prior.record,
        },
      };
    }
    const holder = this.byAddress.get(a.value);
    if (holder) {
      return {
        ok: false,
        error: { code: 'Conflict', message: `address ${shown} of pool ${this.poolName} is in use by ${ownerText(holder)}`, owner: holder },
      };
    }
    const c = this.cooling.get(a.value);
    if (c) {
      const samePod = c.record.podNamespace === req.podNamespace && c.record.podName === req.podName;
      if (!samePod && !opts.ignoreCooldown) {
        const until = c.releasedAt + this.cooldownMs;
        return {
          ok: false,
          error: {
            code: 'Cooling',
            message:
              `address ${shown} of pool ${this.poolName} was released by pod ${c.record.podNamespace}/${c.record.podName} ` +
              `and rests for ${Math.max(0, Math.ceil((until - this.now()) / 1000))} s more`,
            owner: c.record,
            retryAt: until,
          },
        };
      }
      this.cooling.delete(a.value); // bit stays set: it passes from cooling to allocated
    } else {
      const b = this.blockAt(loc.index);
      this.setBit(b, loc.offset);
    }
    return { ok: true, record: this.insert(req, a), reused: false };
  }

  /**
   * Applies an allocation that exists in the API server (another agent's, or one learnt after a
   * 409). The API server wins: a different local holder of the address, or a different local
   * address of the same container, is dropped and returned in `displaced`.
   */
  observe(record: AllocationRecord): { ok: true; displaced: Readonly<AllocationRecord>[] } | { ok: false; error: AllocError } {
    this.expire();
    const a = tryParseIp(record.address);
    if (!a) return { ok: false, error: { code: 'InvalidAddress', message: `"${record.address}" is not a valid IP address` } };
    if (!this.locate(a)) {
      return { ok: false, error: { code: 'NotInPool', message: `address ${record.address} is not an allocatable address of pool ${this.poolName}` } };
    }
    const displaced: Readonly<AllocationRecord>[] = [];
    const holder = this.byAddress.get(a.value);
    const key = containerKey(record.containerID, record.interface);
    if (holder && containerKey(holder.containerID, holder.interface) === key) {
      this.byAddress.set(a.value, { ...record, pool: this.poolName, address: formatIp(a) });
      return { ok: true, displaced };
    }
    if (holder) {
      displaced.push(holder);
      this.forget(a);
    }
    const other = this.byContainer.get(key);
    if (other !== undefined) {
      displaced.push(this.byAddress.get(other)!);
      this.forget({ family: this.set.family, value: other });
    }
    const r = this.allocateStatic(record, a, { ignoreCooldown: true });
    if (!r.ok) return r; // cannot happen after the above
    // A block first used by another node becomes that node's, so this node looks elsewhere
    // instead of racing it for the next address (fewer 409s under bursts).
    const block = this.blockAt(this.locate(a)!.index);
    if (block.affinity === undefined && record.node) this.setAffinity(block, record.node);
    return { ok: true, displaced };
  }

  // -------------------------------------------------------------------------
  // release

  releaseByContainer(containerID: string, iface: string, opts: ReleaseOptions = {}): Readonly<AllocationRecord> | undefined {
    const v = this.byContainer.get(containerKey(containerID, iface));
    return v === undefined ? undefined : this.releaseValue(v, opts);
  }

  releaseByAddress(address: string | IpAddress, opts: ReleaseOptions = {}): Readonly<AllocationRecord> | undefined {
    const a = typeof address === 'string' ? tryParseIp(address) : address;
    if (!a || a.family !== this.set.family) return undefined;
    return this.releaseValue(a.value, opts);
  }

  /** Releases every allocation matching `pred` (garbage collection: pod UID or node gone). O(n). */
  releaseWhere(pred: (r: Readonly<AllocationRecord>) => boolean, opts: ReleaseOptions = {}): Readonly<AllocationRecord>[] {
    const out: Readonly<AllocationRecord>[] = [];
    for (const [v, r] of [...this.byAddress]) if (pred(r)) out.push(this.releaseValue(v, opts)!);
    return out;
  }

  /** Drops an allocation or cooling entry without cooldown (a claim the API server refused). */
  forget(address: string | IpAddress): boolean {
    const a = typeof address === 'string' ? tryParseIp(address) : address;
    if (!a || a.family !== this.set.family) return false;
    const r = this.byAddress.get(a.value);
    if (r) {
      this.byAddress.delete(a.value);
      this.byContainer.delete(containerKey(r.containerID, r.interface));
    } else if (!this.cooling.delete(a.value)) return false;
    this.clearValue(a.value);
    return true;
  }

  /** A node is gone: its blocks become unclaimed (their allocations stay until released). */
  releaseNodeAffinity(node: string): number {
    const bs = this.nodeBlocks.get(node);
    if (!bs) return 0;
    for (const i of bs) {
      const b = this.blocks.get(i)!;
      b.affinity = undefined;
      this.claimedOpen.delete(i);
      this.refresh(b);
    }
    this.nodeBlocks.delete(node);
    this.nodeOpen.delete(node);
    return bs.size;
  }

  // -------------------------------------------------------------------------
  // restart

  /**
   * Replaces the state with the given records (all IpEndpoints of the pool). Records with
   * `releasedAt` are cooling down (or free when their cooldown has passed). Block affinity is
   * derived: a block belongs to the node holding most of its allocated addresses (ties: the
   * smallest node name). Invalid, foreign, duplicate records are reported, not applied.
   */
  restore(records: readonly AllocationRecord[]): RestoreReport {
    this.blocks.clear();
    this.nodeOpen.clear();
    this.nodeBlocks.clear();
    this.claimedOpen.clear();
    this.unclaimedOpen.clear();
    this.nextFresh = 0n;
    this.byAddress.clear();
    this.byContainer.clear();
    this.cooling.clear();
    this.heap.clear();

    const report: RestoreReport = { allocated: 0, cooling: 0, rejected: [] };
    const reject = (record: AllocationRecord, reason: RestoreRejection, message: string) =>
      report.rejected.push({ record, reason, message });
    const now = this.now();
    const seen = new Map<bigint, AllocationRecord>();
    // Live records first: if an address appears twice, a live holder wins over a cooling one.
    const ordered = [...records.filter((r) => r.releasedAt === undefined), ...records.filter((r) => r.releasedAt !== undefined)];
    for (const rec of ordered) {
      if (rec.pool !== this.poolName) {
        reject(rec, 'WrongPool', `record of ${rec.address} belongs to pool ${rec.pool}, not ${this.poolName}`);
        continue;
      }
      const a = tryParseIp(rec.address);
      if (!a) {
        reject(rec, 'InvalidAddress', `"${rec.address}" is not a valid IP address`);
        continue;
      }
      const loc = this.locate(a);
      if (!loc) {
        reject(rec, 'OutsidePool', `address ${rec.address} is not an allocatable address of pool ${this.poolName}`);
        continue;
      }
      const first = seen.get(a.value);
      if (first) {
        reject(rec, 'DuplicateAddress', `address ${rec.address} is already held by ${ownerText(first)}`);
        continue;
      }
      const { releasedAt, ...live } = rec;
      if (releasedAt !== undefined) {
        const at = Date.parse(releasedAt);
        seen.set(a.value, rec);
        if (Number.isNaN(at) || at + this.cooldownMs <= now) continue; // rested: free
        const b = this.blockAt(loc.index);
        this.setBit(b, loc.offset);
        const record = { ...live, pool: this.poolName, address: formatIp(a) };
        this.cooling.set(a.value, { record, releasedAt: at });
        this.heap.push({ expiresAt: at + this.cooldownMs, value: a.value, releasedAt: at });
        report.cooling++;
        continue;
      }
      const key = containerKey(rec.containerID, rec.interface);
      if (this.byContainer.has(key)) {
        const held = this.byAddress.get(this.byContainer.get(key)!)!;
        reject(rec, 'DuplicateContainer', `container ${rec.containerID} interface ${rec.interface} already holds ${held.address}`);
        continue;
      }
      seen.set(a.value, rec);
      const b = this.blockAt(loc.index);
      this.setBit(b, loc.offset);
      const record = { ...live, pool: this.poolName, address: formatIp(a) };
      this.byAddress.set(a.value, record);
      this.byContainer.set(key, a.value);
      report.allocated++;
    }

    // derive affinities
    const votes = new Map<bigint, Map<string, number>>();
    for (const [v, r] of this.byAddress) {
      const loc = this.locate({ family: this.set.family, value: v })!;
      let m = votes.get(loc.index);
      if (!m) votes.set(loc.index, (m = new Map()));
      m.set(r.node, (m.get(r.node) ?? 0) + 1);
    }
    for (const [i, m] of votes) {
      let best: string | undefined;
      let n = 0;
      for (const [node, c] of m) if (c > n || (c === n && best !== undefined && node < best)) [best, n] = [node, c];
      this.setAffinity(this.blocks.get(i)!, best!);
    }
    for (const b of this.blocks.values()) this.refresh(b);
    return report;
  }

  // -------------------------------------------------------------------------
  // internals

  private step(n = 1): void {
    this.counter.steps += n;
  }

  /** Frees cooling addresses whose cooldown has passed. */
  private expire(): void {
    const now = this.now();
    for (;;) {
      const top = this.heap.peek();
      if (!top || top.expiresAt > now) return;
      this.heap.pop();
      this.step();
      const c = this.cooling.get(top.value);
      if (c && c.releasedAt === top.releasedAt) {
        this.cooling.delete(top.value);
        this.clearValue(top.value);
      }
    }
  }

  private priorFor(req: AllocationRequest): AllocResult | undefined {
    const v = this.byContainer.get(containerKey(req.containerID, req.interface));
    if (v === undefined) return undefined;
    const r = this.byAddress.get(v)!;
    if (r.podUID !== '' && req.podUID !== '' && r.podUID !== req.podUID) {
      return {
        ok: false,
        error: {
          code: 'ContainerConflict',
          message: `container ${req.containerID} interface ${req.interface} already holds ${r.address} for ${ownerText(r)}, not pod uid ${req.podUID}`,
          owner: r,
        },
      };
    }
    return { ok: true, record: r, reused: true };
  }

  private insert(req: AllocationRequest, a: IpAddress): Readonly<AllocationRecord> {
    const record: AllocationRecord = {
      pool: this.poolName,
      address: formatIp(a),
      node: req.node,
      podNamespace: req.podNamespace,
      podName: req.podName,
      podUID: req.podUID,
      containerID: req.containerID,
      interface: req.interface,
    };
    Object.freeze(record);
    this.byAddress.set(a.value, record);
    this.byContainer.set(containerKey(req.containerID, req.interface), a.value);
    return record;
  }

  private releaseValue(v: bigint, opts: ReleaseOptions): Readonly<AllocationRecord> | undefined {
    this.expire();
    const r = this.byAddress.get(v);
    if (!r) return undefined;
    this.byAddress.delete(v);
    this.byContainer.delete(containerKey(r.containerID, r.interface));
    const at = opts.at ?? this.now();
    if (opts.cooldown === false || this.cooldownMs <= 0 || at + this.cooldownMs <= this.now()) {
      this.clearValue(v);
    } else {
      this.cooling.set(v, { record: r, releasedAt: at });
      this.heap.push({ expiresAt: at + this.cooldownMs, value: v, releasedAt: at });
    }
    return r;
  }

  private locate(address: string | IpAddress): { index: bigint; offset: number } | undefined {
    const a = typeof address === 'string' ? tryParseIp(address) : address;
    if (!a) return undefined;
    const rank = this.set.indexOf(a);
    if (rank === undefined) return undefined;
    const bs = BigInt(this.blockSize);
    return { index: rank / bs, offset: Number(rank % bs) };
  }

  /** The block, created (untouched → touched, unclaimed) if needed. */
  private blockAt(index: bigint): Block {
    let b = this.blocks.get(index);
    if (b) return b;
    const start = index * BigInt(this.blockSize);
    const rest = this.set.size - start;
    const length = rest < BigInt(this.blockSize) ? Number(rest) : this.blockSize;
    const words = Math.ceil(length / 32);
    const bits = new Uint32Array(words);
    const pad = words * 32 - length;
    if (pad > 0) bits[words - 1] = (~0 << (32 - pad)) >>> 0;
    b = { index, start, length, bits, used: 0, affinity: undefined };
    this.blocks.set(index, b);
    this.unclaimedOpen.add(index);
    return b;
  }

  private setBit(b: Block, offset: number): void {
    b.bits[offset >>> 5]! |= 1 << (offset & 31);
    b.used++;
    this.refresh(b);
  }

  private clearValue(v: bigint): void {
    const loc = this.locate({ family: this.set.family, value: v })!;
    const b = this.blocks.get(loc.index)!;
    b.bits[loc.offset >>> 5]! &= ~(1 << (loc.offset & 31));
    b.used--;
    this.refresh(b);
  }

  /** First free offset of a block with room; marks it used. */
  private takeFree(b: Block): number {
    for (let w = 0; w < b.bits.length; w++) {
      this.step();
      const word = b.bits[w]!;
      if (word === 0xffffffff) continue;
      const inv = ~word >>> 0;
      const bit = 31 - Math.clz32(inv & -inv);
      const offset = w * 32 + bit;
      this.setBit(b, offset);
      return offset;
    }
    throw new Error(`block ${b.index} of pool ${this.poolName} has no free address (used ${b.used}/${b.length})`);
  }

  private setAffinity(b: Block, node: string): void {
    b.affinity = node;
    let s = this.nodeBlocks.get(node);
    if (!s) this.nodeBlocks.set(node, (s = new Set()));
    s.add(b.index);
    this.refresh(b);
  }

  /** Keeps the open-block sets in line with the block's fill. */
  private refresh(b: Block): void {
    const open = b.used < b.length;
    if (b.affinity !== undefined) {
      this.unclaimedOpen.delete(b.index);
      let s = this.nodeOpen.get(b.affinity);
      if (open) {
        if (!s) this.nodeOpen.set(b.affinity, (s = new Set()));
        s.add(b.index);
        this.claimedOpen.add(b.index);
      } else {
        s?.delete(b.index);
        this.claimedOpen.delete(b.index);
      }
    } else if (open) this.unclaimedOpen.add(b.index);
    else this.unclaimedOpen.delete(b.index);
  }

  private first<T>(s: Set<T> | undefined): T | undefined {
    if (!s) return undefined;
    this.step();
    for (const x of s) return x;
    return undefined;
  }

  /** Own block → claim (hashed, touched unclaimed, lowest untouched) → borrow. */
  private chooseBlock(node: string): Block | undefined {
    const own = this.first(this.nodeOpen.get(node));
    if (own !== undefined) return this.blocks.get(own)!;

    if (this.blockCount > 0n) {
      for (let i = 0; i < HASH_PROBES; i++) {
        this.step();
        const idx = hash64(`${node}#${i}`) % this.blockCount;
        if (!this.blocks.has(idx)) return this.claim(this.blockAt(idx), node);
      }
    }
    const touched = this.first(this.unclaimedOpen);
    if (touched !== undefined) return this.claim(this.blocks.get(touched)!, node);
    while (this.nextFresh < this.blockCount && this.blocks.has(this.nextFresh)) {
      this.step();
      this.nextFresh++;
    }
    if (this.nextFresh < this.blockCount) return this.claim(this.blockAt(this.nextFresh), node);

    const borrowed = this.first(this.claimedOpen);
    if (borrowed !== undefined) return this.blocks.get(borrowed)!;
    return undefined;
  }

  private claim(b: Block, node: string): Block {
    this.setAffinity(b, node);
    return b;
  }

  /** Consistency check of the internal structures (tests; O(state)). Returns problems. */
  checkInvariants(): string[] {
    const out: string[] = [];
    const expectUsed = new Map<bigint, number>();
    const mark = (v: bigint, what: string) => {
      const loc = this.locate({ family: this.set.family, value: v });
      if (!loc) return void out.push(`${what} ${v} outside the pool`);
      const b = this.blocks.get(loc.index);
      if (!b) return void out.push(`${what} ${v} in untouched block ${loc.index}`);
      if (((b.bits[loc.offset >>> 5]! >>> (loc.offset & 31)) & 1) === 0) out.push(`${what} ${v}: bit clear`);
      expectUsed.set(loc.index, (expectUsed.get(loc.index) ?? 0) + 1);
    };
    for (const [v, r] of this.byAddress) {
      mark(v, 'allocated');
      if (this.cooling.has(v)) out.push(`${r.address} both allocated and cooling`);
      if (this.byContainer.get(containerKey(r.containerID, r.interface)) !== v) out.push(`${r.address}: container index wrong`);
    }
    if (this.byContainer.size !== this.byAddress.size) out.push('container index size differs');
    for (const v of this.cooling.keys()) mark(v, 'cooling');
    for (const b of this.blocks.values()) {
      let ones = 0;
      for (let o = 0; o < b.length; o++) ones += (b.bits[o >>> 5]! >>> (o & 31)) & 1;
      if (ones !== b.used) out.push(`block ${b.index}: ${ones} bits set, used ${b.used}`);
      if ((expectUsed.get(b.index) ?? 0) !== b.used) out.push(`block ${b.index}: used ${b.used}, records ${expectUsed.get(b.index) ?? 0}`);
      const open = b.used < b.length;
      if (b.affinity !== undefined) {
        if (open !== !!this.nodeOpen.get(b.affinity)?.has(b.index)) out.push(`block ${b.index}: nodeOpen wrong`);
        if (open !== this.claimedOpen.has(b.index)) out.push(`block ${b.index}: claimedOpen wrong`);
        if (this.unclaimedOpen.has(b.index)) out.push(`block ${b.index}: claimed but in unclaimedOpen`);
        if (!this.nodeBlocks.get(b.affinity)?.has(b.index)) out.push(`block ${b.index}: nodeBlocks wrong`);
      } else {
        if (open !== this.unclaimedOpen.has(b.index)) out.push(`block ${b.index}: unclaimedOpen wrong`);
        if (this.claimedOpen.has(b.index)) out.push(`block ${b.index}: unclaimed but in claimedOpen`);
      }
    }
    return out;
  }
}
