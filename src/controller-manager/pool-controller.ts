// The pool controller: validates every Ips pool (validatePools: oldest first, so on an overlap
// the older pool keeps its range and the newer one gets OverlapsPool) and writes the pool's status
// through the status subresource: counts (totalIPCount, allocatedIPCount, coolingIPCount),
// observedGeneration, and the Ready condition with reason and message. It never touches
// allocations: a pool that became invalid keeps its IpEndpoints (agents stop allocating from it).
import { describeError } from '../k8s/resilient-informer.js';
import { IPS_PLURAL, readyCondition, toStatusCount, validatePools, type Condition, type IpsStatus } from '../model/ipam/pool.js';
import { httpStatus, poolObjects, recordOf, type JsonObject } from '../agent/ipam/kubernetes.js';
import type { Logger } from '../agent/log.js';
import { CR, type Caches, type Clients } from './caches.js';

const MAX_MESSAGE = 32_768;

export interface PoolControllerOptions {
  caches: Caches;
  clients: Clients;
  log: Logger;
  /** Debounce of reconciliations after changes (default 200 ms). */
  debounceMs?: number;
  now?: () => number;
}

interface ConditionJson extends Condition {
  lastTransitionTime: string;
}

export class PoolController {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly debounceMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private retry = false;
  private readonly onChange = (): void => this.kick();

  constructor(private readonly o: PoolControllerOptions) {
    this.log = o.log.child({ controller: 'pools' });
    this.now = o.now ?? Date.now;
    this.debounceMs = o.debounceMs ?? 200;
  }

  start(): void {
    for (const inf of [this.o.caches.pools, this.o.caches.endpoints]) {
      for (const verb of ['add', 'update', 'delete'] as const) inf.on(verb, this.onChange);
    }
    this.kick(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const inf of [this.o.caches.pools, this.o.caches.endpoints]) {
      for (const verb of ['add', 'update', 'delete'] as const) inf.off(verb, this.onChange);
    }
    await this.running;
  }

  /** Schedules a reconciliation (coalescing bursts of events). */
  kick(delay = this.debounceMs): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.reconcile()
        .then(() => undefined)
        .catch((err: unknown) => this.log.error('pool reconciliation failed', { err: describeError(err) }))
        .finally(() => {
          this.running = undefined;
          if (this.again || this.retry) {
            const delay = this.retry ? 2000 : this.debounceMs;
            this.again = false;
            this.retry = false;
            this.kick(delay);
          }
        });
    }, delay);
  }

  /** One pass over all pools; returns how many statuses were written. */
  async reconcile(): Promise<number> {
    const pools = this.o.caches.pools.list() as JsonObject[];
    const validations = validatePools(poolObjects(pools));
    const counts = new Map<string, { allocated: number; cooling: number }>();
    for (const e of this.o.caches.endpointList()) {
      const r = recordOf(e);
      if (!r) continue;
      const c = counts.get(r.pool) ?? { allocated: 0, cooling: 0 };
      if (r.releasedAt) c.cooling++;
      else c.allocated++;
      counts.set(r.pool, c);
    }
    let written = 0;
    for (const p of pools) {
      if (this.stopped) break;
      const name = p.metadata?.name;
      if (!name) continue;
      const v = validations.get(name)!;
      const cond = readyCondition(v);
      const old = (p.status ?? {}) as Omit<IpsStatus, 'conditions'> & { conditions?: ConditionJson[] };
      const oldReady = old.conditions?.find((c) => c.type === 'Ready');
      const generation = typeof p.metadata?.generation === 'number' ? p.metadata.generation : undefined;
      const ready: ConditionJson = {
        type: 'Ready',
        status: cond.status,
        reason: cond.reason,
        message: cond.message.length > MAX_MESSAGE ? `${cond.message.slice(0, MAX_MESSAGE - 3)}...` : cond.message,
        lastTransitionTime:
          oldReady && oldReady.status === cond.status && oldReady.lastTransitionTime ? oldReady.lastTransitionTime : rfc3339(this.now()),
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
      };
      const c = counts.get(name) ?? { allocated: 0, cooling: 0 };
      const status: Omit<IpsStatus, 'conditions'> & { conditions: ConditionJson[] } = {
        ...old,
        totalIPCount: v.ok ? toStatusCount(v.pool.allocatable.size) : 0,
        allocatedIPCount: c.allocated,
        coolingIPCount: c.cooling,
        conditions: [...(old.conditions ?? []).filter((x) => x.type !== 'Ready'), ready],
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
      };
      if (sameJson(status, old)) continue;
      if (!oldReady || oldReady.status !== ready.status || oldReady.reason !== ready.reason) {
        const fields = { pool: name, ready: ready.status, reason: ready.reason, message: ready.message };
        if (ready.status === 'True') this.log.info('pool is ready', fields);
        else this.log.warn('pool is not ready', fields);
      }
      try {
        await this.o.clients.custom.replaceClusterCustomObjectStatus({ ...CR, plural: IPS_PLURAL, name, body: { ...p, status } });
        written++;
      } catch (err) {
        const code = httpStatus(err);
        if (code === 409 || code === 404) {
          this.again = true; // the pool changed meanwhile: the next pass sees the new version
          continue;
        }
        this.log.warn('cannot write pool status', { pool: name, err: describeError(err) });
        this.retry = true;
      }
    }
    return written;
  }
}

function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(canonical);
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(x as Record<string, unknown>).sort()) out[k] = canonical((x as Record<string, unknown>)[k]);
    return out;
  }
  return x;
}
