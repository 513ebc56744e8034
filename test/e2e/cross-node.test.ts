// Cross-node pod networking end to end, through the whole lab (issue 4): API server, lab
// controllers, a kubelet and a fast-agent per node, pods wired by the real fast-cni, the
// cluster map filled from the agents' watches. For each mode (overlay, native routing), a
// 3-node lab with an external host on the underlay that is not a node:
//   - ICMP and TCP between pods on every pair of nodes;
//   - node <-> remote pod, both ways;
//   - pod -> external host, which sees the node's underlay address (masquerading);
//   - 20 MB transfers across nodes (full-size segments: a wrong MTU breaks them);
//   - a deleted pod leaves the other nodes' cluster maps within seconds;
//   - an agent killed while pods come and go elsewhere converges when it restarts;
//   - a node removed from the cluster takes its pods' entries with it;
// and `down()` leaves nothing behind.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TestLab, type LabPod } from '../helpers/lab-harness.js';
import { REPO } from '../helpers/node-harness.js';
import { waitFor } from '../../src/lab/lab-up.js';

const PROBE = path.join(REPO, 'dist', 'src', 'tools', 'net-probe.js');
const NODES = ['node1', 'node2', 'node3'] as const;
const LABS = { overlay: { name: 'flabxeo', port: 21561 }, native: { name: 'flabxen', port: 21562 } } as const;
/** Pod MTU per mode: the lab underlay is 1500; VXLAN over IPv4 costs 50. */
const POD_MTU = { overlay: 1450, native: 1500 } as const;
const ECHO_PORT = 7000;
const PEER_PORT = 7001;
const HASH_PORT = 7002;
const BIG = 20 * 1024 * 1024;

const POOL = `apiVersion: sample.fast.io/v1alpha1
kind: Ips
metadata:
  name: default-ips
spec:
  subnet: 10.244.0.1/16
  ips:
    - 10.244.100.0-10.244.200.250
`;

function podYaml(name: string, node: string, role = 'main'): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {app: xnode, role: ${role}}
spec:
  nodeName: ${node}
  containers:
    - {name: c, image: busybox:latest, command: [sleep, "100000"]}
`;
}

/** A server that answers every connection with the peer address it sees, then closes. */
const PEER_SERVER_JS = `require('net').createServer((c) => { c.on('error', () => {}); c.end(c.remoteAddress + '\\n'); }).listen(${PEER_PORT}, () => console.log('listening'))`;
const PEER_CLIENT_JS = (host: string) => `const c = require('net').connect(${PEER_PORT}, '${host}'); let s = ''; c.setTimeout(5000, () => { console.error('timeout'); process.exit(2); }); c.on('data', (d) => (s += d)); c.on('end', () => { process.stdout.write(s); process.exit(0); }); c.on('error', (e) => { console.error(e.message); process.exit(1); });`;

/** Hashes what each connection sends and answers "<bytes> <sha256>" (content check). */
const HASH_SERVER_JS = `const crypto = require('crypto'); require('net').createServer((c) => { const h = crypto.createHash('sha256'); let n = 0; c.on('error', () => {}); c.on('data', (d) => { h.update(d); n += d.length; }); c.on('end', () => c.end(n + ' ' + h.digest('hex'))); }).listen(${HASH_PORT}, '::', () => console.log('listening'))`;
/** Sends `bytes` random bytes in `chunk`-sized writes (TCP_NODELAY: small writes leave as
 *  small packets, big ones as GSO skbs), then checks the server's count and hash. */
const HASH_CLIENT_JS = (host: string, bytes: number, chunk: number) => `const crypto = require('crypto'); const data = crypto.randomBytes(${bytes}); const want = data.length + ' ' + crypto.createHash('sha256').update(data).digest('hex');
const c = require('net').connect(${HASH_PORT}, '${host}'); c.setNoDelay(true); c.setTimeout(30000, () => { console.error('timeout'); process.exit(2); });
let s = ''; c.on('data', (d) => (s += d)); c.on('error', (e) => { console.error(e.message); process.exit(1); });
c.on('end', () => { if (s !== want) { console.error('got ' + s + ', want ' + want); process.exit(3); } console.log('ok'); process.exit(0); });
c.on('connect', async () => { for (let i = 0; i < data.length; i += ${chunk}) { if (!c.write(data.subarray(i, i + ${chunk}))) await new Promise((r) => c.once('drain', r)); } c.end(); });`;

interface Remote { ip: string; nodeIp: string; kind: string; path?: string }

for (const mode of ['overlay', 'native'] as const) {
  describe(`cross-node networking through the lab, ${mode} mode`, () => {
    let lab: TestLab | undefined;
    const servers: ChildProcess[] = [];
    /** The first pod of each node (created in before()). */
    const main = new Map<string, LabPod>();

    const L = () => lab!;
    const nodeIp = (node: string) => L().node(node).underlayIp;
    const nodeNetns = (node: string) => L().node(node).netns;

    function inNetns(netns: string, cmd: string[], timeoutMs = 30000) {
      const r = spawnSync('ip', ['netns', 'exec', netns, ...cmd], { encoding: 'utf8', timeout: timeoutMs });
      return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    }

    /** A long-running server inside a namespace; resolves once it printed its first line. */
    function startServer(netns: string, cmd: string[]): Promise<ChildProcess> {
      const child = spawn('ip', ['netns', 'exec', netns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
      servers.push(child);
      return new Promise((resolve, reject) => {
        let err = '';
        child.stderr!.on('data', (d) => (err += d));
        child.stdout!.once('data', () => resolve(child));
        child.once('exit', (code) => reject(new Error(`${cmd.join(' ')} in ${netns} exited ${code}: ${err}`)));
      });
    }

    function cpod(node: string): Remote[] {
      return JSON.parse(L().ctl(node, 'map', 'dump', 'fast_cpod_v1', '-o', 'json')) as Remote[];
    }

    function stats(node: string): Record<string, number> {
      const rows = JSON.parse(L().ctl(node, 'map', 'dump', 'fast_stats_v1', '-o', 'json')) as Array<{ counter: string; packets: string }>;
      return Object.fromEntries(rows.map((r) => [r.counter, Number(r.packets)]));
    }

    /** What `node`'s cluster map must hold, from the API: every other existing node's
     *  address, and every address of a pod on another existing node (host-network and
     *  finished pods excluded). */
    function desired(node: string): Map<string, string> {
      const nodes = L().json<{ items: any[] }>('get', 'nodes').items;
      const ips = new Map<string, string>();
      for (const n of nodes) {
        const ip = n.status?.addresses?.find((a: any) => a.type === 'InternalIP')?.address as string | undefined;
        if (ip) ips.set(n.metadata.name, ip);
      }
      const out = new Map<string, string>();
      for (const [name, ip] of ips) if (name !== node) out.set(ip, `node ${ip}`);
      for (const p of L().json<{ items: any[] }>('get', 'pods', '-A').items) {
        const on = p.spec?.nodeName as string | undefined;
        if (!on || on === node || p.spec?.hostNetwork || !ips.has(on)) continue;
        if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') continue;
        const podIps = ((p.status?.podIPs ?? []) as Array<{ ip: string }>).map((x) => x.ip);
        if (podIps.length === 0 && p.status?.podIP) podIps.push(p.status.podIP);
        for (const ip of podIps) out.set(ip, `pod ${ips.get(on)}`);
      }
      return out;
    }

    function actual(node: string): Map<string, string> {
      return new Map(cpod(node).map((r) => [r.ip, `${r.kind} ${r.nodeIp}`]));
    }

    const sorted = (m: Map<string, string>) => [...m.entries()].sort(([a], [b]) => a.localeCompare(b));

    async function waitForMap(node: string, timeoutMs: number): Promise<void> {
      await waitFor(`${node}'s cluster map to match the cluster`, () => JSON.stringify(sorted(actual(node))) === JSON.stringify(sorted(desired(node))), timeoutMs,
        () => `want ${JSON.stringify(sorted(desired(node)))}\ngot  ${JSON.stringify(sorted(actual(node)))}`);
    }

    function peerSeen(netns: string, host: string): string {
      const r = inNetns(netns, [process.execPath, '-e', PEER_CLIENT_JS(host)], 10000);
      assert.equal(r.status, 0, `connect from ${netns} to ${host}:${PEER_PORT}: ${r.stderr}`);
      return r.stdout.trim().replace(/^::ffff:/, '');
    }

    function pairs(): Array<[string, string]> {
      return NODES.flatMap((a) => NODES.filter((b) => b !== a).map((b): [string, string] => [a, b]));
    }

    /** IP fragments crossing the underlay bridge (nft counter in the lab's underlay namespace). */
    function wireFragments(): number {
      const out = JSON.parse(inNetns(L().state.underlayNetns, ['nft', '-j', 'list', 'counter', 'bridge', 'flabx_wire', 'fragments']).stdout) as { nftables: Array<{ counter?: { packets: number } }> };
      return out.nftables.find((e) => e.counter)!.counter!.packets;
    }

    /** The agent logs this once the cross-node datapath is set up and new pods get its MTU. */
    function crossNodeConfigured(node: string): boolean {
      try {
        return fs.readFileSync(path.join(L().node(node).dir, 'agent.log'), 'utf8').includes('cross-node datapath configured');
      } catch {
        return false;
      }
    }

    before(async () => {
      lab = await TestLab.up({ nodes: 3, mode, ...LABS[mode], quiet: true });
      const r = spawnSync('ip', ['netns', 'exec', L().state.underlayNetns, 'nft', '-f', '-'], {
        encoding: 'utf8',
        input: 'table bridge flabx_wire {\n  counter fragments {}\n  chain bridged {\n    type filter hook forward priority 0; policy accept;\n    ip frag-off & 0x3fff != 0 counter name fragments\n  }\n}\n',
      });
      assert.equal(r.status, 0, `nft in the lab underlay: ${r.stderr}`);
      // What a user does: the first pool and pods in one go (these "early" pods race the
      // agents' cross-node set-up; see the todo test below).
      L().kubectlIn([POOL, ...NODES.map((n) => podYaml(`p-early-${n}`, n, 'early'))].join('---\n'), 'apply', '-f', '-');
      await L().waitForRunning('role=early', 3);
      await waitFor('cross-node datapath configured on every node', () => NODES.every(crossNodeConfigured), 15000);
      L().kubectlIn(NODES.map((n) => podYaml(`p-${n}`, n)).join('---\n'), 'apply', '-f', '-');
      await L().waitForRunning('role=main', 3);
      for (const p of L().pods('role=main')) main.set(p.node!, p);
      for (const n of NODES) await startServer(L().podNetns(main.get(n)!), [process.execPath, PROBE, 'serve', String(ECHO_PORT)]);
      for (const n of NODES) await waitForMap(n, 10000);
    });

    after(async () => {
      for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
      if (!lab) return;
      await lab.down();
      assert.deepEqual(lab.debris(), [], 'the lab left nothing behind');
    });

    const podMtu = (p: LabPod) => Number(/mtu (\d+)/.exec(L().exec(p, ['ip', 'link', 'show', 'eth0']).stdout)?.[1]);

    // The agent configures the cross-node datapath (and so the pod MTU) at start, before any
    // pool exists: a pod created together with the first pool must not get the uplink's MTU
    // (1500 over a 1450 VXLAN would send its full-size packets as underlay fragments).
    test('pods created together with the first pool get the MTU of the mode', () => {
      for (const p of L().pods('role=early')) assert.equal(podMtu(p), POD_MTU[mode], `${p.name} on ${p.node}`);
    });

    test('pods on every node, with the MTU of the mode', () => {
      assert.deepEqual([...main.keys()].sort(), [...NODES]);
      for (const p of main.values()) assert.equal(podMtu(p), POD_MTU[mode], `${p.name} on ${p.node}`);
    });

    test('every node\'s cluster map holds exactly the other nodes and their pods, with their path', () => {
      for (const n of NODES) {
        assert.deepEqual(sorted(actual(n)), sorted(desired(n)), n);
        for (const r of cpod(n)) {
          assert.equal(r.path, mode === 'overlay' ? `vxlan vni 1 -> ${r.nodeIp} (eBPF encap, dev eth0)` : `via ${r.nodeIp} dev eth0`, `${n}: ${r.ip}`);
        }
      }
    });

    test('ICMP between pods on every pair of nodes', () => {
      for (const [a, b] of pairs()) {
        assert.ok(L().ping(main.get(a)!, main.get(b)!.ip!, 1), `ping ${a} pod -> ${b} pod ${main.get(b)!.ip}`);
      }
    });

    test('TCP between pods on every pair of nodes', () => {
      for (const [a, b] of pairs()) {
        const r = L().exec(main.get(a)!, [process.execPath, PROBE, 'connect', main.get(b)!.ip!, String(ECHO_PORT)]);
        assert.equal(r.status, 0, `tcp ${a} pod -> ${b} pod: ${r.stderr}`);
      }
    });

    test('overlay: the VXLAN packets themselves leave no conntrack entry on any node', { skip: mode !== 'overlay' }, () => {
      // Right after the pod traffic above: without the inet fast_tunnel table every node
      // held a UDP entry per inner flow and direction (src port = flow hash, dport 8472).
      for (const a of NODES) assert.ok(L().ping(main.get(a)!, main.get(NODES.find((b) => b !== a)!)!.ip!, 1));
      for (const n of NODES) {
        const table = inNetns(nodeNetns(n), ['cat', '/proc/net/nf_conntrack']);
        assert.equal(table.status, 0, table.stderr);
        assert.deepEqual(table.stdout.split('\n').filter((l) => l.includes('dport=8472')), [], `${n}: conntrack entries of the tunnel`);
        assert.match(inNetns(nodeNetns(n), ['nft', 'list', 'table', 'inet', 'fast_tunnel']).stdout, /udp dport 8472 notrack/);
      }
    });

    test('the pods\' packets took the eBPF path', () => {
      for (const n of NODES) {
        const s = stats(n);
        assert.ok((s[mode === 'overlay' ? 'redirect_tunnel' : 'redirect_neigh'] ?? 0) > 0, `${n} forwarded by eBPF: ${JSON.stringify(s)}`);
        assert.ok((s.deliver_from_net ?? 0) > 0, `${n} delivered from the network with redirect_peer: ${JSON.stringify(s)}`);
      }
    });

    test('node <-> remote pod, both ways (ICMP, and TCP node -> pod)', () => {
      for (const [a, b] of pairs()) {
        const pod = main.get(b)!;
        assert.equal(inNetns(nodeNetns(a), ['ping', '-c', '1', '-W', '2', pod.ip!]).status, 0, `node ${a} -> pod on ${b}`);
        assert.ok(L().ping(pod, nodeIp(a), 1), `pod on ${b} -> node ${a} (${nodeIp(a)})`);
        const r = inNetns(nodeNetns(a), [process.execPath, PROBE, 'connect', pod.ip!, String(ECHO_PORT)]);
        assert.equal(r.status, 0, `tcp node ${a} -> pod on ${b}: ${r.stderr}`);
      }
    });

    test('pod -> external host: the external host sees the node\'s underlay address, replies come back', async () => {
      const ext = L().state.externalNetns!;
      const extIp = L().state.externalIp!;
      await startServer(ext, [process.execPath, '-e', PEER_SERVER_JS]);
      for (const n of NODES) {
        assert.ok(L().ping(main.get(n)!, extIp, 1), `ping pod on ${n} -> external ${extIp}`);
        assert.equal(peerSeen(L().podNetns(main.get(n)!), extIp), nodeIp(n), `source of pod on ${n} as the external host sees it`);
      }
      // Inside the cluster, no masquerading: a remote node sees the pod's own address.
      await startServer(nodeNetns('node1'), [process.execPath, '-e', PEER_SERVER_JS]);
      assert.equal(peerSeen(L().podNetns(main.get('node2')!), nodeIp('node1')), main.get('node2')!.ip);
    });

    test('20 MB transfers across every pair of nodes and to the external host, no fragment on the wire', async () => {
      const fragments = wireFragments();
      for (const [a, b] of pairs()) {
        const r = L().exec(main.get(a)!, [process.execPath, PROBE, 'send', main.get(b)!.ip!, String(ECHO_PORT), String(BIG)], 60000);
        assert.equal(r.status, 0, `20 MB ${a} pod -> ${b} pod: ${r.stderr}`);
        assert.equal(r.stdout.trim(), `ok ${BIG}`);
      }
      // The largest packet a pod may send crosses with DF set.
      const payload = POD_MTU[mode] - 28;
      assert.equal(L().exec(main.get('node1')!, ['ping', '-M', 'do', '-s', String(payload), '-c', '1', '-W', '2', main.get('node2')!.ip!]).status, 0, `DF ping of ${payload} bytes`);
      const ext = L().state.externalNetns!;
      await startServer(ext, [process.execPath, PROBE, 'serve', String(ECHO_PORT)]);
      const r = L().exec(main.get('node3')!, [process.execPath, PROBE, 'send', L().state.externalIp!, String(ECHO_PORT), String(BIG)], 60000);
      assert.equal(r.status, 0, `20 MB node3 pod -> external: ${r.stderr}`);
      assert.equal(wireFragments() - fragments, 0, 'IP fragments crossed the underlay');
    });

    test('overlay: small tunnel packets are decapsulated on the uplink by eBPF, GSO ones by fast_vxlan, content intact', { skip: mode !== 'overlay' }, async () => {
      const rx = (node: string) => (JSON.parse(inNetns(nodeNetns(node), ['ip', '-j', '-s', 'link', 'show', 'fast_vxlan']).stdout) as Array<{ stats64: { rx: { packets: number } } }>)[0]!.stats64.rx.packets;
      const [a, b] = ['node1', 'node2'];
      const before = { rx: rx(b), delivered: stats(b).deliver_from_net ?? 0 };
      assert.ok(L().ping(main.get(a)!, main.get(b)!.ip!, 5), 'ping');
      assert.equal(rx(b) - before.rx, 0, `${b}: no ICMP packet went through fast_vxlan`);
      assert.ok((stats(b).deliver_from_net ?? 0) - before.delivered >= 5, `${b}: delivered into the pod from the uplink`);
      // Random content, hashed at the other end, both sizes of write, every pair of nodes:
      // whichever path each packet takes, the bytes arrive intact and unfragmented.
      const fragments = wireFragments();
      for (const n of NODES) await startServer(L().podNetns(main.get(n)!), [process.execPath, '-e', HASH_SERVER_JS]);
      for (const [x, y] of pairs()) {
        for (const [bytes, chunk] of [[8 << 20, 1 << 20], [2 << 20, 700]] as const) {
          const r = L().exec(main.get(x)!, [process.execPath, '-e', HASH_CLIENT_JS(main.get(y)!.ip!, bytes, chunk)], 60000);
          assert.equal(r.status, 0, `${bytes} bytes in ${chunk}-byte writes ${x} pod -> ${y} pod: ${r.stderr}`);
        }
      }
      assert.ok(rx(b) - before.rx > 0, `${b}: the GSO packets of the big transfers went through fast_vxlan`);
      assert.equal(wireFragments() - fragments, 0, 'IP fragments crossed the underlay');
    });

    test('a pod deleted on one node leaves the other nodes\' maps within seconds', async () => {
      L().kubectlIn(podYaml('p-doomed', 'node3', 'doomed'), 'apply', '-f', '-');
      const [doomed] = await L().waitForRunning('role=doomed', 1);
      await waitFor('p-doomed in node1 and node2 maps', () => ['node1', 'node2'].every((n) => cpod(n).some((r) => r.ip === doomed!.ip)), 5000);
      const t0 = Date.now();
      L().kubectl('delete', 'pod', 'p-doomed', '--wait=false');
      await waitFor('p-doomed gone from node1 and node2 maps', () => ['node1', 'node2'].every((n) => !cpod(n).some((r) => r.ip === doomed!.ip)), 5000);
      const ms = Date.now() - t0;
      process.stderr.write(`# ${mode}: deleted pod left the other nodes' maps after ${ms} ms\n`);
      assert.ok(ms < 5000);
      await waitFor('p-doomed gone from the API', () => L().pods('role=doomed').length === 0, 10000);
      for (const n of NODES) assert.deepEqual(sorted(actual(n)), sorted(desired(n)), n);
    });

    test('an agent killed while pods come and go elsewhere converges when it restarts', async () => {
      // Something of the past for node2 to hold: two pods on node1 and node3.
      L().kubectlIn([podYaml('p-old1', 'node1', 'old'), podYaml('p-old3', 'node3', 'old')].join('---\n'), 'apply', '-f', '-');
      await L().waitForRunning('role=old', 2);
      await waitForMap('node2', 5000);
      const stale = L().pods('role=old').map((p) => p.ip!);

      await L().stop('agent/node2', true);
      L().kubectl('delete', 'pod', 'p-old1', 'p-old3', '--wait=false');
      L().kubectlIn([podYaml('p-new1', 'node1', 'new'), podYaml('p-new3', 'node3', 'new'), podYaml('p-new3b', 'node3', 'new')].join('---\n'), 'apply', '-f', '-');
      const fresh = await L().waitForRunning('role=new', 3);
      await waitFor('old pods gone from the API', () => L().pods('role=old').length === 0, 15000);
      // Nothing changed on node2 while its agent was away.
      const frozen = actual('node2');
      for (const ip of stale) assert.ok(frozen.has(ip), `node2 still holds ${ip} while its agent is down`);

      L().start('agent/node2');
      // The killed agent left its ready file (it holds the pid): wait for the new one's.
      const ready = path.join(L().node('node2').stateDir, 'ready');
      const pid = L().process('agent/node2').pid;
      await waitFor('the restarted agent on node2 ready', () => { try { return Number(fs.readFileSync(ready, 'utf8')) === pid; } catch { return false; } }, 30000);
      // The agent is ready only after its first full resync: the map is exact at once.
      const now = actual('node2');
      assert.deepEqual(sorted(now), sorted(desired('node2')), 'exact right after the restart');
      for (const ip of stale) assert.equal(now.has(ip), false, `stale ${ip} removed`);
      for (const p of fresh) assert.ok(now.has(p.ip!), `new ${p.name} ${p.ip} present`);
      // And the datapath works with it, both ways.
      for (const p of fresh) {
        assert.ok(L().ping(main.get('node2')!, p.ip!, 2), `node2 pod -> ${p.name} ${p.ip}`);
        assert.ok(L().ping(p, main.get('node2')!.ip!, 2), `${p.name} -> node2 pod`);
      }
    });

    test('a node removed from the cluster takes its pods\' entries with it', async () => {
      const gone = nodeIp('node3');
      const pods3 = L().pods().filter((p) => p.node === 'node3' && p.ip).map((p) => p.ip!);
      assert.ok(pods3.length >= 2);
      for (const n of ['node1', 'node2']) for (const ip of [gone, ...pods3]) assert.ok(actual(n).has(ip), `${n} holds ${ip} before`);
      await L().stop('kubelet/node3');
      await L().stop('agent/node3');
      const t0 = Date.now();
      L().kubectl('delete', 'node', 'node3', '--wait=false');
      await waitFor('node3 and its pods gone from node1 and node2', () => ['node1', 'node2'].every((n) => !cpod(n).some((r) => r.nodeIp === gone || r.ip === gone)), 5000,
        () => JSON.stringify(['node1', 'node2'].map((n) => cpod(n))));
      process.stderr.write(`# ${mode}: a removed node's entries left the other nodes' maps after ${Date.now() - t0} ms\n`);
      for (const n of ['node1', 'node2']) {
        await waitForMap(n, 5000);
        for (const ip of pods3) assert.equal(inNetns(nodeNetns(n), ['ip', 'route', 'get', ip]).stdout.includes(gone), false, `${n} has no route to ${ip} via node3`);
      }
      assert.ok(L().ping(main.get('node1')!, main.get('node2')!.ip!, 2), 'the remaining nodes still talk');
    });
  });
}
