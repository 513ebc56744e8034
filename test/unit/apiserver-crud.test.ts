// Object lifecycle semantics of the lab API server over HTTP: defaulting, Status error shapes,
// optimistic concurrency, status subresources, finalizers, graceful deletion, owner garbage
// collection, selectors, namespaces, binding, scale and persistence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/lab/apiserver/index.js';
import { RawClient } from '../../src/lab/apiserver/raw-client.js';

const PODS = '/api/v1/namespaces/default/pods';
const DEPLOYS = '/apis/apps/v1/namespaces/default/deployments';
const RSS = '/apis/apps/v1/namespaces/default/replicasets';

function pod(name: string, extra: { labels?: Record<string, string>; nodeName?: string; finalizers?: string[]; owner?: object } = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: extra.labels ?? {}, finalizers: extra.finalizers, ownerReferences: extra.owner ? [extra.owner] : undefined },
    spec: { nodeName: extra.nodeName, containers: [{ name: 'c', image: 'busybox:1.36' }] },
  };
}

function deployment(name: string, replicas = 1): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'main', image: 'busybox' }] } },
    },
  };
}

function ownerRef(kind: string, apiVersion: string, obj: { metadata: { name: string; uid: string } }, block = true): object {
  return { apiVersion, kind, name: obj.metadata.name, uid: obj.metadata.uid, controller: true, blockOwnerDeletion: block };
}

async function withServer(options: ApiServerOptions, body: (server: ApiServer, client: RawClient) => Promise<void>): Promise<void> {
  const server = await startApiServer({ port: 0, ...options });
  try {
    await body(server, new RawClient(server.url));
  } finally {
    await server.close();
  }
}

/** Polls until `check` passes (controllers like the garbage collector act asynchronously). */
async function eventually(check: () => Promise<void>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

test('create fills server-owned metadata and defaults; pods start Pending', async () => {
  await withServer({}, async (_server, client) => {
    const res = await client.post(PODS, pod('p'));
    assert.equal(res.status, 201);
    const meta = res.body.metadata;
    assert.match(meta.uid, /^[0-9a-f-]{36}$/);
    assert.match(meta.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(meta.resourceVersion, /^\d+$/);
    assert.equal(meta.namespace, 'default');
    assert.equal(meta.generation, undefined);
    assert.equal(res.body.status.phase, 'Pending');
    assert.equal(res.body.spec.restartPolicy, 'Always');
    assert.equal(res.body.spec.containers[0].imagePullPolicy, 'IfNotPresent');

    const generated = await client.post(PODS, { ...pod(''), metadata: { generateName: 'web-' } });
    assert.match(generated.body.metadata.name, /^web-[a-z0-9]{5}$/);

    const d = await client.post(DEPLOYS, deployment('d'));
    assert.equal(d.body.metadata.generation, 1);
    assert.deepEqual(d.body.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } });

    const ns = await client.get('/api/v1/namespaces');
    assert.deepEqual(ns.body.items.map((n: { metadata: { name: string } }) => n.metadata.name), ['default', 'kube-node-lease', 'kube-public', 'kube-system']);
  });
});

test('errors are metav1.Status objects shaped as kube-apiserver shapes them', async () => {
  await withServer({}, async (_server, client) => {
    const missing = await client.get(`${PODS}/nope`);
    assert.deepEqual(missing.body, {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: 'pods "nope" not found', reason: 'NotFound', details: { name: 'nope', kind: 'pods' }, code: 404,
    });
    const huge = await client.post(PODS, { ...pod('huge'), data: 'x'.repeat(3.5 * 1024 * 1024) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.reason, 'RequestEntityTooLarge');
    const missingDeploy = await client.get(`${DEPLOYS}/nope`);
    assert.equal(missingDeploy.body.message, 'deployments.apps "nope" not found');
    assert.deepEqual(missingDeploy.body.details, { name: 'nope', group: 'apps', kind: 'deployments' });

    const noNamespace = await client.post('/api/v1/namespaces/ghost/pods', pod('p'));
    assert.equal(noNamespace.status, 404);
    assert.equal(noNamespace.body.message, 'namespaces "ghost" not found');

    await client.post(PODS, pod('dup'));
    const dup = await client.post(PODS, pod('dup'));
    assert.deepEqual(dup.body, {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: 'pods "dup" already exists', reason: 'AlreadyExists', details: { name: 'dup', kind: 'pods' }, code: 409,
    });

    const bad = deployment('bad') as { spec: { selector: object } };
    bad.spec.selector = { matchLabels: { app: 'other' } };
    const invalid = await client.post(DEPLOYS, bad);
    assert.equal(invalid.status, 422);
    assert.equal(invalid.body.reason, 'Invalid');
    assert.equal(invalid.body.message, 'Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: {"app":"bad"}: `selector` does not match template `labels`');
    assert.deepEqual(invalid.body.details.causes[0].field, 'spec.template.metadata.labels');

    const noContainers = await client.post(PODS, { metadata: { name: 'empty' }, spec: {} });
    assert.equal(noContainers.body.message, 'Pod "empty" is invalid: spec.containers: Required value');

    const unknown = await client.get('/apis/example.com/v1/widgets');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.message, 'the server could not find the requested resource');
  });
});

test('an update with a stale resourceVersion is a 409 Conflict', async () => {
  await withServer({}, async (_server, client) => {
    const created = (await client.post(PODS, pod('p'))).body;
    const first = { ...created, metadata: { ...created.metadata, labels: { v: '1' } } };
    const ok = await client.put(`${PODS}/p`, first);
    assert.equal(ok.status, 200);
    assert.notEqual(ok.body.metadata.resourceVersion, created.metadata.resourceVersion);

    const stale = { ...created, metadata: { ...created.metadata, labels: { v: '2' } } };
    const res = await client.put(`${PODS}/p`, stale);
    assert.deepEqual(res.body, {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: 'Operation cannot be fulfilled on pods "p": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict', details: { name: 'p', kind: 'pods' }, code: 409,
    });
    // A patch carrying a stale resourceVersion is a precondition failure too.
    const patch = await client.patch(`${PODS}/p`, { metadata: { resourceVersion: created.metadata.resourceVersion, labels: { v: '3' } } });
    assert.equal(patch.status, 409);
    // An update that changes nothing writes nothing.
    const same = await client.put(`${PODS}/p`, ok.body);
    assert.equal(same.body.metadata.resourceVersion, ok.body.metadata.resourceVersion);
  });
});

test('status subresource: main updates keep status, status updates keep spec; generation follows spec', async () => {
  await withServer({}, async (_server, client) => {
    const d = (await client.post(DEPLOYS, deployment('web'))).body;
    const withStatus = { ...d, status: { replicas: 5 } };
    const main = await client.put(`${DEPLOYS}/web`, withStatus);
    assert.deepEqual(main.body.status, {});
    assert.equal(main.body.metadata.generation, 1);

    const status = await client.put(`${DEPLOYS}/web/status`, { ...main.body, spec: { ...main.body.spec, replicas: 9 }, status: { replicas: 1, readyReplicas: 1 } });
    assert.equal(status.status, 200);
    assert.equal(status.body.spec.replicas, 1);
    assert.deepEqual(status.body.status, { replicas: 1, readyReplicas: 1 });
    assert.equal(status.body.metadata.generation, 1);

    const labelled = await client.patch(`${DEPLOYS}/web`, { metadata: { labels: { a: 'b' } } });
    assert.equal(labelled.body.metadata.generation, 1);
    const scaled = await client.patch(`${DEPLOYS}/web`, { spec: { replicas: 3 } });
    assert.equal(scaled.body.metadata.generation, 2);

    const podStatus = await client.post(PODS, pod('p'));
    const patched = await client.patch(`${PODS}/p/status`, { status: { phase: 'Running', podIP: '10.0.0.9' } });
    assert.equal(patched.body.status.phase, 'Running');
    assert.equal(patched.body.status.podIP, '10.0.0.9');
    assert.equal(patched.body.status.qosClass, podStatus.body.status.qosClass);
  });
});

test('finalizers: DELETE sets deletionTimestamp and the object stays until they are removed', async () => {
  await withServer({}, async (server, client) => {
    await client.post(PODS, pod('held', { finalizers: ['example.com/hold'] }));
    const watch = client.watch(`${PODS}?resourceVersion=${server.store.resourceVersion}`);
    try {
      const del = await client.delete(`${PODS}/held`);
      assert.equal(del.status, 200);
      assert.ok(del.body.metadata.deletionTimestamp);
      assert.equal(del.body.metadata.deletionGracePeriodSeconds, 0);
      const still = await client.get(`${PODS}/held`);
      assert.equal(still.status, 200);
      assert.deepEqual(still.body.metadata.finalizers, ['example.com/hold']);

      const added = await client.patch(`${PODS}/held`, { metadata: { finalizers: ['example.com/hold', 'example.com/more'] } });
      assert.equal(added.status, 422, 'no new finalizers on an object being deleted');

      const released = await client.patch(`${PODS}/held`, [{ op: 'remove', path: '/metadata/finalizers' }], 'json');
      assert.equal(released.status, 200);
      assert.equal((await client.get(`${PODS}/held`)).status, 404);
      const events = await watch.until((es) => es.length >= 2);
      assert.deepEqual(events.map((e) => e.type), ['MODIFIED', 'DELETED']);
    } finally {
      watch.close();
    }
  });
});

test('pods on a node are deleted gracefully; grace period 0 removes them', async () => {
  await withServer({}, async (_server, client) => {
    await client.post('/api/v1/nodes', { metadata: { name: 'node-a' } });
    await client.post(PODS, pod('running', { nodeName: 'node-a' }));
    const del = await client.delete(`${PODS}/running`);
    assert.equal(del.body.metadata.deletionGracePeriodSeconds, 30);
    assert.equal((await client.get(`${PODS}/running`)).status, 200);
    const force = await client.delete(`${PODS}/running`, { gracePeriodSeconds: 0 });
    assert.equal(force.status, 200);
    assert.equal((await client.get(`${PODS}/running`)).status, 404);

    // A terminating pod whose node does not exist is collected (no kubelet will confirm it).
    await client.post(PODS, pod('orphaned', { nodeName: 'node-gone' }));
    await client.delete(`${PODS}/orphaned`);
    await eventually(async () => assert.equal((await client.get(`${PODS}/orphaned`)).status, 404));
  });
});

test('owner garbage collection: background, foreground and orphan propagation', async () => {
  await withServer({}, async (_server, client) => {
    // Background: the Deployment goes at once, then its ReplicaSet, then the ReplicaSet's pods.
    const d = (await client.post(DEPLOYS, deployment('web'))).body;
    const rs = (await client.post(RSS, { ...deployment('web-abc'), kind: 'ReplicaSet', metadata: { name: 'web-abc', ownerReferences: [ownerRef('Deployment', 'apps/v1', d)] } })).body;
    for (const name of ['web-abc-1', 'web-abc-2']) await client.post(PODS, pod(name, { owner: ownerRef('ReplicaSet', 'apps/v1', rs) }));
    await client.post(PODS, pod('bystander'));
    const del = await client.delete(`${DEPLOYS}/web`, { propagationPolicy: 'Background' });
    assert.equal(del.body.kind, 'Status');
    assert.equal(del.body.status, 'Success');
    await eventually(async () => {
      assert.equal((await client.get(`${RSS}/web-abc`)).status, 404);
      const pods = (await client.get(PODS)).body.items.map((p: { metadata: { name: string } }) => p.metadata.name);
      assert.deepEqual(pods, ['bystander']);
    });

    // Foreground: the owner waits, with its finalizer, until its blocking dependents are gone.
    const d2 = (await client.post(DEPLOYS, deployment('api'))).body;
    await client.post(RSS, { ...deployment('api-1'), kind: 'ReplicaSet', metadata: { name: 'api-1', finalizers: ['example.com/slow'], ownerReferences: [ownerRef('Deployment', 'apps/v1', d2)] } });
    const fg = await client.delete(`${DEPLOYS}/api`, { propagationPolicy: 'Foreground' });
    assert.deepEqual(fg.body.metadata.finalizers, ['foregroundDeletion']);
    await eventually(async () => assert.ok((await client.get(`${RSS}/api-1`)).body.metadata.deletionTimestamp));
    assert.equal((await client.get(`${DEPLOYS}/api`)).status, 200, 'owner waits for the blocking dependent');
    await client.patch(`${RSS}/api-1`, { metadata: { finalizers: null } });
    await eventually(async () => assert.equal((await client.get(`${DEPLOYS}/api`)).status, 404));

    // Orphan: dependents survive, released from the owner.
    const d3 = (await client.post(DEPLOYS, deployment('db'))).body;
    await client.post(RSS, { ...deployment('db-1'), kind: 'ReplicaSet', metadata: { name: 'db-1', ownerReferences: [ownerRef('Deployment', 'apps/v1', d3)] } });
    await client.delete(`${DEPLOYS}/db`, { propagationPolicy: 'Orphan' });
    await eventually(async () => assert.equal((await client.get(`${DEPLOYS}/db`)).status, 404));
    const orphan = await client.get(`${RSS}/db-1`);
    assert.equal(orphan.status, 200);
    assert.equal(orphan.body.metadata.ownerReferences, undefined);
  });
});

test('garbage collection of dependents created with an owner that does not resolve: missing, or in another namespace', async () => {
  await withServer({}, async (_server, client) => {
    await client.post('/api/v1/namespaces', { metadata: { name: 'other' } });
    const rs = (await client.post(RSS, { ...deployment('owner-rs'), kind: 'ReplicaSet' })).body;
    const elsewhere = (await client.post('/apis/apps/v1/namespaces/other/replicasets', { ...deployment('far-rs'), kind: 'ReplicaSet' })).body;
    await client.post(PODS, pod('owned', { owner: ownerRef('ReplicaSet', 'apps/v1', rs) }));
    await client.post(PODS, pod('dangling', { owner: ownerRef('ReplicaSet', 'apps/v1', { metadata: { name: 'gone', uid: 'no-such-uid' } }) }));
    await client.post(PODS, pod('cross-namespace', { owner: ownerRef('ReplicaSet', 'apps/v1', elsewhere) }));
    await eventually(async () => {
      const pods = (await client.get(PODS)).body.items.map((p: { metadata: { name: string } }) => p.metadata.name);
      assert.deepEqual(pods, ['owned']);
    });
    // Deleting the owner still collects the pod that was created with a resolving owner.
    await client.delete(`${RSS}/owner-rs`, { propagationPolicy: 'Background' });
    await eventually(async () => assert.deepEqual((await client.get(PODS)).body.items, []));
  });
});

test('label and field selectors, including spec.nodeName and status.phase', async () => {
  await withServer({}, async (_server, client) => {
    await client.post('/api/v1/namespaces', { metadata: { name: 'other' } });
    await client.post(PODS, pod('a', { labels: { app: 'web', tier: 'front' }, nodeName: 'n1' }));
    await client.post(PODS, pod('b', { labels: { app: 'web' }, nodeName: 'n2' }));
    await client.post(PODS, pod('c', { labels: { app: 'db' } }));
    await client.post('/api/v1/namespaces/other/pods', pod('d', { labels: { app: 'web' }, nodeName: 'n1' }));
    await client.patch(`${PODS}/b/status`, { status: { phase: 'Running' } });

    const names = async (query: string, base = PODS): Promise<string[]> => {
      const res = await client.get(`${base}?${query}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.items.map((p: { metadata: { name: string } }) => p.metadata.name);
    };
    const sel = (s: string): string => `labelSelector=${encodeURIComponent(s)}`;
    const fsel = (s: string): string => `fieldSelector=${encodeURIComponent(s)}`;
    assert.deepEqual(await names(sel('app=web')), ['a', 'b']);
    assert.deepEqual(await names(sel('app==web')), ['a', 'b']);
    assert.deepEqual(await names(sel('app!=web')), ['c']);
    assert.deepEqual(await names(sel('app in (db, web),tier notin (front)')), ['b', 'c']);
    assert.deepEqual(await names(sel('tier')), ['a']);
    assert.deepEqual(await names(sel('!tier')), ['b', 'c']);
    assert.deepEqual(await names(fsel('spec.nodeName=n1')), ['a']);
    assert.deepEqual(await names(fsel('spec.nodeName=n1'), '/api/v1/pods'), ['a', 'd']);
    assert.deepEqual(await names(fsel('spec.nodeName=')), ['c']);
    assert.deepEqual(await names(fsel('status.phase=Running')), ['b']);
    assert.deepEqual(await names(fsel('status.phase!=Running,metadata.name!=a')), ['c']);
    assert.deepEqual(await names(fsel('metadata.namespace=other'), '/api/v1/pods'), ['d']);
    assert.deepEqual(await names(`${sel('app=web')}&${fsel('spec.nodeName=n2')}`), ['b']);

    const unsupported = await client.get(`${PODS}?${fsel('spec.foo=bar')}`);
    assert.equal(unsupported.status, 400);
    assert.equal(unsupported.body.message, 'field label not supported: spec.foo');
    const badLabel = await client.get(`${PODS}?${sel('a in (b')}`);
    assert.equal(badLabel.status, 400);

    await client.post('/api/v1/namespaces/default/events', {
      metadata: { name: 'ev1' }, involvedObject: { kind: 'Pod', name: 'a', namespace: 'default' }, reason: 'Started', message: 'hi', type: 'Normal',
    });
    assert.deepEqual(await names(fsel('involvedObject.kind=Pod,involvedObject.name=a'), '/api/v1/namespaces/default/events'), ['ev1']);
    assert.deepEqual(await names(fsel('involvedObject.name=b'), '/api/v1/namespaces/default/events'), []);
  });
});

test('deleting a namespace terminates it, empties it, then removes it', async () => {
  await withServer({}, async (_server, client) => {
    await client.post('/api/v1/namespaces', { metadata: { name: 'tmp' } });
    await client.post('/api/v1/namespaces/tmp/pods', pod('p', { finalizers: ['example.com/hold'] }));
    const del = await client.delete('/api/v1/namespaces/tmp');
    assert.equal(del.body.status.phase, 'Terminating');
    const refused = await client.post('/api/v1/namespaces/tmp/pods', pod('late'));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.reason, 'Forbidden');
    assert.match(refused.body.message, /unable to create new content in namespace tmp because it is being terminated/);
    await eventually(async () => assert.ok((await client.get('/api/v1/namespaces/tmp/pods/p')).body.metadata.deletionTimestamp));
    assert.equal((await client.get('/api/v1/namespaces/tmp')).status, 200, 'waits for the finalizer of its pod');
    await client.patch('/api/v1/namespaces/tmp/pods/p', { metadata: { finalizers: null } });
    await eventually(async () => assert.equal((await client.get('/api/v1/namespaces/tmp')).status, 404));
  });
});

test('pods/binding assigns a node once; scale reads and writes replicas', async () => {
  await withServer({}, async (_server, client) => {
    await client.post(PODS, pod('p'));
    const bind = await client.post(`${PODS}/p/binding`, { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p' }, target: { kind: 'Node', name: 'n1' } });
    assert.equal(bind.status, 201);
    assert.equal(bind.body.status, 'Success');
    const bound = (await client.get(`${PODS}/p`)).body;
    assert.equal(bound.spec.nodeName, 'n1');
    assert.equal(bound.status.conditions.find((c: { type: string }) => c.type === 'PodScheduled').status, 'True');
    const again = await client.post(`${PODS}/p/binding`, { metadata: { name: 'p' }, target: { name: 'n2' } });
    assert.equal(again.status, 409);
    assert.equal(again.body.message, 'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"');
    const respec = await client.patch(`${PODS}/p`, { spec: { nodeName: 'n3' } });
    assert.equal(respec.status, 422, 'pod spec is immutable apart from images and a few fields');

    await client.post(DEPLOYS, deployment('web', 2));
    const scale = await client.get(`${DEPLOYS}/web/scale`);
    assert.equal(scale.body.kind, 'Scale');
    assert.equal(scale.body.apiVersion, 'autoscaling/v1');
    assert.equal(scale.body.spec.replicas, 2);
    assert.equal(scale.body.status.selector, 'app=web');
    const patched = await client.patch(`${DEPLOYS}/web/scale`, { spec: { replicas: 5 } });
    assert.equal(patched.body.spec.replicas, 5);
    assert.equal((await client.get(`${DEPLOYS}/web`)).body.spec.replicas, 5);
  });
});

test('deletecollection deletes what the selectors select and returns it', async () => {
  await withServer({}, async (_server, client) => {
    for (const [name, app] of [['a', 'web'], ['b', 'web'], ['c', 'db']]) await client.post(PODS, pod(name, { labels: { app } }));
    const res = await client.delete(`${PODS}?labelSelector=app%3Dweb`);
    assert.equal(res.status, 200);
    assert.equal(res.body.kind, 'PodList');
    assert.deepEqual(res.body.items.map((p: { metadata: { name: string } }) => p.metadata.name), ['a', 'b']);
    assert.deepEqual((await client.get(PODS)).body.items.map((p: { metadata: { name: string } }) => p.metadata.name), ['c']);
  });
});

test('dryRun writes nothing; services get cluster IPs; events are served in both API groups', async () => {
  await withServer({}, async (_server, client) => {
    const dry = await client.request('POST', `${PODS}?dryRun=All`, { body: pod('dry') });
    assert.equal(dry.status, 201);
    assert.equal((await client.get(`${PODS}/dry`)).status, 404);

    const svc = await client.post('/api/v1/namespaces/default/services', { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } });
    assert.match(svc.body.spec.clusterIP, /^10\.(9[6-9]|1[01]\d)\.\d+\.\d+$/);
    assert.equal(svc.body.spec.ports[0].targetPort, 80);
    const svc2 = await client.post('/api/v1/namespaces/default/services', { metadata: { name: 'api' }, spec: { ports: [{ port: 80 }] } });
    assert.notEqual(svc2.body.spec.clusterIP, svc.body.spec.clusterIP);

    await client.post('/api/v1/namespaces/default/events', {
      metadata: { name: 'e1' }, involvedObject: { kind: 'Pod', name: 'x' }, reason: 'Failed', message: 'CNI ADD failed', type: 'Warning', count: 1,
    });
    const v1 = await client.get('/apis/events.k8s.io/v1/namespaces/default/events/e1');
    assert.equal(v1.body.apiVersion, 'events.k8s.io/v1');
    assert.equal(v1.body.note, 'CNI ADD failed');
    assert.equal(v1.body.regarding.name, 'x');
    assert.equal(v1.body.deprecatedCount, 1);
  });
});

test('connections accepted by another listening socket are served like the server\'s own (the lab\'s underlay listener)', async () => {
  await withServer({}, async (server) => {
    const listener = net.createServer((socket) => server.serveConnection(socket));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      const other = new RawClient(`http://127.0.0.1:${(listener.address() as net.AddressInfo).port}`);
      const watch = other.watch(`${PODS}?resourceVersion=${server.store.resourceVersion}`);
      assert.equal((await other.post(PODS, pod('via-other'))).status, 201);
      const [event] = await watch.until((es) => es.length >= 1);
      assert.equal(event.type, 'ADDED');
      assert.equal(event.object.metadata.name, 'via-other');
      watch.close();
    } finally {
      listener.close();
    }
  });
});

test('state survives a restart through the state file; older watches then get 410', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apiserver-state-'));
  const stateFile = path.join(dir, 'state.json');
  try {
    let rv = '';
    await withServer({ stateFile, saveDebounceMs: 10 }, async (_server, client) => {
      await client.post(PODS, pod('kept', { labels: { a: 'b' } }));
      await client.post('/api/v1/namespaces', { metadata: { name: 'team' } });
      rv = (await client.get(PODS)).body.metadata.resourceVersion;
    });
    await withServer({ stateFile }, async (_server, client) => {
      const kept = await client.get(`${PODS}/kept`);
      assert.equal(kept.status, 200);
      assert.deepEqual(kept.body.metadata.labels, { a: 'b' });
      assert.equal((await client.get('/api/v1/namespaces/team')).status, 200);
      const created = await client.post(PODS, pod('new'));
      assert.ok(Number(created.body.metadata.resourceVersion) > Number(rv));
      const watch = client.watch(`${PODS}?resourceVersion=1`);
      await watch.done;
      assert.equal(watch.events[0].type, 'ERROR');
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
