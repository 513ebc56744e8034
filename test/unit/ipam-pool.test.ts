import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as yaml from 'js-yaml';
import { formatCidr, formatIp, parseIp } from '../../src/model/ipam/address.js';
import {
  IPS_API_VERSION,
  type Pool,
  type PoolValidation,
  readyCondition,
  toStatusCount,
  validatePool,
  validatePools,
} from '../../src/model/ipam/pool.js';

const EXAMPLES = '/work/shared/examples';

function examplePools(): { name: string; spec: unknown }[] {
  const out: { name: string; spec: unknown }[] = [];
  for (const f of ['fast-sample-ips.yaml', 'fast-default-ips-busybox1.yaml']) {
    for (const doc of yaml.loadAll(fs.readFileSync(`${EXAMPLES}/${f}`, 'utf8')) as Record<string, any>[]) {
      if (doc?.['kind'] === 'Ips') {
        assert.equal(doc['apiVersion'], IPS_API_VERSION);
        out.push({ name: doc['metadata'].name, spec: doc['spec'] });
      }
    }
  }
  return out;
}

function ok(v: PoolValidation): Pool {
  if (!v.ok) assert.fail(`expected a valid pool, got ${JSON.stringify(v.problems)}`);
  return v.pool;
}

function reasons(v: PoolValidation): string[] {
  assert.ok(!v.ok, 'expected problems');
  return v.problems.map((p) => p.reason);
}

test("the seed's pools are valid, with the seed's counts, and do not overlap each other", () => {
  const pools = examplePools();
  assert.deepEqual(pools.map((p) => p.name), ['sample-ips', 'default-ips']);
  const all = validatePools(pools);
  const sample = ok(all.get('sample-ips')!);
  const def = ok(all.get('default-ips')!);
  assert.equal(formatCidr(sample.subnet), '10.244.0.0/16');
  assert.equal(formatIp(sample.gateway), '10.244.0.1', 'gateway = first host address');
  assert.equal(sample.allocatable.size, 20481n, '10.244.10.0-10.244.90.0 inclusive');
  assert.equal(def.allocatable.size, 25851n);
  assert.match(sample.notes.join(), /host bits set; the subnet is 10\.244\.0\.0\/16/);
  const c = readyCondition(all.get('sample-ips')!);
  assert.equal(c.status, 'True');
  assert.match(c.message, /20481 allocatable addresses in subnet 10\.244\.0\.0\/16, gateway 10\.244\.0\.1/);
});

test('network, broadcast and gateway are never allocatable (IPv4); IPv6 drops the anycast address', () => {
  const p = ok(validatePool('p', { subnet: '10.0.0.0/24', ips: ['10.0.0.0/24'] }));
  assert.equal(p.allocatable.size, 253n);
  assert.equal(p.allocatable.toString(), '10.0.0.2-10.0.0.254');
  const g = ok(validatePool('g', { subnet: '10.0.0.0/24', ips: ['10.0.0.0/24'], gateway: '10.0.0.254', excludeIPs: ['10.0.0.10-10.0.0.19', '10.0.0.100'] }));
  assert.equal(g.allocatable.toString(), '10.0.0.1-10.0.0.9, 10.0.0.20-10.0.0.99, 10.0.0.101-10.0.0.253');
  const p31 = ok(validatePool('p31', { subnet: '10.0.0.0/31', ips: ['10.0.0.0-10.0.0.1'], gateway: '10.0.0.0' }));
  assert.equal(p31.allocatable.toString(), '10.0.0.1', '/31: no network/broadcast (RFC 3021)');
  const v6 = ok(validatePool('v6', { subnet: 'fd00:10::/64', ips: ['fd00:10::/64'] }));
  assert.equal(formatIp(v6.gateway), 'fd00:10::1');
  assert.equal(v6.allocatable.size, (1n << 64n) - 2n);
  assert.equal(formatIp(v6.allocatable.first()!), 'fd00:10::2');
  assert.equal(formatIp(v6.allocatable.last()!), 'fd00:10::ffff:ffff:ffff:ffff', 'no broadcast in IPv6');
  assert.equal(toStatusCount(v6.allocatable.size), Number.MAX_SAFE_INTEGER);
  assert.equal(toStatusCount(20481n), 20481);
});

test('each malformed pool has its reason and a clear message', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['reversed', { subnet: '10.244.0.0/16', ips: ['10.244.90.0-10.244.10.0'] }, 'RangeReversed', /spec\.ips\[0\]: range "10\.244\.90\.0-10\.244\.10\.0" is reversed/],
    ['outside', { subnet: '10.244.0.0/16', ips: ['10.244.250.0-10.245.0.10'] }, 'OutsideSubnet', /10\.244\.250\.0-10\.245\.0\.10 is not inside subnet 10\.244\.0\.0\/16 \(first outside address 10\.245\.0\.0\)/],
    ['slash32', { subnet: '10.244.0.1/32', ips: ['10.244.10.0-10.244.90.0'] }, 'OutsideSubnet', /a \/32 subnet holds the single address 10\.244\.0\.1/],
    ['mixed', { subnet: '10.244.0.0/16', ips: ['10.244.1.0-10.244.1.9', 'fd00::1'] }, 'MixedFamilies', /spec\.ips\[1\] "fd00::1" is not IPv4 like subnet 10\.244\.0\.0\/16/],
    ['mixed-range', { subnet: '10.244.0.0/16', ips: ['10.244.1.0-fd00::1'] }, 'MixedFamilies', /mixes an IPv4 and an IPv6/],
    ['mixed-gw', { subnet: '10.244.0.0/16', ips: ['10.244.1.0/24'], gateway: 'fd00::1' }, 'MixedFamilies', /spec\.gateway fd00::1 is not IPv4/],
    ['bad-addr', { subnet: '10.244.0.0/16', ips: ['10.244.1.300'] }, 'InvalidAddress', /"10\.244\.1\.300" is not a valid IP address/],
    ['bad-exclude', { subnet: '10.244.0.0/16', ips: ['10.244.1.0/24'], excludeIPs: ['nope'] }, 'InvalidAddress', /spec\.excludeIPs\[0\]/],
    ['bad-subnet', { subnet: '10.244.0.0/33', ips: ['10.244.1.0/24'] }, 'InvalidSubnet', /spec\.subnet "10\.244\.0\.0\/33" is not a valid CIDR/],
    ['no-subnet', { ips: ['10.244.1.0/24'] }, 'InvalidSubnet', /spec\.subnet is required/],
    ['bad-gw', { subnet: '10.244.0.0/16', ips: ['10.244.1.0/24'], gateway: '10.245.0.1' }, 'InvalidGateway', /not inside subnet/],
    ['bad-selector', { subnet: '10.244.0.0/16', ips: ['10.244.1.0/24'], nodeAffinity: { matchExpressions: [{ key: 'zone', operator: 'Near' }] } }, 'InvalidSelector', /operator must be one of/],
    ['selector-values', { subnet: '10.244.0.0/16', ips: ['10.244.1.0/24'], podAffinity: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] } }, 'InvalidSelector', /needs at least one value/],
    ['empty-list', { subnet: '10.244.0.0/16', ips: [] }, 'Empty', /spec\.ips is empty/],
    ['all-excluded', { subnet: '10.244.0.0/16', ips: ['10.244.1.0/24'], excludeIPs: ['10.244.0.0/16'] }, 'Empty', /no allocatable address/],
    ['only-gateway', { subnet: '10.244.0.0/16', ips: ['10.244.0.1'] }, 'Empty', /gateway 10\.244\.0\.1 is empty/],
    ['not-object', 'nope', 'InvalidSpec', /spec must be an object/],
    ['ips-missing', { subnet: '10.244.0.0/16' }, 'InvalidSpec', /spec\.ips is required/],
  ];
  for (const [name, spec, reason, msg] of cases) {
    const v = validatePool(name, spec);
    assert.ok(!v.ok, name);
    assert.equal(v.problems[0]!.reason, reason, `${name}: ${JSON.stringify(v.problems)}`);
    const c = readyCondition(v);
    assert.equal(c.status, 'False');
    assert.equal(c.reason, reason);
    assert.match(c.message, msg, name);
  }
  // all problems are reported, not just the first
  const many = validatePool('many', { subnet: '10.244.0.0/16', ips: ['10.244.9.0-10.244.1.0', '10.1.0.0', 'x'] });
  assert.deepEqual(reasons(many).sort(), ['InvalidAddress', 'OutsideSubnet', 'RangeReversed']);
});

test('overlap with another pool names the pool and the first overlapping address; older pool wins', () => {
  const sample = ok(validatePool('sample-ips', { subnet: '10.244.0.1/16', ips: ['10.244.10.0-10.244.90.0'] }));
  const v = validatePool('late', { subnet: '10.244.0.0/16', ips: ['10.244.0.0/24', '10.244.90.0-10.244.95.0'] }, [sample]);
  assert.deepEqual(reasons(v), ['OverlapsPool']);
  assert.match(readyCondition(v).message, /addresses overlap pool sample-ips \(first overlapping address 10\.244\.90\.0\)/);
  // excluding the shared address removes the overlap
  ok(validatePool('late', { subnet: '10.244.0.0/16', ips: ['10.244.90.0-10.244.95.0'], excludeIPs: ['10.244.90.0'] }, [sample]));
  // IPv6 pools do not overlap IPv4 ones
  ok(validatePool('v6', { subnet: 'fd00::/120', ips: ['fd00::10-fd00::20'] }, [sample]));

  const all = validatePools([
    { name: 'b-new', spec: { subnet: '10.0.0.0/24', ips: ['10.0.0.10-10.0.0.20'] }, creationTimestamp: '2024-01-02T00:00:00Z' },
    { name: 'a-old', spec: { subnet: '10.0.0.0/24', ips: ['10.0.0.15-10.0.0.30'] }, creationTimestamp: '2024-01-01T00:00:00Z' },
    { name: 'c-broken', spec: { subnet: '10.0.0.0/24', ips: ['10.0.0.9-10.0.0.1'] }, creationTimestamp: '2023-01-01T00:00:00Z' },
    { name: 'd-fine', spec: { subnet: '10.0.0.0/24', ips: ['10.0.0.1-10.0.0.9'] }, creationTimestamp: '2024-01-03T00:00:00Z' },
  ]);
  assert.ok(all.get('a-old')!.ok);
  assert.deepEqual(reasons(all.get('b-new')!), ['OverlapsPool']);
  assert.match(readyCondition(all.get('b-new')!).message, /pool a-old \(first overlapping address 10\.0\.0\.15\)/);
  assert.deepEqual(reasons(all.get('c-broken')!), ['RangeReversed']);
  assert.ok(all.get('d-fine')!.ok, 'a broken pool does not block others');
});

test('IPv6 pool with ranges, excludes and a gateway', () => {
  const p = ok(
    validatePool('v6', {
      subnet: 'fd00:244::/112',
      ips: ['fd00:244::100-fd00:244::1ff', 'fd00:244::ff00/120'],
      excludeIPs: ['fd00:244::150-fd00:244::15f'],
      gateway: 'fd00:244::100',
    }),
  );
  assert.equal(p.family, 6);
  assert.equal(p.allocatable.size, 256n - 1n - 16n + 256n);
  assert.ok(!p.allocatable.contains(parseIp('fd00:244::100')));
  assert.ok(p.allocatable.contains(parseIp('fd00:244::ffff')));
  const bad = validatePool('v6', { subnet: 'fd00:244::/112', ips: ['fd00:244::1:0-fd00:244::1:5'] });
  assert.deepEqual(reasons(bad), ['OutsideSubnet']);
});
