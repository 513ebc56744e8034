// One informer per resource, shared by all controllers of the process (client-go's
// SharedInformerFactory): each resource is listed and watched once, whatever the number of
// controllers looking at it. Caches hold plain JSON objects (see plainObject).
import '../../k8s/node-compat.js';
import {
  AppsV1Api, CoreV1Api,
  type KubeConfig, type KubernetesListObject, type KubernetesObject,
  type V1Deployment, type V1Node, type V1Pod, type V1ReplicaSet, type V1StatefulSet,
} from '@kubernetes/client-node';
import { makeApiClient } from '../../k8s/api-client.js';
import { ResilientInformer, plainObject, type Backoff, type InformerLogger } from '../../k8s/resilient-informer.js';

/**
 * plainObject for what needs it: listed objects come from the typed client as class instances
 * (Date fields) and are made plain JSON; watched objects are already plain JSON straight from
 * JSON.parse and owned by nobody else, so they are not copied again (a stringify and a parse of
 * every pod for every event).
 */
export function asPlainJson<T>(obj: T): T {
  return obj !== null && typeof obj === 'object' && Object.getPrototypeOf(obj) === Object.prototype ? obj : plainObject(obj);
}

export class SharedInformers {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  private readonly informers = new Map<string, ResilientInformer<KubernetesObject>>();
  private started = false;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly opts: { log?: InformerLogger; backoff?: Backoff; watchTimeoutMs?: number } = {},
  ) {
    this.core = makeApiClient(kubeConfig, CoreV1Api);
    this.apps = makeApiClient(kubeConfig, AppsV1Api);
  }

  pods(): ResilientInformer<V1Pod> {
    return this.informer('pods', '/api/v1/pods', () => this.core.listPodForAllNamespaces());
  }

  nodes(): ResilientInformer<V1Node> {
    return this.informer('nodes', '/api/v1/nodes', () => this.core.listNode());
  }

  replicaSets(): ResilientInformer<V1ReplicaSet> {
    return this.informer('replicasets', '/apis/apps/v1/replicasets', () => this.apps.listReplicaSetForAllNamespaces());
  }

  deployments(): ResilientInformer<V1Deployment> {
    return this.informer('deployments', '/apis/apps/v1/deployments', () => this.apps.listDeploymentForAllNamespaces());
  }

  statefulSets(): ResilientInformer<V1StatefulSet> {
    return this.informer('statefulsets', '/apis/apps/v1/statefulsets', () => this.apps.listStatefulSetForAllNamespaces());
  }

  private informer<T extends KubernetesObject>(name: string, path: string, list: () => Promise<KubernetesListObject<T>>): ResilientInformer<T> {
    let inf = this.informers.get(name) as ResilientInformer<T> | undefined;
    if (!inf) {
      inf = new ResilientInformer<T>({
        kubeConfig: this.kubeConfig, path, list, name, transform: asPlainJson,
        log: this.opts.log, backoff: this.opts.backoff, watchTimeoutMs: this.opts.watchTimeoutMs,
      });
      this.informers.set(name, inf as unknown as ResilientInformer<KubernetesObject>);
      if (this.started) void inf.start();
    }
    return inf;
  }

  /** Starts every informer asked for so far (and those asked for later). */
  async start(): Promise<void> {
    this.started = true;
    await Promise.all([...this.informers.values()].map((inf) => inf.start()));
  }

  /** Resolves once every informer has listed its resource. */
  async waitForSync(): Promise<void> {
    await Promise.all([...this.informers.values()].map((inf) => inf.waitForSync()));
  }

  hasSynced(): boolean {
    return [...this.informers.values()].every((inf) => inf.hasSynced());
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.informers.values()].map((inf) => inf.stop()));
  }

  /** Name, sync state and restart count of each informer (for logs and tests). */
  status(): { name: string; synced: boolean; restarts: number; resourceVersion: string }[] {
    return [...this.informers.values()].map((inf) => ({
      name: inf.name, synced: inf.hasSynced(), restarts: inf.restarts, resourceVersion: inf.latestResourceVersion(),
    }));
  }
}
