// Keeps this node's cluster pod map in step with the cluster (kubernetes mode): every
// pod not on this node, and every other node's address, through the datapath's remote
// API. Incremental on watch events; a full resync at start, after a relist (a watch lost
// for too long), when a node's address changes, and periodically, so no stale entry
// survives a lost watch or an agent restart.
import '../k8s/node-compat.js';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { validatePools, IPS_GROUP, IPS_VERSION, IPS_PLURAL } from '../model/ipam/pool.js';
import { formatCidr } from '../model/ipam/address.js';
import { ResilientInformer, plainObject, jsonInformer } from '../k8s/resilient-informer.js';
import { ClusterMapState, type MapChange, type NodeFacts, type PodFacts } from '../model/cluster-map.js';
import type { NodeDatapath } from './datapath.js';
import type { Logger } from './log.js';
import { makeApiClient } from '../k8s/api-client.js';

const RESYNC_MS = 60_000;

export function podFacts(p: V1Pod): PodFacts {
  const ips = (p.status?.podIPs ?? []).map((x) => x.ip).filter((x): x is string => !!x);
  if (ips.length === 0 && p.status?.podIP) ips.push(p.status.podIP);
  return {
    uid: p.metadata?.uid ?? '', nodeName: p.spec?.nodeName, hostNetwork: p.spec?.hostNetwork ?? false, podIPs: ips,
    terminal: p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' || !!p.metadata?.deletionTimestamp && ips.length === 0,
  };
}

export function nodeFacts(n: V1Node): NodeFacts {
  return { name: n.metadata?.name ?? '', internalIp: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address };
}

export class ClusterSync {
  private readonly pods: ResilientInformer<V1Pod>;
  private readonly nodes: ResilientInformer<V1Node>;
  private readonly pools: ResilientInformer<KubernetesObject & { spec?: unknown }>;
  /** What the map should hold, and a mirror of what was written to it. */
  private readonly state: ClusterMapState;
  private queue: Promise<void> = Promise.resolve();
  private nodeAddresses = '';
  /** At most one resync waits in the queue: requests arriving meanwhile are served by it. */
  private readonly requestResync = this.coalesced(() => this.resync());
  /** One flush waits in the queue at a time: every event before it runs shares it. */
  private readonly requestFlush = this.coalesced(() => this.flush());
  /** No pod event is applied before the first full resync has built the state. */
  private started = false;
  private timer?: NodeJS.Timeout;
  /** undefined until the first call: the datapath (and the pod MTU) is configured at start,
   *  before any pool exists, so a pod created together with the first pool gets the right MTU. */
  private podRanges: string | undefined;

  constructor(
    kc: KubeConfig,
    self: string,
    private readonly datapath: NodeDatapath,
    private readonly log: Logger,
    /** Called with the cluster's pod ranges (the subnets of the valid Ips pools) when they change. */
    private readonly onPodRanges: (ranges: string[]) => Promise<void>,
  ) {
    this.state = new ClusterMapState(self);
    const core = makeApiClient(kc, CoreV1Api);
    const custom = makeApiClient(kc, CustomObjectsApi);
    this.pools = jsonInformer(kc, 'cluster-pools', `/apis/${IPS_GROUP}/${IPS_VERSION}/${IPS_PLURAL}`,
      () => custom.listClusterCustomObject({ group: IPS_GROUP, version: IPS_VERSION, plural: IPS_PLURAL }), log);
    for (const ev of ['add', 'update', 'delete'] as const) this.pools.on(ev, () => this.enqueue(() => this.poolsChanged()));
    this.pods = new ResilientInformer<V1Pod>({ kubeConfig: kc, name: 'cluster-pods', path: '/api/v1/pods', list: () => core.listPodForAllNamespaces(), transform: plainObject, log });
    this.nodes = new ResilientInformer<V1Node>({ kubeConfig: kc, name: 'cluster-nodes', path: '/api/v1/nodes', list: () => core.listNode(), transform: plainObject, log });
    // Events update the state at once (a few field reads; most pod updates change nothing
    // here and stop there); the map writes they call for are applied in batches.
    this.pods.on('add', (p: V1Pod) => this.podChanged(p));
    this.pods.on('update', (p: V1Pod) => this.podChanged(p));
    this.pods.on('delete', (p: V1Pod) => this.podGone(p));
    this.pods.on('synced', () => {
      if (this.started) this.requestResync();
    });
    // A node's address appearing, changing or going moves many entries at once: resync
    // everything then, but not on the heartbeats that update every Node every few seconds.
    for (const ev of ['add', 'update', 'delete'] as const) this.nodes.on(ev, () => this.nodeAddressesMaybeChanged());
  }

  async start(): Promise<void> {
    await this.pools.start();
    await this.nodes.start();
    await this.pods.start();
    await Promise.all([this.pools.waitForSync(), this.nodes.waitForSync(), this.pods.waitForSync()]);
    await this.enqueue(() => this.poolsChanged());
    this.nodeAddresses = [...this.nodeIps()].sort().join(',');
    this.started = true;
    await this.enqueue(() => this.resync());
    this.timer = setInterval(() => this.requestResync(), RESYNC_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([this.pods.stop(), this.nodes.stop(), this.pools.stop()]);
    await this.queue;
  }

  /** A requester of `task` that queues it at most once: requests made while it waits are
   *  served by that run (a request made while it runs queues the next one). */
  private coalesced(task: () => Promise<void>): () => void {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      void this.enqueue(() => {
        queued = false;
        return task();
      });
    };
  }

  /** Datapath writes are serialised; events never interleave with a resync. */
  private enqueue(fn: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(fn).catch((err: Error) => this.log.error('cluster map update failed', { err: err.message }));
    return this.queue;
  }

  private async poolsChanged(): Promise<void> {
    const objects = this.pools.list().map((o) => ({ name: o.metadata?.name ?? '', spec: o.spec, creationTimestamp: String(o.metadata?.creationTimestamp ?? '') }));
    const ranges = [...new Set([...validatePools(objects).values()].flatMap((v) => (v.ok ? [formatCidr(v.pool.subnet)] : [])))].sort();
    if (ranges.join(',') === this.podRanges) return;
    this.podRanges = ranges.join(',');
    this.log.info('cluster pod ranges changed', { ranges });
    await this.onPodRanges(ranges);
  }

  private nodeAddressesMaybeChanged(): void {
    if (!this.started) return; // the first resync reads the nodes
    const now = [...this.nodeIps()].sort().join(',');
    if (now === this.nodeAddresses) return;
    this.nodeAddresses = now;
    this.requestResync();
  }


  private nodeIps(): Map<string, string> {
    return new Map(this.nodes.list().map(nodeFacts).filter((n) => n.internalIp).map((n) => [n.name, n.internalIp!]));
  }

  private podChanged(p: V1Pod): void {
    if (this.started && this.state.podChanged(podFacts(p))) this.requestFlush();
  }

  private podGone(p: V1Pod): void {
    if (this.started && this.state.podGone(p.metadata?.uid ?? '')) this.requestFlush();
  }


  /** Applies the pending changes together, so their route updates share one batch. A
   *  failed write leaves the mirror unsure: a full resync puts the map right. */
  private async flush(): Promise<void> {
    const changes = this.state.takeChanges();
    if (changes.length === 0) return;
    const results = await Promise.allSettled(changes.map((c) => this.apply(c)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ ip: changes[i]!.ip, err: (r.reason as Error)?.message ?? String(r.reason) }] : []));
    if (failed.length === 0) return;
    this.log.error('cluster map update failed; resyncing', { failed: failed.slice(0, 5), count: failed.length });
    this.requestResync();
  }

  private async apply(c: MapChange): Promise<void> {
    if (c.entry) {
      if (await this.datapath.upsertRemote(c.ip, c.entry.nodeIp, c.entry.kind)) this.log.debug('remote added', { ip: c.ip, nodeIp: c.entry.nodeIp, kind: c.entry.kind });
    } else if (await this.datapath.deleteRemote(c.ip)) {
      this.log.debug('remote removed', { ip: c.ip });
    }
  }

  /** The whole map from the informer caches: no stale entry survives (restart, lost watch). */
  async resync(): Promise<void> {
    const desired = this.state.reset(this.pods.list().map(podFacts), this.nodes.list().map(nodeFacts));
    const report = await this.datapath.syncRemotes(desired);
    this.log.info('cluster map resynced', { entries: desired.size, ...report });
  }
}
