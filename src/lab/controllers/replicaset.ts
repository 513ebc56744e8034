// The ReplicaSet controller (kube-controller-manager's replicaset controller): keeps
// spec.replicas active pods matching each ReplicaSet, creates them from spec.template with an
// ownerReference (controller, blockOwnerDeletion), deletes the least valuable ones first when
// there are too many, adopts matching orphans and releases pods whose labels no longer match,
// and reports replicas / fullyLabeledReplicas / readyReplicas / availableReplicas /
// observedGeneration / ReplicaFailure in status.
//
// Pods it has asked for (or asked to delete) but not seen in the informer yet are remembered
// ("expectations"), so that a reconcile running before the watch delivers them does not create or
// delete a second time.
import type { V1OwnerReference, V1Pod, V1ReplicaSet, V1ReplicaSetCondition, V1ReplicaSetStatus } from '@kubernetes/client-node';
import { describeError } from '../../k8s/resilient-informer.js';
import { Controller, type ControllerContext, type ReconcileResult } from './controller.js';
import type { EventRecorder } from './events.js';
import {
  apiTime, canonicalJson, controllerRefOf, isBeingDeleted, isNotFound, isPodActive, isPodAvailable, isPodReady,
  keyOf, msUntilAvailable, ownerReferenceTo, selectorIsEmpty, selectorMatches, splitKey, timeOf,
} from './util.js';

const EXPECTATION_TTL_MS = 60_000;
/** Creations and deletions per reconcile, in batches of 1, 2, 4, … (client-go's slow start). */
const BURST = 500;

/** Names of pods asked for (creates) or asked away (deletes), per ReplicaSet, until observed. */
export class Expectations {
  private readonly creates = new Map<string, Map<string, number>>();
  private readonly deletes = new Map<string, Map<string, number>>();

  expectCreate(owner: string, pod: string): void {
    this.entry(this.creates, owner).set(pod, Date.now() + EXPECTATION_TTL_MS);
  }

  expectDelete(owner: string, pod: string): void {
    this.entry(this.deletes, owner).set(pod, Date.now() + EXPECTATION_TTL_MS);
  }

  /** Pods created but not yet in the cache (the cache lookup drops those that arrived). */
  pendingCreates(owner: string, inCache: (name: string) => boolean): string[] {
    return this.pending(this.creates, owner, inCache);
  }

  /** Pods deleted but still active in the cache. */
  pendingDeletes(owner: string, stillActive: (name: string) => boolean): Set<string> {
    return new Set(this.pending(this.deletes, owner, (name) => !stillActive(name)));
  }

  /** A pod left the cache: neither a create nor a delete is pending for it any more. */
  observeGone(owner: string, pod: string): void {
    this.creates.get(owner)?.delete(pod);
    this.deletes.get(owner)?.delete(pod);
  }

  forget(owner: string): void {
    this.creates.delete(owner);
    this.deletes.delete(owner);
  }

  private entry(map: Map<string, Map<string, number>>, owner: string): Map<string, number> {
    let m = map.get(owner);
    if (!m) map.set(owner, (m = new Map()));
    return m;
  }

  private pending(map: Map<string, Map<string, number>>, owner: string, satisfied: (name: string) => boolean): string[] {
    const m = map.get(owner);
    if (!m) return [];
    const now = Date.now();
    const out: string[] = [];
    for (const [name, expires] of m) {
      if (satisfied(name) || expires < now) m.delete(name);
      else out.push(name);
    }
    if (m.size === 0) map.delete(owner);
    return out;
  }
}

/** Orders pods by how little it costs to delete them (controller.ActivePods ranking). */
export function deletionCost(a: V1Pod, b: V1Pod): number {
  // 1. not yet scheduled before scheduled
  const sa = a.spec?.nodeName ? 1 : 0;
  const sb = b.spec?.nodeName ? 1 : 0;
  if (sa !== sb) return sa - sb;
  // 2. Pending < Unknown < Running
  const rank = (p: V1Pod) => ({ Pending: 0, Unknown: 1, Running: 2 } as Record<string, number>)[p.status?.phase ?? 'Pending'] ?? 0;
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  // 3. not ready before ready
  const ra = isPodReady(a) ? 1 : 0;
  const rb = isPodReady(b) ? 1 : 0;
  if (ra !== rb) return ra - rb;
  // 4. ready for a shorter time first
  if (ra && rb) {
    const ta = timeOf(a.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime);
    const tb = timeOf(b.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime);
    if (ta !== tb) return tb - ta;
  }
  // 5. more restarts first
  const restarts = (p: V1Pod) => (p.status?.containerStatuses ?? []).reduce((n, c) => Math.max(n, c.restartCount ?? 0), 0);
  if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
  // 6. newer first
  const ca = timeOf(a.metadata?.creationTimestamp);
  const cb = timeOf(b.metadata?.creationTimestamp);
  if (ca !== cb) return cb - ca;
  return (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
}

export function podFromTemplate(owner: V1ReplicaSet): V1Pod {
  const template = owner.spec?.template ?? {};
  const meta = template.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${owner.metadata?.name}-`,
      namespace: owner.metadata?.namespace,
      labels: { ...(meta.labels ?? {}) },
      annotations: meta.annotations ? { ...meta.annotations } : undefined,
      finalizers: meta.finalizers ? [...meta.finalizers] : undefined,
      ownerReferences: [ownerReferenceTo(owner, 'apps/v1', 'ReplicaSet')],
    },
    spec: JSON.parse(JSON.stringify(template.spec ?? { containers: [] })),
  };
}

export class ReplicaSetController extends Controller {
  private readonly expectations = new Expectations();
  private readonly events: EventRecorder;

  constructor(ctx: ControllerContext) {
    super(ctx, 'replicaset-controller');
    this.events = ctx.recorder('replicaset-controller');
  }

  register(): void {
    const rs = this.ctx.informers.replicaSets();
    const pods = this.ctx.informers.pods();
    rs.on('add', (obj) => this.enqueue(keyOf(obj)));
    rs.on('update', (obj) => this.enqueue(keyOf(obj)));
    rs.on('delete', (obj) => {
      this.expectations.forget(keyOf(obj));
      this.enqueue(keyOf(obj));
    });
    pods.on('add', (pod) => this.podChanged(pod));
    pods.on('update', (pod) => this.podChanged(pod));
    pods.on('delete', (pod) => {
      const owner = this.ownerKey(pod);
      if (owner) this.expectations.observeGone(owner, pod.metadata?.name ?? '');
      this.podChanged(pod);
    });
  }

  protected allKeys(): string[] {
    return this.ctx.informers.replicaSets().list().map(keyOf);
  }

  private ownerKey(pod: V1Pod): string | undefined {
    const ref = controllerRefOf(pod);
    if (!ref || ref.kind !== 'ReplicaSet') return undefined;
    return `${pod.metadata?.namespace}/${ref.name}`;
  }

  private podChanged(pod: V1Pod): void {
    const owner = this.ownerKey(pod);
    if (owner) {
      this.enqueue(owner);
      return;
    }
    if (controllerRefOf(pod)) return;
    // An orphan: every ReplicaSet that selects it may adopt it.
    for (const rs of this.ctx.informers.replicaSets().list(pod.metadata?.namespace)) {
      if (selectorMatches(rs.spec?.selector, pod.metadata?.labels)) this.enqueue(keyOf(rs));
    }
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const rs = this.ctx.informers.replicaSets().get(name, namespace);
    if (!rs) {
      this.expectations.forget(key);
      return;
    }
    if (selectorIsEmpty(rs.spec?.selector)) {
      this.log.warn('replicaset has an empty selector; ignored', { key });
      return;
    }
    const pods = await this.claimPods(rs, this.ctx.informers.pods().list(namespace));
    const deleting = isBeingDeleted(rs);

    let failure: string | undefined;
    if (!deleting) {
      const byName = new Map(pods.map((p) => [p.metadata?.name ?? '', p]));
      const pendingDeletes = this.expectations.pendingDeletes(key, (n) => {
        const p = byName.get(n);
        return p !== undefined && isPodActive(p);
      });
      const active = pods.filter((p) => isPodActive(p) && !pendingDeletes.has(p.metadata?.name ?? ''));
      const pendingCreates = this.expectations.pendingCreates(key, (n) => this.ctx.informers.pods().get(n, namespace) !== undefined);
      const desired = rs.spec?.replicas ?? 1;
      const diff = desired - active.length - pendingCreates.length;
      if (diff > 0) {
        failure = await this.createPods(rs, key, Math.min(diff, BURST));
      } else if (diff < 0 && pendingCreates.length === 0) {
        const victims = [...active].sort(deletionCost).slice(0, Math.min(-diff, BURST));
        failure = await this.deletePods(rs, key, victims);
      }
    }

    return this.updateStatus(rs, pods, failure);
  }

  /** The pods this ReplicaSet controls, after adopting matching orphans and releasing non-matching pods. */
  private async claimPods(rs: V1ReplicaSet, candidates: readonly V1Pod[]): Promise<V1Pod[]> {
    const uid = rs.metadata?.uid;
    const owned: V1Pod[] = [];
    for (const pod of candidates) {
      const ref = controllerRefOf(pod);
      const matches = selectorMatches(rs.spec?.selector, pod.metadata?.labels);
      if (ref) {
        if (ref.uid !== uid) continue;
        if (matches || isBeingDeleted(pod)) {
          owned.push(pod);
        } else {
          await this.updatePodOwners(pod, (refs) => refs.filter((r) => r.uid !== uid), 'released');
        }
      } else if (matches && !isBeingDeleted(pod) && !isBeingDeleted(rs) && isPodActive(pod)) {
        const adopted = await this.updatePodOwners(pod, (refs) => [...refs, ownerReferenceTo(rs, 'apps/v1', 'ReplicaSet')], 'adopted');
        if (adopted) owned.push(adopted);
      }
    }
    return owned;
  }

  private async updatePodOwners(pod: V1Pod, change: (refs: V1OwnerReference[]) => V1OwnerReference[], what: string): Promise<V1Pod | undefined> {
    const body: V1Pod = JSON.parse(JSON.stringify(pod));
    body.metadata!.ownerReferences = change(body.metadata?.ownerReferences ?? []);
    try {
      const updated = await this.ctx.core.replaceNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body });
      this.log.info(`pod ${what}`, { pod: keyOf(pod) });
      return updated;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async createPods(rs: V1ReplicaSet, key: string, count: number): Promise<string | undefined> {
    let remaining = count;
    let batch = 1;
    while (remaining > 0) {
      const n = Math.min(batch, remaining);
      const results = await Promise.allSettled(Array.from({ length: n }, async () => {
        const created = await this.ctx.core.createNamespacedPod({ namespace: rs.metadata!.namespace!, body: podFromTemplate(rs) });
        this.expectations.expectCreate(key, created.metadata?.name ?? '');
        this.events.normal(this.target(rs), 'SuccessfulCreate', `Created pod: ${created.metadata?.name}`);
        return created;
      }));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) {
        const message = describeError(failed[0]!.reason);
        this.events.warning(this.target(rs), 'FailedCreate', `Error creating: ${message}`);
        this.log.warn('pod creation failed', { key, err: message });
        return message;
      }
      remaining -= n;
      batch *= 2;
    }
    return undefined;
  }

  private async deletePods(rs: V1ReplicaSet, key: string, victims: V1Pod[]): Promise<string | undefined> {
    const results = await Promise.allSettled(victims.map(async (pod) => {
      const name = pod.metadata?.name ?? '';
      try {
        await this.ctx.core.deleteNamespacedPod({ name, namespace: pod.metadata!.namespace!, body: { preconditions: { uid: pod.metadata?.uid } } });
        this.events.normal(this.target(rs), 'SuccessfulDelete', `Deleted pod: ${name}`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      this.expectations.expectDelete(key, name);
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      const message = describeError(failed.reason);
      this.events.warning(this.target(rs), 'FailedDelete', `Error deleting: ${message}`);
      return message;
    }
    return undefined;
  }

  private target(rs: V1ReplicaSet) {
    return { ...rs, apiVersion: 'apps/v1', kind: 'ReplicaSet' };
  }

  private async updateStatus(rs: V1ReplicaSet, owned: V1Pod[], failure: string | undefined): Promise<ReconcileResult | void> {
    const now = Date.now();
    const minReady = rs.spec?.minReadySeconds ?? 0;
    const active = owned.filter(isPodActive);
    const templateLabels = rs.spec?.template?.metadata?.labels ?? {};
    let requeue: number | undefined;
    for (const p of active) {
      const left = msUntilAvailable(p, minReady, now);
      if (left !== undefined) requeue = Math.min(requeue ?? Infinity, left + 50);
    }
    const old = rs.status ?? { replicas: 0 };
    const desired = rs.spec?.replicas ?? 1;
    const conditions: V1ReplicaSetCondition[] = (old.conditions ?? []).filter((c) => c.type !== 'ReplicaFailure');
    if (failure && active.length !== desired) {
      const prior = old.conditions?.find((c) => c.type === 'ReplicaFailure');
      conditions.push({
        type: 'ReplicaFailure', status: 'True', reason: active.length < desired ? 'FailedCreate' : 'FailedDelete', message: failure,
        lastTransitionTime: prior?.status === 'True' ? prior.lastTransitionTime : apiTime(now),
      });
    }
    const status: V1ReplicaSetStatus = {
      replicas: active.length,
      fullyLabeledReplicas: active.filter((p) => Object.entries(templateLabels).every(([k, v]) => p.metadata?.labels?.[k] === v)).length,
      readyReplicas: active.filter(isPodReady).length,
      availableReplicas: active.filter((p) => isPodAvailable(p, minReady, now)).length,
      observedGeneration: rs.metadata?.generation,
      conditions: conditions.length > 0 ? conditions : undefined,
    };
    if (canonicalJson(normalizeStatus(old)) !== canonicalJson(normalizeStatus(status))) {
      const body: V1ReplicaSet = { ...rs, status };
      try {
        await this.ctx.apps.replaceNamespacedReplicaSetStatus({ name: rs.metadata!.name!, namespace: rs.metadata!.namespace!, body });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
  }
}

/** Zero counts are omitted on the wire; compare statuses with them filled in. */
function normalizeStatus(s: V1ReplicaSetStatus): unknown {
  return {
    replicas: s.replicas ?? 0,
    fullyLabeledReplicas: s.fullyLabeledReplicas ?? 0,
    readyReplicas: s.readyReplicas ?? 0,
    availableReplicas: s.availableReplicas ?? 0,
    observedGeneration: s.observedGeneration ?? 0,
    conditions: s.conditions ?? [],
  };
}
