// The lab's keep-alive API clients (src/k8s/api-client.ts) against the real lab API
// server behind a counting TCP proxy: calls share one connection, API errors come back as the
// client's ApiException with their HTTP code, and a request the server resets on a reused idle
// connection is sent again on a new one.
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as https from 'node:https';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/index.js';
import { kubeConfigForUrl } from '../../src/k8s/kubeconfig.js';
import { makeApiClient } from '../../src/k8s/api-client.js';

let server: ApiServer;
let proxy: net.Server;
let connections = 0;
/** When set, the next request arriving on an already used connection is answered with a TCP reset. */
let resetNextReuse = false;
const sockets = new Set<net.Socket>();

before(async () => {
  server = await startApiServer({ host: '127.0.0.1', port: 0 });
  proxy = net.createServer((client) => {
    connections++;
    sockets.add(client);
    let requests = 0;
    const upstream = net.connect(server.port, '127.0.0.1');
    client.on('data', (chunk) => {
      if (requests++ > 0 && resetNextReuse) {
        resetNextReuse = false;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on('close', () => { sockets.delete(client); upstream.destroy(); });
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => proxy.close(r));
  await server.close();
});

function client(): CoreV1Api {
  return makeApiClient(kubeConfigForUrl(`http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`), CoreV1Api);
}

const pod = (name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });

test('40 calls (create, read, patch status) share one connection and return typed objects', async () => {
  const core = client();
  const before = connections;
  for (let i = 0; i < 10; i++) {
    const created = await core.createNamespacedPod({ namespace: 'default', body: pod(`ka-${i}`) });
    assert.equal(created.metadata?.name, `ka-${i}`);
    assert.ok(created.metadata?.uid, 'server-assigned uid');
    const read = await core.readNamespacedPod({ name: `ka-${i}`, namespace: 'default' });
    assert.equal(read.metadata?.uid, created.metadata?.uid);
    const patched = await core.patchNamespacedPodStatus(
      { name: `ka-${i}`, namespace: 'default', body: { status: { phase: 'Running', podIP: `10.1.0.${i + 1}` } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.equal(patched.status?.podIP, `10.1.0.${i + 1}`);
    assert.ok(patched.status?.startTime === undefined || patched.status.startTime instanceof Date, 'dates deserialised as by the client');
    const list = await core.listNamespacedPod({ namespace: 'default' });
    assert.ok(list.items.length >= i + 1);
  }
  assert.equal(connections - before, 1, 'one TCP connection for every call');
});

test('API errors are the client\'s ApiException with the HTTP code and the server\'s Status', async () => {
  const core = client();
  await assert.rejects(core.readNamespacedPod({ name: 'no-such-pod', namespace: 'default' }), (err: { code?: number; body?: unknown }) => {
    assert.equal(err.code, 404);
    assert.match(String(err.body), /not found/);
    return true;
  });
  await core.createNamespacedPod({ namespace: 'default', body: pod('ka-dup') });
  await assert.rejects(core.createNamespacedPod({ namespace: 'default', body: pod('ka-dup') }), (err: { code?: number }) => err.code === 409);
});

test('a DELETE carries its body: a precondition on the wrong uid is refused with 409, the right one deletes', async () => {
  const core = client();
  const created = await core.createNamespacedPod({ namespace: 'default', body: pod('ka-del') });
  await assert.rejects(
    core.deleteNamespacedPod({ name: 'ka-del', namespace: 'default', body: { preconditions: { uid: 'not-the-uid' } } }),
    (err: { code?: number }) => err.code === 409,
  );
  await core.deleteNamespacedPod({ name: 'ka-del', namespace: 'default', body: { preconditions: { uid: created.metadata!.uid! } } });
  await assert.rejects(core.readNamespacedPod({ name: 'ka-del', namespace: 'default' }), (err: { code?: number }) => err.code === 404);
});

test('a request reset on a reused connection is sent again on a new one', async () => {
  const core = client();
  await core.readNamespacedPod({ name: 'ka-0', namespace: 'default' }); // a connection in the pool
  const before = connections;
  resetNextReuse = true;
  const read = await core.readNamespacedPod({ name: 'ka-1', namespace: 'default' });
  assert.equal(read.metadata?.name, 'ka-1');
  assert.equal(resetNextReuse, false, 'the reset happened');
  assert.equal(connections - before, 1, 'sent again on a fresh connection');
});

test('https: calls through one KubeConfig share pooled TLS connections (the client alone opens one per call)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  let handshakes = 0;
  const tls = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }));
  });
  tls.on('secureConnection', () => handshakes++);
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  t.after(() => { tls.closeAllConnections(); tls.close(); });
  const url = `https://127.0.0.1:${(tls.address() as net.AddressInfo).port}`;

  const core = makeApiClient(kubeConfigForUrl(url, { skipTLSVerify: true }), CoreV1Api);
  for (let i = 0; i < 20; i++) assert.equal((await core.readNamespace({ name: 'default' })).metadata?.name, 'default');
  // undici's pool may open a second connection while the first is being released; never one per call.
  assert.ok(handshakes <= 2, `${handshakes} TLS handshakes for 20 calls`);

  // The reason this module exists: the unpatched client handshakes again for every call.
  handshakes = 0;
  const plain = kubeConfigForUrl(url, { skipTLSVerify: true }).makeApiClient(CoreV1Api);
  for (let i = 0; i < 5; i++) await plain.readNamespace({ name: 'default' });
  if (handshakes < 5) t.diagnostic('client-node now reuses its connections by itself: src/k8s/api-client.ts reuseDispatchers can go');
});
