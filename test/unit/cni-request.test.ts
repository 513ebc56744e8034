import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../../src/model/cni/errors.js';
import { formatResult } from '../../src/model/cni/result.js';
import { parseCniRequest, type CniEnv } from '../../src/model/cni/request.js';
import { LATEST, SUPPORTED_VERSIONS, supportsCommand, type CniCommand, type CniVersion } from '../../src/model/cni/versions.js';

const CONTAINER = '3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755';
const PREV = { interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/cni-1' }], ips: [{ address: '10.0.0.5/24', interface: 0 }] };

function env(command: string, extra: CniEnv = {}): CniEnv {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: CONTAINER,
    CNI_NETNS: '/var/run/netns/cni-1',
    CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=' + CONTAINER + ';K8S_POD_UID=u-1',
    CNI_PATH: '/opt/cni/bin',
    ...extra,
  };
}

// A config suitable for the command: CHECK carries prevResult, GC the attachment list.
function config(v: CniVersion, command: string, extra: Record<string, unknown> = {}): string {
  const conf: Record<string, unknown> = { cniVersion: v, name: 'fast-net', type: 'fast', ...extra };
  if (command === 'CHECK' || command === 'DEL') conf['prevResult'] = formatResult(PREV, v);
  if (command === 'GC') conf['cni.dev/valid-attachments'] = [{ containerID: CONTAINER, ifname: 'eth0' }];
  return JSON.stringify(conf);
}

function expectError(e: CniEnv, stdin: string | Buffer, code: number, pattern: RegExp, label: string): void {
  assert.throws(
    () => parseCniRequest(e, stdin),
    (err: unknown) => {
      assert.ok(err instanceof CniError, `${label}: expected CniError, got ${String(err)}`);
      assert.equal(err.code, code, `${label}: code (message: ${err.message})`);
      assert.match(err.message, pattern, label);
      return true;
    },
  );
}

const NETWORK_COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'] as const;

test('every command each version allows parses into a request', () => {
  for (const v of SUPPORTED_VERSIONS) {
    for (const command of NETWORK_COMMANDS) {
      if (!supportsCommand(v, command)) continue;
      const req = parseCniRequest(env(command), config(v, command));
      assert.equal(req.command, command);
      assert.equal(req.cniVersion, v);
      assert.equal(req.config?.cniVersion, v);
      assert.equal(req.config?.name, 'fast-net');
      assert.equal(req.path, '/opt/cni/bin');
      const attachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
      assert.equal(req.containerId, attachment ? CONTAINER : '', `${v} ${command}`);
      assert.equal(req.ifName, attachment ? 'eth0' : '');
      assert.equal(req.netns, attachment ? '/var/run/netns/cni-1' : '');
      assert.equal(req.args.podName, attachment ? 'web-0' : undefined);
      assert.equal(req.args.podNamespace, attachment ? 'default' : undefined);
      assert.equal(req.args.podUid, attachment ? 'u-1' : undefined);
      assert.equal(req.args.podInfraContainerId, attachment ? CONTAINER : undefined);
    }
  }
});

test('CHECK and DEL expose the parsed prevResult; GC the valid attachments', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const del = parseCniRequest(env('DEL'), config(v, 'DEL'));
    assert.deepEqual(del.config?.prevResult, PREV);
    if (supportsCommand(v, 'CHECK')) assert.deepEqual(parseCniRequest(env('CHECK'), config(v, 'CHECK')).config?.prevResult, PREV);
    if (supportsCommand(v, 'GC')) {
      assert.deepEqual(parseCniRequest(env('GC'), config(v, 'GC')).config?.validAttachments, [{ containerID: CONTAINER, ifname: 'eth0' }]);
    }
  }
});

test('commands a version predates are error 1 naming the command and the version it needs', () => {
  const cases: Array<[CniVersion, CniCommand, string]> = [];
  for (const v of SUPPORTED_VERSIONS) {
    for (const command of NETWORK_COMMANDS) if (!supportsCommand(v, command)) cases.push([v, command, command === 'CHECK' ? '0.4.0' : '1.1.0']);
  }
  // 0.3.x lack CHECK, GC and STATUS; 0.4.0 and 1.0.0 lack GC and STATUS.
  assert.equal(cases.length, 2 * 3 + 2 * 2);
  for (const [v, command, needs] of cases) {
    const pattern = new RegExp(`config version ${v.replace(/\./g, '\\.')} does not allow ${command}; ${command} needs CNI version ${needs.replace(/\./g, '\\.')}`);
    expectError(env(command), config(v, command), 1, pattern, `${v} ${command}`);
    // The version floor is reported before field errors.
    expectError(env(command), config(v, command, { mtu: 'x' }), 1, /does not allow/, `${v} ${command} with bad mtu`);
  }
});

test('CHECK without prevResult is error 7', () => {
  for (const v of SUPPORTED_VERSIONS.filter((x) => supportsCommand(x, 'CHECK'))) {
    expectError(env('CHECK'), JSON.stringify({ cniVersion: v, name: 'n', type: 'fast' }), 7, /CHECK requires prevResult/, v);
  }
});

test('DEL and ADD do not need prevResult', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const plain = JSON.stringify({ cniVersion: v, name: 'n', type: 'fast' });
    assert.equal(parseCniRequest(env('DEL'), plain).config?.prevResult, undefined);
    assert.equal(parseCniRequest(env('ADD'), plain).config?.prevResult, undefined);
  }
});

test('GC without a valid-attachments list is error 7; the legacy key is enough', () => {
  expectError(env('GC'), JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'fast' }), 7, /GC requires cni\.dev\/valid-attachments/, 'gc');
  const legacy = JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'fast', 'cni.dev/attachments': [] });
  assert.deepEqual(parseCniRequest(env('GC'), legacy).config?.validAttachments, []);
});

test('missing CNI_COMMAND or an unknown one is error 4 naming the variable', () => {
  for (const v of SUPPORTED_VERSIONS) {
    expectError(env('', {}), config(v, 'ADD'), 4, /CNI_COMMAND is missing/, v);
    const { CNI_COMMAND: _omit, ...withoutCommand } = env('ADD');
    expectError(withoutCommand, config(v, 'ADD'), 4, /CNI_COMMAND is missing/, v);
    for (const bad of ['add', 'GET', 'DELETE', 'ADD ']) {
      expectError(env(bad), config(v, 'ADD'), 4, new RegExp(`CNI_COMMAND "${bad}" is unknown; expected one of ADD, DEL, CHECK, VERSION, GC, STATUS`), bad);
    }
  }
});

test('required variables per command; missing ones are error 4 and all named', () => {
  const needs: Record<string, string[]> = {
    ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
    GC: [],
    STATUS: [],
  };
  for (const v of SUPPORTED_VERSIONS) {
    for (const command of NETWORK_COMMANDS) {
      if (!supportsCommand(v, command)) continue;
      const stdin = config(v, command);
      const bare: CniEnv = { CNI_COMMAND: command };
      if (needs[command]!.length === 0) {
        assert.equal(parseCniRequest(bare, stdin).command, command);
        continue;
      }
      expectError(bare, stdin, 4, new RegExp(`required environment variables missing: ${needs[command]!.join(', ')}$`), `${v} ${command}`);
      for (const name of needs[command]!) {
        // Unset and blank are the same to the protocol.
        expectError(env(command, { [name]: undefined }), stdin, 4, new RegExp(`missing: ${name}$`), `${v} ${command} -${name}`);
        expectError(env(command, { [name]: '' }), stdin, 4, new RegExp(`missing: ${name}$`), `${v} ${command} blank ${name}`);
      }
    }
  }
});

test('DEL may omit CNI_NETNS', () => {
  for (const v of SUPPORTED_VERSIONS) {
    assert.equal(parseCniRequest(env('DEL', { CNI_NETNS: undefined }), config(v, 'DEL')).netns, '');
  }
});

test('container ID rules: alphanumeric start, then alphanumerics, "_", "." or "-"; else error 4', () => {
  const good = ['a', '0', 'abc-DEF_1.2', CONTAINER, 'x'.repeat(500)];
  const bad = ['-abc', '_abc', '.abc', 'a b', 'a/b', 'a:b', 'a;b', 'ab\n', 'é', 'a\0b'];
  for (const v of SUPPORTED_VERSIONS) {
    for (const id of good) assert.equal(parseCniRequest(env('ADD', { CNI_CONTAINERID: id }), config(v, 'ADD')).containerId, id);
    for (const id of bad) {
      expectError(env('ADD', { CNI_CONTAINERID: id }), config(v, 'ADD'), 4, /CNI_CONTAINERID must start with a letter or digit/, `${v} ${JSON.stringify(id)}`);
      expectError(env('DEL', { CNI_CONTAINERID: id }), config(v, 'DEL'), 4, /CNI_CONTAINERID/, `${v} DEL ${JSON.stringify(id)}`);
    }
  }
});

test('interface name rules: 1-15 bytes, not "." or "..", no "/", ":", whitespace; else error 4', () => {
  const good = ['eth0', 'a', 'x'.repeat(15), 'net-1_2.3', 'ünï'];
  const bad: Array<[string, RegExp]> = [
    ['x'.repeat(16), /longer than 15 bytes/],
    ['ü'.repeat(8), /longer than 15 bytes/],
    ['.', /must not be "\." or "\.\."/],
    ['..', /must not be "\." or "\.\."/],
    ['eth/0', /must not contain/],
    ['eth:0', /must not contain/],
    ['eth 0', /must not contain/],
    ['eth\t0', /must not contain/],
    ['eth\u00a00', /must not contain/],
    ['eth\0', /must not contain/],
  ];
  for (const v of SUPPORTED_VERSIONS) {
    for (const name of good) assert.equal(parseCniRequest(env('ADD', { CNI_IFNAME: name }), config(v, 'ADD')).ifName, name);
    for (const [name, pattern] of bad) {
      expectError(env('ADD', { CNI_IFNAME: name }), config(v, 'ADD'), 4, new RegExp(`CNI_IFNAME .*${pattern.source}`), `${v} ${JSON.stringify(name)}`);
    }
  }
});

test('CNI_NETNS must be an absolute path: error 4', () => {
  for (const v of SUPPORTED_VERSIONS) {
    expectError(env('ADD', { CNI_NETNS: 'netns/x' }), config(v, 'ADD'), 4, /CNI_NETNS must be an absolute path/, v);
    expectError(env('DEL', { CNI_NETNS: 'x' }), config(v, 'DEL'), 4, /CNI_NETNS/, v);
    expectError(env('ADD', { CNI_NETNS: '/proc/1/ns/net\0' }), config(v, 'ADD'), 4, /CNI_NETNS must not contain NUL/, v);
  }
});

test('bad CNI_ARGS is error 4 for attachment commands and ignored by GC and STATUS', () => {
  for (const v of SUPPORTED_VERSIONS) {
    expectError(env('ADD', { CNI_ARGS: 'garbage' }), config(v, 'ADD'), 4, /CNI_ARGS/, v);
    expectError(env('DEL', { CNI_ARGS: 'FOO=1' }), config(v, 'DEL'), 4, /unknown key "FOO"/, v);
    if (supportsCommand(v, 'GC')) {
      assert.equal(parseCniRequest(env('GC', { CNI_ARGS: 'garbage' }), config(v, 'GC')).args.values.size, 0);
      assert.equal(parseCniRequest(env('STATUS', { CNI_ARGS: 'garbage' }), config(v, 'STATUS')).args.values.size, 0);
    }
  }
});

test('environment errors come before stdin errors', () => {
  expectError({ CNI_COMMAND: 'ADD' }, '{', 4, /missing/, 'env first');
  expectError(env('ADD', { CNI_IFNAME: '..' }), 'not json', 4, /CNI_IFNAME/, 'ifname first');
});

test('stdin and configuration errors carry their codes through parseCniRequest', () => {
  for (const command of NETWORK_COMMANDS) {
    expectError(env(command), '', 6, /empty/, command);
    expectError(env(command), '{"cniVersion":', 6, /not valid JSON/, command);
    expectError(env(command), Buffer.from([0xc3, 0x28]), 6, /UTF-8/, command);
    expectError(env(command), '[1,2]', 6, /JSON object/, command);
    expectError(env(command), '{"cniVersion":"0.2.0","name":"n","type":"fast"}', 1, /supported versions: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/, command);
    expectError(env(command), '{"name":"n","type":"fast"}', 1, /cniVersion is missing/, command);
    expectError(env(command), '{"cniVersion":"1.1.0","name":"n","type":"flannel"}', 7, /type must be "fast"/, command);
    expectError(env(command), '{"cniVersion":"1.1.0","name":"n n","type":"fast"}', 7, /name "n n"/, command);
  }
});

test('VERSION needs nothing but CNI_COMMAND and never fails on stdin', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const req = parseCniRequest({ CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: v }));
    assert.equal(req.command, 'VERSION');
    assert.equal(req.cniVersion, v);
    assert.equal(req.config, undefined);
  }
  for (const stdin of ['', 'junk', '{"cniVersion":"0.2.0"}', '[]', Buffer.from([0xff])]) {
    const req = parseCniRequest({ CNI_COMMAND: 'VERSION', CNI_ARGS: 'garbage', CNI_IFNAME: '..' }, stdin);
    assert.equal(req.cniVersion, LATEST);
    assert.equal(req.args.values.size, 0);
  }
});

test('GC and STATUS ignore attachment variables even when malformed', () => {
  const req = parseCniRequest(env('STATUS', { CNI_IFNAME: 'bad/name', CNI_CONTAINERID: '-x', CNI_NETNS: 'rel' }), config('1.1.0', 'STATUS'));
  assert.equal(req.ifName, '');
  assert.equal(req.containerId, '');
  assert.equal(req.netns, '');
});

test('env is read by own keys only', () => {
  const inherited = Object.create({ CNI_COMMAND: 'ADD' }) as CniEnv;
  expectError(inherited, config('1.0.0', 'ADD'), 4, /CNI_COMMAND is missing/, 'inherited');
});
