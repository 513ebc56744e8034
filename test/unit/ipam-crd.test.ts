// deploy/crds/ips.yaml: shape of the CRDs, and the seed's YAML validates against the schema
// (a small structural validator: types, required, unknown fields, enums, bounds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as yaml from 'js-yaml';
import { endpointName, endpointObject } from '../../src/model/ipam/naming.js';

type Schema = Record<string, any>;

const crds = yaml.loadAll(fs.readFileSync('deploy/crds/ips.yaml', 'utf8')) as Schema[];
const byKind = new Map(crds.map((c) => [c['spec'].names.kind as string, c]));

function schemaOf(kind: string): Schema {
  return byKind.get(kind)!['spec'].versions[0].schema.openAPIV3Schema;
}

function check(s: Schema, v: unknown, path: string, errs: string[]): void {
  const t = s['type'];
  const typeOk =
    t === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v)
    : t === 'array' ? Array.isArray(v)
    : t === 'string' ? typeof v === 'string'
    : t === 'integer' ? Number.isInteger(v)
    : t === 'number' ? typeof v === 'number'
    : t === 'boolean' ? typeof v === 'boolean'
    : false;
  if (!typeOk) return void errs.push(`${path}: expected ${t}, got ${JSON.stringify(v)}`);
  if (s['enum'] && !s['enum'].includes(v)) errs.push(`${path}: ${JSON.stringify(v)} not in ${s['enum']}`);
  if (typeof v === 'string') {
    if (s['minLength'] !== undefined && v.length < s['minLength']) errs.push(`${path}: shorter than ${s['minLength']}`);
    if (s['maxLength'] !== undefined && v.length > s['maxLength']) errs.push(`${path}: longer than ${s['maxLength']}`);
    if (s['pattern'] && !new RegExp(s['pattern']).test(v)) errs.push(`${path}: does not match ${s['pattern']}`);
  }
  if (typeof v === 'number' && s['minimum'] !== undefined && v < s['minimum']) errs.push(`${path}: below ${s['minimum']}`);
  if (Array.isArray(v)) {
    if (s['minItems'] !== undefined && v.length < s['minItems']) errs.push(`${path}: fewer than ${s['minItems']} items`);
    if (s['maxItems'] !== undefined && v.length > s['maxItems']) errs.push(`${path}: more than ${s['maxItems']} items`);
    v.forEach((x, i) => check(s['items'], x, `${path}[${i}]`, errs));
  }
  if (t === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s['required'] ?? []) if (!(r in o)) errs.push(`${path}.${r}: required`);
    const props = s['properties'] as Schema | undefined;
    for (const [k, x] of Object.entries(o)) {
      if (props?.[k]) check(props[k], x, `${path}.${k}`, errs);
      else if (s['additionalProperties']) check(s['additionalProperties'], x, `${path}.${k}`, errs);
      else if (props && !s['x-kubernetes-preserve-unknown-fields']) errs.push(`${path}.${k}: unknown field`);
    }
  }
}

function validate(kind: string, obj: unknown): string[] {
  const errs: string[] = [];
  check(schemaOf(kind), obj, '', errs);
  return errs;
}

/** Structural: every schema node has a type (metadata may be a bare object). */
function structural(s: Schema, path: string, errs: string[]): void {
  if (typeof s['type'] !== 'string') errs.push(`${path}: no type`);
  for (const [k, x] of Object.entries((s['properties'] ?? {}) as Schema)) structural(x, `${path}.${k}`, errs);
  if (s['items']) structural(s['items'], `${path}[]`, errs);
  if (typeof s['additionalProperties'] === 'object') structural(s['additionalProperties'], `${path}{}`, errs);
}

test('Ips CRD: names, scope, version, status subresource, printer columns', () => {
  const c = byKind.get('Ips')!;
  assert.equal(c['apiVersion'], 'apiextensions.k8s.io/v1');
  assert.equal(c['metadata'].name, 'ips.sample.fast.io');
  assert.equal(c['spec'].group, 'sample.fast.io');
  assert.equal(c['spec'].scope, 'Cluster');
  assert.deepEqual(
    { kind: c['spec'].names.kind, plural: c['spec'].names.plural, singular: c['spec'].names.singular, listKind: c['spec'].names.listKind },
    { kind: 'Ips', plural: 'ips', singular: 'ips', listKind: 'IpsList' },
  );
  const v = c['spec'].versions[0];
  assert.deepEqual([v.name, v.served, v.storage], ['v1alpha1', true, true]);
  assert.deepEqual(v.subresources, { status: {} });
  const cols = (v.additionalPrinterColumns as Schema[]).filter((x) => !x['priority']);
  assert.deepEqual(cols.map((x) => [x['name'], x['jsonPath'], x['type']]), [
    ['TOTAL', '.status.totalIPCount', 'integer'],
    ['ALLOCATED', '.status.allocatedIPCount', 'integer'],
    ['READY', '.status.conditions[?(@.type=="Ready")].status', 'string'],
    ['AGE', '.metadata.creationTimestamp', 'date'],
  ]);
  const errs: string[] = [];
  structural(v.schema.openAPIV3Schema, 'Ips', errs);
  assert.deepEqual(errs, []);
  const spec = v.schema.openAPIV3Schema.properties.spec;
  assert.deepEqual(spec.required, ['subnet', 'ips']);
  assert.equal(spec.properties.ips.minItems, 1);
  assert.deepEqual(spec.properties.excludeIPs.default, []);
});

test('IpEndpoint CRD: names, scope, printer columns; endpointObject validates', () => {
  const c = byKind.get('IpEndpoint')!;
  assert.equal(c['metadata'].name, 'ipendpoints.sample.fast.io');
  assert.equal(c['spec'].scope, 'Cluster');
  assert.equal(c['spec'].names.plural, 'ipendpoints');
  const v = c['spec'].versions[0];
  assert.deepEqual(
    (v.additionalPrinterColumns as Schema[]).filter((x) => !x['priority']).map((x) => x['name']),
    ['POOL', 'ADDRESS', 'NODE', 'NAMESPACE', 'POD', 'AGE'],
  );
  const errs: string[] = [];
  structural(v.schema.openAPIV3Schema, 'IpEndpoint', errs);
  assert.deepEqual(errs, []);
  const rec = {
    pool: 'sample-ips', address: '10.244.10.5', node: 'node-1', podNamespace: 'default', podName: 'busybox-1',
    podUID: '0b5e4c1a-3c8e-4f7e-9a55-1f2f3e4d5c6b', containerID: 'abc123', interface: 'eth0',
  };
  const obj = endpointObject(rec);
  assert.equal(obj.metadata.name, '10-244-10-5');
  assert.deepEqual(validate('IpEndpoint', obj), []);
  assert.deepEqual(validate('IpEndpoint', endpointObject({ ...rec, releasedAt: new Date(0).toISOString() })), []);
  const { node: _n, ...noNode } = rec;
  assert.deepEqual(validate('IpEndpoint', { ...obj, spec: noNode }), ['.spec.node: required']);
  assert.equal(endpointName('fd00::a:5'), 'fd00-0-0-0-0-0-a-5');
});

test("the seed's Ips YAML validates against the schema", () => {
  let n = 0;
  for (const f of fs.readdirSync('/work/shared/examples').filter((x) => x.startsWith('fast-'))) {
    for (const doc of yaml.loadAll(fs.readFileSync(`/work/shared/examples/${f}`, 'utf8')) as Schema[]) {
      if (doc?.['kind'] !== 'Ips') continue;
      assert.equal(doc['apiVersion'], 'sample.fast.io/v1alpha1');
      assert.deepEqual(validate('Ips', doc), [], `${f}/${doc['metadata'].name}`);
      n++;
    }
  }
  assert.equal(n, 2);
});

test('the schema refuses malformed Ips shapes', () => {
  const base = { apiVersion: 'sample.fast.io/v1alpha1', kind: 'Ips', metadata: { name: 'x' } };
  assert.deepEqual(validate('Ips', { ...base, spec: { ips: ['10.0.0.1'] } }), ['.spec.subnet: required']);
  assert.deepEqual(validate('Ips', { ...base, spec: { subnet: '10.0.0.0/24', ips: [] } }), ['.spec.ips: fewer than 1 items']);
  assert.deepEqual(validate('Ips', { ...base, spec: { subnet: '10.0.0.0/24', ips: '10.0.0.1' } }), ['.spec.ips: expected array, got "10.0.0.1"']);
  assert.match(
    validate('Ips', { ...base, spec: { subnet: '10.0.0.0/24', ips: ['10.0.0.1'], nodeAffinity: { matchExpressions: [{ key: 'k', operator: 'Near' }] } } }).join(),
    /operator: "Near" not in/,
  );
  assert.deepEqual(validate('Ips', { ...base, spec: { subnet: '10.0.0.0/24', ips: ['10.0.0.1'], ipz: [] } }), ['.spec.ipz: unknown field']);
  const full = {
    ...base,
    spec: {
      subnet: '10.0.0.0/24', ips: ['10.0.0.10-10.0.0.20'], excludeIPs: ['10.0.0.15'], gateway: '10.0.0.1',
      podAffinity: { matchLabels: { app: 'web' } },
      namespaceAffinity: { matchExpressions: [{ key: 'team', operator: 'In', values: ['a', 'b'] }] },
      nodeAffinity: { matchExpressions: [{ key: 'zone', operator: 'Exists' }] },
    },
    status: {
      totalIPCount: 10, allocatedIPCount: 2, coolingIPCount: 1,
      conditions: [{ type: 'Ready', status: 'False', reason: 'OverlapsPool', message: 'm', lastTransitionTime: '2024-01-01T00:00:00Z' }],
    },
  };
  assert.deepEqual(validate('Ips', full), []);
});
