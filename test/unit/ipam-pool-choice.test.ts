import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIp } from '../../src/model/ipam/address.js';
import { type PoolChoiceInput, type PoolChoiceResult, choosePools, parsePoolAnnotation } from '../../src/model/ipam/pool-choice.js';
import { type PoolValidation, validatePools } from '../../src/model/ipam/pool.js';
import { type LabelSelector, formatSelector, matchesSelector, validateSelector } from '../../src/model/ipam/selector.js';

test('label selectors: matchLabels and each operator', () => {
  const l = { app: 'web', tier: 'front' };
  assert.ok(matchesSelector(undefined, l));
  assert.ok(matchesSelector({}, l), 'empty selector matches everything');
  assert.ok(matchesSelector({ matchLabels: { app: 'web' } }, l));
  assert.ok(!matchesSelector({ matchLabels: { app: 'db' } }, l));
  assert.ok(!matchesSelector({ matchLabels: { app: 'web', zone: 'a' } }, l));
  const e = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', key: string, values?: string[]): LabelSelector => ({
    matchExpressions: [{ key, operator, ...(values ? { values } : {}) }],
  });
  assert.ok(matchesSelector(e('In', 'tier', ['front', 'back']), l));
  assert.ok(!matchesSelector(e('In', 'zone', ['a']), l), 'In needs the key');
  assert.ok(matchesSelector(e('NotIn', 'tier', ['back']), l));
  assert.ok(matchesSelector(e('NotIn', 'zone', ['a']), l), 'NotIn matches an absent key');
  assert.ok(!matchesSelector(e('NotIn', 'tier', ['front']), l));
  assert.ok(matchesSelector(e('Exists', 'app'), l));
  assert.ok(!matchesSelector(e('Exists', 'zone'), l));
  assert.ok(matchesSelector(e('DoesNotExist', 'zone'), l));
  assert.ok(!matchesSelector(e('DoesNotExist', 'app'), l));
  assert.ok(!matchesSelector({ matchLabels: { toString: 'x' } }, {}), 'no prototype keys');
  assert.equal(formatSelector({ matchLabels: { a: 'b' }, matchExpressions: [{ key: 't', operator: 'In', values: ['x', 'y'] }, { key: 'z', operator: 'DoesNotExist' }] }), 'a=b,t in (x,y),!z');
  assert.deepEqual(validateSelector({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, 's'), ['s.matchExpressions[0]: operator Exists takes no values']);
  assert.deepEqual(validateSelector({ matchLabels: { a: 1 } }, 's'), ['s.matchLabels.a must be a string']);
  assert.deepEqual(validateSelector({ matchLabel: {} }, 's'), ['s.matchLabel is not a label selector field']);
});

test('property: a selector built from a label map matches exactly the supersets', () => {
  const labels = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.constantFrom('1', '2'));
  fc.assert(
    fc.property(labels, labels, (sel, obj) => {
      const superset = Object.entries(sel).every(([k, v]) => obj[k] === v);
      assert.equal(matchesSelector({ matchLabels: sel }, obj), superset);
      const asExpr: LabelSelector = { matchExpressions: Object.entries(sel).map(([key, v]) => ({ key, operator: 'In' as const, values: [v] })) };
      assert.equal(matchesSelector(asExpr, obj), superset);
    }),
  );
});

test('annotation parsing: name, comma list, JSON array', () => {
  assert.deepEqual(parsePoolAnnotation('sample-ips'), { ok: true, names: ['sample-ips'] });
  assert.deepEqual(parsePoolAnnotation(' a , b,a '), { ok: true, names: ['a', 'b'] });
  assert.deepEqual(parsePoolAnnotation('["a", "b"]'), { ok: true, names: ['a', 'b'] });
  assert.ok(!parsePoolAnnotation('["a",').ok);
  assert.ok(!parsePoolAnnotation('[1]').ok);
  assert.ok(!parsePoolAnnotation('a,,b').ok);
});

// ---- fixtures -----------------------------------------------------------------------------

const POOLS = validatePools([
  { name: 'default-ips', spec: { subnet: '10.244.0.1/16', ips: ['10.244.100.0-10.244.200.250'] } },
  { name: 'sample-ips', spec: { subnet: '10.244.0.1/16', ips: ['10.244.10.0-10.244.90.0'] } },
  { name: 'team-a', spec: { subnet: '10.250.0.0/24', ips: ['10.250.0.0/24'], namespaceAffinity: { matchLabels: { team: 'a' } } } },
  { name: 'zone-1', spec: { subnet: '10.251.0.0/24', ips: ['10.251.0.0/24'], nodeAffinity: { matchLabels: { zone: '1' } } } },
  { name: 'web-zone-1', spec: { subnet: '10.252.0.0/24', ips: ['10.252.0.0/24'], nodeAffinity: { matchLabels: { zone: '1' } }, podAffinity: { matchLabels: { app: 'web' } } } },
  { name: 'broken', spec: { subnet: '10.253.0.0/24', ips: ['10.253.0.9-10.253.0.1'] } },
  { name: 'small', spec: { subnet: '10.254.0.0/24', ips: ['10.254.0.10-10.254.0.20'], excludeIPs: ['10.254.0.15'] } },
]);

function input(over: Partial<{ podAnn: Record<string, string>; podLabels: Record<string, string>; nsAnn: Record<string, string>; nsLabels: Record<string, string>; nodeLabels: Record<string, string>; pools: Map<string, PoolValidation> }> = {}): PoolChoiceInput {
  return {
    pod: { namespace: 'ns', name: 'p', uid: 'u1', labels: over.podLabels ?? {}, annotations: over.podAnn ?? {} },
    namespace: { name: 'ns', labels: over.nsLabels ?? { 'kubernetes.io/metadata.name': 'ns' }, annotations: over.nsAnn ?? {} },
    node: { name: 'n1', labels: over.nodeLabels ?? {} },
    pools: over.pools ?? POOLS,
  };
}

function good(r: PoolChoiceResult): { source: string; candidates: readonly string[] } {
  if (!r.ok) assert.fail(`expected a choice, got ${r.reason}: ${r.message}`);
  return { source: r.source, candidates: r.candidates };
}

function bad(r: PoolChoiceResult): { reason: string; message: string } {
  assert.ok(!r.ok, 'expected an error');
  return { reason: r.reason, message: r.message };
}

test('precedence: pod annotation > namespace annotation > affinity > default-ips', () => {
  assert.deepEqual(good(choosePools(input())), { source: 'default', candidates: ['default-ips'] });
  assert.deepEqual(good(choosePools(input({ podAnn: { 'fast.io/ips': 'sample-ips' } }))), { source: 'pod-annotation', candidates: ['sample-ips'] });
  assert.deepEqual(good(choosePools(input({ nsAnn: { 'fast.io/ips': 'small' } }))), { source: 'namespace-annotation', candidates: ['small'] });
  assert.deepEqual(
    good(choosePools(input({ podAnn: { 'fast.io/ips': 'sample-ips' }, nsAnn: { 'fast.io/ips': 'small' } }))),
    { source: 'pod-annotation', candidates: ['sample-ips'] },
  );
  // affinity: pools with at least one affinity that all match, sorted by name
  assert.deepEqual(good(choosePools(input({ nodeLabels: { zone: '1' } }))), { source: 'affinity', candidates: ['zone-1'] });
  assert.deepEqual(good(choosePools(input({ nodeLabels: { zone: '1' }, podLabels: { app: 'web' } }))), { source: 'affinity', candidates: ['web-zone-1', 'zone-1'] });
  assert.deepEqual(good(choosePools(input({ nsLabels: { team: 'a' } }))), { source: 'affinity', candidates: ['team-a'] });
  // the namespace annotation beats affinity
  assert.deepEqual(good(choosePools(input({ nsLabels: { team: 'a' }, nsAnn: { 'fast.io/ips': 'small' } }))).candidates, ['small']);
  // a list is tried in order; unusable entries are skipped and reported
  const r = choosePools(input({ podAnn: { 'fast.io/ips': '["nope","broken","small","sample-ips"]' } }));
  assert.ok(r.ok);
  assert.deepEqual(r.candidates, ['small', 'sample-ips']);
  assert.deepEqual(r.rejected.map((x) => [x.pool, x.reason]), [['nope', 'PoolNotFound'], ['broken', 'PoolNotReady']]);
});

test('a pod that may use no pool gets a message that says why', () => {
  assert.deepEqual(bad(choosePools(input({ podAnn: { 'fast.io/ips': 'x' } }))), {
    reason: 'PoolNotFound',
    message: 'pod ns/p annotation fast.io/ips names pool "x" which does not exist',
  });
  const nr = bad(choosePools(input({ podAnn: { 'fast.io/ips': 'broken' } })));
  assert.equal(nr.reason, 'PoolNotReady');
  assert.match(nr.message, /^pool broken is not Ready: RangeReversed: spec\.ips\[0\]: range "10\.253\.0\.9-10\.253\.0\.1" is reversed/);
  assert.deepEqual(bad(choosePools(input({ podAnn: { 'fast.io/ips': 'zone-1' }, nodeLabels: { zone: '2' } }))), {
    reason: 'PoolNotPermitted',
    message: 'pool zone-1 does not select node n1 (nodeAffinity zone=1)',
  });
  assert.match(bad(choosePools(input({ podAnn: { 'fast.io/ips': 'team-a' } }))).message, /pool team-a does not select namespace ns \(namespaceAffinity team=a\)/);
  assert.match(
    bad(choosePools(input({ podAnn: { 'fast.io/ips': 'web-zone-1' }, nodeLabels: { zone: '1' } }))).message,
    /pool web-zone-1 does not select pod ns\/p \(podAffinity app=web\)/,
  );
  const many = bad(choosePools(input({ nsAnn: { 'fast.io/ips': 'x, broken' } })));
  assert.equal(many.reason, 'NoPool');
  assert.match(many.message, /^pod ns\/p may use no pool: namespace ns annotation fast\.io\/ips names pool "x" which does not exist; pool broken is not Ready/);
  assert.equal(bad(choosePools(input({ podAnn: { 'fast.io/ips': '[oops' } }))).reason, 'InvalidAnnotation');
  const noDefault = new Map([...POOLS].filter(([n]) => n !== 'default-ips'));
  assert.match(bad(choosePools(input({ pools: noDefault }))).message, /no fast\.io\/ips annotation .* and the default pool "default-ips" does not exist/);
  // unknown namespace: its name label is still known for namespaceAffinity
  const r = choosePools({ ...input({ podAnn: { 'fast.io/ips': 'team-a' } }), namespace: undefined });
  assert.equal(bad(r).reason, 'PoolNotPermitted');
});

test('static address fast.io/ip must lie in a candidate pool', () => {
  const s = choosePools(input({ podAnn: { 'fast.io/ips': 'small,sample-ips', 'fast.io/ip': '10.244.50.5' } }));
  assert.ok(s.ok && s.staticAddress);
  assert.equal(s.staticAddress.pool, 'sample-ips');
  assert.equal(formatIp(s.staticAddress.address), '10.244.50.5');
  const d = choosePools(input({ podAnn: { 'fast.io/ip': '10.244.150.5' } }));
  assert.ok(d.ok && d.staticAddress?.pool === 'default-ips');
  assert.match(
    bad(choosePools(input({ podAnn: { 'fast.io/ip': '10.244.50.5' } }))).message,
    /asks for 10\.244\.50\.5, which is in none of the pools the pod may use \(default-ips\); it belongs to pool sample-ips, which the pod would have to name in fast\.io\/ips/,
  );
  assert.match(
    bad(choosePools(input({ podAnn: { 'fast.io/ips': 'small', 'fast.io/ip': '10.254.0.15' } }))).message,
    /10\.254\.0\.15, which is reserved .* of pool small/,
  );
  assert.match(bad(choosePools(input({ podAnn: { 'fast.io/ip': '10.244.0.1' } }))).message, /none of the pools/);
  assert.match(bad(choosePools(input({ podAnn: { 'fast.io/ip': '192.168.0.1' } }))).message, /no Ready pool holds it/);
  assert.equal(bad(choosePools(input({ podAnn: { 'fast.io/ip': '10.244.1' } }))).reason, 'InvalidStaticAddress');
  assert.match(
    bad(choosePools(input({ podAnn: { 'fast.io/ip': '10.251.0.9' } }))).message,
    /it belongs to pool zone-1, and pool zone-1 does not select node n1/,
  );
});
