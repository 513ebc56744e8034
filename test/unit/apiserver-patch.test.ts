// Patch formats: strategic merge (merge keys and directives, as kubectl sends them), JSON merge
// patch and JSON patch, as pure functions and through the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApiServer } from '../../src/lab/apiserver/index.js';
import { patchMetaFor } from '../../src/lab/apiserver/patch-meta.js';
import { applyJsonPatch, applyMergePatch } from '../../src/lab/apiserver/patch.js';
import { RawClient } from '../../src/lab/apiserver/raw-client.js';
import { applyStrategicMergePatch } from '../../src/lab/apiserver/strategic-merge.js';
import { ApiError } from '../../src/lab/apiserver/errors.js';

const deploymentMeta = patchMetaFor('Deployment');

function deploymentWith(containers: object[], extra: object = {}): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', finalizers: ['a', 'b'] },
    spec: { template: { spec: { containers, volumes: [{ name: 'data', emptyDir: {} }], ...extra } } },
  };
}

const containersOf = (obj: unknown): unknown =>
  ((obj as { spec: { template: { spec: { containers: unknown } } } }).spec.template.spec.containers);

test('strategic merge: containers merge by name, env by name, ports by containerPort', () => {
  const original = deploymentWith([
    { name: 'app', image: 'app:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], ports: [{ containerPort: 80, name: 'http' }] },
    { name: 'sidecar', image: 'proxy:1' },
  ]);
  const patched = applyStrategicMergePatch(original, {
    spec: { template: { spec: { containers: [
      { name: 'app', image: 'app:2', env: [{ name: 'B', value: 'two' }, { name: 'C', value: '3' }], ports: [{ containerPort: 80, protocol: 'TCP' }] },
      { name: 'new', image: 'new:1' },
    ] } } },
  }, deploymentMeta);
  assert.deepEqual(containersOf(patched), [
    { name: 'app', image: 'app:2', env: [{ name: 'A', value: '1' }, { name: 'B', value: 'two' }, { name: 'C', value: '3' }], ports: [{ containerPort: 80, name: 'http', protocol: 'TCP' }] },
    { name: 'sidecar', image: 'proxy:1' },
    { name: 'new', image: 'new:1' },
  ]);
  assert.deepEqual(containersOf(original), containersOf(deploymentWith([
    { name: 'app', image: 'app:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], ports: [{ containerPort: 80, name: 'http' }] },
    { name: 'sidecar', image: 'proxy:1' },
  ])), 'the original is not modified');
});

test('strategic merge directives: $patch delete/replace, $setElementOrder, $deleteFromPrimitiveList, $retainKeys, null', () => {
  const original = deploymentWith([{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }, { name: 'c', image: 'c' }]);
  const deleted = applyStrategicMergePatch(original, { spec: { template: { spec: { containers: [{ name: 'b', $patch: 'delete' }] } } } }, deploymentMeta);
  assert.deepEqual(containersOf(deleted), [{ name: 'a', image: 'a' }, { name: 'c', image: 'c' }]);

  const replaced = applyStrategicMergePatch(original, { spec: { template: { spec: { containers: [{ name: 'z', image: 'z' }, { $patch: 'replace' }] } } } }, deploymentMeta);
  assert.deepEqual(containersOf(replaced), [{ name: 'z', image: 'z' }]);

  const ordered = applyStrategicMergePatch(original, { spec: { template: { spec: {
    '$setElementOrder/containers': [{ name: 'c' }, { name: 'a' }, { name: 'b' }],
    containers: [{ name: 'a', image: 'a2' }],
  } } } }, deploymentMeta);
  assert.deepEqual(containersOf(ordered), [{ name: 'c', image: 'c' }, { name: 'a', image: 'a2' }, { name: 'b', image: 'b' }]);

  const finalizers = applyStrategicMergePatch(original, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'], finalizers: ['c'] } }, deploymentMeta);
  assert.deepEqual((finalizers.metadata as { finalizers: string[] }).finalizers, ['b', 'c']);

  const strategy = applyStrategicMergePatch(
    { spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } } },
    { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } },
    deploymentMeta,
  );
  assert.deepEqual(strategy, { spec: { strategy: { type: 'Recreate' } } });

  const removed = applyStrategicMergePatch(original, { spec: { template: { spec: { volumes: null } } } }, deploymentMeta);
  assert.equal((removed.spec as { template: { spec: Record<string, unknown> } }).template.spec.volumes, undefined);

  // Lists without a merge strategy (tolerations, command) are replaced.
  const tol = applyStrategicMergePatch(deploymentWith([{ name: 'a', image: 'a', command: ['x', 'y'] }], { tolerations: [{ key: 'k1' }] }),
    { spec: { template: { spec: { tolerations: [{ key: 'k2' }], containers: [{ name: 'a', command: ['z'] }] } } } }, deploymentMeta);
  assert.deepEqual((tol.spec as { template: { spec: { tolerations: unknown } } }).template.spec.tolerations, [{ key: 'k2' }]);
  assert.deepEqual(containersOf(tol), [{ name: 'a', image: 'a', command: ['z'] }]);

  assert.throws(() => applyStrategicMergePatch(original, { spec: { template: { spec: { containers: [{ image: 'nameless' }] } } } }, deploymentMeta),
    (err: unknown) => err instanceof ApiError && err.code === 400);
});

test('JSON merge patch (RFC 7386)', () => {
  assert.deepEqual(applyMergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1, 2] }, { b: { c: null, x: 1 }, e: [3], f: 'new' }),
    { a: 1, b: { d: 3, x: 1 }, e: [3], f: 'new' });
  assert.deepEqual(applyMergePatch({ a: 1 }, { a: { b: 2 } }), { a: { b: 2 } });
});

test('JSON patch (RFC 6902): add, remove, replace, move, copy, test', () => {
  const doc = { metadata: { labels: { a: '1' } }, list: [1, 2, 3] };
  const out = applyJsonPatch(doc, [
    { op: 'add', path: '/metadata/labels/b~1c', value: '2' },
    { op: 'remove', path: '/list/0' },
    { op: 'add', path: '/list/-', value: 4 },
    { op: 'replace', path: '/metadata/labels/a', value: 'one' },
    { op: 'copy', from: '/list', path: '/copy' },
    { op: 'move', from: '/copy', path: '/moved' },
    { op: 'test', path: '/list/0', value: 2 },
  ]);
  assert.deepEqual(out, { metadata: { labels: { a: 'one', 'b/c': '2' } }, list: [2, 3, 4], moved: [2, 3, 4] });
  assert.deepEqual(doc.list, [1, 2, 3], 'the input is not modified');
  assert.throws(() => applyJsonPatch(doc, [{ op: 'test', path: '/list/0', value: 9 }]), (e: unknown) => e instanceof ApiError && e.code === 422);
  assert.throws(() => applyJsonPatch(doc, [{ op: 'replace', path: '/missing/x', value: 1 }]), (e: unknown) => e instanceof ApiError && e.code === 422);
});

test('patches through the server: strategic merge of a Deployment, JSON patch, merge patch, 415 for custom resources', async () => {
  const server = await startApiServer({ port: 0 });
  try {
    const client = new RawClient(server.url);
    const path = '/apis/apps/v1/namespaces/default/deployments';
    await client.post(path, {
      metadata: { name: 'web', labels: { app: 'web' } },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [
            { name: 'app', image: 'app:1', env: [{ name: 'MODE', value: 'a' }] },
            { name: 'log', image: 'log:1' },
          ] },
        },
      },
    });
    const smp = await client.patch(`${path}/web`, { spec: { template: { spec: { containers: [{ name: 'app', image: 'app:2' }] } } } }, 'strategic');
    assert.equal(smp.status, 200);
    const containers = smp.body.spec.template.spec.containers;
    assert.deepEqual(containers.map((c: { name: string; image: string }) => `${c.name}=${c.image}`), ['app=app:2', 'log=log:1']);
    assert.deepEqual(containers[0].env, [{ name: 'MODE', value: 'a' }]);
    assert.equal(smp.body.metadata.generation, 2);

    const merge = await client.patch(`${path}/web`, { spec: { template: { spec: { containers: [{ name: 'only', image: 'x' }] } } } }, 'merge');
    assert.deepEqual(merge.body.spec.template.spec.containers.map((c: { name: string }) => c.name), ['only'], 'merge patch replaces lists');

    const json = await client.patch(`${path}/web`, [{ op: 'replace', path: '/spec/replicas', value: 4 }, { op: 'add', path: '/metadata/labels/x', value: 'y' }], 'json');
    assert.equal(json.body.spec.replicas, 4);
    assert.equal(json.body.metadata.labels.x, 'y');

    const failed = await client.patch(`${path}/web`, [{ op: 'test', path: '/spec/replicas', value: 1 }], 'json');
    assert.equal(failed.status, 422);

    await client.post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com', scope: 'Namespaced', names: { plural: 'widgets', kind: 'Widget' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    });
    await client.post('/apis/example.com/v1/namespaces/default/widgets', { metadata: { name: 'w' }, spec: { size: 1 } });
    const refused = await client.patch('/apis/example.com/v1/namespaces/default/widgets/w', { spec: { size: 2 } }, 'strategic');
    assert.equal(refused.status, 415);
    assert.equal(refused.body.reason, 'UnsupportedMediaType');
    const ok = await client.patch('/apis/example.com/v1/namespaces/default/widgets/w', { spec: { size: 2 } }, 'merge');
    assert.equal(ok.body.spec.size, 2);
  } finally {
    await server.close();
  }
});

// Bodies captured from kubectl 1.32 (`kubectl create namespace team`, `kubectl create deployment
// web --image=nginx:1.25 --replicas=0 --port=8080 -- sh -c 'sleep 1'`), which sends them only in
// Kubernetes' protobuf encoding.
const NAMESPACE_PB = '6b3873000a0f0a02763112094e616d657370616365121c0a140a047465616d12001a0022002a0032003800420012001a020a001a002200';
const DEPLOYMENT_PB = '6b3873000a150a07617070732f7631120a4465706c6f796d656e7412d0010a1f0a0377656212001a0022002a003200380042005a0a0a036170701203776562129e010800120c0a0a0a0361707012037765621a83010a1c0a0012001a0022002a003200380042005a0a0a036170701203776562126312450a056e67696e78120a6e67696e783a312e32351a0273681a022d631a07736c65657020312a00320b0a00100018903f22002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200';

test('protobuf bodies from kubectl generators decode to the JSON they stand for', async () => {
  const { decodeProtobufObject } = await import('../../src/lab/apiserver/protobuf.js');
  const { protobufSchemas } = await import('../../src/lab/apiserver/protobuf-schemas.js');
  assert.deepEqual(decodeProtobufObject(Buffer.from(NAMESPACE_PB, 'hex'), protobufSchemas),
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } });
  assert.deepEqual(decodeProtobufObject(Buffer.from(DEPLOYMENT_PB, 'hex'), protobufSchemas), {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'nginx', image: 'nginx:1.25', command: ['sh', '-c', 'sleep 1'], ports: [{ containerPort: 8080 }] }] },
      },
    },
  });
  // A field the tables do not know is dropped when it holds its zero value, refused otherwise.
  const field = (n: number, payload: Buffer | number): Buffer => typeof payload === 'number'
    ? Buffer.from([n << 3, payload])
    : Buffer.concat([Buffer.from([(n << 3) | 2, payload.length]), payload]);
  const namespaceWith = (extra: Buffer): Buffer => {
    const typeMeta = Buffer.concat([field(1, Buffer.from('v1')), field(2, Buffer.from('Namespace'))]);
    const raw = Buffer.concat([field(1, field(1, Buffer.from('team'))), extra]);
    return Buffer.concat([Buffer.from('k8s\0', 'latin1'), field(1, typeMeta), field(2, raw)]);
  };
  const is415 = (e: unknown): boolean => e instanceof ApiError && e.code === 415;
  assert.deepEqual(decodeProtobufObject(namespaceWith(field(9, 0)), protobufSchemas).metadata, { name: 'team' });
  assert.throws(() => decodeProtobufObject(namespaceWith(field(9, 7)), protobufSchemas), is415);
  assert.throws(() => decodeProtobufObject(Buffer.from(NAMESPACE_PB, 'hex').subarray(0, 12), protobufSchemas), is415);
  assert.throws(() => decodeProtobufObject(Buffer.from('{"kind":"Pod"}'), protobufSchemas), is415);
});
