// One Fast node in namespaces: the real agent, the real fast-cni, real packets.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CniRunner, type ConfList } from '../../src/lab/kubelet/cni-runner.js';
import { TestNode, envFor, ping, PROBE, sleep, FAST_CNI } from '../helpers/node-harness.js';
import type { TestNetns } from '../helpers/netns.js';

interface AttachJson { mode: string; reason: string; deferred?: boolean; waitingForTcx?: number; linkDir: string; links: Array<{ ifindex: number; direction: string; linkId: number; progId: number; defunct: boolean }> }

function attachStatus(node: TestNode): AttachJson {
  return (JSON.parse(node.ctl('status', '-o', 'json')) as { attach: AttachJson }).attach;
}

/** How each pod's program sits on its host veth, by pod IP (fast-ctl endpoint list). */
function attachByIp(node: TestNode): Record<string, string> {
  const rows = JSON.parse(node.ctl('endpoint', 'list', '-o', 'json')) as Array<{ ip: string; attach: string }>;
  return Object.fromEntries(rows.map((r) => [r.ip, r.attach]));
}

/** Polls until `done` holds (the agent's background work), failing after `ms`. */
async function eventually(what: string, done: () => boolean, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await sleep(100);
  }
}

/** A ping every 10 ms from a to b while `during` runs; the counts ping reports at the end. */
async function pingAcross(a: TestNetns, bIp: string, during: () => Promise<void>): Promise<{ sent: number; received: number; out: string }> {
  const pinger = spawn('ip', ['netns', 'exec', a.name, 'ping', '-i', '0.01', '-c', '400', '-W', '1', bIp], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  pinger.stdout!.on('data', (d) => (out += d));
  await sleep(500);
  await during();
  await new Promise((r) => pinger.once('exit', r));
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  assert.ok(m, out);
  return { sent: Number(m![1]), received: Number(m![2]), out };
}

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

function tcpEcho(client: TestNetns, server: TestNetns, serverIp: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = spawn('ip', ['netns', 'exec', server.name, process.execPath, PROBE, 'serve', String(port)], { stdio: ['ignore', 'pipe', 'ignore'] });
    srv.stdout!.once('data', () => {
      const r = spawnSync('ip', ['netns', 'exec', client.name, process.execPath, PROBE, 'send', serverIp, String(port), '200000'], { encoding: 'utf8' });
      srv.kill();
      resolve(r.status === 0);
    });
    srv.on('exit', () => resolve(false));
  });
}

describe('three pods on one node (attachMode tcx)', () => {
  let node: TestNode;
  const pods: Array<{ pod: TestNetns; ip: string; containerId: string }> = [];

  before(async () => {
    node = new TestNode();
    // tcx here, so adoption of pinned links is covered; the default (tc) runs in every other node below.
    const cfg = JSON.parse(fs.readFileSync(node.configPath, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(node.configPath, JSON.stringify({ ...cfg, attachMode: 'tcx' }));
    await node.startAgent();
    for (let i = 0; i < 3; i++) pods.push(node.addPod());
  });
  after(async () => node?.destroy());

  test('each pod has a distinct /32 address from the pool', () => {
    const ips = pods.map((p) => p.ip);
    assert.equal(new Set(ips).size, 3);
    for (const ip of ips) assert.match(ip, /^10\.77\.0\.\d+$/);
  });

  test('ICMP flows between every pair and from the node to each pod', () => {
    for (const a of pods) for (const b of pods) if (a !== b) assert.ok(ping(a.pod, b.ip), `${a.ip} -> ${b.ip}`);
    for (const p of pods) assert.ok(ping(node.ns, p.ip), `node -> ${p.ip}`);
  });

  test('TCP flows between every pair', async () => {
    let port = 7000;
    for (const a of pods) for (const b of pods) if (a !== b) assert.ok(await tcpEcho(a.pod, b.pod, b.ip, port++), `tcp ${a.ip} -> ${b.ip}`);
  });

  test('same-node traffic takes the eBPF redirect, not the host stack', () => {
    const stats = JSON.parse(node.ctl('map', 'dump', 'fast_stats_v1', '-o', 'json')) as Array<{ counter: string; packets: string }>;
    assert.ok(Number(stats.find((s) => s.counter === 'redirect_local')!.packets) > 0);
  });

  test('a pod cannot send with another source address', () => {
    const [a, b] = pods;
    a!.pod.ip('addr', 'add', '10.77.0.250/32', 'dev', 'eth0');
    const r = spawnSync('ip', ['netns', 'exec', a!.pod.name, 'ping', '-c', '1', '-W', '1', '-I', '10.77.0.250', b!.ip]);
    assert.notEqual(r.status, 0);
    a!.pod.ip('addr', 'del', '10.77.0.250/32', 'dev', 'eth0');
    const stats = JSON.parse(node.ctl('map', 'dump', 'fast_stats_v1', '-o', 'json')) as Array<{ counter: string; packets: string }>;
    assert.ok(Number(stats.find((s) => s.counter === 'drop_spoof_src_ip')!.packets) > 0);
  });

  test('programs are attached as pinned tcx links, and fast-ctl status says so', () => {
    const a = attachStatus(node);
    assert.equal(a.mode, 'tcx', a.reason);
    const hostIfindexes = (JSON.parse(node.ctl('endpoint', 'list', '-o', 'json')) as Array<{ hostIfindex: number }>).map((r) => r.hostIfindex).sort();
    assert.deepEqual(a.links.map((l) => l.ifindex).sort(), hostIfindexes);
    assert.ok(a.links.every((l) => l.direction === 'ingress' && !l.defunct));
    assert.match(node.ctl('status'), /Attach: +tcx links \(3 pinned under /);
    assert.match(node.agentLog, /"attachMode":"tcx"/);
    assert.match(a.reason, /configured/);
    assert.doesNotMatch(node.ns.exec('tc', 'qdisc', 'show'), /clsact/, 'no qdisc in front of the programs');
  });

  test('fast-ctl lists the endpoints with names, MACs and indexes', () => {
    const rows = JSON.parse(node.ctl('endpoint', 'list', '-o', 'json')) as Array<{ ip: string; hostIfName: string; podMac: string }>;
    assert.deepEqual(rows.map((r) => r.ip).sort(), pods.map((p) => p.ip).sort());
    assert.ok(rows.every((r) => r.hostIfName.startsWith('fst') && /^[0-9a-f:]{17}$/.test(r.podMac)));
    assert.match(node.ctl('map', 'list'), /fast_lpod_v1\s+hash\s+16\s+24\s+16384\s+3/);
  });

  test('a continuous ping across an agent restart loses nothing', async () => {
    const [a, b] = pods;
    const before = attachStatus(node).links;
    const r = await pingAcross(a!.pod, b!.ip, async () => {
      await node.stopAgent('SIGKILL'); // the harshest restart
      await node.startAgent();
    });
    assert.equal(r.received, r.sent, `lost packets: ${r.out.split('\n').slice(-3).join(' ')}`);
    assert.match(node.agentLog, /"adopted":3/);
    // Adoption swapped the program on the links that were there (bpf_link_update).
    const after = attachStatus(node).links;
    assert.deepEqual(after.map((l) => l.linkId).sort(), before.map((l) => l.linkId).sort(), 'same links');
    assert.ok(after.every((l) => !before.some((o) => o.progId === l.progId)), 'the new agent\'s program');
  });

  test('CHECK passes on a healthy pod and detects a removed interface', () => {
    const p = pods[2]!;
    const prev = node.cni(envFor('ADD', p.containerId, p.pod.path), node.conf('1.1.0')).json; // idempotent ADD gives the result
    assert.equal(node.cni(envFor('CHECK', p.containerId, p.pod.path), node.conf('1.1.0', { prevResult: prev })).exitCode, 0);
    p.pod.ip('link', 'del', 'eth0');
    const r = node.cni(envFor('CHECK', p.containerId, p.pod.path), node.conf('1.1.0', { prevResult: prev }));
    assert.equal(r.exitCode, 1);
    assert.equal(r.json.code, 103);
    assert.match(r.json.details, /eth0 is missing|host interface .* is missing/);
  });

  test('DEL leaves nothing behind and a repeated DEL succeeds', () => {
    for (const p of pods) {
      assert.equal(node.cni(envFor('DEL', p.containerId, p.pod.path), node.conf('1.1.0')).exitCode, 0);
      assert.equal(node.cni(envFor('DEL', p.containerId, p.pod.path), node.conf('1.1.0')).exitCode, 0);
    }
    assert.deepEqual(node.hostLinks(), []);
    assert.equal(node.ns.ip('route', 'show').includes('10.77.'), false, 'no pod routes');
    assert.deepEqual(JSON.parse(node.ctl('map', 'dump', 'fast_lpod_v1', '-o', 'json')), []);
    assert.equal(JSON.parse(node.ctl('map', 'dump', 'fast_ldev_v1', '-o', 'json')).length, 0);
    assert.equal(node.allocationsFile().filter((a) => !a.releasedAt).length, 0, 'no allocation left');
    assert.deepEqual(attachStatus(node).links, [], 'no link pinned');
    assert.deepEqual(fs.readdirSync(path.join(node.bpffsDir, 'links')), []);
  });
});

describe('attach mode tc (clsact + cls_bpf), then an agent restart onto tcx', () => {
  let node: TestNode;
  const pods: Array<{ pod: TestNetns; ip: string; containerId: string }> = [];
  const setAttachMode = (mode: string) => {
    const cfg = JSON.parse(fs.readFileSync(node.configPath, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(node.configPath, JSON.stringify({ ...cfg, attachMode: mode }));
  };

  before(async () => {
    node = new TestNode();
    setAttachMode('tc');
    await node.startAgent();
    for (let i = 0; i < 2; i++) pods.push(node.addPod());
  });
  after(async () => node?.destroy());

  test('tc mode: cls_bpf filters carry the traffic, no link is pinned, fast-ctl says tc', () => {
    const a = attachStatus(node);
    assert.equal(a.mode, 'tc');
    assert.match(a.reason, /configured/);
    assert.deepEqual(a.links, []);
    assert.match(node.ctl('status'), /Attach: +clsact \+ cls_bpf/);
    for (const l of node.hostLinks()) assert.match(node.ns.exec('tc', 'filter', 'show', 'dev', l, 'ingress'), /fast_from_pod.*direct-action/);
    assert.ok(ping(pods[0]!.pod, pods[1]!.ip));
  });

  test('restarting with attachMode auto moves every pod to tcx links (in the background) without losing a packet', async () => {
    setAttachMode('auto');
    const r = await pingAcross(pods[0]!.pod, pods[1]!.ip, async () => {
      await node.stopAgent('SIGKILL');
      await node.startAgent();
      await eventually('both pods on tcx links', () => attachStatus(node).links.length === 2);
    });
    assert.equal(r.received, r.sent, `lost packets: ${r.out.split('\n').slice(-3).join(' ')}`);
    const a = attachStatus(node);
    assert.equal(a.mode, 'tcx');
    assert.equal(a.deferred, true);
    assert.equal(a.waitingForTcx, 0);
    assert.deepEqual(Object.values(attachByIp(node)), ['tcx', 'tcx']);
    for (const l of node.hostLinks()) assert.doesNotMatch(node.ns.exec('tc', 'filter', 'show', 'dev', l, 'ingress'), /fast_from_pod/, `cls_bpf filter left on ${l}`);
    assert.ok(ping(pods[1]!.pod, pods[0]!.ip));
  });

  test('and back to tc: the links go, the filters return, traffic flows', async () => {
    setAttachMode('tc');
    await node.stopAgent();
    await node.startAgent();
    assert.deepEqual(attachStatus(node).links, []);
    assert.ok(ping(pods[0]!.pod, pods[1]!.ip));
    for (const p of pods) assert.equal(node.cni(envFor('DEL', p.containerId, p.pod.path), node.conf('1.1.0')).exitCode, 0);
    assert.deepEqual(node.hostLinks(), []);
  });
});

describe('every CNI version', () => {
  let node: TestNode;
  before(async () => {
    node = new TestNode();
    await node.startAgent();
  });
  after(async () => node?.destroy());

  test('with no attachMode configured (auto), a pod starts on cls_bpf and moves to a tcx link once the node is idle, losing no packet', async () => {
    const a = attachStatus(node);
    assert.equal(a.mode, 'tcx', a.reason);
    assert.equal(a.deferred, true);
    assert.match(a.reason, /start on cls_bpf and move to a tcx link when the node is idle/);
    const p1 = node.addPod();
    const p2 = node.addPod();
    // Right after the ADDs (the agent waits 1 s of quiet before moving anything).
    assert.deepEqual(attachByIp(node), { [p1.ip]: 'tc', [p2.ip]: 'tc' });
    assert.equal(attachStatus(node).waitingForTcx, 2);
    assert.match(node.ctl('status'), /2 pod\(s\) on cls_bpf waiting to move/);
    const r = await pingAcross(p1.pod, p2.ip, () => eventually('both pods moved', () => attachStatus(node).links.length === 2));
    assert.equal(r.received, r.sent, `lost packets across the move: ${r.out.split('\n').slice(-3).join(' ')}`);
    assert.deepEqual(attachByIp(node), { [p1.ip]: 'tcx', [p2.ip]: 'tcx' });
    assert.equal(attachStatus(node).waitingForTcx, 0);
    for (const l of node.hostLinks()) assert.doesNotMatch(node.ns.exec('tc', 'filter', 'show', 'dev', l, 'ingress'), /fast_from_pod/, `cls_bpf filter left on ${l}`);
    assert.equal(node.agentLog.match(/pod moved from cls_bpf to its tcx link/g)?.length, 2);
    for (const p of [p1, p2]) assert.equal(node.cni(envFor('DEL', p.containerId, p.pod.path), node.conf('1.1.0')).exitCode, 0);
    assert.deepEqual(node.hostLinks(), []);
    assert.deepEqual(attachStatus(node).links, [], 'DEL removed the links');
  });

  for (const v of VERSIONS) {
    test(`ADD, CHECK, DEL with cniVersion ${v}`, () => {
      const { pod, containerId, result } = node.addPod(v);
      assert.equal(result.cniVersion, v);
      const ip = result.ips[0];
      if (v.startsWith('0.')) assert.equal(ip.version, '4');
      else assert.equal(ip.version, undefined);
      if (v !== '0.3.0' && v !== '0.3.1') {
        assert.equal(node.cni(envFor('CHECK', containerId, pod.path), node.conf(v, { prevResult: result })).exitCode, 0);
      }
      assert.equal(node.cni(envFor('DEL', containerId, pod.path), node.conf(v, { prevResult: result })).exitCode, 0);
      assert.deepEqual(node.hostLinks(), []);
    });
  }

  test('GC removes attachments the runtime no longer lists (both spellings)', () => {
    const keep = node.addPod();
    const drop1 = node.addPod();
    const drop2 = node.addPod();
    const r = node.cni({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, node.conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }, { containerID: drop2.containerId, ifname: 'eth0' }] }));
    assert.equal(r.exitCode, 0, r.stdout);
    assert.equal(node.hostLinks().length, 2);
    const r2 = node.cni({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }, node.conf('1.1.0', { 'cni.dev/attachments': [{ containerID: keep.containerId, ifname: 'eth0' }] }));
    assert.equal(r2.exitCode, 0, r2.stdout);
    assert.equal(node.hostLinks().length, 1);
    assert.ok(ping(node.ns, keep.ip));
    void drop1;
  });

  test('STATUS succeeds while the agent is ready', () => {
    assert.equal(node.cni({ CNI_COMMAND: 'STATUS' }, node.conf('1.1.0')).exitCode, 0);
  });
});

describe('agent down', () => {
  let node: TestNode;
  before(async () => {
    node = new TestNode();
    await node.startAgent();
  });
  after(async () => node?.destroy());

  test('ADD fails with 11, STATUS with 50, and a DEL is finished when the agent returns', async () => {
    const { pod, containerId } = node.addPod();
    await node.stopAgent();
    const add = node.cni(envFor('ADD', 'other', node.addPodNetns().path), node.conf('1.0.0'));
    assert.equal(add.exitCode, 1);
    assert.equal(add.json.code, 11);
    assert.equal(add.json.cniVersion, '1.0.0');
    assert.equal(node.cni({ CNI_COMMAND: 'STATUS' }, node.conf('1.1.0')).json.code, 50);
    assert.equal(node.cni(envFor('DEL', containerId, pod.path), node.conf('1.1.0')).exitCode, 0);
    assert.equal(fs.readdirSync(node.pendingDir).length, 1);
    assert.equal(node.hostLinks().length, 1, 'the datapath stays while the agent is away');
    await node.startAgent();
    assert.deepEqual(node.hostLinks(), []);
    assert.equal(fs.readdirSync(node.pendingDir).length, 0);
    assert.equal(node.allocationsFile().filter((a) => !a.releasedAt).length, 0);
  });
});

describe('chained with the reference portmap plugin', () => {
  let node: TestNode;
  before(async () => {
    node = new TestNode();
    await node.startAgent();
  });
  after(async () => node?.destroy());

  test('a host port reaches the pod through portmap after Fast', async () => {
    const pod = node.addPodNetns();
    // The plugin type names the executable, so give fast-cni its CNI name in a bin dir.
    const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-cni-bin-'));
    fs.symlinkSync(FAST_CNI, path.join(binDir, 'fast'));
    const { pendingDeleteDir, agentSocket } = node.conf('1.0.0') as { pendingDeleteDir: string; agentSocket: string };
    const list: ConfList = {
      cniVersion: '1.0.0', name: 'fast-chain',
      plugins: [{ type: 'fast', agentSocket, pendingDeleteDir }, { type: 'portmap', capabilities: { portMappings: true }, snat: true }],
    };
    const runner = new CniRunner([binDir, '/usr/lib/cni'], {}, node.ns.path);
    const att = { containerId: 'pm' + Date.now(), netns: pod.path, ifName: 'eth0', args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'pm' },
      capabilityArgs: { portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }] } };
    try {
      const result = await runner.add(list, att);
      const srv = spawn('ip', ['netns', 'exec', pod.name, process.execPath, PROBE, 'serve', '8080'], { stdio: ['ignore', 'pipe', 'ignore'] });
      try {
        await new Promise((r) => srv.stdout!.once('data', r));
        const r = spawnSync('ip', ['netns', 'exec', node.ns.name, process.execPath, PROBE, 'connect', node.nodeAddress, '18080'], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      } finally {
        srv.kill();
      }
      await runner.del(list, att, result);
      assert.deepEqual(node.hostLinks(), []);
      assert.doesNotMatch(node.ns.exec('iptables-save'), /18080/);
    } finally {
      fs.rmSync(binDir, { recursive: true, force: true });
    }
  });
});
