// Cross-node pod networking, end to end: three nodes and an external host on one
// underlay bridge, the real agent on every node, pods through the real fast-cni, real
// packets, in overlay (VXLAN) and native-routing mode.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { MultiNodeLab, pingFrom, tcpTransfer, seenSourceAddress, routesOf, EXTERNAL_IP, POD_RANGE, UPLINK, type LabNode } from '../helpers/multi-node.js';
import { envFor, sleep } from '../helpers/node-harness.js';
import { canDecapGsoInEbpf } from '../../src/dataplane/bpf/kernel-btf.js';

const VNI = 4242;
/** Overlay twice: eBPF encapsulation and decapsulation (the defaults), and fast_vxlan both ways. */
const VARIANTS = [
  { mode: 'overlay', encap: 'ebpf', decap: 'ebpf' }, { mode: 'overlay', encap: 'kernel', decap: 'kernel' }, { mode: 'native', encap: undefined, decap: undefined },
] as const;

function cpodDump(n: LabNode): Array<{ ip: string; kind: string; nodeIp: string; path: string }> {
  return JSON.parse(n.node.ctl('map', 'dump', 'fast_cpod_v1', '-o', 'json'));
}

function stats(n: LabNode): Record<string, number> {
  const rows = JSON.parse(n.node.ctl('map', 'dump', 'fast_stats_v1', '-o', 'json')) as Array<{ counter: string; packets: string }>;
  return Object.fromEntries(rows.map((r) => [r.counter, Number(r.packets)]));
}

for (const { mode, encap, decap } of VARIANTS) {
  describe(`cross-node networking, ${mode} mode${encap ? `, ${encap} encapsulation and decapsulation` : ''}`, () => {
    let lab: MultiNodeLab;
    let n1: LabNode, n2: LabNode, n3: LabNode;
    let configured: any[] = [];

    before(async () => {
      lab = await MultiNodeLab.create({ nodes: 3, podMtu: mode === 'overlay' ? 1450 : 1500, vni: VNI });
      [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
      configured = [];
      for (const n of lab.nodes) configured.push(await lab.configure(n, { mode, vni: VNI, ...(encap ? { encap, decap } : {}) }));
      for (const n of lab.nodes) lab.addPod(n);
      lab.addPod(n3); // deleted later
      await lab.syncAll();
    });
    after(async () => lab?.destroy());

    test('the node is configured for the mode', () => {
      for (const [i, st] of configured.entries()) {
        assert.equal(st.mode, mode);
        assert.equal(st.nodeIp, lab.nodes[i]!.underlayIp);
        assert.deepEqual(st.podRanges, [POD_RANGE]);
        assert.equal(st.uplink.name, UPLINK);
        if (mode === 'overlay') {
          assert.deepEqual({ mtu: st.overlay.mtu, port: st.overlay.port, vni: st.overlay.vni }, { mtu: 1450, port: 8472, vni: VNI });
          assert.equal(st.overlay.encap, encap);
          assert.equal(st.overlay.decap, decap);
          assert.equal(st.overlay.gsoDecap, decap === 'ebpf' && canDecapGsoInEbpf() ? 'ebpf' : 'kernel', 'GSO decapsulation as this kernel allows');
          assert.equal(st.podMtu, 1450);
        } else {
          assert.equal(st.overlay, undefined);
          assert.equal(st.podMtu, 1500);
        }
      }
      const links = n1.node.ns.ip('link', 'show');
      assert.equal(links.includes('fast_vxlan'), mode === 'overlay');
      if (mode === 'overlay') {
        const d = n1.node.ns.ip('-d', 'link', 'show', 'fast_vxlan');
        assert.match(d, /vxlan external/);
        assert.match(d, /dstport 8472/);
        assert.match(d, /link\/ether 02:fa:57:00:00:01/);
        assert.match(d, /NOARP/);
      }
      const cfg = JSON.parse(n1.node.ctl('map', 'dump', 'fast_cfg_v1', '-o', 'json'))[0];
      assert.equal(cfg.mode, mode);
      assert.equal(cfg.nodeIp, n1.underlayIp);
      assert.equal(cfg.uplink, UPLINK);
      assert.equal(cfg.overlay, mode === 'overlay' ? 'fast_vxlan' : '-');
      assert.equal(cfg.encap, encap ?? '-');
      const status = n1.node.ctl('status');
      assert.match(status, mode === 'native' ? /Cross-node: native routing, node 192\.168\.100\.\d+ on eth0/
        : new RegExp(`Cross-node: overlay \\(VXLAN\\), node 192\\.168\\.100\\.\\d+ on eth0; encapsulation ${encap === 'ebpf' ? 'eBPF' : 'fast_vxlan'}.*; decapsulation ${decap === 'ebpf' ? 'eBPF' : 'fast_vxlan'}`));
      assert.match(status, /Kernel: +tcx links (yes|NO), VXLAN device yes, eBPF GSO decapsulation (yes|NO), netkit devices (yes|NO)/);
      const json = JSON.parse(n1.node.ctl('status', '-o', 'json')) as { crossNode: Record<string, string>; kernel: Array<{ name: string; present: boolean }> };
      assert.deepEqual(json.crossNode, { mode, nodeIp: n1.underlayIp, uplink: UPLINK, ...(mode === 'overlay' ? { encap, decap, gsoDecap: decap === 'ebpf' && canDecapGsoInEbpf() ? 'ebpf' : 'kernel' } : {}) });
      assert.equal(json.kernel.find((k) => k.name === 'VXLAN device')?.present, true);
    });

    test('ICMP between pods on every pair of nodes', () => {
      for (const a of lab.nodes) for (const b of lab.nodes) {
        if (a === b) continue;
        assert.ok(pingFrom(a.pods[0]!.pod, b.pods[0]!.ip, 2), `${a.pods[0]!.ip} (node ${a.index}) -> ${b.pods[0]!.ip} (node ${b.index})`);
      }
    });

    test('TCP between pods on every pair of nodes', async () => {
      let port = 7100;
      for (const a of lab.nodes) for (const b of lab.nodes) {
        if (a === b) continue;
        const r = await tcpTransfer(a.pods[0]!.pod, b.pods[0]!.pod, b.pods[0]!.ip, port++);
        assert.ok(r.ok, `tcp node ${a.index} -> node ${b.index}: ${r.out}`);
      }
    });

    test('pod-to-pod traffic took the eBPF path on both ends', () => {
      for (const n of lab.nodes) {
        const s = stats(n);
        assert.ok(s[mode === 'overlay' ? 'redirect_tunnel' : 'redirect_neigh']! > 0, `node ${n.index} sent through eBPF: ${JSON.stringify(s)}`);
        if (encap === 'ebpf') assert.equal(s.encap_ebpf, s.redirect_tunnel, `node ${n.index}: every pod packet into the tunnel was encapsulated by eBPF`);
        else assert.equal(s.encap_ebpf, 0, `node ${n.index}: nothing encapsulated by eBPF`);
        assert.ok(s.deliver_from_net! > 0, `node ${n.index} delivered with redirect_peer`);
        assert.equal(s.drop_vni, 0);
      }
    });

    test('node <-> remote pod, both ways', async () => {
      for (const a of lab.nodes) for (const b of lab.nodes) {
        if (a === b) continue;
        assert.ok(pingFrom(a.node.ns, b.pods[0]!.ip), `node ${a.index} -> pod on node ${b.index}`);
        assert.ok(pingFrom(b.pods[0]!.pod, a.underlayIp), `pod on node ${b.index} -> node ${a.index}`);
      }
      const r = await tcpTransfer(n1.node.ns, n2.pods[0]!.pod, n2.pods[0]!.ip, 7200);
      assert.ok(r.ok, `tcp node 1 -> pod on node 2: ${r.out}`);
      const back = await tcpTransfer(n2.pods[0]!.pod, n1.node.ns, n1.underlayIp, 7201);
      assert.ok(back.ok, `tcp pod on node 2 -> node 1: ${back.out}`);
      // The remote node sees the pod's own address (no masquerading inside the cluster).
      assert.equal(await seenSourceAddress(n2.pods[0]!.pod, n1.node.ns, n1.underlayIp, 7202), n2.pods[0]!.ip);
      if (mode === 'overlay') assert.ok(stats(n1).encap_from_host > 0, 'node -> remote pod went through the VXLAN egress program');
    });

    test('pod -> external host is masqueraded to the node address, replies come back', async () => {
      for (const n of lab.nodes) {
        assert.ok(pingFrom(n.pods[0]!.pod, EXTERNAL_IP), `pod on node ${n.index} -> external`);
        assert.equal(await seenSourceAddress(n.pods[0]!.pod, lab.external!, EXTERNAL_IP, 7300 + n.index), n.underlayIp);
      }
      const r = await tcpTransfer(n1.pods[0]!.pod, lab.external!, EXTERNAL_IP, 7310, 1_000_000);
      assert.ok(r.ok, r.out);
      const table = n1.node.ns.exec('nft', 'list', 'table', 'inet', 'fast');
      assert.match(table, /oifname "eth0" ip saddr @pod_ranges_v4 ip daddr != @pod_ranges_v4 masquerade/);
    });

    test('a 5 MB transfer between pods on different nodes fits the MTU (no fragments on the wire)', async () => {
      const before = lab.wireCounters().fragments;
      const r = await tcpTransfer(n1.pods[0]!.pod, n3.pods[0]!.pod, n3.pods[0]!.ip, 7400, 5 * 1024 * 1024);
      assert.ok(r.ok, r.out);
      const back = await tcpTransfer(n3.pods[0]!.pod, n2.pods[0]!.pod, n2.pods[0]!.ip, 7401, 5 * 1024 * 1024);
      assert.ok(back.ok, back.out);
      // The largest packet a pod may send crosses, unfragmented, with DF set.
      const payload = (mode === 'overlay' ? 1450 : 1500) - 28;
      assert.ok(pingFrom(n1.pods[0]!.pod, n2.pods[0]!.ip, 1, payload), 'full-size DF ping');
      assert.equal(lab.wireCounters().fragments - before, 0, 'no IP fragments crossed the underlay');
    });

    test('on the wire: overlay encapsulates every pod packet with the VNI; native routes them in clear', () => {
      const c = lab.wireCounters();
      if (mode === 'overlay') {
        assert.ok(c.vxlan_vni > 0, 'VXLAN packets with the configured VNI');
        assert.equal(c.vxlan_other_vni, 0);
        assert.equal(c.pod_ip_in_clear, 0, 'no pod address outside a tunnel (external traffic is masqueraded)');
      } else {
        assert.equal(c.vxlan_vni + c.vxlan_other_vni, 0, 'no encapsulation');
        assert.ok(c.pod_ip_in_clear > 0, 'pod addresses routed natively');
      }
    });

    test('fast-ctl shows every remote and its path', () => {
      const rows = cpodDump(n1);
      const want = lab.desiredRemotes(n1);
      assert.deepEqual(rows.map((r) => r.ip).sort(), want.map((r) => r.ip).sort());
      const pod2 = rows.find((r) => r.ip === n2.pods[0]!.ip)!;
      assert.equal(pod2.kind, 'pod');
      const tunnel = encap === 'ebpf' ? `(eBPF encap, dev ${UPLINK})` : '(fast_vxlan)';
      assert.equal(pod2.path, mode === 'overlay' ? `vxlan vni ${VNI} -> ${n2.underlayIp} ${tunnel}` : `via ${n2.underlayIp} dev ${UPLINK}`);
      assert.equal(rows.find((r) => r.ip === n3.underlayIp)!.kind, 'node');
      const table = n1.node.ctl('map', 'dump', 'fast_cpod_v1');
      assert.match(table, mode === 'overlay' ? /vxlan vni 4242 -> 192\.168\.100\.3/ : /via 192\.168\.100\.3 dev eth0/);
    });

    test('the node routes: per range into fast_vxlan (overlay) or a /32 per remote pod (native)', () => {
      const routes = routesOf(n1.node.ns);
      if (mode === 'overlay') {
        assert.deepEqual(routes.map((r) => [r.dst, r.dev]), [[POD_RANGE, 'fast_vxlan']]);
      } else {
        const remotePods = lab.desiredRemotes(n1).filter((r) => r.kind === 'pod');
        assert.deepEqual(routes.map((r) => r.dst).sort(), remotePods.map((r) => r.ip).sort());
        for (const r of routes) assert.equal(r.gateway, remotePods.find((p) => p.ip === r.dst)!.nodeIp);
      }
    });

    test('a deleted pod disappears from the other nodes (maps and routes) and is unreachable', async () => {
      const gone = n3.pods[1]!;
      assert.ok(pingFrom(n1.pods[0]!.pod, gone.ip), 'reachable before');
      assert.equal(n3.node.cni(envFor('DEL', gone.containerId, gone.pod.path), n3.node.conf('1.1.0')).exitCode, 0);
      n3.pods.splice(1, 1);
      for (const n of [n1, n2]) {
        const r = await lab.request(n, { op: 'remote-delete', ip: gone.ip });
        assert.deepEqual(r, { deleted: true });
        assert.equal(cpodDump(n).some((e) => e.ip === gone.ip), false, `node ${n.index} map`);
        assert.equal(routesOf(n.node.ns).some((e) => e.dst === gone.ip), false, `node ${n.index} routes`);
      }
      assert.deepEqual(await lab.request(n1, { op: 'remote-delete', ip: gone.ip }), { deleted: false }, 'idempotent');
      assert.equal(pingFrom(n1.node.ns, gone.ip), false);
      assert.ok(pingFrom(n1.pods[0]!.pod, n3.pods[0]!.ip), 'the other pod of node 3 still answers');
    });

    test('a full resync removes stale entries and their routes', async () => {
      await lab.request(n1, { op: 'remote-upsert', ip: '10.77.9.9', nodeIp: n2.underlayIp, kind: 'pod' });
      await lab.request(n1, { op: 'remote-upsert', ip: '10.99.0.7', nodeIp: n3.underlayIp }); // outside the pod ranges
      await lab.request(n1, { op: 'remote-upsert', ip: '192.168.100.77', nodeIp: '192.168.100.77', kind: 'node' });
      assert.ok(cpodDump(n1).some((e) => e.ip === '10.77.9.9'));
      const staleRoutes = routesOf(n1.node.ns).map((r) => r.dst);
      assert.ok(staleRoutes.includes('10.99.0.7'), 'a remote outside the ranges gets its own route');
      if (mode === 'native') assert.ok(staleRoutes.includes('10.77.9.9'));
      const report = await lab.request(n1, { op: 'remote-sync', remotes: lab.desiredRemotes(n1) });
      assert.deepEqual(report, { added: 0, updated: 0, removed: 3, unchanged: lab.desiredRemotes(n1).length, skipped: 0 });
      assert.deepEqual(cpodDump(n1).map((e) => e.ip).sort(), lab.desiredRemotes(n1).map((r) => r.ip).sort());
      const routes = routesOf(n1.node.ns).map((r) => r.dst);
      for (const ip of ['10.77.9.9', '10.99.0.7']) assert.equal(routes.includes(ip), false, `${ip} route removed`);
      assert.ok(pingFrom(n1.pods[0]!.pod, n2.pods[0]!.ip), 'live remotes untouched');
    });

    test('thousands of remotes are cheap: 5000 synced, resynced and removed in one batch each', async () => {
      const desired = lab.desiredRemotes(n1);
      const many = [...desired];
      for (let i = 0; i < 5000; i++) many.push({ ip: `10.77.${100 + (i >> 8)}.${i & 255}`, nodeIp: n2.underlayIp, kind: 'pod' });
      let t = Date.now();
      const added = await lab.request(n1, { op: 'remote-sync', remotes: many });
      const addMs = Date.now() - t;
      assert.equal(added.added, 5000);
      // (Through the agent: fast-ctl's output to a pipe is cut at process exit beyond ~200 KB.)
      assert.equal((await lab.request(n1, { op: 'remote-list' })).length, desired.length + 5000);
      const routes = routesOf(n1.node.ns).length;
      assert.equal(routes, mode === 'overlay' ? 1 : desired.filter((r) => r.kind === 'pod').length + 5000);
      t = Date.now();
      const removed = await lab.request(n1, { op: 'remote-sync', remotes: desired });
      const removeMs = Date.now() - t;
      assert.equal(removed.removed, 5000);
      assert.ok(addMs < 5000 && removeMs < 5000, `sync took ${addMs} ms / ${removeMs} ms`);
      assert.ok(pingFrom(n1.pods[0]!.pod, n2.pods[0]!.ip));
    });

    test('a remote whose route cannot be installed is not half-added', async () => {
      const req = { op: 'remote-upsert', ip: '10.77.9.10', nodeIp: '172.31.0.1' }; // not on the underlay
      if (mode === 'native') {
        await assert.rejects(lab.request(n1, req), /route change\(s\) failed.*10\.77\.9\.10/);
        assert.equal(cpodDump(n1).some((e) => e.ip === '10.77.9.10'), false, 'rolled back');
      } else {
        assert.deepEqual(await lab.request(n1, req), { written: true }, 'overlay needs no per-pod route');
        assert.deepEqual(await lab.request(n1, { op: 'remote-delete', ip: '10.77.9.10' }), { deleted: true });
      }
    });

    test('a remote on this node itself is ignored', async () => {
      assert.deepEqual(await lab.request(n1, { op: 'remote-upsert', ip: '10.77.1.250', nodeIp: n1.underlayIp }), { written: false });
      assert.equal(cpodDump(n1).some((e) => e.ip === '10.77.1.250'), false);
    });

    test('an agent restart keeps cross-node flows and adopts the configuration', async () => {
      const [a, b] = [n1.pods[0]!, n2.pods[0]!];
      const pinger = spawn('ip', ['netns', 'exec', a.pod.name, 'ping', '-i', '0.01', '-c', '300', '-W', '1', b.ip], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      pinger.stdout!.on('data', (d) => (out += d));
      await sleep(300);
      await n1.node.stopAgent('SIGKILL');
      await n1.node.startAgent();
      await new Promise((r) => pinger.once('exit', r));
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      assert.ok(m, out);
      assert.equal(m![2], m![1], 'no packet lost');
      // Not configured again: the new agent adopts mode, uplink and ranges from the kernel.
      const st = await lab.request(n1, { op: 'cross-node-status' });
      assert.equal(st.mode, mode);
      assert.deepEqual(st.podRanges, mode === 'overlay' ? [POD_RANGE] : []);
      const p = lab.addPod(n2);
      await lab.request(n1, { op: 'remote-sync', remotes: lab.desiredRemotes(n1) });
      await lab.request(n3, { op: 'remote-upsert', ip: p.ip, nodeIp: n2.underlayIp });
      assert.ok(pingFrom(n1.pods[0]!.pod, p.ip), 'a new remote pod works after the restart');
      assert.ok(pingFrom(n3.pods[0]!.pod, p.ip));
      // Configuring again with the same options is harmless.
      await lab.configure(n1, { mode, vni: VNI });
      assert.ok(pingFrom(n1.pods[0]!.pod, p.ip));
    });

    test('turning cross-node networking off removes the device, routes and nft table', async () => {
      const st = await lab.configure(n3, { mode: 'local' });
      assert.equal(st.mode, 'local');
      assert.equal(n3.node.ns.ip('link', 'show').includes('fast_vxlan'), false);
      assert.deepEqual(routesOf(n3.node.ns), []);
      assert.equal(n3.node.ns.exec('nft', 'list', 'tables').includes('fast'), false);
      assert.equal(pingFrom(n3.pods[0]!.pod, n1.pods[0]!.ip), false, 'no cross-node path any more');
      assert.equal(JSON.parse(n3.node.ctl('map', 'dump', 'fast_cfg_v1', '-o', 'json'))[0].mode, 'local');
      assert.match(n3.node.ctl('map', 'dump', 'fast_cpod_v1'), /host stack \(cross-node off\)/);
    });
  });
}

describe('switching a node between modes', () => {
  let lab: MultiNodeLab;
  before(async () => {
    lab = await MultiNodeLab.create({ nodes: 2, podMtu: 1450, vni: VNI });
    for (const n of lab.nodes) lab.addPod(n);
  });
  after(async () => lab?.destroy());

  test('overlay -> native -> overlay keeps pods connected after each switch', async () => {
    for (const mode of ['overlay', 'native', 'overlay'] as const) {
      for (const n of lab.nodes) await lab.configure(n, { mode, vni: VNI });
      await lab.syncAll();
      const [a, b] = lab.nodes as [LabNode, LabNode];
      assert.ok(pingFrom(a.pods[0]!.pod, b.pods[0]!.ip, 2), `${mode}: pod -> remote pod`);
      assert.ok(pingFrom(a.node.ns, b.pods[0]!.ip), `${mode}: node -> remote pod`);
      const routes = routesOf(a.node.ns);
      assert.deepEqual(routes.map((r) => r.dev), mode === 'overlay' ? ['fast_vxlan'] : ['eth0'], `${mode} routes`);
      assert.equal(a.node.ns.ip('link', 'show').includes('fast_vxlan'), mode === 'overlay');
    }
  });

  test('uplink and node address default to the default route device and its address', async () => {
    const [a, b] = lab.nodes as [LabNode, LabNode];
    a.node.ns.ip('route', 'add', 'default', 'via', EXTERNAL_IP, 'dev', UPLINK);
    const st = await lab.request(a, { op: 'cross-node-configure', mode: 'overlay', vni: VNI, podRanges: [POD_RANGE] });
    assert.deepEqual([st.uplink.name, st.nodeIp], [UPLINK, a.underlayIp]);
    const st2 = await lab.request(b, { op: 'cross-node-configure', mode: 'overlay', vni: VNI, nodeIp: b.underlayIp, podRanges: [POD_RANGE] });
    assert.equal(st2.uplink.name, UPLINK, 'the device holding nodeIp');
    assert.ok(pingFrom(a.pods[0]!.pod, b.pods[0]!.ip));
    await assert.rejects(lab.request(b, { op: 'cross-node-configure', mode: 'overlay', podRanges: [POD_RANGE] }), /no default route/);
    await assert.rejects(lab.request(b, { op: 'cross-node-configure', mode: 'overlay', uplink: 'nosuchdev', nodeIp: b.underlayIp }), /nosuchdev does not exist/);
    await assert.rejects(lab.request(b, { op: 'cross-node-configure', mode: 'vxlan' }), /mode must be/);
    await assert.rejects(lab.request(b, { op: 'remote-upsert', ip: '10.77.5.5', nodeIp: 'node-2' }), /not a node address/);
    assert.ok(pingFrom(a.pods[0]!.pod, b.pods[0]!.ip), 'a rejected request changed nothing');
  });
});
