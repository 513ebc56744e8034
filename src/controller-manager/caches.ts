// The informers the controllers share: Ips pools, IpEndpoints, Pods, Nodes and StatefulSets, as
// plain JSON. Started when this instance becomes the leader, stopped when it steps down.
import '../k8s/node-compat.js';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { ResilientInformer, describeError, plainObject, jsonInformer } from '../k8s/resilient-informer.js';
import { IPENDPOINT_PLURAL } from '../model/ipam/naming.js';
import { IPS_GROUP, IPS_PLURAL, IPS_VERSION } from '../model/ipam/pool.js';
import type { IpEndpointJson, JsonObject } from '../agent/ipam/kubernetes.js';
import type { Logger } from '../agent/log.js';
import { makeApiClient } from '../k8s/api-client.js';

export const CR = { group: IPS_GROUP, version: IPS_VERSION } as const;

export interface Clients {
  core: CoreV1Api;
  apps: AppsV1Api;
  custom: CustomObjectsApi;
}

export function makeClients(kc: KubeConfig): Clients {
  return { core: makeApiClient(kc, CoreV1Api), apps: makeApiClient(kc, AppsV1Api), custom: makeApiClient(kc, CustomObjectsApi) };
}

export type Informer = ResilientInformer<KubernetesObject>;

export class Caches {
  readonly pools: Informer;
  readonly endpoints: Informer;
  readonly pods: Informer;
  readonly nodes: Informer;
  readonly statefulSets: Informer;

  constructor(kc: KubeConfig, clients: Clients, log: Logger) {
    const mk = (name: string, path: string, list: () => Promise<unknown>) => jsonInformer(kc, name, path, list, log);
    this.pools = mk('ips', `/apis/${IPS_GROUP}/${IPS_VERSION}/${IPS_PLURAL}`, () => clients.custom.listClusterCustomObject({ ...CR, plural: IPS_PLURAL }));
    this.endpoints = mk('ipendpoints', `/apis/${IPS_GROUP}/${IPS_VERSION}/${IPENDPOINT_PLURAL}`, () =>
      clients.custom.listClusterCustomObject({ ...CR, plural: IPENDPOINT_PLURAL }),
    );
    this.pods = mk('pods', '/api/v1/pods', () => clients.core.listPodForAllNamespaces());
    this.nodes = mk('nodes', '/api/v1/nodes', () => clients.core.listNode());
    this.statefulSets = mk('statefulsets', '/apis/apps/v1/statefulsets', () => clients.apps.listStatefulSetForAllNamespaces());
  }

  get all(): Informer[] {
    return [this.pools, this.endpoints, this.pods, this.nodes, this.statefulSets];
  }

  /** Starts the informers and waits until every cache holds a complete list (for as long as it
   *  takes: the CRDs may not be installed yet), logging what is missing every `warnEveryMs`. */
  async start(log: Logger, warnEveryMs = 30_000): Promise<void> {
    await Promise.all(this.all.map((i) => i.start()));
    const timer = setInterval(() => {
      const missing = this.all.filter((i) => !i.hasSynced()).map((i) => `${i.name}: ${describeError(i.lastError)}`);
      if (missing.length > 0) log.warn('waiting for caches (are the Fast CRDs installed?)', { missing });
    }, warnEveryMs);
    try {
      await Promise.all(this.all.map((i) => i.waitForSync()));
    } finally {
      clearInterval(timer);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((i) => i.stop().catch(() => undefined)));
  }

  endpointList(): IpEndpointJson[] {
    return this.endpoints.list() as unknown as IpEndpointJson[];
  }

  endpoint(name: string): IpEndpointJson | undefined {
    return this.endpoints.get(name) as unknown as IpEndpointJson | undefined;
  }

  pod(namespace: string, name: string): JsonObject | undefined {
    return this.pods.get(name, namespace) as JsonObject | undefined;
  }

  node(name: string): JsonObject | undefined {
    return this.nodes.get(name) as JsonObject | undefined;
  }

  statefulSet(namespace: string, name: string): JsonObject | undefined {
    return this.statefulSets.get(name, namespace) as JsonObject | undefined;
  }
}
