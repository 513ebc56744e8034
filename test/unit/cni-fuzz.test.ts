// Property/fuzz tests: parseCniRequest must either return a coherent request or throw a
// CniError carrying one of the spec's codes, whatever the runtime (or an attacker with write
// access to a config file) hands it. Any other exception would crash the agent's handler
// and surface to the runtime as an unstructured failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CniError, SPEC_ERROR_CODES } from '../../src/model/cni/errors.js';
import { isValidContainerId, isValidInterfaceName } from '../../src/model/cni/identifiers.js';
import { formatResult } from '../../src/model/cni/result.js';
import { parseCniRequest, type CniEnv, type CniRequest } from '../../src/model/cni/request.js';
import { CNI_COMMANDS, isSupportedVersion, SUPPORTED_VERSIONS, supportsCommand, type CniVersion } from '../../src/model/cni/versions.js';

const RUNS = 3000;

function checkRequest(req: CniRequest): void {
  assert.ok((CNI_COMMANDS as readonly string[]).includes(req.command));
  assert.ok(isSupportedVersion(req.cniVersion));
  assert.ok(req.args.values instanceof Map);
  if (req.command === 'VERSION') {
    assert.equal(req.config, undefined);
    return;
  }
  assert.equal(req.config.type, 'fast');
  assert.equal(req.config.cniVersion, req.cniVersion);
  assert.ok(supportsCommand(req.cniVersion, req.command));
  if (req.command === 'ADD' || req.command === 'CHECK' || req.command === 'DEL') {
    assert.ok(isValidContainerId(req.containerId));
    assert.ok(isValidInterfaceName(req.ifName));
  }
  if (req.command === 'ADD' || req.command === 'CHECK') assert.ok(req.netns.startsWith('/'));
  if (req.command === 'CHECK') assert.ok(req.config.prevResult !== undefined);
  if (req.command === 'GC') assert.ok(req.config.validAttachments !== undefined);
  // The request must be plain data the agent can log or forward.
  JSON.stringify(req);
}

// The invariant every fuzz case checks.
function parsesOrFailsCleanly(env: CniEnv, stdin: Buffer | string): void {
  let req: CniRequest;
  try {
    req = parseCniRequest(env, stdin);
  } catch (e) {
    if (!(e instanceof CniError)) throw new Error(`non-CniError thrown: ${String(e)}`, { cause: e });
    assert.ok(SPEC_ERROR_CODES.includes(e.code), `code ${e.code} is not a spec code (${e.message})`);
    assert.ok(e.msg.length > 0);
    JSON.stringify(e.toJSON('1.1.0'));
    return;
  }
  checkRequest(req);
}

const CONTAINER = 'a1b2c3d4e5f6';

function goodEnv(command: string): CniEnv {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: CONTAINER,
    CNI_NETNS: '/var/run/netns/cni-1',
    CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod',
    CNI_PATH: '/opt/cni/bin',
  };
}

function fullConfig(v: CniVersion): Record<string, unknown> {
  return {
    cniVersion: v,
    name: 'fast-net',
    type: 'fast',
    mtu: 1450,
    agentSocket: '/run/fast/agent.sock',
    pendingDeleteDir: '/var/lib/fast/pending-del',
    ipam: { type: 'fast', pool: ['default'] },
    dns: { nameservers: ['10.96.0.10'] },
    prevResult: formatResult(
      {
        interfaces: [{ name: 'eth0', mac: '0a:58:0a:00:00:05', mtu: 1450, sandbox: '/var/run/netns/cni-1' }],
        ips: [{ address: '10.0.0.5/24', gateway: '10.0.0.1', interface: 0 }, { address: 'fd00::5/64', interface: 0 }],
        routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1', mtu: 1400, scope: 0 }],
        dns: { nameservers: ['10.96.0.10'] },
      },
      v,
    ),
    runtimeConfig: { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }] },
    args: { cni: { ips: ['10.0.0.9'] } },
    'cni.dev/valid-attachments': [{ containerID: CONTAINER, ifname: 'eth0' }],
    'cni.dev/attachments': [{ containerID: CONTAINER, ifname: 'eth0' }],
    disableCheck: false,
    logLevel: 'info',
  };
}

const commandArb = fc.oneof(fc.constantFrom(...CNI_COMMANDS), fc.constantFrom('', 'add', 'GET', 'ADD\0'), fc.string());
const versionArb = fc.constantFrom(...SUPPORTED_VERSIONS);

// Values chosen to sit on or just past the validators' edges, mixed with arbitrary JSON.
const trickyValue = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(
    '', ' ', '.', '..', '/', '\0', '__proto__', 'constructor', 'fast', 'host-local', '10.0.0.1', '10.0.0.1/24', 'fd00::1/129',
    '0.2.0', '1.1.0', 0, -0, 67, 68, 65535, 65536, 1.5, -1, 1e308, Number.MAX_SAFE_INTEGER, true, null, [], {}, [null], [{}],
    'x'.repeat(200), '/'.repeat(200), '\u00a0', '\ud800',
  ),
);

type Path = readonly (string | number)[];

const MUTATION_PATHS: Path[] = [
  ['cniVersion'], ['name'], ['type'], ['mtu'], ['agentSocket'], ['pendingDeleteDir'], ['ipam'], ['ipam', 'type'], ['ipam', 'pool'],
  ['ipam', 'pool', 0], ['dns'], ['dns', 'nameservers'], ['dns', 'nameservers', 0], ['prevResult'], ['prevResult', 'interfaces'],
  ['prevResult', 'interfaces', 0], ['prevResult', 'interfaces', 0, 'name'], ['prevResult', 'interfaces', 0, 'mtu'],
  ['prevResult', 'ips'], ['prevResult', 'ips', 0], ['prevResult', 'ips', 0, 'address'], ['prevResult', 'ips', 0, 'gateway'],
  ['prevResult', 'ips', 0, 'interface'], ['prevResult', 'ips', 0, 'version'], ['prevResult', 'routes', 0, 'dst'],
  ['prevResult', 'routes', 0, 'gw'], ['prevResult', 'routes', 0, 'scope'], ['prevResult', 'dns'], ['runtimeConfig'], ['args'],
  ['cni.dev/valid-attachments'], ['cni.dev/valid-attachments', 0], ['cni.dev/valid-attachments', 0, 'containerID'],
  ['cni.dev/attachments', 0, 'ifname'], ['disableCheck'], ['logLevel'], ['capabilities'],
];

// Sets (or deletes, for undefined) the value at a path, creating nothing: a path whose parent
// is missing is left alone, which is itself a valid mutation outcome.
function mutate(root: Record<string, unknown>, path: Path, value: unknown, remove: boolean): void {
  let node: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    node = (node as Record<string | number, unknown>)[key];
  }
  if (typeof node !== 'object' || node === null) return;
  const last = path[path.length - 1]!;
  const target = node as Record<string | number, unknown>;
  if (remove) delete target[last];
  else target[last] = value;
}

const mutationArb = fc.record({
  path: fc.constantFrom(...MUTATION_PATHS),
  value: trickyValue,
  remove: fc.boolean(),
});

const envArb: fc.Arbitrary<CniEnv> = fc
  .tuple(
    commandArb,
    fc.dictionary(
      fc.oneof(fc.constantFrom('CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH', 'CNI_COMMAND', '__proto__'), fc.string()),
      fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary' }),
        fc.constantFrom('', '.', '..', 'eth0', '/proc/1/ns/net', 'IgnoreUnknown=1', 'a=b=c', ';;', 'x'.repeat(16)),
      ),
      { maxKeys: 8 },
    ),
    fc.boolean(),
  )
  .map(([command, extra, startGood]) => ({ ...(startGood ? goodEnv(command) : { CNI_COMMAND: command }), ...extra }));

test('fuzz: arbitrary JSON values on stdin', () => {
  fc.assert(
    fc.property(fc.constantFrom(...CNI_COMMANDS), fc.jsonValue(), (command, value) => {
      parsesOrFailsCleanly(goodEnv(command), JSON.stringify(value) ?? '');
    }),
    { numRuns: RUNS },
  );
});

test('fuzz: random bytes and strings on stdin', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...CNI_COMMANDS),
      fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), fc.string({ unit: 'binary', maxLength: 512 })),
      (command, stdin) => parsesOrFailsCleanly(goodEnv(command), stdin),
    ),
    { numRuns: RUNS },
  );
});

test('fuzz: valid configs with random structural mutations', () => {
  fc.assert(
    fc.property(fc.constantFrom(...CNI_COMMANDS), versionArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (command, v, mutations) => {
      const conf = fullConfig(v);
      for (const m of mutations) mutate(conf, m.path, m.value, m.remove);
      parsesOrFailsCleanly(goodEnv(command), JSON.stringify(conf));
    }),
    { numRuns: RUNS },
  );
});

test('fuzz: valid configs with random text damage', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...CNI_COMMANDS),
      versionArb,
      fc.nat(),
      fc.nat({ max: 8 }),
      fc.string({ maxLength: 4 }),
      (command, v, at, cut, insert) => {
        const text = JSON.stringify(fullConfig(v));
        const i = at % (text.length + 1);
        parsesOrFailsCleanly(goodEnv(command), text.slice(0, i) + insert + text.slice(i + cut));
      },
    ),
    { numRuns: RUNS },
  );
});

test('fuzz: random environments with valid and mutated configs', () => {
  fc.assert(
    fc.property(envArb, versionArb, fc.option(mutationArb, { nil: undefined }), (env, v, mutation) => {
      const conf = fullConfig(v);
      if (mutation !== undefined) mutate(conf, mutation.path, mutation.value, mutation.remove);
      parsesOrFailsCleanly(env, JSON.stringify(conf));
    }),
    { numRuns: RUNS },
  );
});

test('fuzz sanity: the unmutated config is accepted for every command its version allows', () => {
  for (const v of SUPPORTED_VERSIONS) {
    for (const command of CNI_COMMANDS) {
      if (!supportsCommand(v, command)) continue;
      checkRequest(parseCniRequest(goodEnv(command), JSON.stringify(fullConfig(v))));
    }
  }
});
