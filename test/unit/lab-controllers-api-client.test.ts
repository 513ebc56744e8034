// The lab's keep-alive API clients (src/lab/controllers/api-client.ts) against the real lab API
// server behind a counting TCP proxy: calls share one connection, API errors come back as the
// client's ApiException with their HTTP code, and a request the server resets on a reused idle
// connection is sent again on a new one.
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from '../../src/lab/apiserver/index.js';
import { kubeConfigForUrl } from '../../src/k8s/kubeconfig.js';
import { makeApiClient } from '../../src/lab/controllers/api-client.js';

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
