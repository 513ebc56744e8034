// Shared harness of the ipam-k8s-* tests: the lab API server in-process on an ephemeral port with
// the Fast CRDs applied, typed clients, and helpers to create pools, namespaces, nodes, pods and
// Kubernetes IPAM agents. Its own test checks that the CRDs are served as the tests expect.
import '../../src/k8s/node-compat.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  loadAllYaml,
  type KubeConfig,
  type V1OwnerReference,
} from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/index.js';
import { kubeConfigForUrl } from '../../src/k8s/kubeconfig.js';
import { KubernetesIpam, type IpEndpointJson, type KubernetesIpamOptions } from '../../src/agent/ipam/kubernetes.js';
import { createLogger, type LogLevel, type Logger } from '../../src/agent/log.js';
import { CniError } from '../../src/model/cni/errors.js';
import type { GrantedAddress } from '../../src/agent/ipam/backend.js';

const CRD_FILE = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'deploy', 'crds', 'ips.yaml');
export const GROUP = { group: 'sample.fast.io', version: 'v1alpha1' } as const;

/** Logs of the components under test: silent unless IPAM_TEST_LOG=debug|info|warn. */
export function testLog(fields: Record<string, unknown> = {}): Logger {
  const level = (process.env.IPAM_TEST_LOG ?? '') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) return createLogger('error', fields, () => {});
  return createLogger(level, fields);
}

export interface Lab {
  server: ApiServer;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  custom: CustomObjectsApi;
  agents: KubernetesIpam[];
  close(): Promise<void>;
}

export async function startLab(opts: { requestLog?: (line: string) => void } = {}): Promise<Lab> {
  const server = await startApiServer({ port: 0, podGracefulDeletion: false, ...(opts.requestLog ? { log: opts.requestLog } : {}) });
  const kc = kubeConfigForUrl(server.url, { skipTLSVerify: true });
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const doc of loadAllYaml(fs.readFileSync(CRD_FILE, 'utf8'))) await ext.createCustomResourceDefinition({ body: doc });
  const custom = kc.makeApiClient(CustomObjectsApi);
  await waitFor(async () => {
    await custom.listClusterCustomObject({ ...GROUP, plural: 'ips' });
    await custom.listClusterCustomObject({ ...GROUP, plural: 'ipendpoints' });
    return true;
  }, 'CRDs served');
  const lab: Lab = {
    server,
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    custom,
    agents: [],
    close: async () => {
      await Promise.all(lab.agents.map((a) => a.close()));
      await server.close();
    },
  };
  return lab;
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function createPool(lab: Lab, name: string, spec: Record<string, unknown>): Promise<void> {
  await lab.custom.createClusterCustomObject({ ...GROUP, plural: 'ips', body: { apiVersion: 'sample.fast.io/v1alpha1', kind: 'Ips', metadata: { name }, spec } });
}

export async function createNamespace(lab: Lab, name: string, meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): Promise<void> {
  await lab.core.createNamespace({ body: { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...(meta.labels ?? {}) }, ...(meta.annotations ? { annotations: meta.annotations } : {}) } } });
}

export async function createNode(lab: Lab, name: string, labels: Record<string, string> = {}): Promise<void> {
  await lab.core.createNode({ body: { metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } } } });
}

export interface PodSpec {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: V1OwnerReference[];
}

/** Creates a pod bound to `node`; returns its UID. */
export async function createPod(lab: Lab, namespace: string, name: string, node: string, p: PodSpec = {}): Promise<string> {
  const pod = await lab.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, ...(p.labels ? { labels: p.labels } : {}), ...(p.annotations ? { annotations: p.annotations } : {}), ...(p.ownerReferences ? { ownerReferences: p.ownerReferences } : {}) },
      spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] },
    },
  });
  return pod.metadata!.uid!;
}

export async function deletePod(lab: Lab, namespace: string, name: string): Promise<void> {
  await lab.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
}

export async function newAgent(lab: Lab, node: string, opts: Partial<KubernetesIpamOptions> = {}): Promise<KubernetesIpam> {
  const agent = await KubernetesIpam.create({ kubeConfig: lab.kc, nodeName: node, log: testLog({ node }), cooldownMs: 30_000, syncTimeoutMs: 10_000, ...opts });
  lab.agents.push(agent);
  return agent;
}

export async function endpoints(lab: Lab): Promise<IpEndpointJson[]> {
  const list = (await lab.custom.listClusterCustomObject({ ...GROUP, plural: 'ipendpoints' })) as { items: IpEndpointJson[] };
  return list.items;
}

export async function getPool(lab: Lab, name: string): Promise<{ spec: unknown; status?: Record<string, unknown> & { conditions?: { type: string; status: string; reason: string; message: string }[] } }> {
  return (await lab.custom.getClusterCustomObject({ ...GROUP, plural: 'ips', name })) as never;
}

/** One ADD through the backend: pod namespace/name/uid from the pod object. */
export async function add(agent: KubernetesIpam, ns: string, pod: string, uid: string, containerId = `ctr-${ns}-${pod}-${uid.slice(0, 8)}`, pools?: string[]): Promise<GrantedAddress> {
  const g = await agent.allocate({ containerId, ifName: 'eth0', node: agent.nodeName, pod: { namespace: ns, name: pod, uid }, ...(pools ? { pools } : {}) });
  assert.equal(g.length, 1);
  return g[0]!;
}

/** The CniError an ADD fails with. */
export async function addFails(agent: KubernetesIpam, ns: string, pod: string, uid: string, containerId = `ctr-${ns}-${pod}`): Promise<CniError> {
  try {
    const g = await agent.allocate({ containerId, ifName: 'eth0', node: agent.nodeName, pod: { namespace: ns, name: pod, uid } });
    assert.fail(`ADD of ${ns}/${pod} succeeded with ${JSON.stringify(g)}`);
  } catch (err) {
    if (!(err instanceof CniError)) throw err;
    return err;
  }
}

export async function eventsOf(lab: Lab, ns: string, pod: string): Promise<{ reason?: string; message?: string; type?: string; count?: number }[]> {
  const list = await lab.core.listNamespacedEvent({ namespace: ns });
  return list.items.filter((e) => e.involvedObject?.name === pod && e.involvedObject?.kind === 'Pod');
}

// Registered only when this file is the one run (the other ipam-k8s-* files import it).
const isMain = (process.argv[1] ?? '').endsWith('ipam-k8s-harness.test.ts');

if (isMain) test('harness: the lab API server serves the Fast CRDs, refuses a second IpEndpoint of one address, and has status on Ips', async () => {
  const lab = await startLab();
  try {
    await createPool(lab, 'p', { subnet: '10.1.0.0/24', ips: ['10.1.0.10-10.1.0.20'] });
    const ep = { apiVersion: 'sample.fast.io/v1alpha1', kind: 'IpEndpoint', metadata: { name: '10-1-0-10' }, spec: { pool: 'p', address: '10.1.0.10', node: 'n', podNamespace: 'a', podName: 'b', podUID: 'u', containerID: 'c', interface: 'eth0' } };
    await lab.custom.createClusterCustomObject({ ...GROUP, plural: 'ipendpoints', body: ep });
    await assert.rejects(lab.custom.createClusterCustomObject({ ...GROUP, plural: 'ipendpoints', body: ep }), (err: { code?: number }) => err.code === 409);
    const pool = await getPool(lab, 'p');
    await lab.custom.replaceClusterCustomObjectStatus({ ...GROUP, plural: 'ips', name: 'p', body: { ...pool, status: { totalIPCount: 11 } } });
    assert.equal((await getPool(lab, 'p')).status?.totalIPCount, 11);
  } finally {
    await lab.close();
  }
});
