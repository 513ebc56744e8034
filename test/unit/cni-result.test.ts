import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CniError } from '../../src/model/cni/errors.js';
import {
  formatResult,
  parsePrevResult,
  resultForVersion,
  type CniResult,
  type ResultRoute,
} from '../../src/model/cni/result.js';
import { SUPPORTED_VERSIONS, type CniVersion } from '../../src/model/cni/versions.js';

const DUAL_STACK: CniResult = {
  interfaces: [
    { name: 'fast1a2b3c', mac: '0a:58:0a:00:00:01' },
    { name: 'eth0', mac: '0a:58:0a:00:00:05', mtu: 1450, sandbox: '/var/run/netns/cni-1234' },
  ],
  ips: [
    { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 1 },
    { address: 'fd00:10:244:1::5/64', gateway: 'fd00:10:244:1::1', interface: 1 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.244.1.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 },
    { dst: '::/0', gw: 'fd00:10:244:1::1' },
  ],
  dns: { nameservers: ['10.96.0.10'], domain: 'cluster.local', search: ['default.svc.cluster.local'], options: ['ndots:5'] },
};

const PRE_1_0 = {
  interfaces: [
    { name: 'fast1a2b3c', mac: '0a:58:0a:00:00:01' },
    { name: 'eth0', mac: '0a:58:0a:00:00:05', sandbox: '/var/run/netns/cni-1234' },
  ],
  ips: [
    { version: '4', address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 1 },
    { version: '6', address: 'fd00:10:244:1::5/64', gateway: 'fd00:10:244:1::1', interface: 1 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.244.1.1' },
    { dst: '::/0', gw: 'fd00:10:244:1::1' },
  ],
  dns: DUAL_STACK.dns,
};

const EXPECTED: Record<CniVersion, unknown> = {
  '0.3.0': { cniVersion: '0.3.0', ...PRE_1_0 },
  '0.3.1': { cniVersion: '0.3.1', ...PRE_1_0 },
  '0.4.0': { cniVersion: '0.4.0', ...PRE_1_0 },
  '1.0.0': {
    cniVersion: '1.0.0',
    interfaces: PRE_1_0.interfaces,
    ips: [
      { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 1 },
      { address: 'fd00:10:244:1::5/64', gateway: 'fd00:10:244:1::1', interface: 1 },
    ],
    routes: PRE_1_0.routes,
    dns: DUAL_STACK.dns,
  },
  '1.1.0': { cniVersion: '1.1.0', ...DUAL_STACK },
};

function expectInvalid(value: unknown, version: string, pattern: RegExp, label: string): void {
  assert.throws(
    () => parsePrevResult(value, version),
    (e: unknown) => {
      assert.ok(e instanceof CniError, `${label}: expected CniError, got ${String(e)}`);
      assert.equal(e.code, 7, `${label}: ${e.message}`);
      assert.match(e.message, pattern, label);
      return true;
    },
  );
}

test('formatResult gives each version its exact shape, IPv4 and IPv6', () => {
  for (const v of SUPPORTED_VERSIONS) {
    assert.deepStrictEqual(JSON.parse(JSON.stringify(formatResult(DUAL_STACK, v))), EXPECTED[v], v);
  }
});

test('output keys follow the spec order', () => {
  const pre = JSON.stringify(formatResult(DUAL_STACK, '0.4.0'));
  assert.ok(pre.startsWith('{"cniVersion":"0.4.0","interfaces":['), pre);
  assert.ok(pre.includes('{"version":"4","address":"10.244.1.5/24","gateway":"10.244.1.1","interface":1}'), pre);
  const now = JSON.stringify(formatResult(DUAL_STACK, '1.1.0'));
  assert.ok(now.includes('"routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1","mtu":1400,"advmss":1360,"priority":10,"table":100,"scope":0}'), now);
  assert.ok(now.endsWith('"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}}'), now);
});

test('1.1.0-only fields are dropped for older versions', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const out = formatResult(DUAL_STACK, v);
    const keepsExtended = v === '1.1.0';
    assert.equal(out.interfaces![1]!.mtu !== undefined, keepsExtended, v);
    const route = out.routes![0] as ResultRoute;
    for (const key of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
      assert.equal(route[key] !== undefined, keepsExtended, `${v} ${key}`);
    }
    assert.equal(out.ips!.every((ip) => ip.version !== undefined), v.startsWith('0.'), v);
  }
});

test('an empty result still carries cniVersion and dns', () => {
  for (const v of SUPPORTED_VERSIONS) {
    assert.deepStrictEqual(formatResult({}, v), { cniVersion: v, dns: {} });
    assert.deepStrictEqual(formatResult({ interfaces: [], ips: [], routes: [], dns: {} }, v), { cniVersion: v, dns: {} });
  }
});

test('formatResult copies: changing the output leaves the input alone', () => {
  const input: CniResult = JSON.parse(JSON.stringify(DUAL_STACK)) as CniResult;
  const out = formatResult(input, '1.1.0');
  out.interfaces![0]!.name = 'changed';
  out.dns.nameservers!.push('1.1.1.1');
  assert.deepStrictEqual(input, DUAL_STACK);
});

test('formatResult refuses a version we do not speak with error 1', () => {
  for (const v of ['0.2.0', '1.2.0', '']) {
    assert.throws(() => formatResult(DUAL_STACK, v), (e: unknown) => e instanceof CniError && e.code === 1);
  }
});

test('formatResult with a malformed address is an internal error', () => {
  assert.throws(
    () => formatResult({ ips: [{ address: 'nonsense' }] }, '0.4.0'),
    (e: unknown) => e instanceof CniError && e.code === 104,
  );
});

test('formatResult then parsePrevResult round-trips in every version', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const wire = JSON.parse(JSON.stringify(formatResult(DUAL_STACK, v))) as unknown;
    assert.deepStrictEqual(parsePrevResult(wire, v), resultForVersion(DUAL_STACK, v), v);
  }
  assert.deepStrictEqual(parsePrevResult(JSON.parse(JSON.stringify(formatResult(DUAL_STACK, '1.1.0'))), '1.1.0'), DUAL_STACK);
});

test('IPAM-style results without interfaces parse', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const r = parsePrevResult({ cniVersion: v, ips: [{ address: '192.168.0.2/16' }], dns: {} }, v);
    assert.deepStrictEqual(r, { ips: [{ address: '192.168.0.2/16' }] });
  }
});

test('a missing pre-1.0 ip version label is derived; a wrong one is refused', () => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
    assert.deepStrictEqual(parsePrevResult({ ips: [{ address: 'fd00::1/64' }] }, v), { ips: [{ address: 'fd00::1/64' }] });
    expectInvalid({ ips: [{ version: '4', address: 'fd00::1/64' }] }, v, /ips\[0\]\.version is "4" but the address is IPv6/, v);
    expectInvalid({ ips: [{ version: 4, address: '10.0.0.1/8' }] }, v, /ips\[0\]\.version must be "4" or "6"/, v);
  }
});

test('fields a version does not define are ignored when reading it', () => {
  const withExtras = {
    interfaces: [{ name: 'eth0', mtu: 'not-a-number', socketPath: 5 }],
    routes: [{ dst: '10.0.0.0/8', table: 'x' }],
  };
  for (const v of SUPPORTED_VERSIONS.filter((x) => x !== '1.1.0')) {
    assert.deepStrictEqual(parsePrevResult(withExtras, v), { interfaces: [{ name: 'eth0' }], routes: [{ dst: '10.0.0.0/8' }] });
  }
  expectInvalid(withExtras, '1.1.0', /prevResult\.interfaces\[0\]\.mtu must be an integer/, '1.1.0');
});

const BAD_RESULTS: Array<[string, unknown, RegExp]> = [
  ['array', [], /prevResult must be an object, got an array/],
  ['null', null, /prevResult must be an object, got null/],
  ['interfaces not array', { interfaces: {} }, /prevResult\.interfaces must be an array/],
  ['interface not object', { interfaces: ['eth0'] }, /prevResult\.interfaces\[0\] must be an object/],
  ['interface without name', { interfaces: [{ mac: 'aa' }] }, /prevResult\.interfaces\[0\]\.name is required/],
  ['interface empty name', { interfaces: [{ name: '' }] }, /prevResult\.interfaces\[0\]\.name must not be empty/],
  ['interface numeric mac', { interfaces: [{ name: 'e', mac: 1 }] }, /prevResult\.interfaces\[0\]\.mac must be a string/],
  ['interface numeric sandbox', { interfaces: [{ name: 'e', sandbox: 1 }] }, /sandbox must be a string/],
  ['ips not array', { ips: 'x' }, /prevResult\.ips must be an array/],
  ['ip without address', { ips: [{}] }, /prevResult\.ips\[0\]\.address is required/],
  ['ip without prefix', { ips: [{ address: '10.0.0.1' }] }, /address must be an address in CIDR form, got "10\.0\.0\.1"/],
  ['ip bad prefix', { ips: [{ address: '10.0.0.1/33' }] }, /CIDR form/],
  ['ip6 bad prefix', { ips: [{ address: 'fd00::1/129' }] }, /CIDR form/],
  ['ip with zone', { ips: [{ address: 'fe80::1%eth0/64' }] }, /CIDR form/],
  ['ip garbage', { ips: [{ address: 'banana/24' }] }, /CIDR form/],
  ['gateway garbage', { ips: [{ address: '10.0.0.2/24', gateway: 'x' }] }, /ips\[0\]\.gateway must be an IP address/],
  ['gateway with prefix', { ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1/24' }] }, /gateway must be an IP address/],
  ['gateway family mismatch', { ips: [{ address: '10.0.0.2/24', gateway: 'fd00::1' }] }, /gateway is IPv6 but its address is IPv4/],
  ['interface index without interfaces', { ips: [{ address: '10.0.0.2/24', interface: 0 }] }, /interface is 0 but there are only 0 interfaces/],
  ['interface index out of range', { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24', interface: 1 }] }, /interface is 1 but there are only 1 interfaces/],
  ['negative interface index', { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24', interface: -1 }] }, /interface must be an integer/],
  ['fractional interface index', { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24', interface: 0.5 }] }, /interface must be an integer/],
  ['string interface index', { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24', interface: '0' }] }, /interface must be an integer/],
  ['route without dst', { routes: [{ gw: '10.0.0.1' }] }, /prevResult\.routes\[0\]\.dst is required/],
  ['route bare dst', { routes: [{ dst: '10.0.0.0' }] }, /routes\[0\]\.dst must be an address in CIDR form/],
  ['route gw family mismatch', { routes: [{ dst: '::/0', gw: '10.0.0.1' }] }, /routes\[0\]\.gw is IPv4 but its address is IPv6/],
  ['dns not object', { dns: [] }, /prevResult\.dns must be an object/],
  ['dns nameservers item', { dns: { nameservers: [1] } }, /prevResult\.dns\.nameservers\[0\] must be a string/],
  ['dns domain number', { dns: { domain: 1 } }, /prevResult\.dns\.domain must be a string/],
  ['dns search string', { dns: { search: 'a' } }, /prevResult\.dns\.search must be an array/],
];

test('malformed prevResults are error 7 naming the field, in every version', () => {
  for (const v of SUPPORTED_VERSIONS) {
    for (const [label, value, pattern] of BAD_RESULTS) expectInvalid(value, v, pattern, `${v}: ${label}`);
  }
});

test('1.1.0 route and interface fields are range-checked', () => {
  expectInvalid({ routes: [{ dst: '10.0.0.0/8', scope: 256 }] }, '1.1.0', /scope must be an integer from 0 to 255/, 'scope');
  expectInvalid({ routes: [{ dst: '10.0.0.0/8', table: -1 }] }, '1.1.0', /table must be an integer/, 'table');
  expectInvalid({ routes: [{ dst: '10.0.0.0/8', mtu: 1.5 }] }, '1.1.0', /mtu must be an integer/, 'mtu');
  expectInvalid({ interfaces: [{ name: 'e', pciID: 1 }] }, '1.1.0', /pciID must be a string/, 'pciID');
});

test('parsePrevResult refuses a version we do not speak with error 1', () => {
  assert.throws(() => parsePrevResult({}, '0.2.0'), (e: unknown) => e instanceof CniError && e.code === 1);
});

// Arbitrary well-formed results for the property tests.
const ipv4Cidr = fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, p]) => `${a}/${p}`);
const ipv6Cidr = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([a, p]) => `${a}/${p}`);
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

function strip<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

const interfaceArb = fc
  .record({
    name: fc.string({ minLength: 1, maxLength: 15 }),
    mac: maybe(fc.string()),
    mtu: maybe(u32),
    sandbox: maybe(fc.string()),
    socketPath: maybe(fc.string()),
    pciID: maybe(fc.string()),
  })
  .map(strip);

const ipArb = (interfaceCount: number) =>
  fc
    .oneof(
      fc.tuple(ipv4Cidr, maybe(fc.ipV4())),
      fc.tuple(ipv6Cidr, maybe(fc.ipV6())),
    )
    .chain(([address, gateway]) =>
      fc.record({
        address: fc.constant(address),
        gateway: fc.constant(gateway),
        interface: interfaceCount === 0 ? fc.constant(undefined) : maybe(fc.integer({ min: 0, max: interfaceCount - 1 })),
      }),
    )
    .map(strip);

const routeArb = fc
  .oneof(fc.tuple(ipv4Cidr, maybe(fc.ipV4())), fc.tuple(ipv6Cidr, maybe(fc.ipV6())))
  .chain(([dst, gw]) =>
    fc.record({
      dst: fc.constant(dst),
      gw: fc.constant(gw),
      mtu: maybe(u32),
      advmss: maybe(u32),
      priority: maybe(u32),
      table: maybe(u32),
      scope: maybe(fc.integer({ min: 0, max: 255 })),
    }),
  )
  .map(strip);

const dnsArb = fc
  .record({
    nameservers: maybe(fc.array(fc.string())),
    domain: maybe(fc.string()),
    search: maybe(fc.array(fc.string())),
    options: maybe(fc.array(fc.string())),
  })
  .map(strip);

const resultArb: fc.Arbitrary<CniResult> = fc
  .array(interfaceArb, { maxLength: 3 })
  .chain((interfaces) =>
    fc.record({
      interfaces: fc.constant(interfaces),
      ips: fc.array(ipArb(interfaces.length), { maxLength: 4 }),
      routes: fc.array(routeArb, { maxLength: 4 }),
      dns: maybe(dnsArb),
    }),
  )
  .map((r) => strip(r) as CniResult);

test('property: every generated result round-trips through every version', () => {
  fc.assert(
    fc.property(resultArb, fc.constantFrom(...SUPPORTED_VERSIONS), (result, v) => {
      const wire = JSON.parse(JSON.stringify(formatResult(result, v))) as unknown;
      assert.deepStrictEqual(parsePrevResult(wire, v), resultForVersion(result, v));
    }),
    { numRuns: 2000 },
  );
});

test('property: a version-shaped result is a fixed point of reformatting', () => {
  fc.assert(
    fc.property(resultArb, fc.constantFrom(...SUPPORTED_VERSIONS), (result, v) => {
      const once = formatResult(result, v);
      const twice = formatResult(parsePrevResult(JSON.parse(JSON.stringify(once)), v), v);
      assert.deepStrictEqual(twice, once);
    }),
    { numRuns: 1000 },
  );
});
