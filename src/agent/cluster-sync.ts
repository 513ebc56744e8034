// Keeps this node's cluster pod map in step with the cluster (kubernetes mode): every
// pod not on this node, and every other node's address, through the datapath's remote
// API. Incremental on watch events; a full resync at start, after the watch recovers,
// and periodically, so no stale entry survives a lost watch or an agent restart.
import '../k8s/node-compat.js';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { validatePools, IPS_GROUP, IPS_VERSION, IPS_PLURAL } from '../model/ipam/pool.js';
import { formatCidr } from '../model/ipam/address.js';
import { ResilientInformer, plainObject, jsonInformer } from '../k8s/resilient-informer.js';
import { desiredRemotes, podEntries, type NodeFacts, type PodFacts, type RemoteEntry } from '../model/cluster-map.js';
import type { NodeDatapath } from './datapath.js';
import type { Logger } from './log.js';

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
  /** Which pod owns each address we wrote (two pods may briefly share one during reuse). */
  private readonly owners = new Map<string, string>();
  private readonly pools: ResilientInformer<KubernetesObject & { spec?: unknown }>;
  private queue: Promise<void> = Promise.resolve();
  private nodeAddresses = '';
  private resyncQueued = false;
  private timer?: NodeJS.Timeout;
  /** undefined until the first call: the datapath (and the pod MTU) is configured at start,
   *  before any pool exists, so a pod created together with the first pool gets the right MTU. */
  private podRanges: string | undefined;

  constructor(
    kc: KubeConfig,
    private readonly self: string,
    private readonly datapath: NodeDatapath,
    private readonly log: Logger,
    /** Called with the cluster's pod ranges (the subnets of the valid Ips pools) when they change. */
    private readonly onPodRanges: (ranges: string[]) => Promise<void>,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    this.pools = jsonInformer(kc, 'cluster-pools', `/apis/${IPS_GROUP}/${IPS_VERSION}/${IPS_PLURAL}`,
      () => custom.listClusterCustomObject({ group: IPS_GROUP, version: IPS_VERSION, plural: IPS_PLURAL }), log);
    for (const ev of ['add', 'update', 'delete'] as const) this.pools.on(ev, () => this.enqueue(() => this.poolsChanged()));
    this.pods = new ResilientInformer<V1Pod>({ kubeConfig: kc, name: 'cluster-pods', path: '/api/v1/pods', list: () => core.listPodForAllNamespaces(), transform: plainObject, log });
    this.nodes = new ResilientInformer<V1Node>({ kubeConfig: kc, name: 'cluster-nodes', path: '/api/v1/nodes', list: () => core.listNode(), transform: plainObject, log });
    this.pods.on('add', (p: V1Pod) => this.enqueue(() => this.podChanged(p)));
    this.pods.on('update', (p: V1Pod) => this.enqueue(() => this.podChanged(p)));
    this.pods.on('delete', (p: V1Pod) => this.enqueue(() => this.podGone(p)));
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
    await this.enqueue(() => this.resync());
    this.nodeAddresses = [...this.nodeIps()].sort().join(',');
    this.timer = setInterval(() => this.requestResync(), RESYNC_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([this.pods.stop(), this.nodes.stop(), this.pools.stop()]);
    await this.queue;
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
    const now = [...this.nodeIps()].sort().join(',');
    if (now === this.nodeAddresses) return;
    this.nodeAddresses = now;
    this.requestResync();
  }

  /** At most one resync waits in the queue: requests arriving meanwhile are served by it. */
  private requestResync(): void {
    if (this.resyncQueued) return;
    this.resyncQueued = true;
    void this.enqueue(() => {
      this.resyncQueued = false;
      return this.resync();
    });
  }

  private nodeIps(): Map<string, string> {
    return new Map(this.nodes.list().map(nodeFacts).filter((n) => n.internalIp).map((n) => [n.name, n.internalIp!]));
  }

  private async podChanged(p: V1Pod): Promise<void> {
    const facts = podFacts(p);
    const wanted = new Map(podEntries(facts, this.nodeIps(), this.self));
    for (const [ip, owner] of this.owners) {
      if (owner === facts.uid && !wanted.has(ip)) await this.remove(ip);
    }
    for (const [ip, e] of wanted) await this.upsert(ip, e, facts.uid);
  }

  private async podGone(p: V1Pod): Promise<void> {
    const uid = p.metadata?.uid ?? '';
    for (const [ip, owner] of [...this.owners]) if (owner === uid) await this.remove(ip);
  }

  private async upsert(ip: string, e: RemoteEntry, owner: string): Promise<void> {
    this.owners.set(ip, owner);
    if (await this.datapath.upsertRemote(ip, e.nodeIp, e.kind)) this.log.debug('remote added', { ip, nodeIp: e.nodeIp, kind: e.kind });
  }

  private async remove(ip: string): Promise<void> {
    this.owners.delete(ip);
    if (await this.datapath.deleteRemote(ip)) this.log.debug('remote removed', { ip });
  }

  async resync(): Promise<void> {
    const pods = this.pods.list().map(podFacts);
    const desired = desiredRemotes(pods, this.nodes.list().map(nodeFacts), this.self);
    this.owners.clear();
    const nodeIps = this.nodeIps();
    for (const p of pods) for (const [ip] of podEntries(p, nodeIps, this.self)) this.owners.set(ip, p.uid);
    for (const [ip, e] of desired) if (e.kind === 'node') this.owners.set(ip, `node:${ip}`);
    const report = await this.datapath.syncRemotes(desired);
    this.log.info('cluster map resynced', { entries: desired.size, ...report });
  }
}
