// Informers that recover from every failure. First ResilientInformer alone against a scripted HTTP
// server (failed lists, a cut watch, 410 Gone and relist, stop() during a list), then the whole
// controller set against the real lab API server: started before the server exists, and with the
// server closed and restarted (same port, same state file) under it, without restarting anything.
import '../../src/k8s/node-compat.js';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppsV1Api, CoreV1Api, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/index.js';
import { kubeConfigForUrl } from '../../src/k8s/kubeconfig.js';
import { ResilientInformer, plainObject } from '../../src/k8s/resilient-informer.js';
import { createLogger } from '../../src/agent/log.js';
import { startControllers, type RunningControllers } from '../../src/lab/controllers/manager.js';
import { TestKubelet, createNode, waitFor } from '../../src/lab/controllers/testing.js';
import { isPodReady, sleep } from '../../src/lab/controllers/util.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// ---- a scripted API server ----------------------------------------------------------------------

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void;

async function fakeServer(handler: Handler): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    handler(req, res, url);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url, requests,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

const podJson = (name: string, rv: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'ns', resourceVersion: rv, uid: `uid-${name}` } });

/** A list at resourceVersion rv of pods given as name or name@objectResourceVersion. */
function sendList(res: http.ServerResponse, rv: string, names: string[]): void {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  const items = names.map((n) => {
    const [name, objRv] = n.split('@');
    return podJson(name!, objRv ?? rv);
  });
  res.end(JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: rv }, items }));
}

function sendStatus(res: http.ServerResponse, code: number, reason: string): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code, message: reason }));
}

function podInformer(url: string): { informer: ResilientInformer<V1Pod>; events: string[] } {
  const kc = kubeConfigForUrl(url);
  const core = kc.makeApiClient(CoreV1Api);
  const informer = new ResilientInformer<V1Pod>({
    kubeConfig: kc, path: '/api/v1/pods', list: () => core.listPodForAllNamespaces(), name: 'pods',
    transform: plainObject, backoff: { initialMs: 20, maxMs: 100 },
  });
  const events: string[] = [];
  informer.on('add', (p) => events.push(`add ${p.metadata?.name}`));
  informer.on('update', (p) => events.push(`update ${p.metadata?.name}`));
  informer.on('delete', (p) => events.push(`delete ${p.metadata?.name}`));
  cleanups.push(() => informer.stop());
  return { informer, events };
}

test('failed lists (HTTP 500) are retried with back-off until the informer syncs', async () => {
  let lists = 0;
  const srv = await fakeServer((_req, res, url) => {
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      return; // a quiet watch
    }
    lists++;
    if (lists <= 2) return sendStatus(res, 500, 'InternalError');
    sendList(res, '10', ['a']);
  });
  cleanups.push(() => srv.close());
  const { informer, events } = podInformer(srv.url);
  const errors: unknown[] = [];
  informer.on('error', (e) => errors.push(e));
  await informer.start();
  await informer.waitForSync();
  assert.equal(lists, 3);
  assert.equal(errors.length, 2);
  assert.equal(informer.restarts, 2);
  assert.deepEqual(events, ['add a']);
  assert.equal(informer.get('a', 'ns')?.metadata?.uid, 'uid-a');
  // Timestamps and objects are plain JSON whether listed or watched.
  assert.equal(Object.getPrototypeOf(informer.list()[0]), Object.prototype);
});

test('a cut watch resumes from the last resourceVersion; 410 Gone relists and reports deletions', async () => {
  let watches = 0;
  let lists = 0;
  const srv = await fakeServer((req, res, url) => {
    if (url.searchParams.get('watch') !== 'true') {
      lists++;
      return lists === 1 ? sendList(res, '10', ['a', 'b']) : sendList(res, '30', ['a@11', 'c@25']);
    }
    watches++;
    if (watches === 1) {
      assert.equal(url.searchParams.get('resourceVersion'), '10');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'MODIFIED', object: podJson('a', '11') })}\n`);
      // then the connection is cut without a clean end
      setTimeout(() => req.socket.destroy(), 30);
      return;
    }
    if (watches === 2) {
      assert.equal(url.searchParams.get('resourceVersion'), '11', 'resumes after the last event seen');
      return sendStatus(res, 410, 'Expired');
    }
    assert.equal(url.searchParams.get('resourceVersion'), '30');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
  });
  cleanups.push(() => srv.close());
  const { informer, events } = podInformer(srv.url);
  await informer.start();
  await waitFor('relisted', () => lists === 2 && watches >= 3);
  assert.deepEqual(events, ['add a', 'add b', 'update a', 'delete b', 'add c']);
  assert.deepEqual(informer.list().map((p) => p.metadata?.name).sort(), ['a', 'c']);
});

test('stop() during a list opens no watch afterwards and reports no error', async () => {
  let release!: () => void;
  const listed = new Promise<void>((r) => { release = r; });
  let listStarted = false;
  const srv = await fakeServer((_req, res, url) => {
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      return;
    }
    listStarted = true;
    void listed.then(() => sendList(res, '5', ['a']));
  });
  cleanups.push(() => srv.close());
  const { informer } = podInformer(srv.url);
  const errors: unknown[] = [];
  informer.on('error', (e) => errors.push(e));
  // start() returns once the first list and watch are done: here the list hangs, so not awaited.
  const started = informer.start();
  await informer.start(); // a second start() while running is a no-op
  await waitFor('list in flight', () => listStarted);
  const syncing = informer.waitForSync();
  await informer.stop();
  await assert.rejects(syncing, /stopped/);
  release();
  await started;
  await sleep(200);
  assert.equal(srv.requests.filter((r) => r.includes('watch=true')).length, 0);
  assert.deepEqual(errors, []);
});

// ---- the controllers against the real lab API server --------------------------------------------

function deployment(name: string, replicas: number): V1Deployment {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'default' },
    spec: {
      replicas, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'main', image: 'nginx' }] } },
    },
  };
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('controllers started before the API server exists sync once it comes up', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const kc = kubeConfigForUrl(url);
  const logs: string[] = [];
  const running = await startControllers({
    kubeConfig: kc, backoff: { initialMs: 50, maxMs: 300 }, log: createLogger('debug', {}, (l) => logs.push(l)),
  });
  cleanups.push(() => running.stop());
  await sleep(400);
  assert.equal(running.informers.hasSynced(), false);
  assert.ok(logs.some((l) => l.includes('informer failed; restarting') && l.includes('ECONNREFUSED')), 'failures are logged');
  const server = await startApiServer({ host: '127.0.0.1', port });
  cleanups.push(() => server.close());
  await running.synced;
  const core = kc.makeApiClient(CoreV1Api);
  await createNode(core, 'node-a');
  await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'late' }, spec: { containers: [{ name: 'c', image: 'i' }] } } });
  await waitFor('late pod bound', async () => (await core.readNamespacedPod({ name: 'late', namespace: 'default' })).spec?.nodeName);
  await running.stop();
  await server.close();
});

test('an API server restart (same port, same state file) under running controllers: they catch up by themselves', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-controllers-recovery-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const stateFile = path.join(dir, 'state.json');
  let server: ApiServer = await startApiServer({ host: '127.0.0.1', port: 0, stateFile, saveDebounceMs: 10 });
  const port = server.port;
  cleanups.push(() => server.close());
  const kc = kubeConfigForUrl(server.url);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  for (const n of ['node-a', 'node-b']) await createNode(core, n);

  const logs: string[] = [];
  const running: RunningControllers = await startControllers({
    kubeConfig: kc, resyncMs: 60_000, backoff: { initialMs: 100, maxMs: 500 },
    log: createLogger('debug', { component: 'test' }, (l) => logs.push(l)),
  });
  cleanups.push(() => running.stop());
  const kubelet = new TestKubelet(kc);
  cleanups.push(() => kubelet.stop());
  await running.synced;
  await kubelet.start();

  const readyPods = async (app: string) => (await core.listNamespacedPod({ namespace: 'default', labelSelector: `app=${app}` })).items
    .filter((p) => !p.metadata?.deletionTimestamp && isPodReady(p)).length;
  const rolledOut = async (name: string, n: number) => {
    const d = await apps.readNamespacedDeployment({ name, namespace: 'default' });
    return d.status?.availableReplicas === n && d.status.updatedReplicas === n && d.status.observedGeneration === d.metadata?.generation &&
      (await readyPods(name)) === n;
  };
  await apps.createNamespacedDeployment({ namespace: 'default', body: deployment('before', 2) });
  await waitFor('before rolled out', () => rolledOut('before', 2));
  const restartsBefore = running.informers.status().reduce((n, i) => n + i.restarts, 0);

  // The API server goes away: every watch breaks, every reconnect is refused.
  await server.close();
  await waitFor('informers noticed', () => running.informers.status().every((i) => i.restarts > 0) ||
    logs.filter((l) => l.includes('informer failed; restarting')).length >= 5);
  await sleep(300);

  // It comes back on the same port with the state it saved (but no watch history: 410 → relist).
  server = await startApiServer({ host: '127.0.0.1', port, stateFile, saveDebounceMs: 10 });
  assert.equal(server.port, port);

  // Work created after the restart is done by the same, never restarted, controllers.
  await apps.createNamespacedDeployment({ namespace: 'default', body: deployment('after', 3) });
  await waitFor('after rolled out', () => rolledOut('after', 3), {
    timeoutMs: 20_000,
    describe: async () => ({ informers: running.informers.status(), pods: (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=after' })).items.map((p) => [p.metadata?.name, p.spec?.nodeName, p.status?.phase]) }),
  });
  // And objects from before the restart are still managed: scale one.
  const d = await apps.readNamespacedDeployment({ name: 'before', namespace: 'default' });
  d.spec!.replicas = 4;
  await apps.replaceNamespacedDeployment({ name: 'before', namespace: 'default', body: d });
  await waitFor('before scaled to 4', () => rolledOut('before', 4));

  const status = running.informers.status();
  assert.ok(status.every((i) => i.synced), JSON.stringify(status));
  assert.ok(status.reduce((n, i) => n + i.restarts, 0) > restartsBefore, 'informers were restarted in place');
  assert.ok(logs.some((l) => l.includes('informer recovered')), 'recovery is logged');
  assert.ok(kubelet.pods.restarts > 0, 'the test kubelet recovered the same way');

  await kubelet.stop();
  await running.stop();
  await server.close();
  if (process.env.LAB_CONTROLLERS_LOG) process.stderr.write(logs.join(''));
});
