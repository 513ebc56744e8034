// The lab scheduler: binds each pod that has no spec.nodeName (and asks for the default
// scheduler) to a node, through POST pods/<name>/binding as kube-scheduler does.
//
// Filters: the node is Ready, not spec.unschedulable, matches the pod's nodeSelector and required
// node affinity (matchExpressions and matchFields on metadata.name), and has no NoSchedule /
// NoExecute taint the pod does not tolerate. Score: the fewest pods already on the node (pods
// bound by this scheduler but not yet seen bound in the informer count too), ties broken by node
// name, so pods spread evenly and deterministically. Pods with spec.nodeName set are never
// touched (they count toward their node's load).
//
// A pod no node fits gets a FailedScheduling event ("0/3 nodes are available: …") and the
// condition PodScheduled=False (reason Unschedulable), and is retried whenever a node appears or
// a node's labels, taints, schedulability or readiness change (and every minute regardless).
import type { V1Node, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod, V1PodCondition, V1Taint, V1Toleration } from '@kubernetes/client-node';
import { describeError } from '../../k8s/resilient-informer.js';
import { Controller, type ControllerContext, type ReconcileResult } from './controller.js';
import type { EventRecorder } from './events.js';
import { apiTime, canonicalJson, httpStatusOf, isBeingDeleted, isNotFound, isPodTerminal, keyOf, splitKey } from './util.js';

export const SCHEDULER_NAME = 'default-scheduler';
const UNSCHEDULABLE_RETRY_MS = 60_000;
const MAX_BINDINGS_IN_FLIGHT = 16;

export function isNodeReady(node: V1Node): boolean {
  return node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
}

function requirementMatches(req: V1NodeSelectorRequirement, value: string | undefined): boolean {
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In': return value !== undefined && values.includes(value);
    case 'NotIn': return value === undefined || !values.includes(value);
    case 'Exists': return value !== undefined;
    case 'DoesNotExist': return value === undefined;
    case 'Gt': return value !== undefined && Number(value) > Number(values[0]);
    case 'Lt': return value !== undefined && Number(value) < Number(values[0]);
    default: return false;
  }
}

function termMatches(term: V1NodeSelectorTerm, node: V1Node): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false; // an empty term matches nothing
  const labels = node.metadata?.labels ?? {};
  return exprs.every((r) => requirementMatches(r, labels[r.key])) &&
    fields.every((r) => r.key === 'metadata.name' && requirementMatches(r, node.metadata?.name));
}

/** nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node affinity. */
export function nodeMatchesPod(pod: V1Pod, node: V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {})) {
    if (labels[k] !== v) return false;
  }
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required && !(required.nodeSelectorTerms ?? []).some((t) => termMatches(t, node))) return false;
  return true;
}

function tolerates(t: V1Toleration, taint: V1Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key !== undefined && t.key !== '' && t.key !== taint.key) return false;
  if ((t.key === undefined || t.key === '') && t.operator !== 'Exists') return false;
  if (t.operator === 'Exists') return true;
  return (t.value ?? '') === (taint.value ?? '');
}

/** The first NoSchedule/NoExecute taint of the node the pod does not tolerate. */
export function untoleratedTaint(pod: V1Pod, node: V1Node): V1Taint | undefined {
  return (node.spec?.taints ?? []).find((taint) =>
    (taint.effect === 'NoSchedule' || taint.effect === 'NoExecute') &&
    !(pod.spec?.tolerations ?? []).some((t) => tolerates(t, taint)));
}

/** Why a node cannot take a pod (kube-scheduler's wording), or undefined if it can. */
export function whyNot(pod: V1Pod, node: V1Node): string | undefined {
  if (node.spec?.unschedulable) {
    const tolerated = (pod.spec?.tolerations ?? []).some((t) => tolerates(t, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }));
    if (!tolerated) return 'node(s) were unschedulable';
  }
  if (!isNodeReady(node)) return 'node(s) were not ready';
  if (!nodeMatchesPod(pod, node)) return "node(s) didn't match Pod's node affinity/selector";
  const taint = untoleratedTaint(pod, node);
  if (taint) return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
  return undefined;
}

/** "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match …." */
export function unschedulableMessage(total: number, reasons: Map<string, number>): string {
  if (total === 0) return 'no nodes available to schedule pods';
  const parts = [...reasons.entries()].map(([why, n]) => `${n} ${why}`).sort();
  return `0/${total} nodes are available: ${parts.join(', ')}.`;
}

/** The fingerprint of what scheduling depends on in a node (status heartbeats leave it unchanged). */
function schedulingView(node: V1Node): string {
  return canonicalJson({
    labels: node.metadata?.labels ?? {},
    unschedulable: node.spec?.unschedulable ?? false,
    taints: node.spec?.taints ?? [],
    ready: isNodeReady(node),
    deleting: isBeingDeleted(node),
  });
}

/**
 * Bound pods that are not finished, per node, maintained from pod events: the scheduler's score
 * needs it for every pod, and recounting the whole cache each time made scheduling O(pods²).
 */
export class NodeLoad {
  private readonly nodeOf = new Map<string, string>();
  private readonly perNode = new Map<string, number>();

  observe(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? '';
    const node = pod.spec?.nodeName && !isPodTerminal(pod) ? pod.spec.nodeName : undefined;
    if (this.nodeOf.get(uid) === node) return;
    this.remove(uid);
    if (node === undefined) return;
    this.nodeOf.set(uid, node);
    this.perNode.set(node, (this.perNode.get(node) ?? 0) + 1);
  }

  remove(uid: string): void {
    const node = this.nodeOf.get(uid);
    if (node === undefined) return;
    this.nodeOf.delete(uid);
    const n = (this.perNode.get(node) ?? 1) - 1;
    if (n > 0) this.perNode.set(node, n);
    else this.perNode.delete(node);
  }

  has(uid: string): boolean {
    return this.nodeOf.has(uid);
  }

  /** A copy the caller may add to. */
  counts(): Map<string, number> {
    return new Map(this.perNode);
  }
}

export class Scheduler extends Controller {
  private readonly events: EventRecorder;
  /** Pods bound by us and not yet seen bound in the informer: uid → node. */
  private readonly assumed = new Map<string, { node: string; at: number }>();
  /** Pods that fit no node: key → message of the last attempt. */
  private readonly unschedulable = new Map<string, string>();
  private readonly nodeViews = new Map<string, string>();
  private readonly bindings = new Set<Promise<void>>();
  /** Bound, unfinished pods per node, kept from informer events (not recounted for every pod). */
  private readonly load = new NodeLoad();

  constructor(ctx: ControllerContext) {
    super(ctx, 'scheduler');
    this.events = ctx.recorder(SCHEDULER_NAME);
  }

  register(): void {
    const pods = this.ctx.informers.pods();
    pods.on('add', (p) => this.podChanged(p));
    pods.on('update', (p) => this.podChanged(p));
    pods.on('delete', (p) => {
      this.load.remove(p.metadata?.uid ?? '');
      this.assumed.delete(p.metadata?.uid ?? '');
      this.unschedulable.delete(keyOf(p));
    });
    const nodes = this.ctx.informers.nodes();
    const nodeChanged = (n: V1Node) => {
      const view = schedulingView(n);
      if (this.nodeViews.get(n.metadata?.name ?? '') === view) return;
      this.nodeViews.set(n.metadata?.name ?? '', view);
      this.retryUnschedulable();
    };
    nodes.on('add', nodeChanged);
    nodes.on('update', nodeChanged);
    nodes.on('delete', (n) => {
      this.nodeViews.delete(n.metadata?.name ?? '');
      for (const [uid, a] of this.assumed) if (a.node === n.metadata?.name) this.assumed.delete(uid);
    });
  }

  private wantsScheduling(pod: V1Pod): boolean {
    return !pod.spec?.nodeName && !isBeingDeleted(pod) && !isPodTerminal(pod) &&
      (pod.spec?.schedulerName ?? SCHEDULER_NAME) === SCHEDULER_NAME;
  }

  private podChanged(pod: V1Pod): void {
    this.load.observe(pod);
    if (pod.spec?.nodeName) {
      this.assumed.delete(pod.metadata?.uid ?? '');
      this.unschedulable.delete(keyOf(pod));
      return;
    }
    if (this.wantsScheduling(pod) && !this.unschedulable.has(keyOf(pod))) this.enqueue(keyOf(pod));
  }

  private retryUnschedulable(): void {
    for (const key of this.unschedulable.keys()) this.enqueue(key);
  }

  /** Resyncs skip pods known not to fit: node changes and their own timer retry those. */
  protected allKeys(): string[] {
    return this.ctx.informers.pods().list()
      .filter((p) => this.wantsScheduling(p) && !this.unschedulable.has(keyOf(p))).map(keyOf);
  }

  /** Pods per node: bound pods in the cache that are not finished, plus pods we just bound. */
  private podCounts(): Map<string, number> {
    const counts = this.load.counts();
    const now = Date.now();
    for (const [uid, a] of this.assumed) {
      if (this.load.has(uid) || now - a.at > 5 * 60_000) {
        this.assumed.delete(uid);
        continue;
      }
      counts.set(a.node, (counts.get(a.node) ?? 0) + 1);
    }
    return counts;
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const pod = this.ctx.informers.pods().get(name, namespace);
    if (!pod || !this.wantsScheduling(pod)) {
      this.unschedulable.delete(key);
      return;
    }
    const uid = pod.metadata?.uid ?? '';
    if (this.assumed.has(uid)) return; // bound; the informer has not shown it yet

    const nodes = [...this.ctx.informers.nodes().list()].filter((n) => !isBeingDeleted(n));
    const reasons = new Map<string, number>();
    const fitting: V1Node[] = [];
    for (const node of nodes) {
      const why = whyNot(pod, node);
      if (why) reasons.set(why, (reasons.get(why) ?? 0) + 1);
      else fitting.push(node);
    }
    if (fitting.length === 0) {
      const message = unschedulableMessage(nodes.length, reasons);
      await this.markUnschedulable(pod, message);
      return { requeueAfterMs: UNSCHEDULABLE_RETRY_MS };
    }

    const counts = this.podCounts();
    fitting.sort((a, b) => (counts.get(a.metadata!.name!) ?? 0) - (counts.get(b.metadata!.name!) ?? 0) ||
      a.metadata!.name!.localeCompare(b.metadata!.name!));
    const node = fitting[0]!.metadata!.name!;
    // Assume the pod is on the node (later choices count it), then bind in the background as
    // kube-scheduler does, so that the next pod is placed without waiting for this round trip.
    this.assumed.set(uid, { node, at: Date.now() });
    const binding = this.bind(pod, key, node);
    this.bindings.add(binding);
    void binding.finally(() => this.bindings.delete(binding));
    if (this.bindings.size >= MAX_BINDINGS_IN_FLIGHT) await Promise.race(this.bindings);
  }

  private async bind(pod: V1Pod, key: string, node: string): Promise<void> {
    const { name, namespace } = pod.metadata as { name: string; namespace: string };
    const uid = pod.metadata?.uid ?? '';
    try {
      await this.ctx.core.createNamespacedPodBinding({
        name, namespace,
        body: {
          apiVersion: 'v1', kind: 'Binding',
          metadata: { name, namespace, uid },
          target: { apiVersion: 'v1', kind: 'Node', name: node },
        },
      });
    } catch (err) {
      this.assumed.delete(uid);
      if (isNotFound(err) || httpStatusOf(err) === 409) {
        // Gone, or already bound (by someone else): nothing to do.
        this.log.debug('binding refused', { pod: key, node, err: describeError(err) });
        return;
      }
      const delay = this.queue.addRateLimited(key);
      this.log.warn('binding failed; retrying', { pod: key, node, err: describeError(err), retryInMs: delay });
      return;
    }
    this.queue.forget(key);
    this.unschedulable.delete(key);
    this.log.info('pod bound', { pod: key, node });
    this.events.normal({ ...pod, apiVersion: 'v1', kind: 'Pod' }, 'Scheduled', `Successfully assigned ${key} to ${node}`);
  }

  override async stop(): Promise<void> {
    await super.stop();
    await Promise.allSettled([...this.bindings]);
  }

  private async markUnschedulable(pod: V1Pod, message: string): Promise<void> {
    const key = keyOf(pod);
    const first = !this.unschedulable.has(key) || this.unschedulable.get(key) !== message;
    this.unschedulable.set(key, message);
    this.events.warning({ ...pod, apiVersion: 'v1', kind: 'Pod' }, 'FailedScheduling', message);
    if (first) this.log.info('pod unschedulable', { pod: key, message });
    const current = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (current?.status === 'False' && current.reason === 'Unschedulable' && current.message === message) return;
    const condition: V1PodCondition = {
      type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message,
      lastTransitionTime: current?.status === 'False' ? current.lastTransitionTime : apiTime(),
    };
    const body: V1Pod = JSON.parse(JSON.stringify(pod));
    body.status = { ...(body.status ?? {}), conditions: [...(body.status?.conditions ?? []).filter((c) => c.type !== 'PodScheduled'), condition] };
    try {
      await this.ctx.core.replaceNamespacedPodStatus({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
