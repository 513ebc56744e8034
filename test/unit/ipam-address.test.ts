import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addOffset,
  canonicalIp,
  cidrContains,
  cidrFirst,
  cidrLast,
  cidrSize,
  compareIp,
  formatCidr,
  formatIp,
  maxValue,
  parseCidr,
  parseIp,
  tryParseCidr,
  tryParseIp,
} from '../../src/model/ipam/address.js';

test('IPv4 parse and format', () => {
  assert.deepEqual(parseIp('10.244.0.5'), { family: 4, value: 0x0af40005n });
  assert.equal(formatIp(parseIp('0.0.0.0')), '0.0.0.0');
  assert.equal(formatIp(parseIp('255.255.255.255')), '255.255.255.255');
  assert.equal(formatIp(parseIp(' 10.1.2.3 ')), '10.1.2.3');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', '1..3.4', 'a.b.c.d', '1.2.3.4/8', '1.2.3.4 5']) {
    assert.equal(tryParseIp(bad), undefined, bad);
  }
  assert.throws(() => parseIp('300.1.1.1'), /not a valid IP address/);
});

test('IPv6 parse and RFC 5952 format', () => {
  const cases: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // longest run
    ['fd00::a:5', 'fd00::a:5'],
    ['::ffff:10.1.2.3', '::ffff:10.1.2.3'],
    ['::ffff:0a01:0203', '::ffff:10.1.2.3'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
  for (const bad of [':', ':::', '1:::2', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', 'fe80::1%eth0', '1.2.3.4::', '::1.2.3', '1:2:3:4:5:6:7:8::']) {
    assert.equal(tryParseIp(bad), undefined, bad);
  }
});

test('property: format/parse round trip, canonical form is a fixed point', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: maxValue(6) }), (v) => {
      const a = { family: 6 as const, value: v };
      const s = formatIp(a);
      assert.deepEqual(parseIp(s), a);
      assert.equal(canonicalIp(s), s);
      assert.equal(s, s.toLowerCase());
      assert.ok(!/(^|:)0[0-9a-f]/.test(s), `leading zero in ${s}`);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: maxValue(4) }), (v) => {
      assert.deepEqual(parseIp(formatIp({ family: 4, value: v })), { family: 4, value: v });
    }),
  );
  // sparse IPv6 values exercise "::" placement
  fc.assert(
    fc.property(fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff, 0xab), { minLength: 8, maxLength: 8 }), (groups) => {
      const full = groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
      const a = parseIp(full);
      const s = formatIp(a);
      assert.deepEqual(parseIp(s), a);
      assert.ok((s.match(/::/g) ?? []).length <= 1);
    }),
  );
});

test('compare and addOffset', () => {
  assert.ok(compareIp(parseIp('10.0.0.1'), parseIp('10.0.0.2')) < 0);
  assert.ok(compareIp(parseIp('255.255.255.255'), parseIp('::')) < 0, 'IPv4 before IPv6');
  assert.equal(compareIp(parseIp('::1'), parseIp('0::1')), 0);
  assert.equal(formatIp(addOffset(parseIp('10.0.0.255'), 1)), '10.0.1.0');
  assert.equal(formatIp(addOffset(parseIp('fd00::ffff'), 1n)), 'fd00::1:0');
  assert.equal(formatIp(addOffset(parseIp('10.0.1.0'), -1)), '10.0.0.255');
  assert.throws(() => addOffset(parseIp('255.255.255.255'), 1), /leaves the IPv4 address space/);
  assert.throws(() => addOffset(parseIp('::'), -1), /leaves the IPv6/);
});

test('CIDR parse: host bits set is legal (the seed writes 10.244.0.1/16)', () => {
  const c = parseCidr('10.244.0.1/16');
  assert.equal(c.hostBitsSet, true);
  assert.equal(formatCidr(c), '10.244.0.0/16');
  assert.equal(formatIp(c.written), '10.244.0.1');
  assert.equal(formatIp(cidrFirst(c)), '10.244.0.0');
  assert.equal(formatIp(cidrLast(c)), '10.244.255.255');
  assert.equal(cidrSize(c), 65536n);
  assert.ok(cidrContains(c, parseIp('10.244.200.250')));
  assert.ok(!cidrContains(c, parseIp('10.245.0.0')));
  assert.ok(!cidrContains(c, parseIp('::1')));
  assert.equal(parseCidr('10.0.0.0/8').hostBitsSet, false);
  assert.equal(formatCidr(parseCidr('0.0.0.0/0')), '0.0.0.0/0');
  assert.equal(cidrSize(parseCidr('fd00::/64')), 1n << 64n);
  assert.equal(formatIp(cidrLast(parseCidr('fd00:1:2:3:4::/64'))), 'fd00:1:2:3:ffff:ffff:ffff:ffff');
  assert.equal(formatCidr(parseCidr('fd00::1/128')), 'fd00::1/128');
  for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/08', '10.0.0.0/', 'fd00::/129', 'x/8', '/8']) {
    assert.equal(tryParseCidr(bad), undefined, bad);
  }
});
