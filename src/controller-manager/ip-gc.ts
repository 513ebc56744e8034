// The IP garbage collector: no address stays held by something that is gone.
//
// For every IpEndpoint, on its own changes, on deletions of pods, nodes and StatefulSets, and by a
// periodic sweep of all of them:
//   - released (spec.releasedAt): deleted once the cooldown has passed (a timer fires then);
//   - live, but its pod is gone — no pod of that namespace/name, or one with another UID (a new
//     pod with the same name never inherits an address) — or its node is gone: released
//     (spec.releasedAt = now: the address still rests for the cooldown before reuse), after the
//     API server confirmed the absence (caches may lag behind a fresh allocation);
//   - sticky (its pod belongs to a StatefulSet): instead of being released it is reserved for the
//     pod name (spec.podUID cleared, label ipam.fast.io/reserved=true) while the StatefulSet
//     exists and its replicas cover the pod's ordinal; the reservation is released when the
//     StatefulSet is deleted (or replaced: another UID) or scaled below the ordinal.
// Every write is conditional on the resourceVersion the decision was made on.
import { describeError } from '../k8s/resilient-informer.js';
import { IPENDPOINT_PLURAL } from '../model/ipam/naming.js';
import {
  RESERVED_LABEL,
  httpStatus,
  isReserved,
  recordOf,
  stickyOf,
  statefulSetOrdinal,
  type IpEndpointJson,
  type JsonObject,
} from '../agent/ipam/kubernetes.js';
import type { AllocationRecord } from '../model/ipam/allocator.js';
import type { Logger } from '../agent/log.js';
import { CR, type Caches, type Clients, type Informer } from './caches.js';
import type { KubernetesObject } from '@kubernetes/client-node';

export interface IpGcOptions {
  caches: Caches;
  clients: Clients;
  log: Logger;
  /** Rest of a released address before its IpEndpoint is deleted (default 30 s). */
  cooldownMs?: number;
  /** Period of the full sweep (default 60 s). */
  sweepMs?: number;
  /** IpEndpoints checked at the same time (default 8). */
  concurrency?: number;
  now?: () => number;
}

export type GcAction = 'deleted' | 'released' | 'reserved' | 'kept';

export interface GcStats {
  deleted: number;
  released: number;
  reserved: number;
  sweeps: number;
}

export class IpGarbageCollector {
  readonly stats: GcStats = { deleted: 0, released: 0, reserved: 0, sweeps: 0 };
  private readonly log: Logger;
  private readonly cooldownMs: number;
  private readonly sweepMs: number;
  private readonly concurrency: number;
  private readonly now: () => number;
  private readonly queue = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly cooling = new Map<string, NodeJS.Timeout>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private workers = 0;
  /** namespace/name of the pod → IpEndpoint names, and back. */
  private readonly byPod = new Map<string, Set<string>>();
  private readonly podOf = new Map<string, string>();
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private readonly subs: { inf: Informer; verb: 'add' | 'update' | 'delete'; cb: (o: KubernetesObject) => void }[] = [];

  constructor(private readonly o: IpGcOptions) {
    this.log = o.log.child({ controller: 'ip-gc' });
    this.cooldownMs = o.cooldownMs ?? 30_000;
    this.sweepMs = o.sweepMs ?? 60_000;
    this.concurrency = o.concurrency ?? 8;
    this.now = o.now ?? Date.now;
  }

  start(): void {
    const c = this.o.caches;
    const on = (inf: Informer, verb: 'add' | 'update' | 'delete', cb: (o: JsonObject) => void) => {
      const f = (o: KubernetesObject) => cb(o as JsonObject);
      inf.on(verb, f);
      this.subs.push({ inf, verb, cb: f });
    };
    for (const e of c.endpointList()) this.index(e, false);
    on(c.endpoints, 'add', (o) => {
      this.index(o as IpEndpointJson, false);
      this.enqueue(o.metadata?.name);
    });
    on(c.endpoints, 'update', (o) => {
      this.index(o as IpEndpointJson, false);
      this.enqueue(o.metadata?.name);
    });
    on(c.endpoints, 'delete', (o) => {
      this.index(o as IpEndpointJson, true);
      this.dropTimer(o.metadata?.name);
    });
    on(c.pods, 'delete', (p) => {
      for (const name of this.byPod.get(`${p.metadata?.namespace}/${p.metadata?.name}`) ?? []) this.enqueue(name);
    });
    on(c.nodes, 'delete', (n) => this.enqueueWhere((r) => r.node === n.metadata?.name));
    const stsChanged = (s: JsonObject) =>
      this.enqueueWhere((r, e) => r.podNamespace === s.metadata?.namespace && stickyOf(e)?.name === s.metadata?.name);
    on(c.statefulSets, 'update', stsChanged);
    on(c.statefulSets, 'delete', stsChanged);
    this.sweep();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.subs) s.inf.off(s.verb, s.cb);
    this.subs.length = 0;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    for (const t of this.cooling.values()) clearTimeout(t);
    this.cooling.clear();
    this.queue.clear();
    await this.idle();
  }

  /** Checks every IpEndpoint now (and schedules the next sweep). */
  sweep(): void {
    if (this.stopped) return;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.stats.sweeps++;
    for (const e of this.o.caches.endpointList()) this.enqueue(e.metadata.name);
    this.sweepTimer = setTimeout(() => this.sweep(), this.sweepMs);
    this.sweepTimer.unref?.();
  }

  /** Resolves when no check is queued or running. */
  idle(): Promise<void> {
    if (this.workers === 0 && this.queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Keeps the pod → IpEndpoint names index. */
  private index(e: IpEndpointJson, deleted: boolean): void {
    const name = e.metadata?.name;
    if (!name) return;
    const prev = this.podOf.get(name);
    if (prev !== undefined) {
      const s = this.byPod.get(prev);
      if (s?.delete(name) && s.size === 0) this.byPod.delete(prev);
      this.podOf.delete(name);
    }
    const r = recordOf(e);
    if (deleted || !r) return;
    const key = `${r.podNamespace}/${r.podName}`;
    let s = this.byPod.get(key);
    if (!s) this.byPod.set(key, (s = new Set()));
    s.add(name);
    this.podOf.set(name, key);
  }

  private enqueueWhere(pred: (r: AllocationRecord, e: IpEndpointJson) => boolean): void {
    for (const e of this.o.caches.endpointList()) {
      const r = recordOf(e);
      if (r && pred(r, e)) this.enqueue(e.metadata.name);
    }
  }

  private enqueue(name: string | undefined): void {
    if (!name || this.stopped) return;
    this.queue.add(name);
    this.pump();
  }

  private pump(): void {
    while (this.workers < this.concurrency && this.queue.size > 0) {
      const name = this.nextName();
      if (name === undefined) break;
      this.workers++;
      this.inFlight.add(name);
      void this.check(name)
        .catch((err: unknown) => {
          this.log.warn('check failed; retrying later', { ipendpoint: name, err: describeError(err) });
          const t = setTimeout(() => this.enqueue(name), 2000);
          t.unref?.();
        })
        .finally(() => {
          this.workers--;
          this.inFlight.delete(name);
          this.pump();
          if (this.workers === 0 && this.queue.size === 0) {
            const w = this.idleWaiters;
            this.idleWaiters = [];
            for (const f of w) f();
          }
        });
    }
  }

  /** The first queued name not being checked right now (a name is checked by one worker at a time). */
  private nextName(): string | undefined {
    for (const n of this.queue) {
      if (this.inFlight.has(n)) continue;
      this.queue.delete(n);
      return n;
    }
    return undefined;
  }

  private dropTimer(name: string | undefined): void {
    if (!name) return;
    const t = this.cooling.get(name);
    if (t) clearTimeout(t);
    this.cooling.delete(name);
  }

  private schedule(name: string, atMs: number): void {
    this.dropTimer(name);
    const t = setTimeout(() => {
      this.cooling.delete(name);
      this.enqueue(name);
    }, Math.max(0, atMs - this.now()) + 5);
    t.unref?.();
    this.cooling.set(name, t);
  }

  /** Decides and acts on one IpEndpoint. */
  async check(name: string): Promise<GcAction> {
    if (this.stopped) return 'kept';
    const obj = this.o.caches.endpoint(name);
    const r = recordOf(obj);
    if (!obj || !r) return 'kept';

    if (r.releasedAt) {
      const at = Date.parse(r.releasedAt);
      const until = (Number.isNaN(at) ? 0 : at) + this.cooldownMs;
      if (until > this.now()) {
        this.schedule(name, until);
        return 'kept';
      }
      if (await this.remove(obj)) {
        this.stats.deleted++;
        this.log.info('cooldown over; address free', { address: r.address, pool: r.pool, pod: `${r.podNamespace}/${r.podName}` });
        return 'deleted';
      }
      return 'kept';
    }

    const sticky = stickyOf(obj);
    if (isReserved(obj)) {
      if (sticky && (await this.setWants(r, sticky))) return 'kept';
      return (await this.release(obj, r, 'StatefulSet deleted or scaled below the pod')) ? 'released' : 'kept';
    }

    const why = await this.holderGone(r);
    if (!why) return 'kept';
    if (sticky && (await this.setWants(r, sticky))) {
      return (await this.reserve(obj, r, why)) ? 'reserved' : 'kept';
    }
    return (await this.release(obj, r, why)) ? 'released' : 'kept';
  }

  /** Why the holder of a live allocation is gone, or undefined when it is not (confirmed by GET). */
  private async holderGone(r: AllocationRecord): Promise<string | undefined> {
    const c = this.o.caches;
    const cachedPod = c.pod(r.podNamespace, r.podName);
    const podOk = (p: JsonObject | undefined) => !!p && (r.podUID === '' || p.metadata?.uid === r.podUID);
    if (!podOk(cachedPod)) {
      let pod: JsonObject | undefined;
      try {
        pod = (await this.o.clients.core.readNamespacedPod({ name: r.podName, namespace: r.podNamespace })) as unknown as JsonObject;
      } catch (err) {
        if (httpStatus(err) !== 404) throw err;
      }
      if (!podOk(pod)) {
        return pod
          ? `pod ${r.podNamespace}/${r.podName} uid ${r.podUID} is gone (a new pod of that name has uid ${pod.metadata?.uid})`
          : `pod ${r.podNamespace}/${r.podName} uid ${r.podUID} is gone`;
      }
    }
    if (r.node !== '' && !c.node(r.node)) {
      try {
        await this.o.clients.core.readNode({ name: r.node });
      } catch (err) {
        if (httpStatus(err) === 404) return `node ${r.node} is gone`;
        throw err;
      }
    }
    return undefined;
  }

  /** Whether the StatefulSet still wants the pod's ordinal (confirmed by GET when the cache says no). */
  private async setWants(r: AllocationRecord, sticky: { name: string; uid?: string }): Promise<boolean> {
    const wants = (s: JsonObject | undefined): boolean => {
      if (!s || s.metadata?.deletionTimestamp) return false;
      if (sticky.uid && s.metadata?.uid !== sticky.uid) return false;
      const ordinal = statefulSetOrdinal(sticky.name, r.podName);
      if (ordinal === undefined) return false;
      const spec = (s.spec ?? {}) as { replicas?: number; ordinals?: { start?: number } };
      const replicas = typeof spec.replicas === 'number' ? spec.replicas : 1;
      const start = typeof spec.ordinals?.start === 'number' ? spec.ordinals.start : 0;
      return ordinal >= start && ordinal < start + replicas;
    };
    if (wants(this.o.caches.statefulSet(r.podNamespace, sticky.name))) return true;
    try {
      const s = (await this.o.clients.apps.readNamespacedStatefulSet({ name: sticky.name, namespace: r.podNamespace })) as unknown as JsonObject;
      return wants(s);
    } catch (err) {
      if (httpStatus(err) === 404) return false;
      throw err;
    }
  }

  private async replace(obj: IpEndpointJson): Promise<boolean> {
    try {
      await this.o.clients.custom.replaceClusterCustomObject({ ...CR, plural: IPENDPOINT_PLURAL, name: obj.metadata.name, body: obj });
      return true;
    } catch (err) {
      const code = httpStatus(err);
      if (code === 404) return false;
      if (code === 409) {
        this.enqueue(obj.metadata.name); // changed meanwhile: decide again on the new version
        return false;
      }
      throw err;
    }
  }

  private async remove(obj: IpEndpointJson): Promise<boolean> {
    try {
      await this.o.clients.custom.deleteClusterCustomObject({
        ...CR,
        plural: IPENDPOINT_PLURAL,
        name: obj.metadata.name,
        body: {
          preconditions: {
            ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
            ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
          },
        },
      });
      return true;
    } catch (err) {
      const code = httpStatus(err);
      if (code === 404) return false;
      if (code === 409) {
        this.enqueue(obj.metadata.name);
        return false;
      }
      throw err;
    }
  }

  private async release(obj: IpEndpointJson, r: AllocationRecord, why: string): Promise<boolean> {
    const labels = { ...(obj.metadata.labels ?? {}) };
    delete labels[RESERVED_LABEL];
    const releasedAt = new Date(this.now()).toISOString();
    const ok = await this.replace({ ...obj, metadata: { ...obj.metadata, labels }, spec: { ...r, releasedAt } });
    if (ok) {
      this.stats.released++;
      this.log.info('released an address whose holder is gone', { address: r.address, pool: r.pool, pod: `${r.podNamespace}/${r.podName}`, node: r.node, why });
    }
    return ok;
  }

  private async reserve(obj: IpEndpointJson, r: AllocationRecord, why: string): Promise<boolean> {
    const ok = await this.replace({
      ...obj,
      metadata: { ...obj.metadata, labels: { ...(obj.metadata.labels ?? {}), [RESERVED_LABEL]: 'true' } },
      spec: { ...r, podUID: '' },
    });
    if (ok) {
      this.stats.reserved++;
      this.log.info('kept a StatefulSet address for its pod name', { address: r.address, pod: `${r.podNamespace}/${r.podName}`, why });
    }
    return ok;
  }
}
