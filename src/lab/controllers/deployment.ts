// The Deployment controller (kube-controller-manager's deployment controller, ported from
// pkg/controller/deployment): one ReplicaSet per pod template, named
// <deployment>-<pod-template-hash> and labelled/selected with pod-template-hash; scaling
// (proportional across ReplicaSets during a rollout); RollingUpdate with maxSurge/maxUnavailable
// (25 %/25 % by default, 0/0 is refused as 0/1) and Recreate; revision annotations
// (deployment.kubernetes.io/revision, desired-replicas, max-replicas) so `kubectl rollout history`
// and `undo` work; cleanup of old ReplicaSets beyond revisionHistoryLimit; and the status
// `kubectl rollout status` waits on (observedGeneration, replicas, updatedReplicas,
// readyReplicas, availableReplicas, unavailableReplicas, Available and Progressing conditions,
// progressDeadlineSeconds).
import type {
  V1Deployment, V1DeploymentCondition, V1DeploymentStatus, V1Pod, V1ReplicaSet,
} from '@kubernetes/client-node';
import { Controller, type ControllerContext, type ReconcileResult } from './controller.js';
import type { EventRecorder } from './events.js';
import {
  POD_TEMPLATE_HASH, apiTime, canonicalJson, computeTemplateHash, controllerRefOf, isAlreadyExists, isBeingDeleted,
  isNotFound, isPodTerminal, keyOf, ownerReferenceTo, resolveIntOrPercent, selectorIsEmpty, selectorMatches, splitKey,
  templatesEqualIgnoringHash, timeOf,
} from './util.js';

export const REVISION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';

/** Deployment annotations not copied to its ReplicaSets (deployment util skipCopyAnnotation). */
const NOT_COPIED = new Set([
  'kubectl.kubernetes.io/last-applied-configuration', REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
  'deprecated.deployment.rollback.to',
]);

// Reasons of the Progressing and Available conditions (deployment util).
const NEW_RS_CREATED = 'NewReplicaSetCreated';
const FOUND_NEW_RS = 'FoundNewReplicaSet';
const RS_UPDATED = 'ReplicaSetUpdated';
const NEW_RS_AVAILABLE = 'NewReplicaSetAvailable';
const TIMED_OUT = 'ProgressDeadlineExceeded';
const PAUSED = 'DeploymentPaused';
const RESUMED = 'DeploymentResumed';
const MIN_AVAILABLE = 'MinimumReplicasAvailable';
const MIN_UNAVAILABLE = 'MinimumReplicasUnavailable';

const replicasOf = (rs: V1ReplicaSet | undefined) => rs?.spec?.replicas ?? 0;
const sum = (list: (V1ReplicaSet | undefined)[], f: (rs: V1ReplicaSet) => number) =>
  list.reduce((n, rs) => n + (rs ? f(rs) : 0), 0);
const revisionOf = (rs: V1ReplicaSet) => Number(rs.metadata?.annotations?.[REVISION] ?? '0') || 0;
const created = (rs: V1ReplicaSet) => timeOf(rs.metadata?.creationTimestamp);
const byCreation = (a: V1ReplicaSet, b: V1ReplicaSet) =>
  created(a) - created(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');

export function isRollingUpdate(d: V1Deployment): boolean {
  return (d.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
}

/** maxSurge (rounded up) and maxUnavailable (rounded down) for the desired replicas; never both 0. */
export function resolveFenceposts(d: V1Deployment): { maxSurge: number; maxUnavailable: number } {
  if (!isRollingUpdate(d)) return { maxSurge: 0, maxUnavailable: 0 };
  const desired = d.spec?.replicas ?? 1;
  const ru = d.spec?.strategy?.rollingUpdate;
  const maxSurge = resolveIntOrPercent(ru?.maxSurge as number | string | undefined, desired, true, '25%');
  let maxUnavailable = resolveIntOrPercent(ru?.maxUnavailable as number | string | undefined, desired, false, '25%');
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable: Math.min(maxUnavailable, desired) };
}

function maxUnavailableOf(d: V1Deployment): number {
  const desired = d.spec?.replicas ?? 1;
  if (!isRollingUpdate(d) || desired === 0) return 0;
  return resolveFenceposts(d).maxUnavailable;
}

/** deploymentutil.DeploymentComplete */
function deploymentComplete(d: V1Deployment, status: V1DeploymentStatus): boolean {
  const desired = d.spec?.replicas ?? 1;
  return (status.updatedReplicas ?? 0) === desired && (status.replicas ?? 0) === desired &&
    (status.availableReplicas ?? 0) === desired && (status.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
}

/** deploymentutil.DeploymentProgressing: some counter moved toward the goal. */
function deploymentProgressing(d: V1Deployment, status: V1DeploymentStatus): boolean {
  const old = d.status ?? {};
  const oldStatusOldReplicas = (old.replicas ?? 0) - (old.updatedReplicas ?? 0);
  const newStatusOldReplicas = (status.replicas ?? 0) - (status.updatedReplicas ?? 0);
  return (status.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) || newStatusOldReplicas < oldStatusOldReplicas ||
    (status.readyReplicas ?? 0) > (old.readyReplicas ?? 0) || (status.availableReplicas ?? 0) > (old.availableReplicas ?? 0);
}

function setCondition(status: V1DeploymentStatus, cond: V1DeploymentCondition): void {
  const conditions = status.conditions ?? [];
  const current = conditions.find((c) => c.type === cond.type);
  if (current && current.status === cond.status && current.reason === cond.reason) return;
  if (current && current.status === cond.status) cond.lastTransitionTime = current.lastTransitionTime;
  status.conditions = [...conditions.filter((c) => c.type !== cond.type), cond];
}

function newCondition(type: string, status: string, reason: string, message: string, now: number): V1DeploymentCondition {
  return { type, status, reason, message, lastUpdateTime: apiTime(now), lastTransitionTime: apiTime(now) };
}

export class DeploymentController extends Controller {
  private readonly events: EventRecorder;

  constructor(ctx: ControllerContext) {
    super(ctx, 'deployment-controller');
    this.events = ctx.recorder('deployment-controller');
  }

  register(): void {
    const deployments = this.ctx.informers.deployments();
    deployments.on('add', (d) => this.enqueue(keyOf(d)));
    deployments.on('update', (d) => this.enqueue(keyOf(d)));
    deployments.on('delete', (d) => this.enqueue(keyOf(d)));
    const rsChanged = (rs: V1ReplicaSet) => {
      const ref = controllerRefOf(rs);
      if (ref) {
        if (ref.kind === 'Deployment') this.enqueue(`${rs.metadata?.namespace}/${ref.name}`);
        return;
      }
      for (const d of this.ctx.informers.deployments().list(rs.metadata?.namespace)) {
        if (selectorMatches(d.spec?.selector, rs.metadata?.labels)) this.enqueue(keyOf(d));
      }
    };
    const rsInformer = this.ctx.informers.replicaSets();
    rsInformer.on('add', rsChanged);
    rsInformer.on('update', rsChanged);
    rsInformer.on('delete', rsChanged);
    // Recreate waits for the old pods to be gone.
    this.ctx.informers.pods().on('delete', (pod) => {
      const ref = controllerRefOf(pod);
      if (ref?.kind !== 'ReplicaSet') return;
      const rs = rsInformer.get(ref.name, pod.metadata?.namespace);
      const owner = rs && controllerRefOf(rs);
      if (owner?.kind === 'Deployment') {
        const d = this.ctx.informers.deployments().get(owner.name, pod.metadata?.namespace);
        if (d && !isRollingUpdate(d)) this.enqueue(keyOf(d));
      }
    });
  }

  protected allKeys(): string[] {
    return this.ctx.informers.deployments().list().map(keyOf);
  }

  private target(d: V1Deployment) {
    return { ...d, apiVersion: 'apps/v1', kind: 'Deployment' };
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const cached = this.ctx.informers.deployments().get(name, namespace);
    if (!cached) return;
    const d: V1Deployment = JSON.parse(JSON.stringify(cached));
    if (selectorIsEmpty(d.spec?.selector)) {
      if ((d.metadata?.generation ?? 0) !== (d.status?.observedGeneration ?? 0)) {
        this.events.warning(this.target(d), 'SelectingAll', 'This deployment is selecting all pods. A non-empty selector is required.');
        await this.writeStatus(d, { ...(d.status ?? {}), observedGeneration: d.metadata?.generation });
      }
      return;
    }
    const rsList = await this.claimReplicaSets(d);
    if (isBeingDeleted(d)) {
      return this.syncStatusOnly(d, rsList);
    }
    if (d.spec?.paused) {
      return this.sync(d, rsList);
    }
    if (this.isScalingEvent(d, rsList)) {
      return this.sync(d, rsList);
    }
    return isRollingUpdate(d) ? this.rolloutRolling(d, rsList) : this.rolloutRecreate(d, rsList);
  }

  // ---- ReplicaSets ------------------------------------------------------------------------------

  private async claimReplicaSets(d: V1Deployment): Promise<V1ReplicaSet[]> {
    const uid = d.metadata?.uid;
    const owned: V1ReplicaSet[] = [];
    for (const cached of this.ctx.informers.replicaSets().list(d.metadata?.namespace)) {
      const rs: V1ReplicaSet = JSON.parse(JSON.stringify(cached));
      const ref = controllerRefOf(rs);
      const matches = selectorMatches(d.spec?.selector, rs.metadata?.labels);
      if (ref) {
        if (ref.uid !== uid) continue;
        if (matches || isBeingDeleted(rs)) {
          owned.push(rs);
        } else {
          rs.metadata!.ownerReferences = (rs.metadata?.ownerReferences ?? []).filter((r) => r.uid !== uid);
          await this.replaceRs(rs);
        }
      } else if (matches && !isBeingDeleted(rs) && !isBeingDeleted(d)) {
        rs.metadata!.ownerReferences = [...(rs.metadata?.ownerReferences ?? []), ownerReferenceTo(d, 'apps/v1', 'Deployment')];
        const adopted = await this.replaceRs(rs);
        if (adopted) owned.push(adopted);
      }
    }
    return owned;
  }

  private async replaceRs(rs: V1ReplicaSet): Promise<V1ReplicaSet | undefined> {
    try {
      const updated = await this.ctx.apps.replaceNamespacedReplicaSet({ name: rs.metadata!.name!, namespace: rs.metadata!.namespace!, body: rs });
      return JSON.parse(JSON.stringify(updated)) as V1ReplicaSet;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The ReplicaSet whose template is the Deployment's (the oldest, if several), and the others. */
  private findNewAndOld(d: V1Deployment, rsList: V1ReplicaSet[]): { newRS: V1ReplicaSet | undefined; oldRSs: V1ReplicaSet[] } {
    const sorted = [...rsList].sort(byCreation);
    const newRS = sorted.find((rs) => templatesEqualIgnoringHash(rs.spec?.template, d.spec?.template));
    return { newRS, oldRSs: sorted.filter((rs) => rs !== newRS) };
  }

  /**
   * getAllReplicaSetsAndSyncRevision: the new ReplicaSet (created when asked and missing) with its
   * revision annotations brought up to date, and the old ones.
   */
  private async newAndOld(d: V1Deployment, rsList: V1ReplicaSet[], create: boolean): Promise<{ newRS: V1ReplicaSet | undefined; oldRSs: V1ReplicaSet[] }> {
    const { newRS: existing, oldRSs } = this.findNewAndOld(d, rsList);
    const maxOldRevision = oldRSs.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
    const newRevision = String(maxOldRevision + 1);
    let newRS = existing;
    if (existing) {
      const rs = existing;
      const annotations = { ...(rs.metadata?.annotations ?? {}) };
      let changed = false;
      if (revisionOf(rs) < maxOldRevision + 1) {
        // A rollback to an old template: the ReplicaSet gets the next revision, and remembers its old ones.
        if (rs.metadata?.annotations?.[REVISION]) {
          const history = annotations[REVISION_HISTORY] ? annotations[REVISION_HISTORY].split(',') : [];
          annotations[REVISION_HISTORY] = [...history, rs.metadata.annotations[REVISION]].join(',');
        }
        annotations[REVISION] = newRevision;
        changed = true;
      }
      const minReady = d.spec?.minReadySeconds ?? 0;
      if ((rs.spec?.minReadySeconds ?? 0) !== minReady) {
        rs.spec!.minReadySeconds = minReady;
        changed = true;
      }
      if (changed) {
        rs.metadata!.annotations = annotations;
        newRS = (await this.replaceRs(rs)) ?? rs;
      }
      const idx = rsList.indexOf(existing);
      if (idx >= 0) rsList[idx] = newRS!;
      if (!d.status?.conditions?.some((c) => c.type === 'Progressing')) {
        d.status = d.status ?? {};
        setCondition(d.status, newCondition('Progressing', 'True', FOUND_NEW_RS, `Found new replica set "${newRS!.metadata?.name}"`, Date.now()));
      }
    } else if (create) {
      newRS = await this.createNewRs(d, oldRSs, newRevision);
      if (newRS) rsList.push(newRS);
    }
    if (newRS) await this.setDeploymentRevision(d, newRS.metadata?.annotations?.[REVISION] ?? newRevision);
    return { newRS, oldRSs };
  }

  private async createNewRs(d: V1Deployment, oldRSs: V1ReplicaSet[], revision: string): Promise<V1ReplicaSet | undefined> {
    const collisionCount = d.status?.collisionCount ?? 0;
    const hash = computeTemplateHash(d.spec?.template, collisionCount);
    const template = JSON.parse(JSON.stringify(d.spec?.template ?? {}));
    template.metadata = template.metadata ?? {};
    template.metadata.labels = { ...(template.metadata.labels ?? {}), [POD_TEMPLATE_HASH]: hash };
    const selector = JSON.parse(JSON.stringify(d.spec?.selector ?? {}));
    selector.matchLabels = { ...(selector.matchLabels ?? {}), [POD_TEMPLATE_HASH]: hash };
    const { maxSurge } = resolveFenceposts(d);
    const desired = d.spec?.replicas ?? 1;
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(d.metadata?.annotations ?? {})) if (!NOT_COPIED.has(k)) annotations[k] = v;
    annotations[REVISION] = revision;
    annotations[DESIRED_REPLICAS] = String(desired);
    annotations[MAX_REPLICAS] = String(desired + maxSurge);
    const name = `${d.metadata?.name}-${hash}`;
    const body: V1ReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name,
        namespace: d.metadata?.namespace,
        labels: { ...template.metadata.labels },
        annotations,
        ownerReferences: [ownerReferenceTo(d, 'apps/v1', 'Deployment')],
      },
      spec: {
        replicas: 0,
        minReadySeconds: d.spec?.minReadySeconds ?? 0,
        selector,
        template,
      },
    };
    body.spec!.replicas = this.newRsReplicas(d, oldRSs, undefined);
    try {
      const created = await this.ctx.apps.createNamespacedReplicaSet({ namespace: d.metadata!.namespace!, body });
      const rs = JSON.parse(JSON.stringify(created)) as V1ReplicaSet;
      if ((body.spec!.replicas ?? 0) > 0) {
        this.events.normal(this.target(d), 'ScalingReplicaSet', `Scaled up replica set ${name} from 0 to ${body.spec!.replicas}`);
      }
      d.status = d.status ?? {};
      setCondition(d.status, newCondition('Progressing', 'True', NEW_RS_CREATED, `Created new replica set "${name}"`, Date.now()));
      return rs;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // Ours, with the same template (a cache that lags): use it. Otherwise a hash collision.
      const existing = JSON.parse(JSON.stringify(await this.ctx.apps.readNamespacedReplicaSet({ name, namespace: d.metadata!.namespace! }))) as V1ReplicaSet;
      if (controllerRefOf(existing)?.uid === d.metadata?.uid && templatesEqualIgnoringHash(existing.spec?.template, d.spec?.template)) {
        return existing;
      }
      d.status = { ...(d.status ?? {}), collisionCount: collisionCount + 1 };
      await this.writeStatus(d, d.status);
      throw new Error(`replica set ${name} exists with another template; collisionCount is now ${collisionCount + 1}`);
    }
  }

  private async setDeploymentRevision(d: V1Deployment, revision: string): Promise<void> {
    if (d.metadata?.annotations?.[REVISION] === revision) return;
    const body: V1Deployment = JSON.parse(JSON.stringify(d));
    body.metadata!.annotations = { ...(body.metadata?.annotations ?? {}), [REVISION]: revision };
    delete body.status;
    const updated = await this.ctx.apps.replaceNamespacedDeployment({ name: d.metadata!.name!, namespace: d.metadata!.namespace!, body });
    d.metadata!.annotations = body.metadata!.annotations;
    d.metadata!.resourceVersion = updated.metadata?.resourceVersion;
  }

  /** deploymentutil.NewRSNewReplicas */
  private newRsReplicas(d: V1Deployment, oldRSs: V1ReplicaSet[], newRS: V1ReplicaSet | undefined): number {
    const desired = d.spec?.replicas ?? 1;
    if (!isRollingUpdate(d)) return desired;
    const current = replicasOf(newRS);
    const { maxSurge } = resolveFenceposts(d);
    const currentPodCount = sum([...oldRSs, newRS], replicasOf);
    const maxTotal = desired + maxSurge;
    if (currentPodCount >= maxTotal) return current;
    return current + Math.min(maxTotal - currentPodCount, Math.max(0, desired - current));
  }

  /** Sets a ReplicaSet's size and replica annotations; returns the updated object (or the same when nothing changed). */
  private async scaleRs(d: V1Deployment, rs: V1ReplicaSet, replicas: number): Promise<{ rs: V1ReplicaSet; scaled: boolean }> {
    const desired = d.spec?.replicas ?? 1;
    const { maxSurge } = resolveFenceposts(d);
    const annotations = { ...(rs.metadata?.annotations ?? {}) };
    const wantDesired = String(desired);
    const wantMax = String(desired + maxSurge);
    const sizeChanged = replicasOf(rs) !== replicas;
    const annotationsChanged = annotations[DESIRED_REPLICAS] !== wantDesired || annotations[MAX_REPLICAS] !== wantMax;
    if (!sizeChanged && !annotationsChanged) return { rs, scaled: false };
    annotations[DESIRED_REPLICAS] = wantDesired;
    annotations[MAX_REPLICAS] = wantMax;
    const body: V1ReplicaSet = JSON.parse(JSON.stringify(rs));
    body.metadata!.annotations = annotations;
    body.spec!.replicas = replicas;
    const updated = await this.replaceRs(body);
    if (!updated) return { rs, scaled: false };
    if (sizeChanged) {
      const from = replicasOf(rs);
      const verb = replicas > from ? 'up' : 'down';
      this.events.normal(this.target(d), 'ScalingReplicaSet', `Scaled ${verb} replica set ${rs.metadata?.name} from ${from} to ${replicas}`);
      this.log.info(`scaled ${verb} replica set`, { deployment: keyOf(d), replicaSet: rs.metadata?.name, from, to: replicas });
    }
    return { rs: updated, scaled: sizeChanged };
  }

  // ---- scaling ----------------------------------------------------------------------------------

  /** isScalingEvent: an active ReplicaSet was sized for another replica count. */
  private isScalingEvent(d: V1Deployment, rsList: V1ReplicaSet[]): boolean {
    const { newRS, oldRSs } = this.findNewAndOld(d, rsList);
    for (const rs of [...oldRSs, ...(newRS ? [newRS] : [])]) {
      if (replicasOf(rs) <= 0) continue;
      const desired = rs.metadata?.annotations?.[DESIRED_REPLICAS];
      if (desired === undefined) continue;
      if (Number(desired) !== (d.spec?.replicas ?? 1)) return true;
    }
    return false;
  }

  /** sync: scaling (or a paused Deployment); no template rollout. */
  private async sync(d: V1Deployment, rsList: V1ReplicaSet[]): Promise<ReconcileResult | void> {
    const { newRS, oldRSs } = await this.newAndOld(d, rsList, false);
    await this.scale(d, newRS, oldRSs, rsList);
    if (d.spec?.paused) await this.cleanup(d, oldRSs);
    const all = this.currentList(rsList, newRS, oldRSs);
    return this.syncRolloutStatus(d, all.newRS, [...all.oldRSs, ...(all.newRS ? [all.newRS] : [])], true);
  }

  private currentList(rsList: V1ReplicaSet[], newRS: V1ReplicaSet | undefined, oldRSs: V1ReplicaSet[]) {
    const byUid = new Map(rsList.map((rs) => [rs.metadata?.uid, rs]));
    return {
      newRS: newRS ? byUid.get(newRS.metadata?.uid) ?? newRS : undefined,
      oldRSs: oldRSs.map((rs) => byUid.get(rs.metadata?.uid) ?? rs),
    };
  }

  private replaceInList(rsList: V1ReplicaSet[], rs: V1ReplicaSet): void {
    const i = rsList.findIndex((r) => r.metadata?.uid === rs.metadata?.uid);
    if (i >= 0) rsList[i] = rs;
  }

  /** deployment controller scale(): size ReplicaSets for the desired replicas. */
  private async scale(d: V1Deployment, newRS: V1ReplicaSet | undefined, oldRSs: V1ReplicaSet[], rsList: V1ReplicaSet[]): Promise<void> {
    const desired = d.spec?.replicas ?? 1;
    const active = [...(newRS ? [newRS] : []), ...oldRSs].filter((rs) => replicasOf(rs) > 0);
    // Only one active ReplicaSet (or none): it takes all replicas.
    let activeOrLatest: V1ReplicaSet | undefined;
    if (active.length === 1) activeOrLatest = active[0];
    else if (active.length === 0) activeOrLatest = newRS ?? [...oldRSs].sort(byCreation).at(-1);
    if (activeOrLatest) {
      const { rs } = await this.scaleRs(d, activeOrLatest, desired);
      this.replaceInList(rsList, rs);
      return;
    }
    // The new ReplicaSet is saturated: old ones go to zero.
    if (newRS && replicasOf(newRS) === desired && newRS.metadata?.annotations?.[DESIRED_REPLICAS] === String(desired) &&
      (newRS.status?.availableReplicas ?? 0) === desired) {
      for (const rs of oldRSs.filter((r) => replicasOf(r) > 0)) {
        const { rs: updated } = await this.scaleRs(d, rs, 0);
        this.replaceInList(rsList, updated);
      }
      return;
    }
    if (!isRollingUpdate(d)) return;
    // Proportional scaling across the active ReplicaSets of a rollout.
    const { maxSurge } = resolveFenceposts(d);
    const allReplicas = sum(active, replicasOf);
    const allowed = desired > 0 ? desired + maxSurge : 0;
    const toAdd = allowed - allReplicas;
    const newer = (a: V1ReplicaSet, b: V1ReplicaSet) => created(b) - created(a);
    const ordered = [...active].sort((a, b) => toAdd > 0
      ? replicasOf(b) - replicasOf(a) || newer(a, b)
      : replicasOf(b) - replicasOf(a) || -newer(a, b));
    const sizes = new Map<V1ReplicaSet, number>();
    let added = 0;
    for (const rs of ordered) {
      if (toAdd !== 0) {
        const proportion = this.proportion(d, rs, toAdd, added);
        sizes.set(rs, replicasOf(rs) + proportion);
        added += proportion;
      } else {
        sizes.set(rs, replicasOf(rs));
      }
    }
    for (const [i, rs] of ordered.entries()) {
      let size = sizes.get(rs) ?? replicasOf(rs);
      if (i === 0 && toAdd !== 0) size = Math.max(0, size + (toAdd - added));
      const { rs: updated } = await this.scaleRs(d, rs, size);
      this.replaceInList(rsList, updated);
    }
  }

  /** deploymentutil.GetProportion */
  private proportion(d: V1Deployment, rs: V1ReplicaSet, toAdd: number, added: number): number {
    if (replicasOf(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
    const desired = d.spec?.replicas ?? 1;
    let fraction: number;
    if (desired === 0) {
      fraction = -replicasOf(rs);
    } else {
      const { maxSurge } = resolveFenceposts(d);
      const annotated = Number(rs.metadata?.annotations?.[MAX_REPLICAS] ?? NaN);
      const base = Number.isFinite(annotated) && annotated > 0 ? annotated : d.status?.replicas ?? 0;
      fraction = base > 0 ? Math.round((replicasOf(rs) * (desired + maxSurge)) / base) - replicasOf(rs) : 0;
    }
    const allowed = toAdd - added;
    return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
  }

  // ---- rollouts ---------------------------------------------------------------------------------

  private async rolloutRolling(d: V1Deployment, rsList: V1ReplicaSet[]): Promise<ReconcileResult | void> {
    const first = await this.newAndOld(d, rsList, true);
    let newRS = first.newRS;
    let oldRSs = first.oldRSs;
    const all = () => [...oldRSs, ...(newRS ? [newRS] : [])];

    // Scale up the new ReplicaSet as far as maxSurge allows.
    if (newRS) {
      const desired = d.spec?.replicas ?? 1;
      let target: number | undefined;
      if (replicasOf(newRS) > desired) target = desired;
      else if (replicasOf(newRS) < desired) target = this.newRsReplicas(d, oldRSs, newRS);
      if (target !== undefined && target !== replicasOf(newRS)) {
        const { rs, scaled } = await this.scaleRs(d, newRS, target);
        newRS = rs;
        if (scaled) return this.syncRolloutStatus(d, newRS, all());
      }
    }

    // Scale down old ReplicaSets as far as maxUnavailable allows.
    const { rsList: scaledOld, scaled } = await this.reconcileOldReplicaSets(d, oldRSs, newRS);
    oldRSs = scaledOld;
    if (scaled) return this.syncRolloutStatus(d, newRS, all());

    const status = this.calculateStatus(d, newRS, all());
    if (deploymentComplete(d, status)) await this.cleanup(d, oldRSs);
    return this.syncRolloutStatus(d, newRS, all());
  }

  private async reconcileOldReplicaSets(d: V1Deployment, oldRSs: V1ReplicaSet[], newRS: V1ReplicaSet | undefined): Promise<{ rsList: V1ReplicaSet[]; scaled: boolean }> {
    const oldPods = sum(oldRSs, replicasOf);
    if (oldPods === 0) return { rsList: oldRSs, scaled: false };
    const desired = d.spec?.replicas ?? 1;
    const all = [...oldRSs, ...(newRS ? [newRS] : [])];
    const allPods = sum(all, replicasOf);
    const minAvailable = desired - maxUnavailableOf(d);
    const newUnavailable = replicasOf(newRS) - (newRS?.status?.availableReplicas ?? 0);
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return { rsList: oldRSs, scaled: false };

    let list = [...oldRSs].sort(byCreation);
    let total = 0;
    // Old ReplicaSets' unavailable pods go first: removing them costs no availability.
    for (const [i, rs] of list.entries()) {
      if (total >= maxScaledDown) break;
      const available = rs.status?.availableReplicas ?? 0;
      if (replicasOf(rs) === 0 || replicasOf(rs) <= available) continue;
      const down = Math.min(maxScaledDown - total, replicasOf(rs) - available);
      const { rs: updated } = await this.scaleRs(d, rs, replicasOf(rs) - down);
      list[i] = updated;
      total += down;
    }
    // Then available ones, keeping minAvailable.
    const availableNow = sum([...list, ...(newRS ? [newRS] : [])], (rs) => rs.status?.availableReplicas ?? 0);
    if (availableNow > minAvailable) {
      const totalDown = availableNow - minAvailable;
      let done = 0;
      for (const [i, rs] of list.entries()) {
        if (done >= totalDown) break;
        if (replicasOf(rs) === 0) continue;
        const down = Math.min(replicasOf(rs), totalDown - done);
        const { rs: updated } = await this.scaleRs(d, rs, replicasOf(rs) - down);
        list[i] = updated;
        done += down;
      }
      total += done;
    }
    list = list.filter(Boolean);
    return { rsList: list, scaled: total > 0 };
  }

  private async rolloutRecreate(d: V1Deployment, rsList: V1ReplicaSet[]): Promise<ReconcileResult | void> {
    let { newRS, oldRSs } = await this.newAndOld(d, rsList, false);
    const all = () => [...oldRSs, ...(newRS ? [newRS] : [])];
    let scaledDown = false;
    oldRSs = await Promise.all(oldRSs.map(async (rs) => {
      if (replicasOf(rs) === 0) return rs;
      const r = await this.scaleRs(d, rs, 0);
      scaledDown ||= r.scaled;
      return r.rs;
    }));
    if (scaledDown) return this.syncRolloutStatus(d, newRS, all());
    // Wait until every pod of the old ReplicaSets is gone (or finished).
    const oldUids = new Set(oldRSs.map((rs) => rs.metadata?.uid));
    const oldPodsRunning = this.ctx.informers.pods().list(d.metadata?.namespace).some((p: V1Pod) =>
      oldUids.has(controllerRefOf(p)?.uid) && !isPodTerminal(p));
    if (oldPodsRunning || oldRSs.some((rs) => (rs.status?.replicas ?? 0) > 0)) return this.syncRolloutStatus(d, newRS, all());
    if (!newRS) ({ newRS, oldRSs } = await this.newAndOld(d, rsList, true));
    if (newRS && replicasOf(newRS) !== (d.spec?.replicas ?? 1)) {
      newRS = (await this.scaleRs(d, newRS, d.spec?.replicas ?? 1)).rs;
    }
    const status = this.calculateStatus(d, newRS, all());
    if (deploymentComplete(d, status)) await this.cleanup(d, oldRSs);
    return this.syncRolloutStatus(d, newRS, all());
  }

  /** Deletes the oldest fully scaled-down ReplicaSets beyond revisionHistoryLimit. */
  private async cleanup(d: V1Deployment, oldRSs: V1ReplicaSet[]): Promise<void> {
    const limit = d.spec?.revisionHistoryLimit;
    if (limit === undefined || limit === null) return;
    const alive = oldRSs.filter((rs) => !isBeingDeleted(rs));
    const excess = alive.length - limit;
    if (excess <= 0) return;
    const sorted = [...alive].sort((a, b) => revisionOf(a) - revisionOf(b) || byCreation(a, b));
    for (const rs of sorted.slice(0, excess)) {
      if ((rs.status?.replicas ?? 0) !== 0 || replicasOf(rs) !== 0 ||
        (rs.metadata?.generation ?? 0) > (rs.status?.observedGeneration ?? 0)) continue;
      try {
        await this.ctx.apps.deleteNamespacedReplicaSet({ name: rs.metadata!.name!, namespace: rs.metadata!.namespace! });
        this.log.info('deleted old replica set', { deployment: keyOf(d), replicaSet: rs.metadata?.name });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  // ---- status -----------------------------------------------------------------------------------

  private calculateStatus(d: V1Deployment, newRS: V1ReplicaSet | undefined, all: V1ReplicaSet[]): V1DeploymentStatus {
    const desired = d.spec?.replicas ?? 1;
    const available = sum(all, (rs) => rs.status?.availableReplicas ?? 0);
    const status: V1DeploymentStatus = {
      observedGeneration: d.metadata?.generation,
      replicas: sum(all, (rs) => rs.status?.replicas ?? 0),
      updatedReplicas: newRS?.status?.replicas ?? 0,
      readyReplicas: sum(all, (rs) => rs.status?.readyReplicas ?? 0),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, desired - available),
      collisionCount: d.status?.collisionCount,
      conditions: (d.status?.conditions ?? []).map((c) => ({ ...c })),
    };
    const now = Date.now();
    if (available >= desired - maxUnavailableOf(d)) {
      setCondition(status, newCondition('Available', 'True', MIN_AVAILABLE, 'Deployment has minimum availability.', now));
    } else {
      setCondition(status, newCondition('Available', 'False', MIN_UNAVAILABLE, 'Deployment does not have minimum availability.', now));
    }
    return status;
  }

  /** syncRolloutStatus (or syncDeploymentStatus when scalingOnly): status with the Progressing condition. */
  private async syncRolloutStatus(d: V1Deployment, newRS: V1ReplicaSet | undefined, all: V1ReplicaSet[], scalingOnly = false): Promise<ReconcileResult | void> {
    const status = this.calculateStatus(d, newRS, all);
    const now = Date.now();
    const deadline = d.spec?.progressDeadlineSeconds;
    const current = status.conditions?.find((c) => c.type === 'Progressing');
    const rsName = newRS?.metadata?.name;
    let requeueAfterMs: number | undefined;

    if (d.spec?.paused) {
      if (!current || current.reason !== PAUSED) {
        setCondition(status, newCondition('Progressing', 'Unknown', PAUSED, 'Deployment is paused', now));
      }
    } else if (current?.reason === PAUSED) {
      setCondition(status, newCondition('Progressing', 'Unknown', RESUMED, 'Deployment is resumed', now));
    } else if (deadline !== undefined && deadline !== null && !scalingOnly) {
      if (newRS && deploymentComplete(d, status)) {
        setCondition(status, newCondition('Progressing', 'True', NEW_RS_AVAILABLE, `ReplicaSet "${rsName}" has successfully progressed.`, now));
      } else if (newRS && deploymentProgressing(d, status)) {
        const cond = newCondition('Progressing', 'True', RS_UPDATED, `ReplicaSet "${rsName}" is progressing.`, now);
        if (current?.status === 'True') cond.lastTransitionTime = current.lastTransitionTime;
        status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== 'Progressing'), cond];
      } else if (current && current.reason !== NEW_RS_AVAILABLE && current.reason !== TIMED_OUT) {
        const last = timeOf(current.lastUpdateTime);
        const expires = last + deadline * 1000;
        if (last > 0 && expires <= now) {
          setCondition(status, newCondition('Progressing', 'False', TIMED_OUT, `ReplicaSet "${rsName}" has timed out progressing.`, now));
          this.events.warning(this.target(d), TIMED_OUT, `Deployment "${d.metadata?.name}" has timed out progressing.`);
        } else if (last > 0) {
          requeueAfterMs = expires - now + 100;
        }
      }
    }
    await this.writeStatus(d, status);
    if (!deploymentComplete(d, status) && requeueAfterMs === undefined && !d.spec?.paused) {
      // Waiting on pods becoming available (minReadySeconds) is event driven; this is a backstop.
      requeueAfterMs = 10_000;
    }
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  private async syncStatusOnly(d: V1Deployment, rsList: V1ReplicaSet[]): Promise<void> {
    const { newRS, oldRSs } = this.findNewAndOld(d, rsList);
    await this.writeStatus(d, this.calculateStatus(d, newRS, [...oldRSs, ...(newRS ? [newRS] : [])]));
  }

  private async writeStatus(d: V1Deployment, status: V1DeploymentStatus): Promise<void> {
    // Compared with what the server has (d.status may already carry this sync's conditions).
    const stored = this.ctx.informers.deployments().get(d.metadata!.name!, d.metadata!.namespace)?.status ?? {};
    if (canonicalJson(normalize(stored)) === canonicalJson(normalize(status))) return;
    const body: V1Deployment = JSON.parse(JSON.stringify(d));
    body.status = status;
    try {
      await this.ctx.apps.replaceNamespacedDeploymentStatus({ name: d.metadata!.name!, namespace: d.metadata!.namespace!, body });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

function normalize(s: V1DeploymentStatus): unknown {
  return {
    observedGeneration: s.observedGeneration ?? 0,
    replicas: s.replicas ?? 0,
    updatedReplicas: s.updatedReplicas ?? 0,
    readyReplicas: s.readyReplicas ?? 0,
    availableReplicas: s.availableReplicas ?? 0,
    unavailableReplicas: s.unavailableReplicas ?? 0,
    collisionCount: s.collisionCount ?? 0,
    conditions: [...(s.conditions ?? [])].sort((a, b) => a.type.localeCompare(b.type)),
  };
}
