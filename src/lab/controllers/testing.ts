// Test support for the lab controllers: nodes that look like a kubelet registered them, a
// stand-in kubelet that marks pods Running and Ready (automatically or on demand) and completes
// the graceful deletion of pods, and polling helpers. Used by test/unit/lab-controllers-*.test.ts
// and usable by benchmarks; never by the lab itself (it has a real kubelet).
import '../../k8s/node-compat.js';
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Node, type V1Pod, type V1PodCondition, type V1Taint } from '@kubernetes/client-node';
import { ResilientInformer, plainObject } from '../../k8s/resilient-informer.js';
import { apiTime, isBeingDeleted, isConflict, isNotFound, isPodReady } from './util.js';
import { makeApiClient } from '../../k8s/api-client.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { kubeConfigForUrl } from '../../k8s/kubeconfig.js';
import { createLogger } from '../../agent/log.js';
import { startApiServer, writeKubeconfig, type ApiServer } from '../apiserver/index.js';
import { startControllers, type RunningControllers, type StartControllersOptions } from './manager.js';

/** Polls until check() returns a truthy value; throws with the last observed state after the timeout. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  opts: { timeoutMs?: number; intervalMs?: number; describe?: () => unknown | Promise<unknown> } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const state = opts.describe ? await Promise.resolve(opts.describe()).catch((e) => String(e)) : undefined;
      throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}${state !== undefined ? `\nstate: ${JSON.stringify(state, null, 1)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** Registers a node with a Ready condition (or NotReady), labels and optional unschedulable flag. */
export async function createNode(
  core: CoreV1Api,
  name: string,
  opts: { labels?: Record<string, string>; ready?: boolean; unschedulable?: boolean; taints?: V1Taint[] } = {},
): Promise<V1Node> {
  const node = await core.createNode({
    body: {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...(opts.labels ?? {}) } },
      spec: { unschedulable: opts.unschedulable || undefined, taints: opts.taints },
    },
  });
  const body: V1Node = plainObject(node);
  body.status = {
    ...(body.status ?? {}),
    conditions: [{
      type: 'Ready', status: opts.ready === false ? 'False' : 'True', reason: opts.ready === false ? 'KubeletNotReady' : 'KubeletReady',
      message: 'lab test node', lastHeartbeatTime: apiTime(), lastTransitionTime: apiTime(),
    }],
  };
  return core.replaceNodeStatus({ name, body });
}

export interface TestKubeletOptions {
  /** Mark pods Running and Ready as soon as they are bound (default true). */
  autoReady?: boolean;
  /** Also handle pods that are not bound to any node (tests without a scheduler). */
  unboundPods?: boolean;
  /** Only pods for which this returns true are ever made ready automatically. */
  filter?: (pod: V1Pod) => boolean;
}

/**
 * A stand-in for the kubelets of a cluster: for pods bound to a node it writes status
 * (phase Running, Ready=True, a pod IP), and it finishes the graceful deletion of terminating
 * pods (DELETE with gracePeriodSeconds=0, as the kubelet does once containers are stopped).
 */
export class TestKubelet {
  readonly core: CoreV1Api;
  readonly pods: ResilientInformer<V1Pod>;
  private nextIp = 10;
  private readonly inFlight = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(kubeConfig: KubeConfig, private readonly opts: TestKubeletOptions = {}) {
    this.core = makeApiClient(kubeConfig, CoreV1Api);
    this.pods = new ResilientInformer<V1Pod>({
      kubeConfig, path: '/api/v1/pods', list: () => this.core.listPodForAllNamespaces(), name: 'test-kubelet-pods',
      transform: plainObject, backoff: { initialMs: 100, maxMs: 1000 },
    });
    const changed = (pod: V1Pod) => this.handle(pod);
    this.pods.on('add', changed);
    this.pods.on('update', changed);
  }

  async start(): Promise<void> {
    await this.pods.start();
    await this.pods.waitForSync();
    for (const pod of this.pods.list()) this.handle(pod);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.pods.stop();
    await Promise.allSettled([...this.pending]);
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private handle(pod: V1Pod): void {
    if (this.stopped) return;
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if (isBeingDeleted(pod)) {
      if (this.inFlight.has(`del:${key}`)) return;
      this.inFlight.add(`del:${key}`);
      this.track(this.finishDeletion(pod).finally(() => this.inFlight.delete(`del:${key}`)));
      return;
    }
    const autoReady = this.opts.autoReady ?? true;
    if (!autoReady || isPodReady(pod)) return;
    if (!pod.spec?.nodeName && !this.opts.unboundPods) return;
    if (this.opts.filter && !this.opts.filter(pod)) return;
    if (this.inFlight.has(`ready:${key}`)) return;
    this.inFlight.add(`ready:${key}`);
    this.track(this.markReady(pod.metadata!.namespace!, pod.metadata!.name!).catch(() => {}).finally(() => this.inFlight.delete(`ready:${key}`)));
  }

  private async finishDeletion(pod: V1Pod): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0 });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Marks a pod Running and Ready (read, modify, write; retried on conflicts). */
  async markReady(namespace: string, name: string, ready = true): Promise<V1Pod> {
    for (let attempt = 0; ; attempt++) {
      const pod = plainObject(await this.core.readNamespacedPod({ name, namespace }));
      const now = apiTime();
      const status = pod.status ?? {};
      const cond = (type: string, value: boolean): V1PodCondition => {
        const prior = status.conditions?.find((c) => c.type === type);
        const s = value ? 'True' : 'False';
        return { type, status: s, lastTransitionTime: prior?.status === s ? prior.lastTransitionTime : now };
      };
      status.phase = 'Running';
      status.hostIP = '192.0.2.1';
      status.podIP = status.podIP ?? `10.244.0.${this.nextIp++ % 250}`;
      status.podIPs = [{ ip: status.podIP }];
      status.startTime = status.startTime ?? now;
      status.conditions = [
        cond('PodReadyToStartContainers', true), cond('Initialized', true), cond('ContainersReady', ready), cond('Ready', ready),
        ...(status.conditions ?? []).filter((c) => c.type === 'PodScheduled'),
      ];
      pod.status = status;
      try {
        return await this.core.replaceNamespacedPodStatus({ name, namespace, body: pod });
      } catch (err) {
        if (!isConflict(err) || attempt > 20) throw err;
      }
    }
  }
}

/** The lab API server with the controllers running against it, and maybe a stand-in kubelet. */
export interface ControllerTestbed {
  server: ApiServer;
  kubeconfigPath: string;
  core: CoreV1Api;
  apps: AppsV1Api;
  running: RunningControllers;
  kubelet?: TestKubelet;
  /** The controllers' JSON log lines (printed on stop when LAB_CONTROLLERS_LOG is set). */
  logs: string[];
  /** kubectl against the testbed; undefined when kubectl is not installed. */
  kubectl?: (...args: string[]) => Promise<string>;
  stop(): Promise<void>;
}

export interface ControllerTestbedOptions {
  /** Nodes registered before the controllers start. */
  nodes?: string[];
  /** Anything else to create first (nodes with special conditions, namespaces). */
  prepare?: (core: CoreV1Api) => Promise<void>;
  controllers?: StartControllersOptions['controllers'];
  resyncMs: number;
  /** Start a TestKubelet with these options (none without). */
  kubelet?: TestKubeletOptions;
}

export async function startControllerTestbed(o: ControllerTestbedOptions): Promise<ControllerTestbed> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-controllers-'));
  const server = await startApiServer({ host: '127.0.0.1', port: 0 });
  const kubeconfigPath = writeKubeconfig(path.join(tmp, 'kubeconfig'), server.url);
  const kc = kubeConfigForUrl(server.url);
  const core = makeApiClient(kc, CoreV1Api);
  const apps = makeApiClient(kc, AppsV1Api);
  for (const n of o.nodes ?? []) await createNode(core, n);
  await o.prepare?.(core);
  const logs: string[] = [];
  const running = await startControllers({
    kubeConfig: kc, controllers: o.controllers, resyncMs: o.resyncMs, backoff: { initialMs: 100, maxMs: 1000 },
    log: createLogger('debug', { component: 'test' }, (line) => logs.push(line)),
  });
  await running.synced;
  const kubelet = o.kubelet ? new TestKubelet(kc, o.kubelet) : undefined;
  await kubelet?.start();
  const kubectlPath = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => fs.existsSync(p));
  const kubectl = kubectlPath
    ? async (...args: string[]) => (await promisify(execFile)(kubectlPath, ['--kubeconfig', kubeconfigPath, ...args], { timeout: 30_000 })).stdout
    : undefined;
  return {
    server, kubeconfigPath, core, apps, running, kubelet, logs, kubectl,
    async stop() {
      await kubelet?.stop();
      await running.stop();
      await server.close();
      if (process.env.LAB_CONTROLLERS_LOG) process.stderr.write(logs.join(''));
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}
