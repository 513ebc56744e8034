// Every bad input we can think of for the CNI, through the real fast-cni executable against a
// real agent in a node namespace. Each one must fail the way the spec says (exit 1, a single
// JSON error object on stdout with the right code, the request's cniVersion, a msg naming the
// problem) and leave nothing behind: no new links in the node or pod namespaces, no live
// allocation, no endpoint record, no queued delete. A fuzz test then feeds generated malformed
// environments and configurations through the same path.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { TestNode, envFor, ping, FAST_CNI } from '../helpers/node-harness.js';
import { uniqueName, sh, type TestNetns } from '../helpers/netns.js';
import { SPEC_ERROR_CODES, FAST_ERROR_CODES } from '../../src/model/cni/errors.js';

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
const LATEST = '1.1.0';
const WITH_CHECK = ['0.4.0', '1.0.0', '1.1.0'];
const WITHOUT_CHECK = ['0.3.0', '0.3.1'];
const WITHOUT_GC_STATUS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];
const CALL_TIMEOUT_MS = 10_000;

type Env = Record<string, string | undefined>;
type Stdin = string | Buffer | Record<string, unknown> | unknown[];

interface Call {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** The real fast-cni inside the node's namespace, the way a runtime runs it, with a deadline.
 *  FAST_AGENT_SOCKET is always set so a config without a usable agentSocket still reaches
 *  this node's agent (and never a host-wide default). */
function runCni(node: TestNode, env: Env, stdin: Stdin): Call {
  const input = typeof stdin === 'string' || Buffer.isBuffer(stdin) ? stdin : JSON.stringify(stdin);
  const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', FAST_AGENT_SOCKET: node.socketPath };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v.replaceAll('\0', '');
  const r = spawnSync('nsenter', [`--net=${node.ns.path}`, '--', FAST_CNI], {
    input, env: cleanEnv, timeout: CALL_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 << 20,
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { exitCode: r.status, signal: r.signal, timedOut, stdout: r.stdout?.toString('utf8') ?? '', stderr: r.stderr?.toString('utf8') ?? '' };
}

const ERROR_KEYS = new Set(['cniVersion', 'code', 'msg', 'details']);

/** Exit 1 and exactly one JSON error object on stdout, in the spec's shape. */
function parseError(r: Call): { cniVersion: string; code: number; msg: string; details?: string } {
  assert.equal(r.timedOut, false, 'fast-cni hung');
  assert.equal(r.signal, null, `fast-cni died of ${r.signal}`);
  assert.equal(r.exitCode, 1, `exit ${r.exitCode}, stdout ${r.stdout}`);
  let out: unknown;
  assert.doesNotThrow(() => (out = JSON.parse(r.stdout)), `stdout is not one JSON document: ${JSON.stringify(r.stdout)}`);
  assert.ok(typeof out === 'object' && out !== null && !Array.isArray(out), `stdout is not a JSON object: ${r.stdout}`);
  const e = out as Record<string, unknown>;
  for (const k of Object.keys(e)) assert.ok(ERROR_KEYS.has(k), `unexpected key ${k} in ${r.stdout}`);
  assert.equal(typeof e.cniVersion, 'string', r.stdout);
  assert.ok(Number.isInteger(e.code), r.stdout);
  assert.ok(typeof e.msg === 'string' && e.msg.trim() !== '', `empty msg: ${r.stdout}`);
  if (e.details !== undefined) assert.equal(typeof e.details, 'string', r.stdout);
  return e as { cniVersion: string; code: number; msg: string; details?: string };
}

function isKnownCode(code: number): boolean {
  return SPEC_ERROR_CODES.includes(code) || FAST_ERROR_CODES.includes(code);
}

// ---------------------------------------------------------------------------------------------
// Debris: everything an attachment can leave behind, compared before and after each case.

interface NodeState {
  nodeLinks: string[];
  podLinks: Record<string, string[]>;
  activeAllocations: string[];
  endpointFiles: string[];
  pendingDeletes: string[];
}

function linkNames(ns: TestNetns): string[] {
  return (JSON.parse(ns.ip('-j', 'link', 'show')) as Array<{ ifname: string }>).map((l) => l.ifname).sort();
}

function listDir(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

function nodeState(node: TestNode): NodeState {
  const podLinks: Record<string, string[]> = {};
  for (const p of node.pods) podLinks[p.name] = linkNames(p);
  return {
    nodeLinks: linkNames(node.ns),
    podLinks,
    activeAllocations: node.allocationsFile().filter((a) => !a.releasedAt).map((a) => a.address).sort(),
    endpointFiles: listDir(path.join(node.stateDir, 'endpoints')),
    pendingDeletes: listDir(node.pendingDir),
  };
}

function assertNoDebris(node: TestNode, before: NodeState, what: string): void {
  const now = nodeState(node);
  assert.deepEqual(now, before, `${what} left debris`);
  assert.ok(now.nodeLinks.every((n) => !n.startsWith('fst') || before.nodeLinks.includes(n)), 'no new fst* link');
}

function agentAlive(node: TestNode): boolean {
  return node.agent !== undefined && node.agent.exitCode === null && node.agent.signalCode === null;
}

// ---------------------------------------------------------------------------------------------
// The table of bad inputs.

interface Ctx {
  node: TestNode;
  /** A real, empty pod namespace: ADDs that got through validation would wire into it. */
  pod: TestNetns;
}

interface ErrorCase {
  name: string;
  /** The versions the case runs under; the config is node.conf(v) unless stdin says otherwise. */
  versions: readonly string[];
  env(v: string, c: Ctx): Env;
  stdin(v: string, c: Ctx): Stdin;
  code: number;
  msg: RegExp;
  details?: RegExp;
  /**
   * Whether the request's cniVersion can be read (stdin is a JSON object with a supported
   * cniVersion string), so the error must echo it. Otherwise any version we speak (or the
   * request's own string) is acceptable.
   */
  echo: boolean;
  /** Who produces the error: fast-cni itself, the agent's request parsing, or its handlers. */
  stage: 'forwarder' | 'parse' | 'agent';
}

const CTR = 'errcase01';
const add = (c: Ctx, over: Env = {}): Env => ({ ...envFor('ADD', CTR, c.pod.path), ...over });
const conf = (c: Ctx, v: string, extra: Record<string, unknown> = {}) => c.node.conf(v, extra);

/** A prevResult that parses under every version (an address, no interfaces). */
function prevResult(v: string): Record<string, unknown> {
  const ip: Record<string, unknown> = { address: '10.77.0.99/32', gateway: '169.254.1.1' };
  if (v.startsWith('0.')) ip.version = '4';
  return { cniVersion: v, interfaces: [], ips: [ip], routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }] };
}

function cases(): ErrorCase[] {
  const all = VERSIONS;
  const env4 = (name: string, over: (c: Ctx) => Env, msg: RegExp, stage: ErrorCase['stage'] = 'parse', details?: RegExp): ErrorCase => ({
    name, versions: all, env: (_v, c) => over(c), stdin: (v, c) => conf(c, v), code: 4, msg, echo: true, stage, details,
  });
  const bad6 = (name: string, stdin: (v: string, c: Ctx) => Stdin, msg: RegExp, versions: readonly string[] = [LATEST]): ErrorCase => ({
    name, versions, env: (_v, c) => add(c), stdin, code: 6, msg, echo: false, stage: 'parse',
  });
  const bad7 = (name: string, extra: Record<string, unknown>, msg: RegExp, command = 'ADD', versions: readonly string[] = all): ErrorCase => ({
    name, versions, env: (_v, c) => add(c, { CNI_COMMAND: command }), stdin: (v, c) => conf(c, v, extra), code: 7, msg, echo: true, stage: 'parse',
  });
  const badVersion = (version: string): ErrorCase => ({
    name: `unknown cniVersion ${JSON.stringify(version)}`, versions: [LATEST], env: (_v, c) => add(c),
    stdin: (_v, c) => conf(c, version), code: 1, msg: new RegExp(`incompatible CNI version ${JSON.stringify(version).replace(/[.]/g, '\\.')}`), echo: false, stage: 'parse',
  });
  return [
    // Environment (code 4).
    env4('missing CNI_COMMAND', (c) => add(c, { CNI_COMMAND: undefined }), /CNI_COMMAND/, 'forwarder'),
    env4('empty CNI_COMMAND', (c) => add(c, { CNI_COMMAND: '' }), /CNI_COMMAND/, 'forwarder'),
    env4('unknown CNI_COMMAND', (c) => add(c, { CNI_COMMAND: 'FROB' }), /CNI_COMMAND "FROB" is unknown/),
    env4('lower-case CNI_COMMAND', (c) => add(c, { CNI_COMMAND: 'add' }), /CNI_COMMAND "add" is unknown/),
    env4('ADD without CNI_CONTAINERID', (c) => add(c, { CNI_CONTAINERID: undefined }), /CNI_CONTAINERID/),
    env4('ADD without CNI_IFNAME', (c) => add(c, { CNI_IFNAME: undefined }), /CNI_IFNAME/),
    env4('ADD without CNI_NETNS', (c) => add(c, { CNI_NETNS: undefined }), /CNI_NETNS/),
    env4('ADD with an empty CNI_NETNS', (c) => add(c, { CNI_NETNS: '' }), /CNI_NETNS/),
    env4('ADD without any attachment variable', (c) => add(c, { CNI_CONTAINERID: undefined, CNI_IFNAME: undefined, CNI_NETNS: undefined }), /CNI_CONTAINERID.*CNI_NETNS.*CNI_IFNAME/),
    env4('CHECK without CNI_CONTAINERID', (c) => add(c, { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: undefined }), /CNI_CONTAINERID/),
    env4('DEL without CNI_IFNAME', (c) => add(c, { CNI_COMMAND: 'DEL', CNI_IFNAME: undefined }), /CNI_IFNAME/),
    env4('container id with a slash', (c) => add(c, { CNI_CONTAINERID: 'bad/id' }), /CNI_CONTAINERID/, 'parse', /bad\/id/),
    env4('container id with a space', (c) => add(c, { CNI_CONTAINERID: 'bad id' }), /CNI_CONTAINERID/),
    env4('container id starting with a dash', (c) => add(c, { CNI_CONTAINERID: '-rf' }), /CNI_CONTAINERID/),
    env4('container id with shell characters', (c) => add(c, { CNI_CONTAINERID: 'ctr;reboot' }), /CNI_CONTAINERID/),
    env4('DEL with an invalid container id', (c) => add(c, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: '../../etc' }), /CNI_CONTAINERID/),
    env4('interface name of 16 bytes', (c) => add(c, { CNI_IFNAME: 'abcdefghijklmnop' }), /CNI_IFNAME .*longer than 15/),
    env4('interface name of 10 characters but 17 bytes of UTF-8', (c) => add(c, { CNI_IFNAME: 'eth' + 'é'.repeat(7) }), /CNI_IFNAME .*longer than 15/),
    env4('interface name with a slash', (c) => add(c, { CNI_IFNAME: 'eth/0' }), /CNI_IFNAME/),
    env4('interface name with a colon', (c) => add(c, { CNI_IFNAME: 'eth0:1' }), /CNI_IFNAME/),
    env4('interface name with a space', (c) => add(c, { CNI_IFNAME: 'eth 0' }), /CNI_IFNAME/),
    env4('interface name ".."', (c) => add(c, { CNI_IFNAME: '..' }), /CNI_IFNAME/),
    env4('relative CNI_NETNS', (c) => add(c, { CNI_NETNS: 'var/run/netns/x' }), /CNI_NETNS/),
    env4('CNI_ARGS pair without "="', (c) => add(c, { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME' }), /CNI_ARGS/),
    env4('CNI_ARGS pair with two "="', (c) => add(c, { CNI_ARGS: 'IgnoreUnknown=1;a=b=c' }), /CNI_ARGS/),
    env4('CNI_ARGS unknown key without IgnoreUnknown', (c) => add(c, { CNI_ARGS: 'FOO=bar' }), /CNI_ARGS .*FOO/),
    env4('CNI_ARGS IgnoreUnknown not a boolean', (c) => add(c, { CNI_ARGS: 'IgnoreUnknown=maybe' }), /IgnoreUnknown/),
    {
      name: 'ADD with a netns path that does not exist', versions: all, env: (_v, c) => add(c, { CNI_NETNS: '/var/run/netns/fast-test-no-such-netns' }),
      stdin: (v, c) => conf(c, v), code: 4, msg: /network namespace/, details: /fast-test-no-such-netns/, echo: true, stage: 'agent',
    },
    // Decoding (code 6).
    bad6('empty stdin', () => '', /empty/),
    bad6('whitespace-only stdin', () => ' \n\t ', /empty/),
    bad6('truncated JSON', (v, c) => JSON.stringify(conf(c, v)).slice(0, 40), /not valid JSON/, all),
    bad6('trailing garbage after JSON', (v, c) => JSON.stringify(conf(c, v)) + ' x', /not valid JSON/, all),
    bad6('two JSON documents', (v, c) => JSON.stringify(conf(c, v)) + JSON.stringify(conf(c, v)), /not valid JSON/, all),
    bad6('single-quoted JSON', () => "{'cniVersion':'1.0.0','name':'n','type':'fast'}", /not valid JSON/),
    bad6('not JSON at all', () => 'cniVersion=1.0.0', /not valid JSON/),
    bad6('JSON with a trailing comma', () => '{"cniVersion":"1.0.0","name":"n","type":"fast",}', /not valid JSON/),
    bad6('a JSON array of the config', (v, c) => [conf(c, v)], /JSON object/, all),
    bad6('JSON null', () => 'null', /JSON object/),
    bad6('a JSON number', () => '42', /JSON object/),
    bad6('a JSON string', () => '"{}"', /JSON object/),
    bad6('bytes that are not UTF-8', () => Buffer.concat([Buffer.from('{"cniVersion":"1.0.0","name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","type":"fast"}')]), /UTF-8/),
    // Version (code 1).
    badVersion('0.1.0'),
    badVersion('0.2.0'),
    badVersion('9.9.9'),
    badVersion('1.2.0'),
    badVersion('1.0'),
    badVersion(''),
    {
      name: 'missing cniVersion', versions: [LATEST], env: (_v, c) => add(c), stdin: (v, c) => ({ ...conf(c, v), cniVersion: undefined }),
      code: 1, msg: /cniVersion is missing/, echo: false, stage: 'parse',
    },
    {
      name: 'CHECK on a version without CHECK', versions: WITHOUT_CHECK, env: (_v, c) => add(c, { CNI_COMMAND: 'CHECK' }),
      stdin: (v, c) => conf(c, v, { prevResult: prevResult(v) }), code: 1, msg: /does not allow CHECK/, echo: true, stage: 'parse',
    },
    {
      name: 'GC on a version without GC', versions: WITHOUT_GC_STATUS, env: () => ({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }),
      stdin: (v, c) => conf(c, v, { 'cni.dev/valid-attachments': [] }), code: 1, msg: /does not allow GC/, echo: true, stage: 'parse',
    },
    {
      name: 'STATUS on a version without STATUS', versions: WITHOUT_GC_STATUS, env: () => ({ CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' }),
      stdin: (v, c) => conf(c, v), code: 1, msg: /does not allow STATUS/, echo: true, stage: 'parse',
    },
    // Configuration (code 7).
    bad7('cniVersion as a number', { cniVersion: 1 }, /cniVersion must be a string/, 'ADD', [LATEST]),
    bad7('missing name', { name: undefined }, /name is required/),
    bad7('name as a number', { name: 7 }, /name must be a string/),
    bad7('name with a space', { name: 'my net' }, /name "my net"/),
    bad7('missing type', { type: undefined }, /type is required/),
    bad7('type "bridge"', { type: 'bridge' }, /type must be "fast", got "bridge"/),
    bad7('type as an object', { type: {} }, /type must be a string/),
    bad7('mtu as a string', { mtu: '1500' }, /mtu must be an integer .*got a string/),
    bad7('mtu 10', { mtu: 10 }, /mtu must be an integer from 68 .*got 10/),
    bad7('mtu 70000', { mtu: 70000 }, /mtu must be an integer .*65535.*got 70000/),
    bad7('mtu 1500.5', { mtu: 1500.5 }, /mtu .*got 1500\.5/),
    bad7('agentSocket as a number', { agentSocket: 5 }, /agentSocket must be a string, got a number/),
    bad7('pendingDeleteDir as a boolean', { pendingDeleteDir: true }, /pendingDeleteDir must be a string/),
    bad7('pendingDeleteDir relative', { pendingDeleteDir: 'pending' }, /pendingDeleteDir must be an absolute path/),
    bad7('ipam as a string', { ipam: 'fast' }, /ipam must be an object/),
    bad7('ipam.pool as a number', { ipam: { pool: 5 } }, /ipam\.pool must be .*got a number/),
    bad7('ipam.pool an empty array', { ipam: { pool: [] } }, /ipam\.pool must not be an empty array/),
    bad7('ipam.pool with an empty name', { ipam: { pool: ['default-ips', ' '] } }, /ipam\.pool\[1\] must not be empty/),
    bad7('ipam.type of another plugin', { ipam: { type: 'host-local' } }, /ipam\.type .*host-local/),
    bad7('dns as a string', { dns: '10.96.0.10' }, /dns must be an object/),
    bad7('runtimeConfig as an array', { runtimeConfig: [] }, /runtimeConfig must be an object/),
    bad7('logLevel unknown', { logLevel: 'loud' }, /logLevel must be one of/),
    bad7('CHECK without prevResult', {}, /CHECK requires prevResult/, 'CHECK', WITH_CHECK),
    bad7('CHECK with prevResult.ips not an array', { prevResult: { cniVersion: '1.0.0', ips: 'none' } }, /prevResult\.ips/, 'CHECK', WITH_CHECK),
    bad7('CHECK with a prevResult address that is not CIDR', { prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.77.0.5' }] } }, /prevResult\.ips\[0\]\.address/, 'CHECK', WITH_CHECK),
    bad7('GC without valid-attachments', {}, /GC requires cni\.dev\/valid-attachments/, 'GC', [LATEST]),
    bad7('GC with valid-attachments not an array', { 'cni.dev/valid-attachments': {} }, /valid-attachments/, 'GC', [LATEST]),
    // The agent's own answers.
    {
      name: 'CHECK for an unknown container', versions: WITH_CHECK, env: (_v, c) => add(c, { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'nobody-here' }),
      stdin: (v, c) => conf(c, v, { prevResult: prevResult(v) }), code: 3, msg: /no attachment nobody-here\/eth0/, echo: true, stage: 'agent',
    },
    {
      name: 'ADD from a pool that does not exist', versions: all, env: (_v, c) => add(c),
      stdin: (v, c) => conf(c, v, { ipam: { pool: 'nope' } }), code: 101, msg: /pool nope does not exist/, details: /default-ips/, echo: true, stage: 'agent',
    },
  ];
}

const CASES = cases();

function checkCase(ctx: Ctx, k: ErrorCase, v: string): { cniVersion: string } {
  const stateBefore = nodeState(ctx.node);
  const r = runCni(ctx.node, k.env(v, ctx), k.stdin(v, ctx));
  const e = parseError(r);
  assert.equal(e.code, k.code, `code: ${r.stdout}`);
  assert.match(e.msg, k.msg);
  if (k.details) assert.match(e.details ?? '', k.details);
  if (k.echo) {
    assert.equal(e.cniVersion, v, `cniVersion not echoed: ${r.stdout}`);
  } else {
    // See the todo test below: errors from request parsing answer in 1.1.0 whatever was asked.
    const requested = (() => { try { return String((k.stdin(v, ctx) as Record<string, unknown>).cniVersion); } catch { return undefined; } })();
    assert.ok((VERSIONS as readonly string[]).includes(e.cniVersion) || e.cniVersion === requested, `cniVersion ${e.cniVersion}`);
  }
  assertNoDebris(ctx.node, stateBefore, k.name);
  return e;
}

describe('bad CNI input gets its spec error and leaves no debris', () => {
  const ctx = {} as Ctx;
  let standing: { pod: TestNetns; ip: string; containerId: string };

  before(async () => {
    ctx.node = new TestNode();
    await ctx.node.startAgent();
    ctx.pod = ctx.node.addPodNetns();
    // A healthy pod stays up through all of it: no error may disturb it.
    standing = ctx.node.addPod('1.1.0');
  });
  after(async () => ctx.node?.destroy());

  for (const k of CASES) {
    for (const v of k.versions) {
      test(`${k.name} → ${k.code}${k.versions.length > 1 ? ` (cniVersion ${v})` : ''}`, () => {
        checkCase(ctx, k, v);
      });
    }
  }

  test('errors found while parsing the request echo its cniVersion', () => {
    // Input e.g. CNI_COMMAND=ADD without CNI_CONTAINERID and {"cniVersion":"0.3.1",...}:
    // expected {"cniVersion":"0.3.1","code":4,...}, actual {"cniVersion":"1.1.0","code":4,...}.
    // handle() only learns the version from a successfully parsed request; it could use the
    // stdin's cniVersion whenever that is a supported one (request.ts already has
    // requestedVersionOrLatest for VERSION).
    const wrong: string[] = [];
    for (const k of CASES) {
      if (!k.echo || k.stage !== 'parse') continue;
      for (const v of k.versions) {
        if (v === LATEST) continue;
        const e = parseError(runCni(ctx.node, k.env(v, ctx), k.stdin(v, ctx)));
        if (e.cniVersion !== v) wrong.push(`${k.name} (${v}) → ${e.cniVersion}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  for (const v of VERSIONS) {
    test(`DEL for an unknown container succeeds and touches nothing (cniVersion ${v})`, () => {
      const stateBefore = nodeState(ctx.node);
      for (const env of [
        add(ctx, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'nobody-here' }),
        add(ctx, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'nobody-here', CNI_NETNS: undefined }),
        add(ctx, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'nobody-here', CNI_NETNS: '/var/run/netns/fast-test-gone' }),
      ]) {
        const r = runCni(ctx.node, env, conf(ctx, v));
        assert.equal(r.exitCode, 0, r.stdout);
        assert.equal(r.stdout.trim(), '');
      }
      assertNoDebris(ctx.node, stateBefore, 'DEL of an unknown container');
    });
  }

  for (const v of VERSIONS) {
    test(`the same interface name twice in one netns: the second ADD fails cleanly, the first pod keeps working (cniVersion ${v})`, () => {
      const pod = ctx.node.addPodNetns();
      const first = uniqueName('dupa');
      const second = uniqueName('dupb');
      const r1 = runCni(ctx.node, envFor('ADD', first, pod.path), conf(ctx, v));
      assert.equal(r1.exitCode, 0, r1.stdout);
      const res1 = JSON.parse(r1.stdout) as { ips: Array<{ address: string }> };
      const ip = res1.ips[0]!.address.split('/')[0]!;
      const afterFirst = nodeState(ctx.node);

      const e = parseError(runCni(ctx.node, envFor('ADD', second, pod.path), conf(ctx, v)));
      assert.ok(e.code >= 100 && FAST_ERROR_CODES.includes(e.code), `code ${e.code}`);
      assert.equal(e.cniVersion, v);
      assert.match(`${e.msg} ${e.details ?? ''}`, /eth0|exists/);
      assertNoDebris(ctx.node, afterFirst, 'the failed second ADD');

      assert.ok(ping(ctx.node.ns, ip), `node -> first pod ${ip}`);
      if (WITH_CHECK.includes(v)) assert.equal(runCni(ctx.node, envFor('CHECK', first, pod.path), conf(ctx, v, { prevResult: res1 })).exitCode, 0);
      // A DEL for the attachment that never came up must not take the first pod's eth0 with it.
      assert.equal(runCni(ctx.node, envFor('DEL', second, pod.path), conf(ctx, v)).exitCode, 0);
      assertNoDebris(ctx.node, afterFirst, 'DEL of the failed attachment');
      assert.ok(ping(ctx.node.ns, ip), `node -> first pod ${ip} after the second DEL`);
      assert.equal(runCni(ctx.node, envFor('DEL', first, pod.path), conf(ctx, v)).exitCode, 0);
      assert.deepEqual(linkNames(pod), ['lo']);
    });
  }

  test('interface names the kernel accepts are wired (names are quoted in ip batches)', () => {
    // CNI_IFNAME "help", "dev", "up", "type", "mtu", "netns", "address", "group", "a#b", "a\\"
    // pass validation (identifiers.ts follows the kernel's dev_valid_name) but ADD fails 103
    // "failed to wire the pod": `link set help up` is parsed by ip as keywords, "#" starts a
    // batch comment, "\\" escapes. '"ab"' is worse: ADD succeeds, ip strips the quotes and
    // creates "ab", the result says '"ab"' and CHECK reports the interface missing.
    // Cleanup is right in every case (no debris). Fix: `dev NAME` everywhere and quote names
    // in batch lines, or pass argv per command.
    const failures: string[] = [];
    for (const ifName of ['help', 'dev', 'up', 'type', 'mtu', 'a#b', 'a\\', '"ab"']) {
      const stateBefore = nodeState(ctx.node);
      const id = uniqueName('ifn');
      const r = runCni(ctx.node, envFor('ADD', id, ctx.pod.path, id, ifName), conf(ctx, LATEST));
      if (r.exitCode !== 0) failures.push(`${JSON.stringify(ifName)}: ADD ${r.stdout}`);
      else {
        const c = runCni(ctx.node, envFor('CHECK', id, ctx.pod.path, id, ifName), conf(ctx, LATEST, { prevResult: JSON.parse(r.stdout) }));
        if (c.exitCode !== 0) failures.push(`${JSON.stringify(ifName)}: CHECK ${c.stdout}`);
      }
      runCni(ctx.node, envFor('DEL', id, ctx.pod.path, id, ifName), conf(ctx, LATEST));
      assertNoDebris(ctx.node, stateBefore, `interface name ${JSON.stringify(ifName)}`);
    }
    assert.deepEqual(failures, []);
  });

  test('the standing pod went through all of it untouched', () => {
    assert.ok(ping(ctx.node.ns, standing.ip));
    assert.ok(agentAlive(ctx.node), 'agent still running');
    assert.doesNotMatch(ctx.node.agentLog, /internal error serving CNI call/);
  });
});

describe('pool exhaustion, and the agent gone', () => {
  let node: TestNode;
  before(async () => {
    node = new TestNode({ pools: [{ name: 'tiny', subnet: '10.78.0.0/24', ips: ['10.78.0.10-10.78.0.11'] }] });
    await node.startAgent();
  });
  after(async () => node?.destroy());

  for (const v of VERSIONS) {
    test(`a third ADD on a 2-address pool fails with 100 naming the pool and its counts; after a DEL it succeeds (cniVersion ${v})`, () => {
      const a = node.addPod(v);
      const b = node.addPod(v);
      const full = nodeState(node);
      const pod = node.addPodNetns();
      const id = uniqueName('third');
      const e = parseError(runCni(node, envFor('ADD', id, pod.path), node.conf(v)));
      assert.equal(e.code, 100);
      assert.equal(e.cniVersion, v);
      assert.match(e.msg, /pool tiny .*\(2 of 2 allocated\)/);
      assertNoDebris(node, { ...full, podLinks: { ...full.podLinks, [pod.name]: ['lo'] } }, 'the refused ADD');

      assert.equal(runCni(node, envFor('DEL', a.containerId, a.pod.path), node.conf(v)).exitCode, 0);
      const r = runCni(node, envFor('ADD', id, pod.path), node.conf(v));
      assert.equal(r.exitCode, 0, r.stdout);
      const ip = (JSON.parse(r.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address.split('/')[0]!;
      assert.equal(ip, a.ip, 'the released address is reused');
      assert.ok(ping(node.ns, ip));
      for (const [c, p] of [[id, pod], [b.containerId, b.pod]] as const) assert.equal(runCni(node, envFor('DEL', c, p.path), node.conf(v)).exitCode, 0);
      assert.deepEqual(node.hostLinks(), []);
      assert.equal(node.allocationsFile().filter((x) => !x.releasedAt).length, 0);
    });
  }

  test('with the agent gone: ADD and CHECK 11, GC 11, STATUS 50, all echoing the version; DEL queued and replayed', async () => {
    const pod = node.addPodNetns();
    await node.stopAgent();
    try {
      const stateBefore = nodeState(node);
      for (const v of VERSIONS) {
        const e = parseError(runCni(node, envFor('ADD', 'gone-add', pod.path), node.conf(v)));
        assert.deepEqual([e.code, e.cniVersion], [11, v]);
        assert.match(e.msg, /not reachable/);
        if (WITH_CHECK.includes(v)) assert.equal(parseError(runCni(node, envFor('CHECK', 'gone-add', pod.path), node.conf(v, { prevResult: prevResult(v) }))).code, 11);
      }
      assert.equal(parseError(runCni(node, { CNI_COMMAND: 'GC' }, node.conf(LATEST, { 'cni.dev/valid-attachments': [] }))).code, 11);
      assert.equal(parseError(runCni(node, { CNI_COMMAND: 'STATUS' }, node.conf(LATEST))).code, 50);
      assertNoDebris(node, stateBefore, 'calls while the agent is gone');
      const del = runCni(node, envFor('DEL', 'gone-del', pod.path), node.conf('1.0.0'));
      assert.equal(del.exitCode, 0, del.stdout);
      assert.deepEqual(listDir(node.pendingDir), ['gone-del-eth0.del']);
    } finally {
      await node.startAgent();
    }
    assert.deepEqual(listDir(node.pendingDir), [], 'the queued DEL was replayed');
    assert.deepEqual(node.hostLinks(), []);
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz: generated malformed environments and configurations through the real binary.

const FUZZ_RUNS = 300;

describe('fuzz: malformed input through the real fast-cni', () => {
  let node: TestNode;
  let pod: TestNetns;
  let clean: NodeState;
  const defaultPendingDir = '/var/lib/fast/pending-del';
  let defaultPendingBefore: string[];

  before(async () => {
    node = new TestNode();
    await node.startAgent();
    pod = node.addPodNetns();
    clean = nodeState(node);
    defaultPendingBefore = listDir(defaultPendingDir);
  });
  after(async () => node?.destroy());

  test(`${FUZZ_RUNS} generated inputs: a spec or Fast error, or success for valid ones; never a crash, a hang or debris`, (t) => {
    const socket = node.socketPath;
    const pendingDir = node.pendingDir;
    const versionArb = fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...VERSIONS) },
      { weight: 1, arbitrary: fc.constantFrom('0.1.0', '0.2.0', '9.9.9', '1.0', '', 'latest', ' 1.0.0') },
    );
    const anyString = fc.oneof(fc.string({ maxLength: 24 }), fc.string({ unit: 'binary', maxLength: 24 }));
    // Netns paths are only ours or ones that cannot exist: a fuzzer must never name the
    // machine's own namespace (/proc/1/ns/net and the like).
    const netnsArb = fc.oneof(
      fc.constant('/var/run/netns/fast-fuzz-absent'),
      fc.constant(node.configPath), // exists, but is not a namespace
      anyString.map((s) => (s.startsWith('/') ? `/nonexistent-fast-fuzz${s}` : s)),
    );
    // Mostly a good environment with zero to two variables spoiled, so that most runs get past
    // the environment checks to the configuration and on to the agent's handlers.
    const goodEnvArb = fc.record({
      CNI_COMMAND: fc.constantFrom('ADD', 'ADD', 'ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'),
      CNI_CONTAINERID: fc.stringMatching(/^fz[0-9a-f]{4,12}$/),
      CNI_IFNAME: fc.constantFrom('eth0', 'net1', 'eth0.5', 'e_1-x'),
      CNI_NETNS: fc.constant(pod.path),
      CNI_ARGS: fc.constant('IgnoreUnknown=1;K8S_POD_NAMESPACE=fuzz;K8S_POD_NAME=p'),
      CNI_PATH: fc.constant('/usr/lib/cni'),
    });
    const spoiled = (specific: fc.Arbitrary<string>) =>
      fc.oneof({ weight: 3, arbitrary: specific }, fc.constant(undefined), fc.constant(''), anyString);
    const envSpoilArb = fc.oneof(
      fc.record({ key: fc.constant('CNI_COMMAND'), value: spoiled(fc.constantFrom('add', 'ADD ', 'DELETE', 'VERSION', 'GC')) }),
      fc.record({ key: fc.constant('CNI_CONTAINERID'), value: spoiled(fc.constantFrom('-x', 'a/b', 'a b', 'x'.repeat(300), '.hidden')) }),
      fc.record({ key: fc.constant('CNI_IFNAME'), value: spoiled(fc.constantFrom('lo', '..', 'x'.repeat(16), 'eth:0', 'a#b', 'help', '"ab"', 'é')) }),
      fc.record({ key: fc.constant('CNI_NETNS'), value: spoiled(netnsArb) }),
      fc.record({ key: fc.constant('CNI_ARGS'), value: spoiled(fc.constantFrom('a=b=c', 'FOO=1', 'IgnoreUnknown=x', ';;', '=x')) }),
    );
    const envArb: fc.Arbitrary<Env> = fc.tuple(goodEnvArb, fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(envSpoilArb, { minLength: 1, maxLength: 2 }) })).map(([good, spoils]) => {
      const env: Env = { ...good };
      for (const s of spoils) env[s.key] = s.value;
      return env;
    });

    const base = (v: string, opts: { mtu: boolean; ipam: boolean; prev: boolean; gc: boolean }): Record<string, unknown> => {
      const c: Record<string, unknown> = { cniVersion: v, name: 'fast-fuzz', type: 'fast', agentSocket: socket, pendingDeleteDir: pendingDir };
      if (opts.mtu) c.mtu = 1400;
      if (opts.ipam) c.ipam = { type: 'fast', pool: 'default-ips' };
      if (opts.prev) c.prevResult = prevResult(v);
      if (opts.gc) c['cni.dev/valid-attachments'] = [];
      return c;
    };
    const baseArb = fc.tuple(versionArb, fc.record({ mtu: fc.boolean(), ipam: fc.boolean(), prev: fc.boolean(), gc: fc.boolean() }))
      .map(([v, o]) => base(v, o));
    const KEYS = ['cniVersion', 'name', 'type', 'mtu', 'ipam', 'ipam.pool', 'ipam.type', 'dns', 'prevResult', 'prevResult.ips',
      'cni.dev/valid-attachments', 'cni.dev/attachments', 'runtimeConfig', 'args', 'capabilities', 'disableCheck', 'disableGC',
      'logLevel', 'agentSocket', 'pendingDeleteDir'];
    const mutationArb = fc.record({
      key: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(0, -1, 67, 68, 65535, 65536, 1.5, '', 'nope', null, [], {}, ['default-ips'], 'x'.repeat(300))),
      remove: fc.boolean(),
    });
    const structural = fc.tuple(baseArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([c, muts]) => {
      for (const m of muts) {
        const [head, sub] = m.key.split('.') as [string, string | undefined];
        const target = sub === undefined ? c : c[head];
        const key = sub ?? head;
        if (typeof target !== 'object' || target === null || Array.isArray(target)) continue;
        const t = target as Record<string, unknown>;
        if (m.remove) delete t[key];
        else t[key] = m.value;
      }
      // Where the forwarder connects and queues deletes stays ours whatever else changed.
      if (typeof c.agentSocket === 'string') c.agentSocket = socket;
      if (typeof c.pendingDeleteDir === 'string') c.pendingDeleteDir = pendingDir;
      return JSON.stringify(c);
    });
    // Text damage on a config without agentSocket/pendingDeleteDir (the forwarder then uses
    // FAST_AGENT_SOCKET), so no edit can send it to another socket or directory.
    const textual = fc.tuple(baseArb, fc.array(fc.record({ at: fc.nat(), cut: fc.nat({ max: 6 }), insert: fc.string({ unit: 'binary', maxLength: 3 }) }), { minLength: 1, maxLength: 3 }))
      .map(([c, edits]) => {
        delete c.agentSocket;
        delete c.pendingDeleteDir;
        let text = JSON.stringify(c);
        for (const e of edits) {
          const i = e.at % (text.length + 1);
          text = text.slice(0, i) + e.insert + text.slice(i + e.cut);
        }
        return text;
      });
    const stdinArb: fc.Arbitrary<string | Buffer> = fc.oneof(
      { weight: 4, arbitrary: structural },
      { weight: 3, arbitrary: textual },
      { weight: 2, arbitrary: baseArb.map((c) => JSON.stringify(c)) },
      { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 128 }) },
    );

    /** Puts the node back to clean after a failing run, so shrinking sees a fresh node. */
    const repair = (): void => {
      runCni(node, { CNI_COMMAND: 'GC' }, node.conf(LATEST, { 'cni.dev/valid-attachments': [] }));
      for (const l of linkNames(node.ns)) if (!clean.nodeLinks.includes(l)) try { sh('ip', ['-n', node.ns.name, 'link', 'del', l]); } catch { /* gone */ }
      for (const l of linkNames(pod)) if (l !== 'lo') try { sh('ip', ['-n', pod.name, 'link', 'del', l]); } catch { /* gone */ }
      for (const f of listDir(node.pendingDir)) fs.rmSync(path.join(node.pendingDir, f), { force: true });
    };

    let successes = 0;
    let added = 0;
    const codes = new Map<number, number>();
    fc.assert(
      fc.property(envArb, stdinArb, (env, stdin) => {
        assert.ok(agentAlive(node), `the agent died: ${node.agentLog.slice(-2000)}`);
        const r = runCni(node, env, stdin);
        assert.equal(r.timedOut, false, 'fast-cni hung');
        assert.equal(r.signal, null, `fast-cni died of ${r.signal}`);
        if (r.exitCode === 0) {
          successes++;
          if (env.CNI_COMMAND === 'ADD') {
            added++;
            const result = JSON.parse(r.stdout) as { ips: unknown[]; cniVersion: string };
            assert.ok(Array.isArray(result.ips) && result.ips.length > 0, r.stdout);
            const del = runCni(node, { ...env, CNI_COMMAND: 'DEL' }, node.conf(result.cniVersion));
            assert.equal(del.exitCode, 0, `DEL after a successful ADD: ${del.stdout}`);
          } else if (env.CNI_COMMAND === 'VERSION') {
            assert.ok(Array.isArray((JSON.parse(r.stdout) as { supportedVersions: unknown }).supportedVersions));
          }
        } else {
          const e = parseError(r);
          codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
          assert.ok(isKnownCode(e.code), `code ${e.code} is neither a spec nor a Fast code: ${r.stdout}`);
          // The agent is up: 11/50 would mean the exchange broke; 104 means an unexpected exception.
          assert.ok(![11, 50, 104].includes(e.code), `agent-side failure: ${r.stdout}`);
        }
        const now = nodeState(node);
        if (JSON.stringify(now) !== JSON.stringify(clean)) {
          repair();
          assert.deepEqual(now, clean, `debris after ${JSON.stringify(env)} with stdin ${JSON.stringify(stdin.toString())}`);
        }
      }),
      { numRuns: FUZZ_RUNS },
    );
    t.diagnostic(`${successes} succeeded (${added} ADDs, each deleted again); error codes: ${JSON.stringify(Object.fromEntries([...codes].sort((a, b) => a[0] - b[0])))}`);
    assert.ok(added > 0, 'some generated ADDs were valid');
    assert.ok(codes.size >= 4, `a spread of error codes: ${JSON.stringify([...codes])}`);
    assert.deepEqual(nodeState(node), clean);
    assert.deepEqual(listDir(defaultPendingDir), defaultPendingBefore, 'nothing queued in the host-wide pending-delete directory');
    assert.doesNotMatch(node.agentLog, /internal error serving CNI call/);
  });
});
