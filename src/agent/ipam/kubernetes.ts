// Address management against Kubernetes: pools are `Ips` objects, every allocated address is one
// `IpEndpoint` named after the address (sample.fast.io/v1alpha1, see deploy/crds/ips.yaml).
//
// Uniqueness is the API server's job: an agent claims an address by CREATING the IpEndpoint named
// after it; a second claim of the same address anywhere in the cluster is refused with 409. The
// agent keeps informer caches (Ips pools, IpEndpoints, Namespaces, its own Node and the pods of
// its node) and one PoolAllocator per Ready pool, fed from the IpEndpoint cache. The allocator
// picks candidates in blocks with affinity to this node, so nodes rarely contend; a 409 means the
// cache was behind: the agent learns the holder (GET) and tries the next candidate. In the common
// case an ADD costs one API write (the create) and a DEL one write (the update setting
// spec.releasedAt).
//
// Life of an IpEndpoint:
//   created by the agent on ADD (live)
//   → DEL: spec.releasedAt = now (cooling: the address stays claimed, nobody can create it)
//   → fast-controller-manager deletes it once the cooldown has passed; an agent that needs the
//     address earlier than that may also take a rested record over by a conditional update.
//   StatefulSet pods (controller ownerReference kind StatefulSet) are sticky: the IpEndpoint
//   carries the StatefulSet in annotations; on DEL it is not released but reserved (spec.podUID
//   cleared, label ipam.fast.io/reserved=true), and the next ADD of a pod with the same
//   namespace/name, on any node, takes it over by a conditional update (new UID, node, container).
//   The controller-manager releases the reservation when the StatefulSet is deleted or scaled
//   below the pod's ordinal.
import '../../k8s/node-compat.js';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { ResilientInformer, describeError, plainObject, jsonInformer } from '../../k8s/resilient-informer.js';
import { formatIp, tryParseIp } from '../../model/ipam/address.js';
import { PoolAllocator, type AllocationRecord, type AllocationRequest, DEFAULT_COOLDOWN_MS } from '../../model/ipam/allocator.js';
import { NODE_LABEL, POOL_LABEL, endpointName, endpointObject, IPENDPOINT_KIND, IPENDPOINT_PLURAL } from '../../model/ipam/naming.js';
import {
  IPS_API_VERSION,
  IPS_GROUP,
  IPS_PLURAL,
  IPS_VERSION,
  readyCondition,
  validatePools,
  type PoolObject,
  type PoolValidation,
} from '../../model/ipam/pool.js';
import { POOL_ANNOTATION, choosePools, type ObjectInfo, type PodInfo, type PoolChoiceResult } from '../../model/ipam/pool-choice.js';
import { CniError, CniErrorCode, FastErrorCode } from '../../model/cni/errors.js';
import type { Logger } from '../log.js';
import type { AddressRequest, GrantedAddress, IpamBackend, OwnedAddress, PoolUsage } from './backend.js';
import { makeApiClient } from '../../k8s/api-client.js';
import type { ObjectMeta } from '../../k8s/object-meta.js';

// ---------------------------------------------------------------------------------------------
// shared with fast-controller-manager

/** Annotation of an IpEndpoint held by a StatefulSet pod: the StatefulSet's name. */
export const STATEFULSET_ANNOTATION = 'ipam.fast.io/statefulset';
/** Annotation of an IpEndpoint held by a StatefulSet pod: the StatefulSet's UID. */
export const STATEFULSET_UID_ANNOTATION = 'ipam.fast.io/statefulset-uid';
/** Label of a sticky IpEndpoint whose pod is gone: the address waits for the same pod name. */
export const RESERVED_LABEL = 'ipam.fast.io/reserved';
/** Reason of the pod events recorded when an address cannot be had. */
export const ALLOCATION_FAILED_REASON = 'FastIPAllocationFailed';


/** Objects as plain JSON (informers transform typed objects with plainObject). */
export interface JsonObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  [k: string]: unknown;
}

export interface IpEndpointJson extends JsonObject {
  metadata: ObjectMeta & { name: string };
  spec: AllocationRecord;
}

const STRING_FIELDS = ['pool', 'address', 'node', 'podNamespace', 'podName', 'podUID', 'containerID', 'interface'] as const;

/** The allocation record of an IpEndpoint object, or undefined when the object is malformed. */
export function recordOf(obj: JsonObject | undefined): AllocationRecord | undefined {
  const spec = obj?.spec as Record<string, unknown> | undefined;
  if (!spec || typeof spec !== 'object') return undefined;
  for (const f of STRING_FIELDS) if (typeof spec[f] !== 'string') return undefined;
  const a = tryParseIp(spec['address'] as string);
  if (!a) return undefined;
  const r: AllocationRecord = {
    pool: spec['pool'] as string,
    address: formatIp(a),
    node: spec['node'] as string,
    podNamespace: spec['podNamespace'] as string,
    podName: spec['podName'] as string,
    podUID: spec['podUID'] as string,
    containerID: spec['containerID'] as string,
    interface: spec['interface'] as string,
  };
  if (typeof spec['releasedAt'] === 'string' && spec['releasedAt'] !== '') r.releasedAt = spec['releasedAt'];
  return r;
}

/** A sticky StatefulSet reservation: kept for a pod name while no pod holds it. */
export function isReserved(obj: JsonObject | undefined): boolean {
  return obj?.metadata?.labels?.[RESERVED_LABEL] === 'true';
}

/** The StatefulSet an IpEndpoint is sticky for, if any. */
export function stickyOf(obj: JsonObject | undefined): { name: string; uid?: string } | undefined {
  const ann = obj?.metadata?.annotations;
  const name = ann?.[STATEFULSET_ANNOTATION];
  if (!name) return undefined;
  const uid = ann?.[STATEFULSET_UID_ANNOTATION];
  return uid ? { name, uid } : { name };
}

/** The controlling StatefulSet of a pod, if any. */
export function statefulSetOf(pod: JsonObject | undefined): { name: string; uid?: string } | undefined {
  const ref = pod?.metadata?.ownerReferences?.find((r) => r.kind === 'StatefulSet' && r.controller !== false && typeof r.name === 'string');
  if (!ref?.name) return undefined;
  return ref.uid ? { name: ref.name, uid: ref.uid } : { name: ref.name };
}

/** Ordinal of a StatefulSet pod (`<set>-<n>`), undefined when the name does not fit. */
export function statefulSetOrdinal(setName: string, podName: string): number | undefined {
  if (!podName.startsWith(`${setName}-`)) return undefined;
  const rest = podName.slice(setName.length + 1);
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined;
}

/**
 * The validatePools input of Ips objects, the same for agents and the controller-manager. Overlaps
 * are decided oldest first; creationTimestamp has one-second resolution, so pools created in the
 * same second would fall back to name order and a pool could lose its range to a newcomer with a
 * smaller name. Within one second a pool that is Ready (it holds its range now) comes first.
 */
export function poolObjects(items: readonly JsonObject[]): PoolObject[] {
  return items.map((p) => {
    const ts = p.metadata?.creationTimestamp ? String(p.metadata.creationTimestamp) : undefined;
    const conditions = (p.status as { conditions?: { type?: string; status?: string }[] } | undefined)?.conditions;
    const ready = Array.isArray(conditions) && conditions.some((c) => c?.type === 'Ready' && c.status === 'True');
    return { name: p.metadata?.name ?? '', spec: p.spec, ...(ts ? { creationTimestamp: `${ts} ${ready ? 0 : 1}` } : {}) };
  });
}

const REUSE_MARK = Symbol.for('fast.io/reuse-connections');

/**
 * Makes the client reuse its HTTP connections. @kubernetes/client-node 2.x builds a new undici
 * Agent — a new TCP connection, and on a TLS cluster a new handshake — for every request whenever
 * the cluster has any TLS setting (a CA, a client certificate, skipTLSVerify; the lab needs the
 * latter for plain HTTP). This memoises the Agent per cluster and TLS settings. Idempotent; it
 * patches `kc` in place and returns it.
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  type Patchable = { [REUSE_MARK]?: boolean; createDispatcher?: (cluster: unknown, agentOptions: unknown) => unknown };
  const k = kc as unknown as Patchable;
  if (k[REUSE_MARK] || typeof k.createDispatcher !== 'function') return kc;
  const original = k.createDispatcher.bind(kc);
  const agents = new Map<string, unknown>();
  k.createDispatcher = (cluster, agentOptions) => {
    const key = JSON.stringify([cluster, agentOptions]);
    if (agents.has(key)) return agents.get(key);
    if (agents.size >= 8) agents.clear(); // rotated credentials: old agents close when idle
    const agent = original(cluster, agentOptions);
    agents.set(key, agent);
    return agent;
  };
  k[REUSE_MARK] = true;
  return kc;
}

/** HTTP status of a client error (ApiException.code), if it has one. */
export function httpStatus(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/**
 * Runs an API call again after a connection-level failure (no HTTP status: a reset keep-alive
 * connection, a refused connection), up to `attempts` times. Safe for every call made here:
 * reads are idempotent, a repeated create of an IpEndpoint that went through is refused with 409
 * and then recognised as ours, updates and deletes are conditional on a resourceVersion.
 */
export async function retryOnNetworkError<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (httpStatus(err) !== undefined || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 25 * 4 ** (i - 1)));
    }
  }
}

function cooldownPassed(releasedAt: string, cooldownMs: number, now: number): boolean {
  const t = Date.parse(releasedAt);
  return Number.isNaN(t) || t + cooldownMs <= now;
}

function containerKey(containerID: string, iface: string): string {
  return `${containerID}\u0000${iface}`;
}

function podKey(namespace: string, name: string, iface: string): string {
  return `${namespace}/${name}\u0000${iface}`;
}

function holderText(r: AllocationRecord): string {
  return `pod ${r.podNamespace}/${r.podName}${r.podUID ? ` (uid ${r.podUID})` : ''} on node ${r.node || '?'}`;
}

// ---------------------------------------------------------------------------------------------

export interface KubernetesIpamOptions {
  kubeConfig: KubeConfig;
  /** This node's name (Node object name, spec.nodeName of its pods). */
  nodeName: string;
  log: Logger;
  /** A released address rests this long before reuse (default 30 s). */
  cooldownMs?: number;
  /** Upper bound of the per-node block size (default 64). */
  blockSize?: number;
  /** Claims tried per pool before an ADD gives up with "try again later" (default 64). */
  maxAttempts?: number;
  /** How long start() waits for the caches (default 60 s). */
  syncTimeoutMs?: number;
  /** Record Kubernetes events on pods for failed allocations (default true). */
  recordEvents?: boolean;
  /** Clock (ms). */
  now?: () => number;
}

interface PoolState {
  validation: PoolValidation;
  allocator?: PoolAllocator;
}

type Claim =
  | { ok: true; obj: IpEndpointJson; record: AllocationRecord }
  | { ok: false; kind: 'taken'; holder?: IpEndpointJson }
  | { ok: false; kind: 'gone' };

interface PodMeta {
  obj: JsonObject;
  info: PodInfo;
  statefulSet?: { name: string; uid?: string };
}

const ENDPOINT_PATH = `/apis/${IPS_GROUP}/${IPS_VERSION}/${IPENDPOINT_PLURAL}`;
const IPS_PATH = `/apis/${IPS_GROUP}/${IPS_VERSION}/${IPS_PLURAL}`;
const CR = { group: IPS_GROUP, version: IPS_VERSION } as const;

/** What the backend asked of the API server (benchmarks, fast-ctl). */
export interface KubernetesIpamStats {
  /** Addresses granted by a write (create or take-over), not counting retried ADDs. */
  allocations: number;
  /** IpEndpoint creates, updates and deletes. */
  writes: number;
  /** GETs of IpEndpoints and pods (after a refused claim, a cache miss). */
  reads: number;
  /** Claims refused with 409: another node held the address. */
  conflicts: number;
  /** Released records whose cooldown had passed, taken over by an update. */
  takeovers: number;
  releases: number;
}

export class KubernetesIpam implements IpamBackend {
  readonly stats: KubernetesIpamStats = { allocations: 0, writes: 0, reads: 0, conflicts: 0, takeovers: 0, releases: 0 };
  readonly nodeName: string;
  readonly cooldownMs: number;
  private readonly log: Logger;
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly now: () => number;
  private readonly blockSize: number | undefined;
  private readonly maxAttempts: number;
  private readonly syncTimeoutMs: number;
  private readonly recordEvents: boolean;

  private readonly poolInformer: ResilientInformer<KubernetesObject>;
  private readonly endpointInformer: ResilientInformer<KubernetesObject>;
  private readonly namespaceInformer: ResilientInformer<KubernetesObject>;
  private readonly podInformer: ResilientInformer<KubernetesObject>;
  private readonly nodeInformer: ResilientInformer<KubernetesObject>;

  private readonly pools = new Map<string, PoolState>();
  /** containerID/interface → IpEndpoint names (normally one). */
  private readonly byContainer = new Map<string, Set<string>>();
  /** namespace/name/interface → sticky IpEndpoint name. */
  private readonly byStickyPod = new Map<string, string>();
  /** IpEndpoint name → its keys in the two indexes above. */
  private readonly indexed = new Map<string, { container: string; sticky?: string }>();
  private synced = false;
  private closed = false;
  private readonly pendingEvents = new Set<Promise<unknown>>();
  private readonly recentEvents = new Map<string, { name: string; namespace: string; count: number; at: number }>();

  constructor(opts: KubernetesIpamOptions) {
    this.nodeName = opts.nodeName;
    this.log = opts.log.child({ component: 'ipam' });
    this.cooldownMs = opts.cooldownMs ?? DEFAULT_COOLDOWN_MS;
    this.now = opts.now ?? Date.now;
    this.blockSize = opts.blockSize;
    this.maxAttempts = opts.maxAttempts ?? 64;
    this.syncTimeoutMs = opts.syncTimeoutMs ?? 60_000;
    this.recordEvents = opts.recordEvents ?? true;
    const kc = reuseConnections(opts.kubeConfig);
    this.core = makeApiClient(kc, CoreV1Api);
    this.custom = makeApiClient(kc, CustomObjectsApi);
    const ilog = this.log;
    const mk = (name: string, path: string, list: () => Promise<unknown>, fieldSelector?: string) => jsonInformer(kc, name, path, list, ilog, fieldSelector);
    this.poolInformer = mk('ips', IPS_PATH, () => this.custom.listClusterCustomObject({ ...CR, plural: IPS_PLURAL }));
    this.endpointInformer = mk('ipendpoints', ENDPOINT_PATH, () => this.custom.listClusterCustomObject({ ...CR, plural: IPENDPOINT_PLURAL }));
    this.namespaceInformer = mk('namespaces', '/api/v1/namespaces', () => this.core.listNamespace());
    const podSelector = `spec.nodeName=${opts.nodeName}`;
    this.podInformer = mk('pods', '/api/v1/pods', () => this.core.listPodForAllNamespaces({ fieldSelector: podSelector }), podSelector);
    const nodeSelector = `metadata.name=${opts.nodeName}`;
    this.nodeInformer = mk('node', '/api/v1/nodes', () => this.core.listNode({ fieldSelector: nodeSelector }), nodeSelector);

    for (const verb of ['add', 'update'] as const) {
      this.poolInformer.on(verb, () => this.poolsChanged());
      this.endpointInformer.on(verb, (o) => this.endpointChanged(o as IpEndpointJson, false));
    }
    this.poolInformer.on('delete', () => this.poolsChanged());
    this.endpointInformer.on('delete', (o) => this.endpointChanged(o as IpEndpointJson, true));
  }

  /** Creates the backend and waits until its caches are complete. */
  static async create(opts: KubernetesIpamOptions): Promise<KubernetesIpam> {
    const ipam = new KubernetesIpam(opts);
    try {
      await ipam.start();
    } catch (err) {
      await ipam.close();
      throw err;
    }
    return ipam;
  }

  async start(): Promise<void> {
    const informers = [this.endpointInformer, this.poolInformer, this.namespaceInformer, this.podInformer, this.nodeInformer];
    await Promise.all(informers.map((i) => i.start()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Kubernetes caches not synced after ${this.syncTimeoutMs} ms (are the Fast CRDs installed? ${informers.filter((i) => !i.hasSynced()).map((i) => `${i.name}: ${describeError(i.lastError)}`).join('; ')})`)),
        this.syncTimeoutMs,
      );
    });
    try {
      await Promise.race([Promise.all(informers.map((i) => i.waitForSync())), timeout]);
    } finally {
      clearTimeout(timer);
    }
    this.synced = true;
    this.rebuildPools(true);
    this.log.info('kubernetes IPAM ready', {
      pools: [...this.pools.entries()].map(([n, p]) => `${n}${p.validation.ok ? '' : ' (not ready)'}`),
      endpoints: this.endpointInformer.list().length,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [this.endpointInformer, this.poolInformer, this.namespaceInformer, this.podInformer, this.nodeInformer].map((i) => i.stop().catch(() => undefined)),
    );
    await Promise.allSettled([...this.pendingEvents]);
  }

  // -------------------------------------------------------------------------------------------
  // caches → allocators

  private poolsChanged(): void {
    if (this.synced) this.rebuildPools(false);
  }

  /** Re-validates every pool (the same function and order as the controller-manager); keeps the
   *  allocator of a pool whose allocatable set did not change, restores the others. */
  private rebuildPools(initial: boolean): void {
    const validations = validatePools(poolObjects(this.poolInformer.list() as JsonObject[]));
    let records: Map<string, AllocationRecord[]> | undefined;
    const recordsOf = (pool: string): AllocationRecord[] => {
      if (!records) {
        records = new Map();
        for (const o of this.endpointInformer.list()) {
          const r = recordOf(o as JsonObject);
          if (!r) continue;
          let l = records.get(r.pool);
          if (!l) records.set(r.pool, (l = []));
          l.push(r);
        }
      }
      return records.get(pool) ?? [];
    };
    for (const name of [...this.pools.keys()]) if (!validations.has(name)) this.pools.delete(name);
    for (const [name, validation] of validations) {
      const prev = this.pools.get(name);
      if (!validation.ok) {
        if (!prev || prev.validation.ok || initial) {
          const c = readyCondition(validation);
          this.log.warn('pool is not usable', { pool: name, reason: c.reason, message: c.message });
        }
        this.pools.set(name, { validation });
        continue;
      }
      if (prev?.allocator && prev.validation.ok && prev.validation.pool.allocatable.equals(validation.pool.allocatable)) {
        this.pools.set(name, { validation, allocator: prev.allocator });
        continue;
      }
      const allocator = new PoolAllocator(validation.pool, {
        cooldownMs: this.cooldownMs,
        now: this.now,
        ...(this.blockSize !== undefined ? { blockSize: this.blockSize } : {}),
      });
      const report = allocator.restore(recordsOf(name));
      for (const r of report.rejected) {
        this.log.warn('allocation record not applied to the pool', { pool: name, address: r.record.address, reason: r.reason, message: r.message });
      }
      this.pools.set(name, { validation, allocator });
    }
  }

  private endpointChanged(obj: IpEndpointJson, deleted: boolean): void {
    const name = obj.metadata?.name;
    if (!name) return;
    const r = recordOf(obj);
    // indexes (kept before sync too)
    const prev = this.indexed.get(name);
    if (prev) {
      const names = this.byContainer.get(prev.container);
      if (names?.delete(name) && names.size === 0) this.byContainer.delete(prev.container);
      if (prev.sticky !== undefined && this.byStickyPod.get(prev.sticky) === name) this.byStickyPod.delete(prev.sticky);
      this.indexed.delete(name);
    }
    if (r && !deleted) {
      const container = containerKey(r.containerID, r.interface);
      this.addToContainerIndex(container, name);
      const sticky = stickyOf(obj) && !r.releasedAt ? podKey(r.podNamespace, r.podName, r.interface) : undefined;
      if (sticky !== undefined) this.byStickyPod.set(sticky, name);
      this.indexed.set(name, { container, ...(sticky !== undefined ? { sticky } : {}) });
    }
    if (!this.synced || !r) return;
    this.applyToAllocator(r, deleted);
  }

  /** Brings a pool's allocator in line with one IpEndpoint as the API server has it. */
  private applyToAllocator(r: AllocationRecord, deleted: boolean): void {
    const alloc = this.pools.get(r.pool)?.allocator;
    if (!alloc) return;
    const cur = alloc.findByAddress(r.address);
    const same = cur !== undefined && cur.containerID === r.containerID && cur.interface === r.interface;
    if (deleted) {
      if (cur && !same) return; // a newer claim of ours already holds it
      alloc.forget(r.address);
      return;
    }
    if (r.releasedAt) {
      if (alloc.isCooling(r.address) && !cur) return;
      if (!same) {
        const { releasedAt: _, ...live } = r;
        if (!alloc.observe(live).ok) return;
      }
      const at = Date.parse(r.releasedAt);
      alloc.releaseByAddress(r.address, { at: Number.isNaN(at) ? 0 : at });
      return;
    }
    const res = alloc.observe(r);
    if (res.ok && res.displaced.length > 0) {
      this.log.debug('cache caught up with the API server', { address: r.address, displaced: res.displaced.map((d) => d.containerID) });
    }
  }

  private cached(name: string): IpEndpointJson | undefined {
    return this.endpointInformer.get(name) as IpEndpointJson | undefined;
  }

  // -------------------------------------------------------------------------------------------
  // IpamBackend

  async allocate(req: AddressRequest): Promise<GrantedAddress[]> {
    this.requireSynced();
    const ns = req.pod?.namespace;
    const podName = req.pod?.name;
    if (!ns || !podName) {
      throw new CniError(
        CniErrorCode.InvalidEnvironmentVariables,
        'Kubernetes IPAM needs the pod: K8S_POD_NAMESPACE and K8S_POD_NAME are missing from CNI_ARGS',
        `container ${req.containerId}`,
      );
    }
    const uid = req.pod?.uid ?? '';

    // A retried ADD of the same container: the same address, no write.
    const prior = this.liveByContainer(req.containerId, req.ifName);
    if (prior && (uid === '' || prior.record.podUID === '' || prior.record.podUID === uid)) {
      return [this.granted(prior.record)];
    }

    const pod = await this.getPod(ns, podName, uid);
    const areq: AllocationRequest = {
      node: this.nodeName,
      podNamespace: ns,
      podName,
      podUID: pod.info.uid ?? uid,
      containerID: req.containerId,
      interface: req.ifName,
    };
    const choice = this.choose(pod, req.pools);
    if (!choice.ok) {
      throw this.fail(pod, FastErrorCode.NoPoolForPod, choice.message, `pool choice: ${choice.reason}`);
    }

    if (choice.staticAddress) {
      const record = await this.claimStatic(pod, areq, choice.staticAddress.pool, formatIp(choice.staticAddress.address));
      return [this.granted(record)];
    }

    if (pod.statefulSet) {
      const sticky = await this.claimSticky(pod, areq, choice.candidates);
      if (sticky) return [this.granted(sticky)];
    }

    const exhausted: string[] = [];
    for (const pool of choice.candidates) {
      const record = await this.claimDynamic(pod, areq, pool, exhausted);
      if (record) return [this.granted(record)];
    }
    if (exhausted.length === 0) {
      throw this.fail(pod, CniErrorCode.TryAgainLater, `pools ${choice.candidates.join(', ')} changed during the allocation; try again`);
    }
    throw this.fail(pod, FastErrorCode.PoolExhausted, exhausted.join('; '), 'the pod starts once an address is released');
  }

  async release(containerId: string, ifName: string): Promise<number> {
    this.requireSynced();
    const names = new Set(this.byContainer.get(containerKey(containerId, ifName)) ?? []);
    for (const st of this.pools.values()) {
      const r = st.allocator?.findByContainer(containerId, ifName);
      if (r) names.add(endpointName(r.address));
    }
    let released = 0;
    for (const name of names) {
      if (await this.releaseOne(name, containerId, ifName)) released++;
    }
    this.stats.releases += released;
    return released;
  }

  async owned(): Promise<OwnedAddress[]> {
    const out: OwnedAddress[] = [];
    for (const o of this.endpointInformer.list()) {
      const r = recordOf(o as JsonObject);
      if (!r || r.node !== this.nodeName || r.releasedAt || isReserved(o as JsonObject)) continue;
      out.push({ containerId: r.containerID, ifName: r.interface, address: r.address, pool: r.pool });
    }
    return out;
  }

  async usage(): Promise<PoolUsage[]> {
    const counts = new Map<string, { allocated: number; cooling: number }>();
    for (const o of this.endpointInformer.list()) {
      const r = recordOf(o as JsonObject);
      if (!r) continue;
      const c = counts.get(r.pool) ?? { allocated: 0, cooling: 0 };
      if (r.releasedAt) c.cooling++;
      else c.allocated++;
      counts.set(r.pool, c);
    }
    return [...this.pools.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, p]) => {
        const cond = readyCondition(p.validation);
        if (p.allocator) {
          const c = p.allocator.counts();
          return { name, total: Number(c.total), allocated: c.allocated, cooling: c.cooling, ready: true, message: cond.message };
        }
        const c = counts.get(name) ?? { allocated: 0, cooling: 0 };
        return { name, total: 0, allocated: c.allocated, cooling: c.cooling, ready: false, message: `${cond.reason}: ${cond.message}` };
      });
  }

  // -------------------------------------------------------------------------------------------
  // allocation steps

  private requireSynced(): void {
    if (this.closed) throw new CniError(CniErrorCode.TryAgainLater, 'Kubernetes IPAM is shut down');
    if (!this.synced) throw new CniError(CniErrorCode.TryAgainLater, 'Kubernetes IPAM is still loading pools and allocations');
  }

  private liveByContainer(containerID: string, iface: string): { obj?: IpEndpointJson; record: AllocationRecord } | undefined {
    for (const name of this.byContainer.get(containerKey(containerID, iface)) ?? []) {
      const obj = this.cached(name);
      const r = recordOf(obj);
      if (obj && r && !r.releasedAt && !isReserved(obj) && r.containerID === containerID && r.interface === iface) return { obj, record: r };
    }
    return undefined;
  }

  private granted(r: AllocationRecord): GrantedAddress {
    const v = this.pools.get(r.pool)?.validation;
    return { address: r.address, pool: r.pool, gateway: v?.ok ? formatIp(v.pool.gateway) : '' };
  }

  private async getPod(namespace: string, name: string, uid: string): Promise<PodMeta> {
    let obj = this.podInformer.get(name, namespace) as JsonObject | undefined;
    if (!obj || (uid !== '' && obj.metadata?.uid !== uid)) {
      this.stats.reads++;
      try {
        obj = plainObject(await retryOnNetworkError(() => this.core.readNamespacedPod({ name, namespace }))) as JsonObject;
      } catch (err) {
        const status = httpStatus(err);
        if (status === 404) {
          throw new CniError(CniErrorCode.TryAgainLater, `pod ${namespace}/${name} does not exist`, 'no address is allocated for a pod the API server does not know');
        }
        throw new CniError(CniErrorCode.TryAgainLater, `cannot read pod ${namespace}/${name} from the API server`, describeError(err));
      }
    }
    if (uid !== '' && obj.metadata?.uid !== uid) {
      throw new CniError(
        CniErrorCode.TryAgainLater,
        `pod ${namespace}/${name} has uid ${obj.metadata?.uid ?? '?'}, not ${uid}`,
        'the sandbox belongs to a pod that was deleted',
      );
    }
    const info: PodInfo = {
      name,
      namespace,
      ...(obj.metadata?.uid ? { uid: obj.metadata.uid } : {}),
      ...(obj.metadata?.labels ? { labels: obj.metadata.labels } : {}),
      ...(obj.metadata?.annotations ? { annotations: obj.metadata.annotations } : {}),
    };
    const sts = statefulSetOf(obj);
    return { obj, info, ...(sts ? { statefulSet: sts } : {}) };
  }

  private objectInfo(obj: JsonObject | undefined, fallbackName: string): ObjectInfo {
    return {
      name: obj?.metadata?.name ?? fallbackName,
      ...(obj?.metadata?.labels ? { labels: obj.metadata.labels } : {}),
      ...(obj?.metadata?.annotations ? { annotations: obj.metadata.annotations } : {}),
    };
  }

  /** choosePools, with the network configuration's `ipam.pool` standing in for `default-ips`. */
  private choose(pod: PodMeta, confPools: string[] | undefined): PoolChoiceResult {
    const nsObj = this.namespaceInformer.get(pod.info.namespace) as JsonObject | undefined;
    const namespace = nsObj ? this.objectInfo(nsObj, pod.info.namespace) : undefined;
    const node = this.objectInfo(this.nodeInformer.get(this.nodeName) as JsonObject | undefined, this.nodeName);
    const pools = new Map<string, PoolValidation>();
    for (const [n, p] of this.pools) pools.set(n, p.validation);
    const first = choosePools({ pod: pod.info, ...(namespace ? { namespace } : {}), node, pools });
    if (first.source !== 'default' || !confPools || confPools.length === 0) return first;
    // Nothing names a pool and no affinity selects the pod: the network configuration's pools.
    const annotated: PodInfo = { ...pod.info, annotations: { ...(pod.info.annotations ?? {}), [POOL_ANNOTATION]: confPools.join(',') } };
    const second = choosePools({ pod: annotated, ...(namespace ? { namespace } : {}), node, pools });
    if (second.ok) return second;
    const prefix = `pod ${pod.info.namespace}/${pod.info.name} annotation ${POOL_ANNOTATION}`;
    return { ...second, message: second.message.split(prefix).join('the network configuration (ipam.pool)') };
  }

  /** Creates the IpEndpoint of a record; 409 → the current holder. */
  private async create(record: AllocationRecord, pod: PodMeta): Promise<Claim> {
    const body = endpointObject(record) as unknown as IpEndpointJson;
    if (pod.statefulSet) {
      body.metadata.annotations = {
        [STATEFULSET_ANNOTATION]: pod.statefulSet.name,
        ...(pod.statefulSet.uid ? { [STATEFULSET_UID_ANNOTATION]: pod.statefulSet.uid } : {}),
      };
    }
    this.stats.writes++;
    try {
      const created = (await retryOnNetworkError(() => this.custom.createClusterCustomObject({ ...CR, plural: IPENDPOINT_PLURAL, body }))) as IpEndpointJson;
      return { ok: true, obj: created, record };
    } catch (err) {
      const status = httpStatus(err);
      if (status === 409) {
        this.stats.conflicts++;
        const holder = await this.read(body.metadata.name);
        if (!holder) return { ok: false, kind: 'gone' };
        const hr = recordOf(holder);
        if (hr && hr.containerID === record.containerID && hr.interface === record.interface && !hr.releasedAt && !isReserved(holder)) {
          return { ok: true, obj: holder, record: hr }; // an earlier attempt of ours went through
        }
        return { ok: false, kind: 'taken', holder };
      }
      if (status === undefined || status >= 500 || status === 429) {
        // The create may have happened even though we saw an error: look before giving up.
        const maybe = await this.read(body.metadata.name).catch(() => undefined);
        const mr = recordOf(maybe);
        if (maybe && mr && mr.containerID === record.containerID && mr.interface === record.interface && !mr.releasedAt) {
          return { ok: true, obj: maybe, record: mr };
        }
        throw new CniError(CniErrorCode.TryAgainLater, `cannot record address ${record.address} in the API server`, describeError(err));
      }
      throw new CniError(FastErrorCode.Internal, `the API server refused IpEndpoint ${body.metadata.name}`, describeError(err));
    }
  }

  /** GET of an IpEndpoint; undefined when it does not exist. */
  private async read(name: string): Promise<IpEndpointJson | undefined> {
    this.stats.reads++;
    try {
      return (await retryOnNetworkError(() => this.custom.getClusterCustomObject({ ...CR, plural: IPENDPOINT_PLURAL, name }))) as IpEndpointJson;
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw new CniError(CniErrorCode.TryAgainLater, `cannot read IpEndpoint ${name}`, describeError(err));
    }
  }

  /** Conditional update (metadata.resourceVersion of `obj`): 409 → 'conflict', 404 → 'gone'. */
  private async replace(obj: IpEndpointJson): Promise<IpEndpointJson | 'conflict' | 'gone'> {
    this.stats.writes++;
    let tries = 0;
    try {
      return (await retryOnNetworkError(() => {
        tries++;
        return this.custom.replaceClusterCustomObject({ ...CR, plural: IPENDPOINT_PLURAL, name: obj.metadata.name, body: obj });
      })) as IpEndpointJson;
    } catch (err) {
      const status = httpStatus(err);
      if (status === 409 && tries > 1) {
        // Repeated after a connection failure: the first attempt may have gone through.
        const current = await this.read(obj.metadata.name);
        if (current && JSON.stringify(recordOf(current)) === JSON.stringify(recordOf(obj))) return current;
      }
      if (status === 409) return 'conflict';
      if (status === 404) return 'gone';
      if (status === undefined || status >= 500 || status === 429) {
        throw new CniError(CniErrorCode.TryAgainLater, `cannot update IpEndpoint ${obj.metadata.name}`, describeError(err));
      }
      throw new CniError(FastErrorCode.Internal, `the API server refused the update of IpEndpoint ${obj.metadata.name}`, describeError(err));
    }
  }

  /** The object of `holder` rewritten for a new holder (conditional on holder's resourceVersion). */
  private takeoverBody(holder: IpEndpointJson, record: AllocationRecord, pod: PodMeta): IpEndpointJson {
    const fresh = endpointObject(record) as unknown as IpEndpointJson;
    const labels = { ...(holder.metadata.labels ?? {}), ...(fresh.metadata.labels ?? {}) };
    delete labels[RESERVED_LABEL];
    const annotations = { ...(holder.metadata.annotations ?? {}) };
    delete annotations[STATEFULSET_ANNOTATION];
    delete annotations[STATEFULSET_UID_ANNOTATION];
    if (pod.statefulSet) {
      annotations[STATEFULSET_ANNOTATION] = pod.statefulSet.name;
      if (pod.statefulSet.uid) annotations[STATEFULSET_UID_ANNOTATION] = pod.statefulSet.uid;
    }
    return {
      apiVersion: IPS_API_VERSION,
      kind: IPENDPOINT_KIND,
      metadata: {
        ...holder.metadata,
        name: holder.metadata.name,
        labels,
        annotations,
      },
      spec: { ...record },
    };
  }

  private addToContainerIndex(container: string, name: string): void {
    let names = this.byContainer.get(container);
    if (!names) this.byContainer.set(container, (names = new Set()));
    names.add(name);
  }

  /** Local bookkeeping after the API server accepted our claim of `r` (the watch confirms it later). */
  private claimed(obj: IpEndpointJson, r: AllocationRecord, wrote = true): AllocationRecord {
    if (wrote) this.stats.allocations++;
    this.pools.get(r.pool)?.allocator?.observe(r);
    this.addToContainerIndex(containerKey(r.containerID, r.interface), obj.metadata.name);
    return r;
  }

  private async claimDynamic(pod: PodMeta, areq: AllocationRequest, pool: string, exhausted: string[]): Promise<AllocationRecord | undefined> {
    const alloc = this.pools.get(pool)?.allocator;
    if (!alloc) return undefined;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const res = alloc.allocate(areq);
      if (!res.ok) {
        if (res.error.code === 'Exhausted') {
          exhausted.push(res.error.message);
          return undefined;
        }
        throw this.fail(pod, FastErrorCode.Internal, res.error.message, res.error.code);
      }
      const record = { ...res.record };
      const mine = () => {
        const cur = alloc.findByAddress(record.address);
        return cur !== undefined && cur.containerID === record.containerID && cur.interface === record.interface;
      };
      let claim: Claim;
      try {
        claim = await this.create(record, pod);
      } catch (err) {
        if (mine()) alloc.forget(record.address);
        throw err;
      }
      if (claim.ok) return this.claimed(claim.obj, claim.record);
      if (claim.kind === 'gone') continue; // deleted between our create and our read: try again
      const holder = claim.holder!;
      const hr = recordOf(holder);
      // A released record whose cooldown has passed (the controller has not deleted it yet).
      if (hr?.releasedAt && !isReserved(holder) && cooldownPassed(hr.releasedAt, this.cooldownMs, this.now())) {
        const updated = await this.replace(this.takeoverBody(holder, record, pod)).catch((err: unknown) => {
          if (mine()) alloc.forget(record.address);
          throw err;
        });
        if (typeof updated === 'object') {
          this.stats.takeovers++;
          return this.claimed(updated, record);
        }
      }
      if (mine()) alloc.forget(record.address);
      if (hr) this.applyToAllocator(hr, false);
      else {
        // An object we cannot read holds the address: keep away from it.
        this.log.warn('malformed IpEndpoint holds an address', { name: holder.metadata.name });
        alloc.observe({ ...record, node: '', podNamespace: '', podName: '', podUID: '', containerID: `malformed:${holder.metadata.name}` });
      }
    }
    throw this.fail(
      pod,
      CniErrorCode.TryAgainLater,
      `gave up claiming an address of pool ${pool} after ${this.maxAttempts} refused claims`,
      'other nodes are allocating from the same addresses; try again',
    );
  }

  /** `fast.io/ip`: the address asked for, or a clear refusal naming its holder. */
  private async claimStatic(pod: PodMeta, areq: AllocationRequest, pool: string, address: string): Promise<AllocationRecord> {
    const alloc = this.pools.get(pool)?.allocator;
    if (!alloc) throw this.fail(pod, FastErrorCode.NoPoolForPod, `pool ${pool} is not usable`);
    const name = endpointName(address);
    let holder = this.cached(name);
    for (let attempt = 0; attempt < 8; attempt++) {
      if (!holder) {
        const res = alloc.allocateStatic(areq, address, { ignoreCooldown: true });
        if (!res.ok && res.error.code === 'ContainerHasOtherAddress') {
          throw this.fail(pod, FastErrorCode.StaticAddressConflict, res.error.message, `annotation asks for ${address}`);
        }
        if (!res.ok && res.error.code !== 'Conflict' && res.error.code !== 'Cooling') {
          throw this.fail(pod, FastErrorCode.Internal, res.error.message, res.error.code);
        }
        const record: AllocationRecord = { ...areq, pool, address };
        const claim = await this.create(record, pod).catch((err: unknown) => {
          const cur = alloc.findByAddress(address);
          if (cur && cur.containerID === areq.containerID && cur.interface === areq.interface) alloc.forget(address);
          throw err;
        });
        if (claim.ok) return this.claimed(claim.obj, claim.record);
        const cur = alloc.findByAddress(address);
        if (cur && cur.containerID === areq.containerID && cur.interface === areq.interface) alloc.forget(address);
        holder = claim.kind === 'taken' ? claim.holder : undefined;
        if (holder) {
          const hr = recordOf(holder);
          if (hr) this.applyToAllocator(hr, false);
        }
        continue;
      }
      const hr = recordOf(holder);
      if (!hr) throw this.fail(pod, FastErrorCode.Internal, `IpEndpoint ${name} is malformed`);
      if (hr.containerID === areq.containerID && hr.interface === areq.interface && !hr.releasedAt && !isReserved(holder)) {
        return this.claimed(holder, hr, false);
      }
      const samePod = hr.podNamespace === areq.podNamespace && hr.podName === areq.podName;
      const podGone = samePod && hr.podUID !== areq.podUID; // names are unique: an earlier pod of this name is gone
      const rested = hr.releasedAt !== undefined && cooldownPassed(hr.releasedAt, this.cooldownMs, this.now());
      const reserved = isReserved(holder);
      if (podGone || rested || (samePod && (hr.releasedAt !== undefined || reserved))) {
        if (reserved && !samePod) {
          throw this.fail(
            pod,
            FastErrorCode.StaticAddressConflict,
            `address ${address} of pool ${pool} is reserved for StatefulSet pod ${hr.podNamespace}/${hr.podName}`,
            'it is released when the StatefulSet is deleted or scaled below that pod',
          );
        }
        const updated = await this.replace(this.takeoverBody(holder, { ...areq, pool, address }, pod));
        if (typeof updated === 'object') return this.claimed(updated, { ...areq, pool, address });
        holder = updated === 'gone' ? undefined : await this.read(name);
        continue;
      }
      if (hr.releasedAt !== undefined) {
        const left = Math.max(1, Math.ceil((Date.parse(hr.releasedAt) + this.cooldownMs - this.now()) / 1000));
        throw this.fail(
          pod,
          FastErrorCode.StaticAddressConflict,
          `address ${address} of pool ${pool} was released by pod ${hr.podNamespace}/${hr.podName} and rests for ${left} s more`,
          'the pod starts once the cooldown has passed',
        );
      }
      // Held by another live pod, as far as the cache knows: confirm with the API server.
      if (attempt === 0 || holder === this.cached(name)) {
        const fresh = await this.read(name);
        if (!fresh || fresh.metadata.resourceVersion !== holder.metadata.resourceVersion) {
          holder = fresh;
          continue;
        }
      }
      throw this.fail(
        pod,
        FastErrorCode.StaticAddressConflict,
        `address ${address} of pool ${pool} is in use by ${holderText(hr)}`,
        `pod ${areq.podNamespace}/${areq.podName} asks for it with annotation fast.io/ip; it starts once that pod releases the address`,
      );
    }
    throw this.fail(pod, CniErrorCode.TryAgainLater, `address ${address} of pool ${pool} keeps changing hands; try again`);
  }

  /** A StatefulSet pod gets back the address reserved for its name, wherever it runs now. */
  private async claimSticky(pod: PodMeta, areq: AllocationRequest, candidates: readonly string[]): Promise<AllocationRecord | undefined> {
    const key = podKey(areq.podNamespace, areq.podName, areq.interface);
    for (let attempt = 0; attempt < 8; attempt++) {
      const name = this.byStickyPod.get(key);
      if (!name) return undefined;
      let holder = this.cached(name);
      if (attempt > 0 || !holder) holder = await this.read(name);
      if (!holder) {
        if (this.byStickyPod.get(key) === name) this.byStickyPod.delete(key);
        return undefined;
      }
      const hr = recordOf(holder);
      const sts = stickyOf(holder);
      if (!hr || !sts || hr.podNamespace !== areq.podNamespace || hr.podName !== areq.podName || hr.interface !== areq.interface || hr.releasedAt) {
        if (this.byStickyPod.get(key) === name) this.byStickyPod.delete(key);
        return undefined;
      }
      if (hr.containerID === areq.containerID && !isReserved(holder)) return this.claimed(holder, hr, false);
      if (!candidates.includes(hr.pool) || sts.name !== pod.statefulSet?.name) {
        // The pod may no longer use that pool (or belongs to another set now): give it up.
        this.log.info('dropping a sticky address the pod may no longer use', { address: hr.address, pool: hr.pool, pod: `${hr.podNamespace}/${hr.podName}` });
        await this.deleteEndpoint(holder);
        return undefined;
      }
      const record: AllocationRecord = { ...areq, pool: hr.pool, address: hr.address };
      const updated = await this.replace(this.takeoverBody(holder, record, pod));
      if (typeof updated === 'object') {
        this.log.info('sticky address taken over', { address: hr.address, pod: `${areq.podNamespace}/${areq.podName}`, from: hr.node, to: this.nodeName });
        return this.claimed(updated, record);
      }
      if (updated === 'gone') return undefined;
    }
    return undefined;
  }

  private async deleteEndpoint(obj: IpEndpointJson): Promise<boolean> {
    this.stats.writes++;
    try {
      await retryOnNetworkError(() =>
        this.custom.deleteClusterCustomObject({
          ...CR,
          plural: IPENDPOINT_PLURAL,
          name: obj.metadata.name,
          body: { preconditions: { ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}), ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}) } },
        }),
      );
      return true;
    } catch (err) {
      const status = httpStatus(err);
      if (status === 404 || status === 409) return false;
      throw new CniError(CniErrorCode.TryAgainLater, `cannot delete IpEndpoint ${obj.metadata.name}`, describeError(err));
    }
  }

  /** DEL of one IpEndpoint held by the container: cooling (or reserved for a StatefulSet pod). */
  private async releaseOne(name: string, containerId: string, ifName: string): Promise<boolean> {
    let obj = this.cached(name);
    for (let attempt = 0; attempt < 8; attempt++) {
      if (!obj || attempt > 0) obj = await this.read(name);
      if (!obj) {
        this.forgetLocal(name, containerId, ifName);
        return false;
      }
      const r = recordOf(obj);
      if (!r || r.containerID !== containerId || r.interface !== ifName || r.releasedAt || isReserved(obj)) {
        this.forgetLocal(name, containerId, ifName);
        return false; // not (or no longer) this container's
      }
      const alloc = this.pools.get(r.pool)?.allocator;
      if (stickyOf(obj)) {
        const body: IpEndpointJson = {
          ...obj,
          metadata: { ...obj.metadata, labels: { ...(obj.metadata.labels ?? {}), [RESERVED_LABEL]: 'true' } },
          spec: { ...r, podUID: '' },
        };
        const updated = await this.replace(body);
        if (updated === 'gone') return false;
        if (updated === 'conflict') continue;
        alloc?.observe({ ...r, podUID: '' });
        this.log.info('sticky address reserved for the StatefulSet pod', { address: r.address, pod: `${r.podNamespace}/${r.podName}` });
        return true;
      }
      const nowMs = this.now();
      if (this.cooldownMs <= 0) {
        if (!(await this.deleteEndpoint(obj))) continue;
        alloc?.releaseByAddress(r.address, { cooldown: false });
        return true;
      }
      const releasedAt = new Date(nowMs).toISOString();
      const updated = await this.replace({ ...obj, spec: { ...r, releasedAt } });
      if (updated === 'gone') return false;
      if (updated === 'conflict') continue;
      const cur = alloc?.findByAddress(r.address);
      if (alloc && (!cur || cur.containerID !== containerId || cur.interface !== ifName)) alloc.observe(r);
      alloc?.releaseByAddress(r.address, { at: nowMs });
      return true;
    }
    throw new CniError(CniErrorCode.TryAgainLater, `IpEndpoint ${name} keeps changing; cannot release it`);
  }

  /** Drops a local in-flight record of a container that the API server does not hold. */
  private forgetLocal(name: string, containerId: string, ifName: string): void {
    for (const st of this.pools.values()) {
      const r = st.allocator?.findByContainer(containerId, ifName);
      if (r && endpointName(r.address) === name) st.allocator!.forget(r.address);
    }
  }

  // -------------------------------------------------------------------------------------------
  // failures: a CNI error, and an event on the pod

  private fail(pod: PodMeta, code: number, msg: string, details?: string): CniError {
    this.log.warn('address allocation failed', { pod: `${pod.info.namespace}/${pod.info.name}`, code, msg, details });
    if (this.recordEvents) this.recordEvent(pod, msg);
    return new CniError(code, msg, details);
  }

  private recordEvent(pod: PodMeta, message: string): void {
    const uid = pod.info.uid ?? '';
    const key = `${uid}\u0000${message}`;
    const nowMs = this.now();
    const recent = this.recentEvents.get(key);
    const p = (async () => {
      const namespace = pod.info.namespace;
      if (recent && nowMs - recent.at < 10 * 60_000) {
        recent.count++;
        recent.at = nowMs;
        try {
          await this.core.patchNamespacedEvent(
            { name: recent.name, namespace, body: { count: recent.count, lastTimestamp: new Date(nowMs).toISOString() } },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
          return;
        } catch {
          // fall through: create a new one
        }
      }
      if (this.recentEvents.size > 1000) this.recentEvents.clear();
      const name = `${pod.info.name}.${nowMs.toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`;
      const when = new Date(nowMs);
      const body = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace, name: pod.info.name, ...(uid ? { uid } : {}) },
        reason: ALLOCATION_FAILED_REASON,
        message,
        type: 'Warning',
        source: { component: 'fast-agent', host: this.nodeName },
        reportingComponent: 'fast.io/fast-agent',
        reportingInstance: this.nodeName,
        firstTimestamp: when,
        lastTimestamp: when,
        count: 1,
      } as unknown as CoreV1Event;
      await this.core.createNamespacedEvent({ namespace, body });
      this.recentEvents.set(key, { name, namespace, count: 1, at: nowMs });
    })().catch((err: unknown) => this.log.debug('cannot record pod event', { err: describeError(err) }));
    this.pendingEvents.add(p);
    void p.finally(() => this.pendingEvents.delete(p));
  }
}
