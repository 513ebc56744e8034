// @kubernetes/client-node against the lab API server: typed calls, and an informer (list +
// watch) whose add/update/delete callbacks fire, including after a 410 that forces a relist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
// Node 20 needs the shims of node-compat.js before @kubernetes/client-node 2.x loads.
import '../../src/k8s/node-compat.js';
import * as k8s from '@kubernetes/client-node';
import { startApiServer, writeKubeconfig } from '../../src/lab/apiserver/index.js';

function pod(name: string): k8s.V1Pod {
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
  let informer: k8s.Informer<k8s.V1Pod> | undefined;
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
    assert.deepEqual((informer as unknown as k8s.ObjectCache<k8s.V1Pod>).list('default').map((p) => p.metadata?.name), ['before']);

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
