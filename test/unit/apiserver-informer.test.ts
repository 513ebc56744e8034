// @kubernetes/client-node against the lab API server: typed calls, and an informer (list +
// watch) whose add/update/delete callbacks fire, including after a 410 that forces a relist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as workerThreads from 'node:worker_threads';
import * as zlib from 'node:zlib';
import type * as K8s from '@kubernetes/client-node';
import { startApiServer, writeKubeconfig } from '../../src/lab/apiserver/index.js';

// @kubernetes/client-node 2.x brings undici 8, which needs Node >= 22.19: on Node 20 it fails to
// load (no zlib zstd, no worker_threads.markAsUncloneable) and to fetch (no Promise.withResolvers).
// Until the project's dependencies settle that, the missing functions are supplied (zstd
// responses are never asked for) before the client is loaded.
const zlibModule = zlib as unknown as { default: Record<string, unknown> };
if (typeof zlibModule.default.createZstdDecompress !== 'function') {
  zlibModule.default.createZstdDecompress = () => { throw new Error('zstd is not available on this Node.js'); };
}
const workerThreadsModule = workerThreads as unknown as { default: Record<string, unknown> };
if (typeof workerThreadsModule.default.markAsUncloneable !== 'function') workerThreadsModule.default.markAsUncloneable = () => {};
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  (Promise as unknown as { withResolvers: () => unknown }).withResolvers = () => {
    let resolve: unknown;
    let reject: unknown;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
const k8s: typeof K8s = await import('@kubernetes/client-node');

function pod(name: string): K8s.V1Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('client-node: typed calls and an informer on pods, recovering from 410 by relisting', async () => {
  const server = await startApiServer({ port: 0 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apiserver-informer-'));
  let informer: K8s.Informer<K8s.V1Pod> | undefined;
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(writeKubeconfig(path.join(dir, 'kubeconfig'), server.url));
    const core = kc.makeApiClient(k8s.CoreV1Api);

    const ns = await core.readNamespace({ name: 'default' });
    assert.equal(ns.status?.phase, 'Active');
    await core.createNamespacedPod({ namespace: 'default', body: pod('before') });

    const log: string[] = [];
    informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/pods', () => core.listNamespacedPod({ namespace: 'default' }));
    informer.on('add', (p) => log.push(`add ${p.metadata?.name}`));
    informer.on('update', (p) => log.push(`update ${p.metadata?.name} ${p.metadata?.labels?.step ?? ''}`));
    informer.on('delete', (p) => log.push(`delete ${p.metadata?.name}`));
    const errors: unknown[] = [];
    informer.on('error', (err) => errors.push(err));
    await informer.start();
    await waitFor(() => log.includes('add before'), 'the initial list');

    await core.createNamespacedPod({ namespace: 'default', body: pod('during') });
    await core.patchNamespacedPod({ namespace: 'default', name: 'before', body: [{ op: 'add', path: '/metadata/labels', value: { step: 'two' } }] });
    await core.deleteNamespacedPod({ namespace: 'default', name: 'during' });
    await waitFor(() => log.includes('delete during'), 'watch events');
    assert.deepEqual(log, ['add before', 'add during', 'update before two', 'delete during']);
    assert.deepEqual((informer as unknown as K8s.ObjectCache<K8s.V1Pod>).list('default').map((p) => p.metadata?.name), ['before']);

    // The server drops the watch and compacts its history while a pod appears: the informer's
    // re-watch gets 410 Expired, so it relists and catches up.
    server.dropWatches();
    server.store.create({ group: '', version: 'v1', resource: 'pods' }, pod('while-away'), { namespace: 'default' });
    server.store.compact();
    await waitFor(() => log.includes('add while-away'), 'the relist after 410');
    await core.createNamespacedPod({ namespace: 'default', body: pod('after') });
    await waitFor(() => log.includes('add after'), 'watching again after the relist');
    assert.deepEqual(errors, []);
  } finally {
    await informer?.stop();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
