// CustomResourceDefinitions: a stored CRD makes its resources served (discovery included), with
// schema defaults, pruning, validation (422 like kube-apiserver), status subresource, printer
// columns in tables, and cleanup of its custom resources when it is deleted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApiServer } from '../../src/lab/apiserver/index.js';
import { RawClient } from '../../src/lab/apiserver/raw-client.js';

const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';
const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const POOLS = '/apis/net.example.com/v1beta1/namespaces/default/pools';

const poolCrd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'pools.net.example.com' },
  spec: {
    group: 'net.example.com',
    scope: 'Namespaced',
    names: { plural: 'pools', singular: 'pool', kind: 'Pool', shortNames: ['pl'], categories: ['net'] },
    versions: [{
      name: 'v1beta1',
      served: true,
      storage: true,
      subresources: { status: {} },
      additionalPrinterColumns: [
        { name: 'Subnet', type: 'string', jsonPath: '.spec.subnet' },
        { name: 'Total', type: 'integer', jsonPath: '.status.totalIPCount' },
        { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
        { name: 'Mode', type: 'string', jsonPath: '.spec.mode', priority: 1 },
        { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      ],
      schema: { openAPIV3Schema: {
        type: 'object',
        properties: {
          spec: {
            type: 'object',
            required: ['subnet'],
            properties: {
              subnet: { type: 'string', pattern: '^[0-9./]+$' },
              mode: { type: 'string', enum: ['static', 'dynamic'], default: 'dynamic' },
              reserve: { type: 'integer', minimum: 0, default: 1 },
              ranges: { type: 'array', items: { type: 'object', properties: { from: { type: 'string' }, shared: { type: 'boolean', default: false } } } },
              extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
            },
          },
          status: {
            type: 'object',
            properties: {
              totalIPCount: { type: 'integer' },
              conditions: { type: 'array', items: { type: 'object', properties: { type: { type: 'string' }, status: { type: 'string' } } } },
            },
          },
        },
      } },
    }],
  },
};

function pool(name: string, spec: object): object {
  return { apiVersion: 'net.example.com/v1beta1', kind: 'Pool', metadata: { name }, spec };
}

test('custom resources: discovery, defaults, validation, pruning, status, tables, cleanup', async () => {
  const server = await startApiServer({ port: 0 });
  const client = new RawClient(server.url);
  try {
    assert.equal((await client.get(POOLS)).status, 404, 'not served before its CRD exists');
    const crd = await client.post(CRDS, poolCrd);
    assert.equal(crd.status, 201);
    assert.deepEqual(crd.body.status.conditions.map((c: { type: string; status: string }) => `${c.type}=${c.status}`), ['NamesAccepted=True', 'Established=True']);
    assert.deepEqual(crd.body.status.storedVersions, ['v1beta1']);

    // Discovery, in the legacy and the aggregated form.
    const groups = await client.get('/apis');
    assert.ok(groups.body.groups.some((g: { name: string }) => g.name === 'net.example.com'));
    const resources = await client.get('/apis/net.example.com/v1beta1');
    assert.deepEqual(resources.body.resources.map((r: { name: string }) => r.name), ['pools', 'pools/status']);
    assert.deepEqual(resources.body.resources[0].shortNames, ['pl']);
    const aggregated = await client.get('/apis', 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json');
    assert.match(aggregated.headers.get('content-type') ?? '', /as=APIGroupDiscoveryList/);
    const item = aggregated.body.items.find((i: { metadata: { name: string } }) => i.metadata.name === 'net.example.com');
    assert.equal(item.versions[0].resources[0].scope, 'Namespaced');

    // Defaults from the schema, including inside array items; status is dropped on create.
    const created = await client.post(POOLS, { ...pool('a', { subnet: '10.1.0.0/16', ranges: [{ from: '10.1.0.1' }] }), status: { totalIPCount: 9 } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.spec, { subnet: '10.1.0.0/16', mode: 'dynamic', reserve: 1, ranges: [{ from: '10.1.0.1', shared: false }] });
    assert.equal(created.body.status, undefined);
    assert.equal(created.body.metadata.generation, 1);

    // Validation errors look like kube-apiserver's.
    const invalid = await client.post(POOLS, pool('bad', { subnet: 5, mode: 'weird', reserve: -1 }));
    assert.equal(invalid.status, 422);
    assert.equal(invalid.body.reason, 'Invalid');
    assert.equal(invalid.body.message,
      'Pool.net.example.com "bad" is invalid: [spec.subnet: Invalid value: "integer": spec.subnet in body must be of type string: "integer", ' +
      'spec.mode: Unsupported value: "weird": supported values: "static", "dynamic", ' +
      'spec.reserve: Invalid value: -1: spec.reserve in body should be greater than or equal to 0]');
    assert.deepEqual(invalid.body.details.causes.map((c: { field: string }) => c.field), ['spec.subnet', 'spec.mode', 'spec.reserve']);
    const required = await client.post(POOLS, pool('bad', {}));
    assert.equal(required.body.message, 'Pool.net.example.com "bad" is invalid: spec.subnet: Required value');

    // Unknown fields: pruned, with a warning, or refused under strict field validation.
    const strict = await client.request('POST', `${POOLS}?fieldValidation=Strict`, { body: pool('s', { subnet: '10.0.0.0/8', bogus: 1 }) });
    assert.equal(strict.status, 400);
    assert.equal(strict.body.message, 'strict decoding error: unknown field "spec.bogus"');
    const warned = await client.post(POOLS, pool('w', { subnet: '10.0.0.0/8', bogus: 1, extra: { free: 'form' } }));
    assert.equal(warned.status, 201);
    assert.equal(warned.headers.get('warning'), '299 - "unknown field \\"spec.bogus\\""');
    assert.deepEqual(warned.body.spec.extra, { free: 'form' });
    assert.equal(warned.body.spec.bogus, undefined);

    // Custom resources need a resourceVersion to update; status goes through /status.
    const noRv = await client.put(`${POOLS}/a`, { ...created.body, metadata: { name: 'a' } });
    assert.equal(noRv.status, 422);
    const status = await client.put(`${POOLS}/a/status`, {
      ...created.body,
      status: { totalIPCount: 65534, conditions: [{ type: 'Ready', status: 'True' }, { type: 'Synced', status: 'False' }] },
    });
    assert.equal(status.status, 200, JSON.stringify(status.body));
    assert.equal(status.body.metadata.generation, 1, 'status changes do not bump generation');
    const specChange = await client.patch(`${POOLS}/a`, { spec: { mode: 'static' }, status: { totalIPCount: 1 } });
    assert.equal(specChange.body.metadata.generation, 2);
    assert.equal(specChange.body.status.totalIPCount, 65534, 'the main resource does not change status');

    // Tables use the printer columns.
    const table = await client.get(POOLS, TABLE);
    assert.equal(table.body.kind, 'Table');
    assert.deepEqual(table.body.columnDefinitions.map((c: { name: string; priority: number }) => `${c.name}:${c.priority}`),
      ['Name:0', 'Subnet:0', 'Total:0', 'Ready:0', 'Mode:1', 'Age:0']);
    const row = table.body.rows.find((r: { cells: unknown[] }) => r.cells[0] === 'a');
    assert.deepEqual(row.cells.slice(0, 5), ['a', '10.1.0.0/16', 65534, 'True', 'static']);
    assert.match(row.cells[5] as string, /^\d+s$/);
    assert.equal(row.object.kind, 'PartialObjectMetadata');
    const withObjects = await client.get(`${POOLS}?includeObject=Object`, TABLE);
    assert.equal(withObjects.body.rows[0].object.kind, 'Pool');
    const missingCells = table.body.rows.find((r: { cells: unknown[] }) => r.cells[0] === 'w').cells;
    assert.equal(missingCells[2], null);

    // Deleting the CRD removes its custom resources first, then stops serving them.
    await client.delete(`${CRDS}/pools.net.example.com`);
    for (let i = 0; i < 200 && (await client.get(`${CRDS}/pools.net.example.com`)).status !== 404; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal((await client.get(`${CRDS}/pools.net.example.com`)).status, 404);
    assert.equal((await client.get(POOLS)).status, 404);
    assert.equal(server.store.storedObjects('net.example.com/pools').length, 0);
    assert.ok(!(await client.get('/apis')).body.groups.some((g: { name: string }) => g.name === 'net.example.com'));
  } finally {
    await server.close();
  }
});

test('a CRD with a bad name or without a storage version is refused', async () => {
  const server = await startApiServer({ port: 0 });
  try {
    const client = new RawClient(server.url);
    const badName = await client.post(CRDS, { ...poolCrd, metadata: { name: 'wrong.net.example.com' } });
    assert.equal(badName.status, 422);
    assert.match(badName.body.message, /metadata.name: Invalid value: "wrong.net.example.com": must be spec.names.plural\+"."\+spec.group/);
    const spec = { ...poolCrd.spec, versions: [{ ...poolCrd.spec.versions[0], storage: false }] };
    const noStorage = await client.post(CRDS, { ...poolCrd, spec });
    assert.equal(noStorage.status, 422);
    assert.match(noStorage.body.message, /must have exactly one version marked as storage version/);
  } finally {
    await server.close();
  }
});

test('cluster-scoped custom resources without printer columns show Name and Age', async () => {
  const server = await startApiServer({ port: 0 });
  try {
    const client = new RawClient(server.url);
    await client.post(CRDS, {
      metadata: { name: 'zones.net.example.com' },
      spec: {
        group: 'net.example.com', scope: 'Cluster', names: { plural: 'zones', kind: 'Zone' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } } }],
      },
    });
    const created = await client.post('/apis/net.example.com/v1/zones', { metadata: { name: 'z1' }, spec: { any: 'thing' } });
    assert.equal(created.status, 201);
    assert.equal(created.body.metadata.namespace, undefined);
    const table = await client.get('/apis/net.example.com/v1/zones', TABLE);
    assert.deepEqual(table.body.columnDefinitions.map((c: { name: string }) => c.name), ['Name', 'Age']);
  } finally {
    await server.close();
  }
});
