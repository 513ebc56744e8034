// The StatefulSet controller (kube-controller-manager's statefulset controller, simplified): pods
// named <set>-0 … <set>-(N-1) with stable identity (hostname = pod name, subdomain = serviceName,
// labels statefulset.kubernetes.io/pod-name and apps.kubernetes.io/pod-index); OrderedReady
// (the default) creates one pod at a time and only when every lower ordinal is Running and Ready,
// and removes the highest ordinal first, one at a time; Parallel does both at once. Failed pods
// are replaced. RollingUpdate replaces pods whose controller-revision-hash differs from the
// template's, from the highest ordinal down to spec.updateStrategy.rollingUpdate.partition.
//
// The lab API server serves no ControllerRevisions: the revision is the template's hash
// (<set>-<hash>), so a pod below the partition that must be recreated gets the current template.
import type { V1Pod, V1StatefulSet, V1StatefulSetStatus } from '@kubernetes/client-node';
import { describeError } from '../../k8s/resilient-informer.js';
import { Controller, type ControllerContext, type ReconcileResult } from './controller.js';
import type { EventRecorder } from './events.js';
import {
  canonicalJson, computeTemplateHash, controllerRefOf, isAlreadyExists, isBeingDeleted, isNotFound, isPodAvailable,
  isPodRunningAndReady, isPodTerminal, keyOf, msUntilAvailable, ownerReferenceTo, selectorIsEmpty,
  selectorMatches, splitKey,
} from './util.js';

export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';
export const REVISION_LABEL = 'controller-revision-hash';

/** The ordinal of a pod of this set, or -1 when the name is not <set>-<n>. */
export function ordinalOf(set: string, podName: string | undefined): number {
  if (!podName || !podName.startsWith(`${set}-`)) return -1;
  const suffix = podName.slice(set.length + 1);
  return /^(0|[1-9][0-9]*)$/.test(suffix) ? Number(suffix) : -1;
}

export function revisionOf(set: V1StatefulSet): string {
  return `${set.metadata?.name}-${computeTemplateHash(set.spec?.template, set.status?.collisionCount)}`;
}

export function statefulPod(set: V1StatefulSet, ordinal: number, revision: string): V1Pod {
  const name = `${set.metadata?.name}-${ordinal}`;
  const template = set.spec?.template ?? {};
  const spec = JSON.parse(JSON.stringify(template.spec ?? { containers: [] }));
  spec.hostname = name;
  if (set.spec?.serviceName) spec.subdomain = set.spec.serviceName;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: set.metadata?.namespace,
      labels: {
        ...(template.metadata?.labels ?? {}),
        [POD_NAME_LABEL]: name,
        [POD_INDEX_LABEL]: String(ordinal),
        [REVISION_LABEL]: revision,
      },
      annotations: template.metadata?.annotations ? { ...template.metadata.annotations } : undefined,
      ownerReferences: [ownerReferenceTo(set, 'apps/v1', 'StatefulSet')],
    },
    spec,
  };
}

const terminating = (p: V1Pod) => isBeingDeleted(p);
const healthy = (p: V1Pod) => isPodRunningAndReady(p) && !terminating(p);

export class StatefulSetController extends Controller {
  private readonly events: EventRecorder;

  constructor(ctx: ControllerContext) {
    super(ctx, 'statefulset-controller');
    this.events = ctx.recorder('statefulset-controller');
  }

  register(): void {
    const sets = this.ctx.informers.statefulSets();
    sets.on('add', (s) => this.enqueue(keyOf(s)));
    sets.on('update', (s) => this.enqueue(keyOf(s)));
    sets.on('delete', (s) => this.enqueue(keyOf(s)));
    const podChanged = (pod: V1Pod) => {
      const ref = controllerRefOf(pod);
      if (ref) {
        if (ref.kind === 'StatefulSet') this.enqueue(`${pod.metadata?.namespace}/${ref.name}`);
        return;
      }
      for (const s of sets.list(pod.metadata?.namespace)) {
        if (selectorMatches(s.spec?.selector, pod.metadata?.labels)) this.enqueue(keyOf(s));
      }
    };
    const pods = this.ctx.informers.pods();
    pods.on('add', podChanged);
    pods.on('update', podChanged);
    pods.on('delete', podChanged);
  }

  protected allKeys(): string[] {
    return this.ctx.informers.statefulSets().list().map(keyOf);
  }

  private target(set: V1StatefulSet) {
    return { ...set, apiVersion: 'apps/v1', kind: 'StatefulSet' };
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const cached = this.ctx.informers.statefulSets().get(name, namespace);
    if (!cached) return;
    const set: V1StatefulSet = JSON.parse(JSON.stringify(cached));
    if (selectorIsEmpty(set.spec?.selector)) {
      this.log.warn('statefulset has an empty selector; ignored', { key });
      return;
    }
    const pods = await this.claimPods(set);
    const updateRevision = revisionOf(set);
    const currentRevision = set.status?.currentRevision || updateRevision;
    if (!isBeingDeleted(set)) await this.manage(set, pods, updateRevision);
    return this.updateStatus(set, this.ownedPods(set), currentRevision, updateRevision);
  }

  private ownedPods(set: V1StatefulSet): V1Pod[] {
    const uid = set.metadata?.uid;
    return this.ctx.informers.pods().list(set.metadata?.namespace)
      .filter((p) => controllerRefOf(p)?.uid === uid && ordinalOf(set.metadata!.name!, p.metadata?.name) >= 0);
  }

  /** Owned pods, after adopting orphans named and labelled like this set's pods. */
  private async claimPods(set: V1StatefulSet): Promise<V1Pod[]> {
    const name = set.metadata!.name!;
    for (const pod of this.ctx.informers.pods().list(set.metadata?.namespace)) {
      if (controllerRefOf(pod) || isBeingDeleted(pod) || isBeingDeleted(set)) continue;
      if (ordinalOf(name, pod.metadata?.name) < 0 || !selectorMatches(set.spec?.selector, pod.metadata?.labels)) continue;
      const body: V1Pod = JSON.parse(JSON.stringify(pod));
      body.metadata!.ownerReferences = [...(body.metadata?.ownerReferences ?? []), ownerReferenceTo(set, 'apps/v1', 'StatefulSet')];
      try {
        await this.ctx.core.replaceNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body });
        this.log.info('pod adopted', { pod: keyOf(pod) });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return this.ownedPods(set);
  }

  /** One pass of StatefulSetControl.UpdateStatefulSet: create, replace, delete, update. */
  private async manage(set: V1StatefulSet, pods: V1Pod[], updateRevision: string): Promise<void> {
    const setName = set.metadata!.name!;
    const replicas = set.spec?.replicas ?? 1;
    const monotonic = (set.spec?.podManagementPolicy ?? 'OrderedReady') !== 'Parallel';
    const slots: (V1Pod | undefined)[] = new Array(replicas).fill(undefined);
    const condemned: V1Pod[] = [];
    for (const pod of pods) {
      const ord = ordinalOf(setName, pod.metadata?.name);
      if (ord < replicas) slots[ord] = pod;
      else condemned.push(pod);
    }
    condemned.sort((a, b) => ordinalOf(setName, a.metadata?.name) - ordinalOf(setName, b.metadata?.name));
    const firstUnhealthy = [...slots, ...condemned].find((p) => p === undefined || !healthy(p));

    for (let ord = 0; ord < replicas; ord++) {
      const pod = slots[ord];
      if (pod && isPodTerminal(pod) && !terminating(pod)) {
        // A failed (or finished) pod is deleted, then recreated at the next pass.
        await this.deletePod(set, pod, `pod ${pod.metadata?.name} is ${pod.status?.phase}`);
        if (monotonic) return;
        continue;
      }
      if (!pod) {
        await this.createPod(set, ord, updateRevision);
        if (monotonic) return;
        continue;
      }
      if (terminating(pod)) {
        if (monotonic) return; // wait for it to go before recreating it
        continue;
      }
      if (!isPodRunningAndReady(pod) && monotonic) return;
    }

    for (let i = condemned.length - 1; i >= 0; i--) {
      const pod = condemned[i]!;
      if (terminating(pod)) {
        if (monotonic) return;
        continue;
      }
      if (monotonic && !isPodRunningAndReady(pod) && pod !== firstUnhealthy) return;
      await this.deletePod(set, pod, 'scale down');
      if (monotonic) return;
    }

    if ((set.spec?.updateStrategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') return;
    const partition = Math.max(0, set.spec?.updateStrategy?.rollingUpdate?.partition ?? 0);
    for (let ord = replicas - 1; ord >= partition; ord--) {
      const pod = slots[ord];
      if (!pod) continue;
      if (pod.metadata?.labels?.[REVISION_LABEL] !== updateRevision && !terminating(pod)) {
        await this.deletePod(set, pod, 'rolling update');
        return;
      }
      if (!healthy(pod)) return; // wait for the replacement
    }
  }

  private async createPod(set: V1StatefulSet, ordinal: number, revision: string): Promise<void> {
    const body = statefulPod(set, ordinal, revision);
    try {
      await this.ctx.core.createNamespacedPod({ namespace: set.metadata!.namespace!, body });
      this.events.normal(this.target(set), 'SuccessfulCreate', `create Pod ${body.metadata?.name} in StatefulSet ${set.metadata?.name} successful`);
      this.log.info('pod created', { statefulSet: keyOf(set), pod: body.metadata?.name });
    } catch (err) {
      if (isAlreadyExists(err)) return; // the informer has not shown it yet
      this.events.warning(this.target(set), 'FailedCreate', `create Pod ${body.metadata?.name} in StatefulSet ${set.metadata?.name} failed error: ${describeError(err)}`);
      throw err;
    }
  }

  private async deletePod(set: V1StatefulSet, pod: V1Pod, why: string): Promise<void> {
    try {
      await this.ctx.core.deleteNamespacedPod({
        name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { preconditions: { uid: pod.metadata?.uid } },
      });
      this.events.normal(this.target(set), 'SuccessfulDelete', `delete Pod ${pod.metadata?.name} in StatefulSet ${set.metadata?.name} successful`);
      this.log.info('pod deleted', { statefulSet: keyOf(set), pod: pod.metadata?.name, why });
    } catch (err) {
      if (isNotFound(err)) return;
      this.events.warning(this.target(set), 'FailedDelete', `delete Pod ${pod.metadata?.name} in StatefulSet ${set.metadata?.name} failed error: ${describeError(err)}`);
      throw err;
    }
  }

  private async updateStatus(set: V1StatefulSet, pods: V1Pod[], currentRevision: string, updateRevision: string): Promise<ReconcileResult | void> {
    const now = Date.now();
    const minReady = set.spec?.minReadySeconds ?? 0;
    let requeue: number | undefined;
    const status: V1StatefulSetStatus = {
      observedGeneration: set.metadata?.generation,
      replicas: 0,
      readyReplicas: 0,
      availableReplicas: 0,
      currentReplicas: 0,
      updatedReplicas: 0,
      currentRevision,
      updateRevision,
      collisionCount: set.status?.collisionCount ?? 0,
    };
    for (const pod of pods) {
      status.replicas! += 1;
      if (isPodRunningAndReady(pod)) {
        status.readyReplicas! += 1;
        if (isPodAvailable(pod, minReady, now)) status.availableReplicas! += 1;
        const left = msUntilAvailable(pod, minReady, now);
        if (left !== undefined) requeue = Math.min(requeue ?? Infinity, left + 50);
      }
      if (!terminating(pod)) {
        const rev = pod.metadata?.labels?.[REVISION_LABEL];
        if (rev === currentRevision) status.currentReplicas! += 1;
        if (rev === updateRevision) status.updatedReplicas! += 1;
      }
    }
    // completeRollingUpdate: every pod runs the update revision, which becomes the current one.
    const replicas = set.spec?.replicas ?? 1;
    if ((set.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate' &&
      status.updatedReplicas === status.replicas && status.readyReplicas === status.replicas && status.replicas === replicas) {
      status.currentRevision = updateRevision;
      status.currentReplicas = status.updatedReplicas;
    }
    if (status.currentRevision === updateRevision) status.currentReplicas = status.updatedReplicas;
    const before: Partial<V1StatefulSetStatus> = set.status ?? {};
    const same = canonicalJson(normalize(before)) === canonicalJson(normalize(status));
    if (!same) {
      try {
        await this.ctx.apps.replaceNamespacedStatefulSetStatus({
          name: set.metadata!.name!, namespace: set.metadata!.namespace!, body: { ...set, status },
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
  }
}

function normalize(s: Partial<V1StatefulSetStatus>): unknown {
  return {
    observedGeneration: s.observedGeneration ?? 0,
    replicas: s.replicas ?? 0,
    readyReplicas: s.readyReplicas ?? 0,
    availableReplicas: s.availableReplicas ?? 0,
    currentReplicas: s.currentReplicas ?? 0,
    updatedReplicas: s.updatedReplicas ?? 0,
    currentRevision: s.currentRevision ?? '',
    updateRevision: s.updateRevision ?? '',
    collisionCount: s.collisionCount ?? 0,
  };
}

