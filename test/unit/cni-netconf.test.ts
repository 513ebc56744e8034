import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../../src/model/cni/errors.js';
import {
  decodeNetConf,
  ipamPoolNames,
  parseNetConf,
  resolveAgentSocket,
  resolvePendingDeleteDir,
} from '../../src/model/cni/netconf.js';
import { formatResult, type CniResult } from '../../src/model/cni/result.js';
import { SUPPORTED_VERSIONS, type CniVersion } from '../../src/model/cni/versions.js';

type Json = Record<string, unknown>;

function minimal(v: string): Json {
  return { cniVersion: v, name: 'fast-net', type: 'fast' };
}

const PREV: CniResult = {
  interfaces: [{ name: 'eth0', mac: '0a:58:0a:00:00:05', sandbox: '/var/run/netns/cni-1' }],
  ips: [
    { address: '10.0.0.5/24', gateway: '10.0.0.1', interface: 0 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 0 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
  dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] },
};

function full(v: CniVersion): Json {
  return {
    cniVersion: v,
    name: 'fast.net_1-a',
    type: 'fast',
    mtu: 1450,
    agentSocket: '/run/fast/agent.sock',
    pendingDeleteDir: '/var/lib/fast/pending-del',
    ipam: { type: 'fast', pool: ['default', 'v6'], extra: { kept: true } },
    dns: { nameservers: ['10.96.0.10'], domain: 'cluster.local', search: ['svc'], options: ['ndots:5'] },
    prevResult: JSON.parse(JSON.stringify(formatResult(PREV, v))),
    runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], bandwidth: { ingressRate: 1000 } },
    args: { cni: { ips: ['10.0.0.9'] } },
    capabilities: { portMappings: true },
    'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }],
    disableCheck: false,
    disableGC: false,
    logLevel: 'debug',
    someOtherPluginKey: 'ignored',
  };
}

function expectError(value: unknown, code: number, pattern: RegExp, label: string): void {
  assert.throws(
    () => parseNetConf(value),
    (e: unknown) => {
      assert.ok(e instanceof CniError, `${label}: expected CniError, got ${String(e)}`);
      assert.equal(e.code, code, `${label}: code (message: ${e.message})`);
      assert.match(e.message, pattern, label);
      return true;
    },
  );
}

test('a minimal config of every version parses', () => {
  for (const v of SUPPORTED_VERSIONS) {
    assert.deepEqual(parseNetConf(minimal(v)), { cniVersion: v, name: 'fast-net', type: 'fast' });
  }
});

test('a full config of every version parses with every field', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const conf = parseNetConf(full(v));
    assert.equal(conf.cniVersion, v);
    assert.equal(conf.name, 'fast.net_1-a');
    assert.equal(conf.mtu, 1450);
    assert.equal(conf.agentSocket, '/run/fast/agent.sock');
    assert.equal(conf.pendingDeleteDir, '/var/lib/fast/pending-del');
    assert.deepEqual(conf.ipam, { type: 'fast', pool: ['default', 'v6'], extra: { kept: true } });
    assert.deepEqual(ipamPoolNames(conf), ['default', 'v6']);
    assert.deepEqual(conf.dns, { nameservers: ['10.96.0.10'], domain: 'cluster.local', search: ['svc'], options: ['ndots:5'] });
    assert.deepEqual(conf.prevResult, PREV, v);
    assert.deepEqual(conf.runtimeConfig, full(v).runtimeConfig);
    assert.deepEqual(conf.args, { cni: { ips: ['10.0.0.9'] } });
    assert.deepEqual(conf.capabilities, { portMappings: true });
    assert.deepEqual(conf.validAttachments, [{ containerID: 'c1', ifname: 'eth0' }]);
    assert.equal(conf.disableCheck, false);
    assert.equal(conf.disableGC, false);
    assert.equal(conf.logLevel, 'debug');
    assert.ok(!('someOtherPluginKey' in conf));
  }
});

test('decodeNetConf reads bytes and strings alike', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const text = JSON.stringify(full(v));
    assert.deepEqual(decodeNetConf(Buffer.from(text)), decodeNetConf(text));
  }
});

test('undecodable stdin is error 6', () => {
  const cases: Array<[Buffer | string, RegExp]> = [
    ['', /empty/],
    ['   \n', /empty/],
    ['{', /not valid JSON/],
    ['{"cniVersion": "1.0.0",}', /not valid JSON/],
    [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /UTF-8/],
    ['\ufeff{}', /not valid JSON/],
  ];
  for (const [stdin, pattern] of cases) {
    assert.throws(
      () => decodeNetConf(stdin),
      (e: unknown) => e instanceof CniError && e.code === 6 && pattern.test(e.message),
      JSON.stringify(stdin.toString()),
    );
  }
});

test('a JSON value that is not an object is error 6', () => {
  for (const value of [null, [], [minimal('1.0.0')], 'text', 42, true]) {
    expectError(value, 6, /must be a JSON object/, JSON.stringify(value));
  }
});

test('unsupported or missing cniVersion is error 1 listing the supported versions', () => {
  for (const bad of ['0.1.0', '0.2.0', '1.2.0', '2.0.0', '', 'latest', '1.0']) {
    expectError({ ...minimal('x'), cniVersion: bad }, 1, /supported versions: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/, bad);
  }
  const missing: Json = { name: 'n', type: 'fast' };
  expectError(missing, 1, /cniVersion is missing.*0\.1\.0.*supported versions/, 'missing');
});

test('a non-string cniVersion is error 7 naming the field', () => {
  for (const bad of [1, 1.1, null, ['1.0.0'], { v: 1 }, true]) {
    expectError({ ...minimal('x'), cniVersion: bad }, 7, /cniVersion must be a string/, JSON.stringify(bad));
  }
});

test('version is checked before other fields', () => {
  expectError({ cniVersion: '0.2.0', name: 'bad name', type: 'other' }, 1, /0\.2\.0/, 'old version');
});

// Every documented configuration error, for every version.
const INVALID: Array<[string, (c: Json) => void, RegExp]> = [
  ['missing name', (c) => delete c['name'], /name is required/],
  ['numeric name', (c) => (c['name'] = 5), /name must be a string, got a number/],
  ['empty name', (c) => (c['name'] = ''), /name "" is empty/],
  ['name with space', (c) => (c['name'] = 'my net'), /name "my net" must start with a letter or digit/],
  ['name starting with dot', (c) => (c['name'] = '.net'), /name "\.net"/],
  ['name with slash', (c) => (c['name'] = 'a/b'), /name "a\/b"/],
  ['missing type', (c) => delete c['type'], /type is required/],
  ['foreign type', (c) => (c['type'] = 'bridge'), /type must be "fast", got "bridge"/],
  ['numeric type', (c) => (c['type'] = 1), /type must be a string/],
  ['mtu too small', (c) => (c['mtu'] = 67), /mtu must be an integer from 68 to 65535, got 67/],
  ['mtu too large', (c) => (c['mtu'] = 65536), /mtu must be an integer from 68 to 65535, got 65536/],
  ['mtu zero', (c) => (c['mtu'] = 0), /mtu must be an integer/],
  ['mtu negative', (c) => (c['mtu'] = -1500), /mtu must be an integer/],
  ['mtu fractional', (c) => (c['mtu'] = 1500.5), /mtu must be an integer.*1500\.5/],
  ['mtu as string', (c) => (c['mtu'] = '1500'), /mtu must be an integer.*a string/],
  ['relative agentSocket', (c) => (c['agentSocket'] = 'run/fast.sock'), /agentSocket must be an absolute path/],
  ['numeric agentSocket', (c) => (c['agentSocket'] = 7), /agentSocket must be a string/],
  ['agentSocket too long', (c) => (c['agentSocket'] = '/' + 'a'.repeat(107)), /agentSocket must be at most 107 bytes/],
  ['agentSocket with NUL', (c) => (c['agentSocket'] = '/run/a\0b'), /agentSocket must not contain NUL/],
  ['relative pendingDeleteDir', (c) => (c['pendingDeleteDir'] = 'var/lib'), /pendingDeleteDir must be an absolute path/],
  ['pendingDeleteDir as array', (c) => (c['pendingDeleteDir'] = ['/a']), /pendingDeleteDir must be a string, got an array/],
  ['ipam as string', (c) => (c['ipam'] = 'fast'), /ipam must be an object, got a string/],
  ['ipam as array', (c) => (c['ipam'] = []), /ipam must be an object, got an array/],
  ['foreign ipam type', (c) => (c['ipam'] = { type: 'host-local' }), /ipam\.type must be absent or "fast", got "host-local"/],
  ['numeric ipam type', (c) => (c['ipam'] = { type: 3 }), /ipam\.type must be a string/],
  ['numeric pool', (c) => (c['ipam'] = { pool: 3 }), /ipam\.pool must be a pool name or an array of pool names/],
  ['empty pool name', (c) => (c['ipam'] = { pool: '' }), /ipam\.pool must not be empty/],
  ['empty pool list', (c) => (c['ipam'] = { pool: [] }), /ipam\.pool must not be an empty array/],
  ['non-string pool entry', (c) => (c['ipam'] = { pool: ['a', 1] }), /ipam\.pool\[1\] must be a pool name string/],
  ['runtimeConfig as array', (c) => (c['runtimeConfig'] = []), /runtimeConfig must be an object/],
  ['args as string', (c) => (c['args'] = 'K=V'), /args must be an object/],
  ['capabilities as bool', (c) => (c['capabilities'] = true), /capabilities must be an object/],
  ['disableCheck as string', (c) => (c['disableCheck'] = 'true'), /disableCheck must be a boolean/],
  ['disableGC as number', (c) => (c['disableGC'] = 1), /disableGC must be a boolean/],
  ['unknown logLevel', (c) => (c['logLevel'] = 'trace'), /logLevel must be one of "debug", "info", "warn", "error", got "trace"/],
  ['numeric logLevel', (c) => (c['logLevel'] = 3), /logLevel must be one of/],
  ['dns as array', (c) => (c['dns'] = []), /dns must be an object/],
  ['dns nameservers as string', (c) => (c['dns'] = { nameservers: '1.1.1.1' }), /dns\.nameservers must be an array/],
  ['prevResult as string', (c) => (c['prevResult'] = '{}'), /prevResult must be an object, got a string/],
  ['prevResult bad address', (c) => (c['prevResult'] = { ips: [{ address: '10.0.0.300/24' }] }), /prevResult\.ips\[0\]\.address must be an address in CIDR form/],
  ['valid-attachments not array', (c) => (c['cni.dev/valid-attachments'] = {}), /cni\.dev\/valid-attachments must be an array/],
  ['attachments entry without containerID', (c) => (c['cni.dev/attachments'] = [{ ifname: 'eth0' }]), /cni\.dev\/attachments\[0\]\.containerID must be a string/],
];

test('each invalid field is error 7 with a message naming it, in every version', () => {
  for (const v of SUPPORTED_VERSIONS) {
    for (const [label, mutate, pattern] of INVALID) {
      const conf = full(v);
      mutate(conf);
      expectError(conf, 7, pattern, `${v}: ${label}`);
    }
  }
});

test('pool may be a single name', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const conf = parseNetConf({ ...minimal(v), ipam: { pool: 'default' } });
    assert.equal(conf.ipam?.pool, 'default');
    assert.deepEqual(ipamPoolNames(conf), ['default']);
    assert.deepEqual(ipamPoolNames(parseNetConf({ ...minimal(v), ipam: {} })), []);
  }
});

test('MTU bounds are inclusive', () => {
  for (const v of SUPPORTED_VERSIONS) {
    assert.equal(parseNetConf({ ...minimal(v), mtu: 68 }).mtu, 68);
    assert.equal(parseNetConf({ ...minimal(v), mtu: 65535 }).mtu, 65535);
  }
});

test('keys inherited from Object.prototype are not read as config', () => {
  const conf = JSON.parse('{"cniVersion":"1.0.0","name":"n","type":"fast","__proto__":{"mtu":1}}') as unknown;
  assert.equal(parseNetConf(conf).mtu, undefined);
  expectError(JSON.parse('{"__proto__":{"cniVersion":"1.0.0","name":"n","type":"fast"}}'), 1, /missing/, 'proto');
});

test('agent socket and pending-delete directory fall back as documented', () => {
  assert.equal(resolveAgentSocket({ agentSocket: '/x.sock' }, { FAST_AGENT_SOCKET: '/y.sock' }), '/x.sock');
  assert.equal(resolveAgentSocket({}, { FAST_AGENT_SOCKET: '/y.sock' }), '/y.sock');
  assert.equal(resolveAgentSocket(undefined, { FAST_AGENT_SOCKET: '' }), '/run/fast/agent.sock');
  assert.equal(resolvePendingDeleteDir({}), '/var/lib/fast/pending-del');
  assert.equal(resolvePendingDeleteDir({ pendingDeleteDir: '/d' }), '/d');
});
