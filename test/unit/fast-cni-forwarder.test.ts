// Tests for cni/fast-cni, the static C forwarder between the container runtime and fast-agent.
// Every test runs the compiled binary against a fake agent (a node:net server on a unix socket in
// a private temp dir), so the wire protocol of docs/architecture.md is checked byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const cniDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cni');
const binary = path.join(cniDir, 'fast-cni');
const VERSION_RESULT =
  '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}';

/** Builds the binary with make when it is missing or older than its sources. */
function ensureBuilt(): void {
  const mtime = (f: string): number => fs.statSync(f).mtimeMs;
  const fresh =
    fs.existsSync(binary) &&
    mtime(binary) >= Math.max(mtime(path.join(cniDir, 'fast-cni.c')), mtime(path.join(cniDir, 'Makefile')));
  if (!fresh) execFileSync('make', ['-C', cniDir], { stdio: ['ignore', 'pipe', 'pipe'] });
}
ensureBuilt();

interface Run { code: number | null; stdout: Buffer; stderr: Buffer }

/** Runs fast-cni with exactly `env` (no inherited variables) and feeds it `stdin`. Async on purpose:
 *  the fake agent lives in this process's event loop, so a synchronous spawn would deadlock. */
function runCni(env: Record<string, string>, stdin: string | Buffer = '', opts: { closeStdin?: boolean } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('fast-cni timed out')); }, 20_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => { /* the binary may exit without reading stdin (VERSION) */ });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    if (opts.closeStdin === false) child.stdin.write(stdin);
    else child.stdin.end(stdin);
  });
}

interface FramedRequest { env: string[]; stdin: Buffer; raw: Buffer }

/** Parses one framed request; null while incomplete. Throws on a bad frame. */
function parseRequest(buf: Buffer): FramedRequest | null {
  if (buf.length < 12) return null;
  assert.equal(buf.subarray(0, 4).toString('latin1'), 'FCNI');
  assert.equal(buf.readUInt32BE(4), 1);
  const envLen = buf.readUInt32BE(8);
  if (buf.length < 16 + envLen) return null;
  const stdinLen = buf.readUInt32BE(12 + envLen);
  const end = 16 + envLen + stdinLen;
  if (buf.length < end) return null;
  assert.equal(buf.length, end, 'no bytes after the request');
  const envText = buf.subarray(12, 12 + envLen).toString('utf8');
  return { env: envText === '' ? [] : envText.split('\0'), stdin: buf.subarray(16 + envLen, end), raw: buf };
}

function encodeResponse(exitCode: number, stdout: string | Buffer, stderr: string | Buffer): Buffer {
  const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const o = Buffer.from(stdout);
  const e = Buffer.from(stderr);
  return Buffer.concat([u32(exitCode), u32(o.length), o, u32(e.length), e]);
}

/** What the fake agent does with a complete request: a response to send (in chunks, to exercise
 *  partial reads), or raw bytes to send before hanging up. */
type Answer = { response: Buffer } | { hangUpAfter: Buffer };

interface FakeAgent { requests: FramedRequest[]; connections: number; close(): Promise<void> }

async function startAgent(socketPath: string, answer: (req: FramedRequest) => Answer): Promise<FakeAgent> {
  const agent: FakeAgent = { requests: [], connections: 0, close: async () => {} };
  const server = net.createServer((conn) => {
    agent.connections++;
    let buf = Buffer.alloc(0);
    conn.on('error', () => {});
    conn.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const req = parseRequest(buf);
      if (!req) return;
      agent.requests.push(req);
      const a = answer(req);
      if ('hangUpAfter' in a) { conn.end(a.hangUpAfter); return; }
      const r = a.response;
      // Split inside the header and the body, with pauses, so the reader must loop.
      const cuts = [0, 3, 9, Math.floor(r.length / 2), r.length].filter((c, i, all) => i === 0 || c > all[i - 1]!);
      const sendPart = (i: number): void => {
        if (i + 1 >= cuts.length) { conn.end(); return; }
        conn.write(r.subarray(cuts[i], cuts[i + 1]));
        setTimeout(() => sendPart(i + 1), 5);
      };
      sendPart(0);
    });
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(socketPath, resolve); });
  agent.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return agent;
}

/** Gives the test a private temp dir (and agents to stop) that are cleaned up even on failure. */
async function withTempDir(fn: (dir: string, agents: FakeAgent[]) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-cni-'));
  const agents: FakeAgent[] = [];
  try {
    await fn(dir, agents);
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function cniError(run: Run): { cniVersion: string; code: number; msg: string; details: string } {
  assert.equal(run.code, 1, `expected exit 1, stderr: ${run.stderr.toString()}`);
  return JSON.parse(run.stdout.toString());
}

const cniEnv = (command: string, extra: Record<string, string> = {}): Record<string, string> => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/var/run/netns/test',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  ...extra,
});

test('VERSION is answered locally, without an agent and without waiting for stdin', async () => {
  await withTempDir(async (dir) => {
    const env = { CNI_COMMAND: 'VERSION', FAST_AGENT_SOCKET: path.join(dir, 'none.sock') };
    const run = await runCni(env, '{"cniVersion":"0.4.0"}', { closeStdin: false });
    assert.equal(run.code, 0);
    assert.equal(run.stdout.toString().trim(), VERSION_RESULT);
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

test('forwards only CNI_* env and verbatim stdin, and reproduces the agent answer exactly', async () => {
  await withTempDir(async (dir, agents) => {
    const sock = path.join(dir, 'agent.sock');
    const stdout = Buffer.concat([Buffer.from('{"cniVersion":"1.1.0","ips":[]}\n'), Buffer.from([0, 255, 10])]);
    const stderr = Buffer.from('warning: something\n\u00e9\0end');
    agents.push(await startAgent(sock, () => ({ response: encodeResponse(3, stdout, stderr) })));
    const cni = cniEnv('ADD', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web=1', CNI_EMPTY: '' });
    const config = '{"cniVersion":"1.0.0","name":"fast","type":"fast-cni"}';
    const run = await runCni(
      { ...cni, PATH: '/usr/bin:/bin', HOME: '/root', FAST_AGENT_SOCKET: sock, XCNI_FOO: 'no', cni_lower: 'no' },
      config,
    );
    assert.equal(run.code, 3);
    assert.deepEqual(run.stdout, stdout);
    assert.deepEqual(run.stderr, stderr);
    const req = agents[0]!.requests[0]!;
    assert.deepEqual([...req.env].sort(), Object.entries(cni).map(([k, v]) => `${k}=${v}`).sort());
    assert.equal(req.stdin.toString(), config);
  });
});

test('1 MiB of binary stdin arrives verbatim and a 3 MiB answer comes back whole', async () => {
  await withTempDir(async (dir, agents) => {
    const sock = path.join(dir, 'agent.sock');
    const stdin = randomBytes(1 << 20);
    const stdout = randomBytes(3 << 20);
    agents.push(await startAgent(sock, () => ({ response: encodeResponse(0, stdout, '') })));
    const run = await runCni(cniEnv('ADD', { FAST_AGENT_SOCKET: sock }), stdin);
    assert.equal(run.code, 0);
    assert.ok(run.stdout.equals(stdout));
    assert.equal(run.stderr.length, 0);
    assert.ok(agents[0]!.requests[0]!.stdin.equals(stdin));
  });
});

test('socket precedence: agentSocket key > FAST_AGENT_SOCKET > default; nested keys ignored', async () => {
  await withTempDir(async (dir, agents) => {
    const fromConfig = path.join(dir, 'config.sock');
    const fromEnv = path.join(dir, 'env.sock');
    agents.push(await startAgent(fromConfig, () => ({ response: encodeResponse(0, 'config', '') })));
    agents.push(await startAgent(fromEnv, () => ({ response: encodeResponse(0, 'env', '') })));
    const env = cniEnv('ADD', { FAST_AGENT_SOCKET: fromEnv });

    // Braces, quotes and a fake key inside strings must not confuse the scanner; \/ is decoded.
    const topLevel = `{"note":"}{ \\"agentSocket\\": \\"/bad\\"","agentSocket":"${fromConfig.replaceAll('/', '\\/')}"}`;
    assert.equal((await runCni(env, topLevel)).stdout.toString(), 'config');

    const nested = `{"ipam":{"agentSocket":"${fromConfig}"},"plugins":[{"agentSocket":"${fromConfig}"}]}`;
    assert.equal((await runCni(env, nested)).stdout.toString(), 'env');

    const unterminated = `{"cniVersion":"1.0.0","agentSocket":"${fromConfig}`;
    assert.equal((await runCni(env, unterminated)).stdout.toString(), 'env');
  });
});

test('without agentSocket or FAST_AGENT_SOCKET the default /run/fast/agent.sock is used', async (t) => {
  if (fs.existsSync('/run/fast/agent.sock')) { t.skip('a real agent socket exists on this machine'); return; }
  const error = cniError(await runCni(cniEnv('ADD'), '{"cniVersion":"1.0.0"}'));
  assert.equal(error.code, 11);
  assert.match(error.details, /^connect \/run\/fast\/agent\.sock: /);
});

test('agent down: ADD/CHECK/GC/unknown give code 11, STATUS gives 50, with the config cniVersion', async () => {
  await withTempDir(async (dir) => {
    const sock = path.join(dir, 'agent.sock');
    const config = '{"cniVersion":"0.4.0","name":"fast"}';
    for (const [command, code] of [['ADD', 11], ['CHECK', 11], ['GC', 11], ['FROB', 11], ['STATUS', 50]] as const) {
      const error = cniError(await runCni(cniEnv(command, { FAST_AGENT_SOCKET: sock }), config));
      assert.deepEqual(error, {
        cniVersion: '0.4.0',
        code,
        msg: 'fast-agent is not reachable',
        details: `connect ${sock}: No such file or directory (is fast-agent running on this node?)`,
      });
    }
    const noVersion = cniError(await runCni(cniEnv('ADD', { FAST_AGENT_SOCKET: sock }), 'not json'));
    assert.equal(noVersion.cniVersion, '1.1.0');
    const quoted = cniError(await runCni(cniEnv('ADD', { FAST_AGENT_SOCKET: sock }), '{"cniVersion":"1\\"\\n\\u00e9"}'));
    assert.equal(quoted.cniVersion, '1"\n\u00e9');
  });
});

test('agent down: DEL queues exactly the framed request in a 0700 pending-delete dir', async () => {
  await withTempDir(async (dir, agents) => {
    const sock = path.join(dir, 'agent.sock');
    const pending = path.join(dir, 'state', 'pending-del');
    const config = JSON.stringify({ cniVersion: '1.0.0', pendingDeleteDir: pending, ipam: { type: 'fast' } });
    const env = cniEnv('DEL', { FAST_AGENT_SOCKET: sock });

    // What a live agent receives for this DEL is exactly what must be queued when it is down.
    const live = await startAgent(sock, () => ({ response: encodeResponse(0, '', '') }));
    agents.push(live);
    assert.equal((await runCni(env, config)).code, 0);
    await live.close();
    const expected = live.requests[0]!.raw;

    const run = await runCni(env, config);
    assert.equal(run.code, 0);
    assert.equal(run.stdout.length, 0);
    assert.deepEqual(fs.readdirSync(pending), ['c0ffee-eth0.del']);
    assert.ok(fs.readFileSync(path.join(pending, 'c0ffee-eth0.del')).equals(expected));
    assert.equal(fs.statSync(pending).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, 'state')).mode & 0o777, 0o700);

    const { CNI_CONTAINERID: _, ...noId } = env;
    assert.equal((await runCni(noId, config)).code, 0);
    assert.ok(fs.existsSync(path.join(pending, 'unknown-eth0.del')));
  });
});

test('agent down: DEL sanitizes CNI_CONTAINERID and CNI_IFNAME into one safe file name', async () => {
  await withTempDir(async (dir) => {
    const pending = path.join(dir, 'a', 'pending');
    const config = JSON.stringify({ pendingDeleteDir: pending });
    const env = cniEnv('DEL', {
      FAST_AGENT_SOCKET: path.join(dir, 'none.sock'),
      CNI_CONTAINERID: '../../../escape',
      CNI_IFNAME: '..\\/../x',
    });
    assert.equal((await runCni(env, config)).code, 0);
    const files = fs.readdirSync(pending);
    assert.equal(files.length, 1);
    assert.ok(files[0]!.endsWith('.del') && !files[0]!.includes('..') && !files[0]!.startsWith('.'), files[0]);
    assert.deepEqual(fs.readdirSync(dir), ['a']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'a')), ['pending']);
  });
});

test('agent down: DEL that cannot queue the request fails with code 11 naming the path', async () => {
  await withTempDir(async (dir) => {
    fs.writeFileSync(path.join(dir, 'file'), '');
    const pending = path.join(dir, 'file', 'pending');
    const run = await runCni(cniEnv('DEL', { FAST_AGENT_SOCKET: path.join(dir, 'none.sock') }),
      JSON.stringify({ cniVersion: '1.0.0', pendingDeleteDir: pending }));
    const error = cniError(run);
    assert.equal(error.code, 11);
    assert.ok(error.details.includes(pending) && error.details.includes('Not a directory'), error.details);
  });
});

test('an agent that hangs up mid-response counts as unreachable', async () => {
  await withTempDir(async (dir, agents) => {
    const sock = path.join(dir, 'agent.sock');
    const partial = encodeResponse(0, 'x'.repeat(100), '').subarray(0, 30);
    agents.push(await startAgent(sock, () => ({ hangUpAfter: partial })));
    const error = cniError(await runCni(cniEnv('ADD', { FAST_AGENT_SOCKET: sock }), '{"cniVersion":"1.0.0"}'));
    assert.equal(error.code, 11);
    assert.match(error.details, /closed the connection before a complete response/);

    const pending = path.join(dir, 'pending');
    const del = await runCni(cniEnv('DEL', { FAST_AGENT_SOCKET: sock }), JSON.stringify({ pendingDeleteDir: pending }));
    assert.equal(del.code, 0);
    assert.deepEqual(fs.readdirSync(pending), ['c0ffee-eth0.del']);
    assert.equal(agents[0]!.requests.length, 2);
  });
});

test('a response over the 64 MiB limit is refused without trusting its length', async () => {
  await withTempDir(async (dir, agents) => {
    const sock = path.join(dir, 'agent.sock');
    const header = Buffer.alloc(8);
    header.writeUInt32BE(0xffffffff, 4);
    agents.push(await startAgent(sock, () => ({ hangUpAfter: header })));
    const error = cniError(await runCni(cniEnv('ADD', { FAST_AGENT_SOCKET: sock }), '{}'));
    assert.equal(error.code, 11);
    assert.equal(error.msg, 'fast-agent response too large');
  });
});

test('malformed stdin is forwarded untouched: the agent decides it is code 6', async () => {
  await withTempDir(async (dir, agents) => {
    const sock = path.join(dir, 'agent.sock');
    const agentError = '{"cniVersion":"1.1.0","code":6,"msg":"failed to decode network configuration"}';
    agents.push(await startAgent(sock, () => ({ response: encodeResponse(1, agentError, '') })));
    const malformed = '{"cniVersion": "1.0.0", "name": [}}, "agentSocket": ';
    const run = await runCni(cniEnv('ADD', { FAST_AGENT_SOCKET: sock }), malformed);
    assert.equal(run.code, 1);
    assert.equal(run.stdout.toString(), agentError);
    assert.equal(agents[0]!.requests[0]!.stdin.toString(), malformed);
  });
});

test('missing CNI_COMMAND is code 4 and does not contact the agent', async () => {
  await withTempDir(async (dir, agents) => {
    const sock = path.join(dir, 'agent.sock');
    agents.push(await startAgent(sock, () => ({ response: encodeResponse(0, '', '') })));
    const { CNI_COMMAND: _, ...env } = cniEnv('ADD', { FAST_AGENT_SOCKET: sock });
    const error = cniError(await runCni(env, '{"cniVersion":"0.3.1"}'));
    assert.deepEqual([error.cniVersion, error.code, error.msg], ['0.3.1', 4, 'CNI_COMMAND is not set']);
    assert.equal(agents[0]!.connections, 0);
  });
});
