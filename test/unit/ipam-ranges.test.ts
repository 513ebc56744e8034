import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIp, parseCidr, parseIp } from '../../src/model/ipam/address.js';
import { IpSet, type Interval, parseIpEntries, parseIpEntry } from '../../src/model/ipam/ranges.js';

// ---- naive reference: sets of numbers on a small universe --------------------------------

const U = 64; // values 0..63, offset into 10.0.0.0
const BASE = parseIp('10.0.0.0').value;

const intervalArb = fc
  .tuple(fc.integer({ min: 0, max: U - 1 }), fc.integer({ min: 0, max: 12 }))
  .map(([s, len]) => ({ start: BigInt(s), end: BigInt(Math.min(U - 1, s + len)) }));
const intervalsArb = fc.array(intervalArb, { maxLength: 8 });

function mk(ivs: Interval[]): IpSet {
  return IpSet.of(4, ivs.map((i) => ({ start: BASE + i.start, end: BASE + i.end })));
}
function naive(ivs: Interval[]): Set<number> {
  const s = new Set<number>();
  for (const i of ivs) for (let v = Number(i.start); v <= Number(i.end); v++) s.add(v);
  return s;
}
function members(set: IpSet): number[] {
  return [...set.addresses()].map((a) => Number(a.value - BASE));
}
const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);

function normalForm(set: IpSet): void {
  for (let i = 0; i < set.intervals.length; i++) {
    const iv = set.intervals[i]!;
    assert.ok(iv.start <= iv.end);
    if (i > 0) assert.ok(set.intervals[i - 1]!.end + 1n < iv.start, 'sorted, disjoint, not adjacent');
  }
}

test('property: IpSet normal form, size, contains, iteration match a naive set', () => {
  fc.assert(
    fc.property(intervalsArb, (ivs) => {
      const set = mk(ivs);
      const ref = naive(ivs);
      normalForm(set);
      assert.equal(set.size, BigInt(ref.size));
      assert.deepEqual(members(set), sorted(ref));
      for (let v = 0; v < U; v++) assert.equal(set.contains({ family: 4, value: BASE + BigInt(v) }), ref.has(v));
      assert.equal(set.contains(parseIp('::')), false);
    }),
    { numRuns: 300 },
  );
});

test('property: nth and indexOf are inverse and follow ascending order', () => {
  fc.assert(
    fc.property(intervalsArb, (ivs) => {
      const set = mk(ivs);
      const ref = sorted(naive(ivs));
      ref.forEach((v, i) => {
        assert.equal(Number(set.nth(i).value - BASE), v);
        assert.equal(set.indexOf({ family: 4, value: BASE + BigInt(v) }), BigInt(i));
      });
      assert.throws(() => set.nth(ref.length), RangeError);
      assert.throws(() => set.nth(-1), RangeError);
      for (let k = 0; k <= ref.length; k++) {
        assert.deepEqual(members(IpSet.of(4, set.intervals)).slice(k), [...set.addresses(BigInt(k))].map((a) => Number(a.value - BASE)));
      }
    }),
    { numRuns: 200 },
  );
});

test('property: union, intersect, subtract, overlap, subset against the naive reference', () => {
  fc.assert(
    fc.property(intervalsArb, intervalsArb, (xa, xb) => {
      const a = mk(xa);
      const b = mk(xb);
      const ra = naive(xa);
      const rb = naive(xb);
      const u = a.union(b);
      const i = a.intersect(b);
      const d = a.subtract(b);
      [u, i, d].forEach(normalForm);
      assert.deepEqual(members(u), sorted(new Set([...ra, ...rb])));
      assert.deepEqual(members(i), sorted(new Set([...ra].filter((v) => rb.has(v)))));
      assert.deepEqual(members(d), sorted(new Set([...ra].filter((v) => !rb.has(v)))));
      const common = sorted(new Set([...ra].filter((v) => rb.has(v))));
      assert.equal(a.overlaps(b), common.length > 0);
      const fo = a.firstOverlap(b);
      assert.equal(fo === undefined ? undefined : Number(fo.value - BASE), common[0]);
      assert.equal(a.isSubsetOf(b), [...ra].every((v) => rb.has(v)));
      assert.ok(a.union(b).equals(b.union(a)));
    }),
    { numRuns: 500 },
  );
});

test('entries: ranges, single addresses, CIDRs, whitespace', () => {
  const r = parseIpEntry('10.244.10.0-10.244.90.0');
  assert.ok(r.ok);
  assert.equal(r.entry.kind, 'range');
  assert.equal(r.entry.end - r.entry.start + 1n, 20481n);
  const s = parseIpEntry(' 10.0.0.7 ');
  assert.ok(s.ok && s.entry.kind === 'single' && s.entry.start === s.entry.end);
  const c = parseIpEntry('10.1.0.9/24');
  assert.ok(c.ok && c.entry.kind === 'cidr');
  assert.equal(formatIp({ family: 4, value: c.entry.start }), '10.1.0.0', 'a CIDR with host bits is its network');
  assert.equal(c.entry.end - c.entry.start + 1n, 256n);
  const sp = parseIpEntry('10.0.0.1 - 10.0.0.3');
  assert.ok(sp.ok && sp.entry.end - sp.entry.start === 2n);
  const v6 = parseIpEntry('fd00::10-fd00::1:0');
  assert.ok(v6.ok && v6.entry.family === 6 && v6.entry.end - v6.entry.start + 1n === 0x10000n - 0x10n + 1n);
});

test('entries: each malformed kind has a reason and a message', () => {
  const cases: [unknown, string, RegExp][] = [
    ['10.0.0.9-10.0.0.1', 'RangeReversed', /reversed: 10\.0\.0\.9 comes after 10\.0\.0\.1/],
    ['fd00::9-fd00::1', 'RangeReversed', /reversed/],
    ['10.0.0.1-fd00::1', 'MixedFamilies', /mixes an IPv4 and an IPv6/],
    ['10.0.0.300', 'InvalidAddress', /not a valid IP address/],
    ['10.0.0.1-10.0.0', 'InvalidAddress', /"10\.0\.0" is not a valid/],
    ['10.0.0.0/40', 'InvalidAddress', /not a valid CIDR/],
    ['', 'InvalidAddress', /not a valid/],
    [42, 'InvalidAddress', /not a string/],
  ];
  for (const [input, reason, msg] of cases) {
    const r = parseIpEntry(input);
    assert.ok(!r.ok, String(input));
    assert.equal(r.reason, reason, String(input));
    assert.match(r.message, msg);
  }
  const list = parseIpEntries(['10.0.0.1-10.0.0.5', 'fd00::1', '10.0.0.4-10.0.0.9', 'junk']);
  assert.equal(list.family, 4);
  assert.deepEqual(list.problems.map((p) => [p.index, p.reason]), [[1, 'MixedFamilies'], [3, 'InvalidAddress']]);
  assert.equal(list.set?.toString(), '10.0.0.1-10.0.0.9');
  assert.deepEqual(list.entries.map((e) => e.index), [0, 2]);
});

test('IPv6 ranges and huge sets stay cheap (never materialised)', () => {
  const big = IpSet.cidr(parseCidr('fd00::/64'));
  assert.equal(big.size, 1n << 64n);
  const holes = parseIpEntries(['fd00::1:0-fd00::1:ffff', 'fd00::/120', 'fd00::5']).set!;
  assert.equal(holes.toString(), 'fd00::-fd00::ff, fd00::1:0-fd00::1:ffff');
  const minus = big.subtract(holes).subtract(IpSet.single(parseIp('fd00::ffff:ffff:ffff:ffff')));
  assert.equal(minus.size, (1n << 64n) - 256n - 65536n - 1n);
  assert.equal(formatIp(minus.nth(0)), 'fd00::100');
  assert.equal(formatIp(minus.nth(minus.size - 1n)), 'fd00::ffff:ffff:ffff:fffe');
  assert.equal(minus.indexOf(parseIp('fd00::2:0')), 0xff00n);
  const slash8 = IpSet.cidr(parseCidr('10.0.0.0/8'));
  assert.equal(slash8.size, 1n << 24n);
  assert.equal(formatIp(slash8.nth(16777215n)), '10.255.255.255');
  const it = slash8.addresses(16777214n);
  assert.deepEqual([...it].map(formatIp), ['10.255.255.254', '10.255.255.255']);
  assert.throws(() => big.union(slash8), /cannot combine/);
});
