// Pure pieces of the lab API server: selector grammar, JSONPath of printer columns, ages, the
// pod table, and the structural-schema functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ApiError } from '../../src/lab/apiserver/errors.js';
import { jsonPathValues } from '../../src/lab/apiserver/jsonpath.js';
import { tablesByKind } from '../../src/lab/apiserver/printers.js';
import {
  formatLabelSelector, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, requirementsFromLabelSelector,
} from '../../src/lab/apiserver/selectors.js';
import { applySchemaDefaults, pruneUnknownFields } from '../../src/lab/apiserver/structural-schema.js';
import { humanDuration } from '../../src/lab/apiserver/table.js';

const labels = { app: 'web', tier: 'front', version: '3' };

test('label selectors: equality, set-based, existence and numeric operators', () => {
  const cases: [string, boolean][] = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app!=web', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['app in (db,web)', true],
    ['app in (db)', false],
    ['app notin (db, cache)', true],
    ['missing notin (x)', true],
    ['tier', true],
    ['!tier', false],
    ['!missing', true],
    ['version>2', true],
    ['version<3', false],
    ['app=web,tier=front', true],
    ['app=web, tier=back', false],
    ['example.com/key=v', false],
  ];
  for (const [selector, expected] of cases) {
    assert.equal(matchesLabels(parseLabelSelector(selector), labels), expected, selector);
  }
  for (const bad of ['app in (web', 'app=we b', '=web', 'app in web']) {
    assert.throws(() => parseLabelSelector(bad), (e: unknown) => e instanceof ApiError && e.code === 400, bad);
  }
});

test('metav1.LabelSelector objects convert to requirements and their canonical string', () => {
  const reqs = requirementsFromLabelSelector({
    matchLabels: { b: '2', a: '1' },
    matchExpressions: [{ key: 'c', operator: 'In', values: ['y', 'x'] }, { key: 'd', operator: 'DoesNotExist' }],
  });
  assert.equal(formatLabelSelector(reqs), 'a=1,b=2,c in (x,y),!d');
  assert.ok(matchesLabels(reqs, { a: '1', b: '2', c: 'x' }));
  assert.ok(!matchesLabels(reqs, { a: '1', b: '2', c: 'x', d: '' }));
});

test('a formatted selector parses back to the same meaning', () => {
  const key = fc.constantFrom('a', 'b', 'app', 'x.io/k');
  const value = fc.constantFrom('1', 'v', 'web-1');
  const req = fc.oneof(
    fc.record({ key, operator: fc.constantFrom('=' as const, '!=' as const), values: fc.tuple(value) }),
    fc.record({ key, operator: fc.constantFrom('in' as const, 'notin' as const), values: fc.array(value, { minLength: 1, maxLength: 3 }) }),
    fc.record({ key, operator: fc.constantFrom('exists' as const, '!' as const), values: fc.constant([] as string[]) }),
  );
  const labelSet = fc.dictionary(key, value);
  fc.assert(fc.property(fc.array(req, { maxLength: 4 }), labelSet, (reqs, set) => {
    const text = formatLabelSelector(reqs.map((r) => ({ ...r, values: [...r.values] })));
    assert.equal(matchesLabels(parseLabelSelector(text), set), matchesLabels(reqs.map((r) => ({ ...r, values: [...r.values] })), set));
  }));
});

test('field selectors: =, ==, !=, escapes', () => {
  const reqs = parseFieldSelector('spec.nodeName=n1,status.phase!=Failed,metadata.name==a\\,b');
  assert.deepEqual(reqs, [
    { field: 'spec.nodeName', operator: '=', value: 'n1' },
    { field: 'status.phase', operator: '!=', value: 'Failed' },
    { field: 'metadata.name', operator: '=', value: 'a,b' },
  ]);
  assert.ok(matchesFields(reqs, { 'spec.nodeName': 'n1', 'status.phase': 'Running', 'metadata.name': 'a,b' }));
  assert.ok(!matchesFields(reqs, { 'spec.nodeName': 'n1', 'status.phase': 'Failed', 'metadata.name': 'a,b' }));
  assert.ok(matchesFields(parseFieldSelector('spec.nodeName='), {}), 'a missing field is the empty string');
});

test('JSONPath of printer columns', () => {
  const obj = {
    metadata: { name: 'x', labels: { 'app.kubernetes.io/name': 'web' } },
    status: {
      totalIPCount: 12,
      conditions: [{ type: 'Synced', status: 'False' }, { type: 'Ready', status: 'True' }],
      addresses: ['a', 'b', 'c'],
    },
  };
  assert.deepEqual(jsonPathValues(obj, '.status.totalIPCount'), [12]);
  assert.deepEqual(jsonPathValues(obj, '{.status.totalIPCount}'), [12]);
  assert.deepEqual(jsonPathValues(obj, '.status.conditions[?(@.type=="Ready")].status'), ['True']);
  assert.deepEqual(jsonPathValues(obj, ".status.conditions[?(@.type!='Ready')].type"), ['Synced']);
  assert.deepEqual(jsonPathValues(obj, '.status.conditions[*].type'), ['Synced', 'Ready']);
  assert.deepEqual(jsonPathValues(obj, '.status.addresses[0]'), ['a']);
  assert.deepEqual(jsonPathValues(obj, '.status.addresses[-1]'), ['c']);
  assert.deepEqual(jsonPathValues(obj, '.status.addresses[0:2]'), ['a', 'b']);
  assert.deepEqual(jsonPathValues(obj, ".metadata.labels['app.kubernetes.io/name']"), ['web']);
  assert.deepEqual(jsonPathValues(obj, '.status.missing'), []);
});

test('ages are printed like kubectl prints them', () => {
  const s = 1000;
  assert.equal(humanDuration(5 * s), '5s');
  assert.equal(humanDuration(119 * s), '119s');
  assert.equal(humanDuration(150 * s), '2m30s');
  assert.equal(humanDuration(600 * s), '10m');
  assert.equal(humanDuration(3 * 3600 * s + 20 * 60 * s), '3h20m');
  assert.equal(humanDuration(30 * 3600 * s), '30h');
  assert.equal(humanDuration(3 * 86400 * s + 5 * 3600 * s), '3d5h');
  assert.equal(humanDuration(400 * 86400 * s), '400d');
  assert.equal(humanDuration(-5 * s), '<invalid>');
});

test('pod table: READY, STATUS and the -o wide columns', () => {
  const table = tablesByKind.Pod;
  assert.deepEqual(table.columns.map((c) => `${c.name}:${c.priority}`),
    ['Name:0', 'Ready:0', 'Status:0', 'Restarts:0', 'Age:0', 'IP:1', 'Node:1', 'Nominated Node:1', 'Readiness Gates:1']);
  const now = Date.parse('2025-01-01T00:10:00Z');
  const running = {
    metadata: { name: 'p', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: { nodeName: 'n1', containers: [{ name: 'a' }, { name: 'b' }] },
    status: {
      phase: 'Running', podIP: '10.244.1.5',
      containerStatuses: [
        { name: 'a', ready: true, restartCount: 1, state: { running: {} } },
        { name: 'b', ready: false, restartCount: 2, state: { waiting: { reason: 'CrashLoopBackOff' } } },
      ],
    },
  };
  assert.deepEqual(table.cells(running, now), ['p', '1/2', 'CrashLoopBackOff', '3', '10m', '10.244.1.5', 'n1', '<none>', '<none>']);
  const pending = { metadata: { name: 'q', deletionTimestamp: '2025-01-01T00:09:00Z' }, spec: { containers: [{ name: 'a' }] }, status: { phase: 'Pending' } };
  assert.deepEqual(table.cells(pending, now).slice(0, 3), ['q', '0/1', 'Terminating']);
});

test('structural schema: pruning keeps preserved subtrees, defaulting fills nested properties', () => {
  const schema = {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        properties: {
          a: { type: 'string', default: 'x' },
          nested: { type: 'object', default: {}, properties: { b: { type: 'integer', default: 2 } } },
          free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
    },
  };
  const obj = { apiVersion: 'v', kind: 'K', metadata: { name: 'n' }, spec: { unknown: 1, free: { anything: { goes: true } }, labels: { k: 'v' } }, top: 1 };
  assert.deepEqual(pruneUnknownFields(obj, schema).sort(), ['spec.unknown', 'top']);
  applySchemaDefaults(obj, schema);
  assert.deepEqual(obj, {
    apiVersion: 'v', kind: 'K', metadata: { name: 'n' },
    spec: { a: 'x', nested: { b: 2 }, free: { anything: { goes: true } }, labels: { k: 'v' } },
  });
});
