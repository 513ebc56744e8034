// Moves pods from cls_bpf to tcx links in the background (attachMode auto, the default).
//
// Why in two steps: a tcx link saves ~0.25–0.4 µs per same-node round trip over clsact +
// cls_bpf (docs/benchmarks.md), but on this kernel creating one waits for an RCU grace
// period while holding RTNL (~15 ms, against 0.04 ms for a cls_bpf filter). Paid inside the
// CNI ADD, that made a Fast ADD 1.4× the bridge plugin's instead of 0.4×, and it stalls every
// other link operation of the machine meanwhile. So the ADD attaches cls_bpf, and this mover
// replaces the filter with a link once the node is quiet: no CNI call in flight and none
// for `idleMs`, one pod at a time, so a CNI call arriving meanwhile waits at most one move.
// On a node that never stays quiet that long (pods churning all the time), a pod that has
// waited `maxWaitMs` moves anyway in a gap between calls, at most one such move per `idleMs`.
// The link runs before the filter, so the swap loses no packet (tc.ts).
//
// The move runs synchronously on the agent's thread: no CNI call can interleave with it (a
// DEL of the same pod waits), which is what makes it safe without a lock per pod.
import type { Endpoint } from './endpoint-store.js';
import type { Logger } from './log.js';

type Key = `${string}/${string}`;

export interface TcxMoverDeps {
  /** The pod's current record, or undefined when it is gone (a DEL came first). */
  lookup(containerId: string, ifName: string): Endpoint | undefined;
  move(ep: Endpoint): void;
  log: Logger;
  idleMs: number;
  /** The longest a pod waits for an idle node before it moves in a gap between calls (default 30 s). */
  maxWaitMs?: number;
  now?: () => number;
}

interface Waiting {
  containerId: string;
  ifName: string;
  since: number;
}

export class TcxMover {
  private readonly waiting = new Map<Key, Waiting>();
  private inFlight = 0;
  private lastCallEnded: number;
  private lastForcedMove = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Moves done and failed since start (status, tests). */
  readonly stats = { moved: 0, failed: 0 };

  constructor(private readonly deps: TcxMoverDeps) {
    this.lastCallEnded = this.now();
  }

  /** The pod is on cls_bpf: move it when the node is next idle. */
  schedule(ep: Pick<Endpoint, 'containerId' | 'ifName'>): void {
    const key: Key = `${ep.containerId}/${ep.ifName}`;
    if (!this.waiting.has(key)) this.waiting.set(key, { containerId: ep.containerId, ifName: ep.ifName, since: this.now() });
    this.arm();
  }

  /** A CNI call started: no move until it and every other one has ended, plus idleMs. */
  callStarted(): void {
    this.inFlight++;
    this.disarm();
  }

  callEnded(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.lastCallEnded = this.now();
    this.arm();
  }

  get pending(): number {
    return this.waiting.size;
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private arm(): void {
    if (this.stopped || this.timer || this.inFlight > 0 || this.waiting.size === 0) return;
    const wait = Math.max(0, Math.min(this.idleAt(), this.overdueAt()) - this.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.moveOne();
      this.arm();
    }, wait);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** When the node will have been quiet for idleMs. */
  private idleAt(): number {
    return this.lastCallEnded + this.deps.idleMs;
  }

  /** When the longest-waiting pod may move between calls (no sooner than idleMs after the last such move). */
  private overdueAt(): number {
    const oldest = this.waiting.values().next().value as Waiting;
    return Math.max(oldest.since + (this.deps.maxWaitMs ?? 30_000), this.lastForcedMove + this.deps.idleMs);
  }

  private moveOne(): void {
    if (this.inFlight > 0) return;
    const now = this.now();
    const idle = now >= this.idleAt();
    if (!idle && now < this.overdueAt()) return;
    if (!idle) this.lastForcedMove = now;
    const next = this.waiting.entries().next();
    if (next.done) return;
    const [key, { containerId, ifName }] = next.value;
    this.waiting.delete(key);
    const ep = this.deps.lookup(containerId, ifName);
    if (!ep) return; // deleted while it waited
    try {
      this.deps.move(ep);
      this.stats.moved++;
    } catch (err) {
      // The pod keeps working on cls_bpf; a later restart of the agent tries again.
      this.stats.failed++;
      this.deps.log.warn('could not move the pod to a tcx link; it stays on cls_bpf', { containerId, ifName, err: (err as Error).message });
    }
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : performance.now();
  }
}
