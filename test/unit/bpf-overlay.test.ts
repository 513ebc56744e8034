// Cross-node paths of the eBPF datapath, run by the kernel on crafted packets
// (BPF_PROG_TEST_RUN): fast_from_pod towards remote pods in overlay and native mode,
// fast_from_overlay / fast_to_overlay on the VXLAN device, fast_from_uplink.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoadedBpfObject, readObjectSpec } from '../../src/dataplane/bpf/bpf-object.js';
import { testRun } from '../../src/dataplane/bpf/test-run.js';
import { canDecapGsoInEbpf } from '../../src/dataplane/bpf/kernel-btf.js';
import { libbpf, check, TestRunOpts } from '../../src/dataplane/bpf/libbpf.js';
import koffi from 'koffi';
import { ensureBpffs, removeBpffs } from '../../src/dataplane/net/bpffs.js';
import { withNetnsSync } from '../../src/dataplane/net/netns.js';
import {
  MAP_NAMES, encodeIp, encodeLocalPod, encodeClusterPod, encodeNodeConfig, decodeNodeConfig, decodeMac, STAT_NAMES, sumPerCpu,
  CONFIG_KEY, CPOD_FLAG_NODE, CFG_FLAG_EBPF_ENCAP, CFG_FLAG_GSO_DECAP, CFG_FLAG_KERNEL_DECAP, type CrossNodeMode, type NodeConfigEntry,
} from '../../src/dataplane/bpf/map-layouts.js';
import { OVERLAY_MAC, OVERLAY_SRC_MAC, parsePrefix, prefixContains, prefixText, canonicalDst, routeReplaceLine, routeDeleteLine, masqueradeScript, sameRoute, tunnelNotrackScript } from '../../src/dataplane/net/cross-node.js';
import { TestNetns, uniqueName } from '../helpers/netns.js';
import { ethernet, ipv4Udp, ipv6Udp, ipv4HeaderChecksumValid } from '../helpers/packets.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const POD_OBJ = path.resolve('bpf/fast_pod.o');
const NET_OBJ = path.resolve('bpf/fast_net.o');
const NODE_IP = '192.168.100.1';
const VNI = 4242;

let ns: TestNetns;
let pinDir: string;
let podObj: LoadedBpfObject;
let netObj: LoadedBpfObject;
const dev = { overlay: 0, uplink: 0, uplinkMac: '' };

// Local pods A (sender) and B; remote pods R (IPv4 and IPv6) on node 2, R6U behind an
// IPv6 underlay address; node 2's own address as a node entry.
const A = { ip: '10.1.0.2', ip6: 'fd00:1::2', podMac: '02:aa:00:00:00:02', hostMac: '02:bb:00:00:00:02', ifindex: 0 };
const B = { ip: '10.1.0.3', ip6: 'fd00:1::3', podMac: '02:aa:00:00:00:03', hostMac: '02:bb:00:00:00:03', ifindex: 0 };
const NODE2 = '192.168.100.2';
const R = { ip: '10.2.0.5', ip6: 'fd00:2::5' };
const R6U = { ip: '10.3.0.5', node: 'fd99::3' };

before(() => {
  ns = new TestNetns(uniqueName('fbpf'));
  ns.ip('link', 'add', 'hA', 'type', 'veth', 'peer', 'name', 'pA');
  ns.ip('link', 'add', 'hB', 'type', 'veth', 'peer', 'name', 'pB');
  ns.ip('link', 'add', 'fast_vxlan', 'address', OVERLAY_MAC, 'type', 'vxlan', 'external', 'dstport', '8472');
  ns.ip('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
  A.ifindex = ns.ifindex('hA');
  B.ifindex = ns.ifindex('hB');
  dev.overlay = ns.ifindex('fast_vxlan');
  dev.uplink = ns.ifindex('up0');
  dev.uplinkMac = ns.mac('up0');
  pinDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-bpffs-'));
  ensureBpffs(pinDir);
  podObj = LoadedBpfObject.load(POD_OBJ, pinDir);
  netObj = LoadedBpfObject.load(NET_OBJ, pinDir);
  for (const p of [A, B]) {
    const value = encodeLocalPod({ hostIfindex: p.ifindex, podIfindex: 2, podMac: p.podMac, hostMac: p.hostMac, flags: 0 });
    podObj.map(MAP_NAMES.localPods).update(encodeIp(p.ip), value);
    podObj.map(MAP_NAMES.localPods).update(encodeIp(p.ip6), value);
  }
  const cpod = podObj.map(MAP_NAMES.clusterPods);
  cpod.update(encodeIp(R.ip), encodeClusterPod({ nodeIp: NODE2, flags: 0 }));
  cpod.update(encodeIp(R.ip6), encodeClusterPod({ nodeIp: NODE2, flags: 0 }));
  cpod.update(encodeIp(NODE2), encodeClusterPod({ nodeIp: NODE2, flags: CPOD_FLAG_NODE }));
  cpod.update(encodeIp(R6U.ip), encodeClusterPod({ nodeIp: R6U.node, flags: 0 }));
  // B is local; a stale cluster entry for it must not win over the local one.
  cpod.update(encodeIp(B.ip), encodeClusterPod({ nodeIp: NODE2, flags: 0 }));
});

after(() => {
  podObj?.close();
  netObj?.close();
  if (pinDir) removeBpffs(pinDir);
  ns?.remove();
});

/** `ebpfEncap`: fast_from_pod encapsulates itself (FAST_CFG_F_EBPF_ENCAP) instead of
 *  handing keyed packets to fast_vxlan; `gsoDecap`: the agent found BPF_F_ADJ_ROOM_DECAP_L4_UDP
 *  in the kernel (FAST_CFG_F_GSO_DECAP). */
function configure(mode: CrossNodeMode, ebpfEncap = false, gsoDecap = false): void {
  const cfg: NodeConfigEntry = {
    mode, overlayIfindex: mode === 'overlay' ? dev.overlay : 0, uplinkIfindex: dev.uplink, vni: VNI, nodeIp: NODE_IP,
    overlayMac: OVERLAY_MAC, overlaySrcMac: OVERLAY_SRC_MAC, port: 8472,
    flags: (ebpfEncap ? CFG_FLAG_EBPF_ENCAP : 0) | (gsoDecap ? CFG_FLAG_GSO_DECAP : 0),
  };
  podObj.map(MAP_NAMES.config).update(CONFIG_KEY, encodeNodeConfig(cfg));
}

function run(obj: LoadedBpfObject, prog: string, packet: Buffer, ifindex: number) {
  return withNetnsSync(ns.path, () => testRun(obj.programFd(prog), packet, ifindex));
}
const fromPod = (pkt: Buffer) => run(podObj, 'fast_from_pod', pkt, A.ifindex);
const fromOverlay = (pkt: Buffer) => run(netObj, 'fast_from_overlay', pkt, dev.overlay);
const toOverlay = (pkt: Buffer) => run(netObj, 'fast_to_overlay', pkt, dev.overlay);
const fromUplink = (pkt: Buffer) => run(netObj, 'fast_from_uplink', pkt, dev.uplink);

function stat(name: (typeof STAT_NAMES)[number]): bigint {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(STAT_NAMES.indexOf(name));
  return sumPerCpu(podObj.map(MAP_NAMES.stats).lookup(key)!);
}

function counting<T>(name: (typeof STAT_NAMES)[number], fn: () => T): { result: T; delta: bigint } {
  const before = stat(name);
  const result = fn();
  return { result, delta: stat(name) - before };
}

/** `inner` (an Ethernet frame) as node 2 sends it to this node through the tunnel. */
function vxlan(inner: Buffer, o: { vni?: number; port?: number; dst?: string; fragment?: boolean; flags?: number } = {}): Buffer {
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32BE(o.flags ?? 0x08000000, 0);
  hdr.writeUInt32BE((o.vni ?? VNI) << 8, 4);
  const ip = ipv4Udp(NODE2, o.dst ?? NODE_IP, 64, Buffer.concat([hdr, inner]));
  ip.writeUInt16BE(o.port ?? 8472, 20 + 2);
  if (o.fragment) {
    ip.writeUInt16BE(0x2000, 6); // more fragments
    ip.writeUInt16BE(0, 10);
    ip.writeUInt16BE(ipv4Checksum(ip.subarray(0, 20)), 10);
  }
  return ethernet(dev.uplinkMac, '02:00:00:00:00:99', 0x0800, ip);
}

function ipv4Checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** BPF_PROG_TEST_RUN with the skb's GSO fields set (struct __sk_buff: gso_segs at 164,
 *  gso_size at 176), which testRun does not expose. */
function runGso(obj: LoadedBpfObject, prog: string, packet: Buffer, ifindex: number, gsoSegs: number, gsoSize: number) {
  return withNetnsSync(ns.path, () => {
    const out = Buffer.alloc(packet.length + 256);
    const ctx = Buffer.alloc(192);
    ctx.writeUInt32LE(ifindex, 40);
    ctx.writeUInt32LE(gsoSegs, 164);
    ctx.writeUInt32LE(gsoSize, 176);
    const opts = {
      sz: koffi.sizeof(TestRunOpts), data_in: packet, data_out: out, data_size_in: packet.length, data_size_out: out.length,
      ctx_in: ctx, ctx_out: null, ctx_size_in: ctx.length, ctx_size_out: 0, retval: 0, repeat: 1, duration: 0, flags: 0, cpu: 0, batch_size: 0,
    };
    check('bpf_prog_test_run_opts', libbpf.progTestRun(obj.programFd(prog), opts));
    return { retval: opts.retval, data: out.subarray(0, opts.data_size_out) };
  });
}

const podV4 = (dst: string, ttl = 64) => ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp(A.ip, dst, ttl));
const podV6 = (dst: string, hl = 64) => ethernet(A.hostMac, A.podMac, 0x86dd, ipv6Udp(A.ip6, dst, hl));

test('the map layouts in the objects match the TypeScript codecs', () => {
  for (const file of [POD_OBJ, NET_OBJ]) {
    const maps = new Map(readObjectSpec(file).maps.map((m) => [m.name, m]));
    assert.equal(maps.get(MAP_NAMES.config)?.valueSize, encodeNodeConfig(decodeNodeConfig(Buffer.alloc(52))).length, `${file} fast_cfg_v1`);
    assert.equal(maps.get(MAP_NAMES.clusterPods)?.valueSize, encodeClusterPod({ nodeIp: NODE2, flags: 0 }).length);
  }
  assert.deepEqual(readObjectSpec(NET_OBJ).programs.sort(), ['fast_from_overlay', 'fast_from_uplink', 'fast_to_overlay']);
  assert.ok(fs.existsSync(path.join(pinDir, MAP_NAMES.config)), 'config map pinned');
});

test('the config map round-trips through its codec', () => {
  configure('overlay');
  const cfg = decodeNodeConfig(podObj.map(MAP_NAMES.config).lookup(CONFIG_KEY)!);
  assert.deepEqual(cfg, { mode: 'overlay', overlayIfindex: dev.overlay, uplinkIfindex: dev.uplink, vni: VNI, nodeIp: NODE_IP, overlayMac: OVERLAY_MAC, overlaySrcMac: OVERLAY_SRC_MAC, port: 8472, flags: 0 });
  assert.equal(decodeNodeConfig(Buffer.alloc(52)).mode, 'local', 'an unconfigured node is local-only');
});

describe('overlay mode', () => {
  before(() => configure('overlay'));

  test('a packet to a remote pod gets its tunnel key and is redirected to fast_vxlan', () => {
    const pkt = podV4(R.ip, 64);
    const { result: r, delta } = counting('redirect_tunnel', () => fromPod(pkt));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(delta, 1n, 'counted as a tunnel redirect (bpf_skb_set_tunnel_key succeeded: a failure drops and counts drop_tunnel_key)');
    assert.equal(decodeMac(r.data.subarray(0, 6)), OVERLAY_MAC, 'inner destination MAC is the VXLAN device MAC every node shares');
    assert.equal(decodeMac(r.data.subarray(6, 12)), OVERLAY_SRC_MAC, 'inner source MAC differs from it (no loop drop)');
    assert.equal(r.data[14 + 8], 63, 'TTL decremented (this node routed it)');
    assert.ok(ipv4HeaderChecksumValid(r.data));
    assert.deepEqual(r.data.subarray(34), pkt.subarray(34), 'payload untouched');
  });

  test('a remote node address (node entry) takes the tunnel too', () => {
    const r = fromPod(podV4(NODE2));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(decodeMac(r.data.subarray(0, 6)), OVERLAY_MAC);
  });

  test('IPv6 pods and IPv6 underlay addresses are tunnelled', () => {
    const r6 = fromPod(podV6(R.ip6, 10));
    assert.equal(r6.retval, TC_ACT_REDIRECT);
    assert.equal(r6.data[14 + 7], 9, 'hop limit decremented');
    const { result: r, delta } = counting('redirect_tunnel', () => fromPod(podV4(R6U.ip)));
    assert.equal(r.retval, TC_ACT_REDIRECT, 'BPF_F_TUNINFO_IPV6 key accepted');
    assert.equal(delta, 1n);
  });

  test('a local pod wins over a cluster entry for the same address', () => {
    const r = fromPod(podV4(B.ip));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(decodeMac(r.data.subarray(0, 6)), B.podMac);
  });

  test('unknown destinations go to the host stack unchanged', () => {
    const pkt = podV4('203.0.113.9');
    const r = fromPod(pkt);
    assert.equal(r.retval, TC_ACT_OK);
    assert.deepEqual(r.data, pkt);
  });

  test('anti-spoofing still applies before the remote lookup', () => {
    const spoofed = ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp('10.1.0.99', R.ip));
    assert.equal(fromPod(spoofed).retval, TC_ACT_SHOT);
    const badMac = ethernet(A.hostMac, '02:de:ad:be:ef:00', 0x0800, ipv4Udp(A.ip, R.ip));
    assert.equal(fromPod(badMac).retval, TC_ACT_SHOT);
  });

  test('an expiring TTL to a remote pod is left to the stack (ICMP time exceeded)', () => {
    const pkt = podV4(R.ip, 1);
    const r = fromPod(pkt);
    assert.equal(r.retval, TC_ACT_OK);
    assert.deepEqual(r.data, pkt);
  });

  test('a decapsulated packet for a local pod is delivered into it (redirect_peer)', () => {
    const pkt = ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, B.ip, 63));
    const { result: r, delta } = counting('deliver_from_net', () => fromOverlay(pkt));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(delta, 1n);
    assert.equal(decodeMac(r.data.subarray(0, 6)), B.podMac, 'destination MAC is the pod');
    assert.equal(decodeMac(r.data.subarray(6, 12)), B.hostMac, "source MAC is the pod's gateway");
    assert.equal(r.data[14 + 8], 62);
    assert.ok(ipv4HeaderChecksumValid(r.data));
    const r6 = fromOverlay(ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x86dd, ipv6Udp(R.ip6, B.ip6, 5)));
    assert.equal(r6.retval, TC_ACT_REDIRECT);
    assert.equal(r6.data[14 + 7], 4);
  });

  test('a decapsulated packet for the node or an unknown address passes to the stack', () => {
    for (const dst of [NODE_IP, '10.1.0.77']) {
      const pkt = ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, dst));
      const { result: r, delta } = counting('pass_from_net', () => fromOverlay(pkt));
      assert.equal(r.retval, TC_ACT_OK, dst);
      assert.deepEqual(r.data, pkt);
      assert.equal(delta, 1n);
    }
  });

  test('node stack -> remote pod: the egress program sets the key and fixes the inner source MAC', () => {
    // What the stack hands fast_vxlan (NOARP: both MACs are the device's own).
    const pkt = ethernet(OVERLAY_MAC, OVERLAY_MAC, 0x0800, ipv4Udp(NODE_IP, R.ip));
    const { result: r, delta } = counting('encap_from_host', () => toOverlay(pkt));
    assert.equal(r.retval, TC_ACT_OK, 'continues into the VXLAN driver');
    assert.equal(delta, 1n);
    assert.equal(decodeMac(r.data.subarray(0, 6)), OVERLAY_MAC);
    assert.equal(decodeMac(r.data.subarray(6, 12)), OVERLAY_SRC_MAC);
    assert.equal(r.data[14 + 8], 64, 'the stack already decremented');
    assert.equal(toOverlay(ethernet(OVERLAY_MAC, OVERLAY_MAC, 0x86dd, ipv6Udp('fd00:1::1', R.ip6))).retval, TC_ACT_OK);
  });

  test('node stack -> unknown address in the tunnel is dropped', () => {
    const { result: r, delta } = counting('drop_no_remote', () => toOverlay(ethernet(OVERLAY_MAC, OVERLAY_MAC, 0x0800, ipv4Udp(NODE_IP, '10.2.0.99'))));
    assert.equal(r.retval, TC_ACT_SHOT);
    assert.equal(delta, 1n);
    assert.equal(toOverlay(ethernet('ff:ff:ff:ff:ff:ff', OVERLAY_MAC, 0x0806, Buffer.alloc(28))).retval, TC_ACT_SHOT, 'no ARP into the tunnel');
  });

  test('the uplink program leaves plain (not tunnelled) packets alone in overlay mode', () => {
    const pkt = ethernet(dev.uplinkMac, '02:00:00:00:00:99', 0x0800, ipv4Udp(R.ip, B.ip));
    const r = fromUplink(pkt);
    assert.equal(r.retval, TC_ACT_OK);
    assert.deepEqual(r.data, pkt);
  });

  test('a VXLAN packet for a local pod is decapsulated on the uplink and delivered into the pod', () => {
    const inner = ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, B.ip, 63, Buffer.from('payload of the pod')));
    const { result: r, delta } = counting('deliver_from_net', () => fromUplink(vxlan(inner)));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(delta, 1n);
    assert.equal(r.data.length, inner.length, 'outer IPv4 + UDP + VXLAN + inner Ethernet removed');
    assert.equal(decodeMac(r.data.subarray(0, 6)), B.podMac);
    assert.equal(decodeMac(r.data.subarray(6, 12)), B.hostMac);
    assert.equal(r.data.readUInt16BE(12), 0x0800);
    assert.equal(r.data[14 + 8], 62, 'TTL decremented once, as on the fast_vxlan path');
    assert.ok(ipv4HeaderChecksumValid(r.data));
    assert.deepEqual(r.data.subarray(14 + 9, 14 + 10), inner.subarray(14 + 9, 14 + 10));
    assert.deepEqual(r.data.subarray(34), inner.subarray(34), 'transport header and payload untouched');
  });

  test('an IPv6 pod packet in an IPv4 tunnel is decapsulated with its own ethertype', () => {
    const inner = ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x86dd, ipv6Udp(R.ip6, B.ip6, 9));
    const r = fromUplink(vxlan(inner));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(r.data.length, inner.length);
    assert.equal(r.data.readUInt16BE(12), 0x86dd);
    assert.equal(r.data[14 + 7], 8);
    assert.equal(decodeMac(r.data.subarray(0, 6)), B.podMac);
  });

  test('tunnel packets that are not exactly ours stay on the fast_vxlan path, unchanged', () => {
    const inner = ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, B.ip, 63));
    const cases: Record<string, Buffer> = {
      'another VNI': vxlan(inner, { vni: VNI + 1 }),
      'another UDP port': vxlan(inner, { port: 4789 }),
      'another outer destination': vxlan(inner, { dst: '192.168.100.77' }),
      'a fragment': vxlan(inner, { fragment: true }),
      'a VXLAN header with other flags': vxlan(inner, { flags: 0x88000000 }),
      'an inner destination that is not a local pod': vxlan(ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, NODE_IP, 63))),
      'an inner ARP frame': vxlan(ethernet('ff:ff:ff:ff:ff:ff', OVERLAY_SRC_MAC, 0x0806, Buffer.alloc(28))),
      'a truncated inner header': vxlan(ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, Buffer.alloc(10))),
    };
    for (const [what, pkt] of Object.entries(cases)) {
      const r = fromUplink(pkt);
      assert.equal(r.retval, TC_ACT_OK, what);
      assert.deepEqual(r.data, pkt, what);
    }
  });

  test('with FAST_CFG_F_KERNEL_DECAP (overlayDecap: kernel) the uplink leaves every tunnel packet to fast_vxlan', () => {
    const pkt = vxlan(ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, B.ip, 63)));
    assert.equal(fromUplink(pkt).retval, TC_ACT_REDIRECT, 'decapsulated by default');
    const cfg = podObj.map(MAP_NAMES.config);
    cfg.update(CONFIG_KEY, encodeNodeConfig({ ...decodeNodeConfig(cfg.lookup(CONFIG_KEY)!), flags: CFG_FLAG_KERNEL_DECAP }));
    try {
      const r = fromUplink(pkt);
      assert.equal(r.retval, TC_ACT_OK);
      assert.deepEqual(r.data, pkt);
    } finally {
      configure('overlay');
    }
  });

  test('a GSO tunnel packet is left to fast_vxlan unless the kernel can clear its tunnel GSO state', () => {
    const inner = ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, B.ip, 63, Buffer.alloc(1400)));
    const pkt = vxlan(inner);
    const r = runGso(netObj, 'fast_from_uplink', pkt, dev.uplink, 2, 1398);
    assert.equal(r.retval, TC_ACT_OK, 'without FAST_CFG_F_GSO_DECAP: adjust_room would leave skb->encapsulation and SKB_GSO_UDP_TUNNEL set');
    assert.deepEqual(r.data, pkt);
    assert.equal(runGso(netObj, 'fast_from_uplink', pkt, dev.uplink, 0, 0).retval, TC_ACT_REDIRECT, 'the same packet without GSO is decapsulated');
  });

  test('with FAST_CFG_F_GSO_DECAP, GSO packets are decapsulated with BPF_F_ADJ_ROOM_DECAP_L4_UDP, or left unchanged where the kernel refuses it', () => {
    configure('overlay', false, true);
    try {
      const inner = ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, B.ip, 63, Buffer.alloc(1400)));
      const pkt = vxlan(inner);
      const r = runGso(netObj, 'fast_from_uplink', pkt, dev.uplink, 2, 1398);
      if (canDecapGsoInEbpf()) {
        assert.equal(r.retval, TC_ACT_REDIRECT, 'decapsulated here');
        assert.equal(r.data.length, inner.length);
      } else {
        // 6.18 (this machine): the flag the agent would not have set is refused before the
        // packet is touched, so a wrong flag can never half-decapsulate a packet.
        assert.equal(r.retval, TC_ACT_OK);
        assert.deepEqual(r.data, pkt);
      }
    } finally {
      configure('overlay');
    }
  });
});


describe('overlay mode, eBPF encapsulation (FAST_CFG_F_EBPF_ENCAP)', () => {
  before(() => configure('overlay', true));
  after(() => configure('overlay'));

  /** The outer headers eBPF wrote in front of `inner` (an Ethernet frame). */
  function assertEncapsulated(out: Buffer, inner: Buffer, innerProto: number): void {
    assert.equal(out.length, inner.length + 50, 'outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14)');
    assert.equal(out.readUInt16BE(12), 0x0800, 'outer ethertype IPv4, whatever the inner family');
    const ip = out.subarray(14, 34);
    assert.equal(ip[0], 0x45);
    assert.equal(ip.readUInt16BE(2), out.length - 14, 'outer total length');
    assert.equal(ip.readUInt16BE(6) & 0x3fff, 0, 'not a fragment');
    assert.equal(ip[8], 64, 'outer TTL');
    assert.equal(ip[9], 17, 'UDP');
    assert.ok(ipv4HeaderChecksumValid(out), 'outer header checksum');
    assert.deepEqual([...ip.subarray(12, 16)].join('.'), NODE_IP, 'outer source: this node');
    assert.deepEqual([...ip.subarray(16, 20)].join('.'), NODE2, 'outer destination: the remote pod\'s node');
    const udp = out.subarray(34, 42);
    assert.ok(udp.readUInt16BE(0) >= 32768, 'source port from the flow hash, upper half of the range');
    assert.equal(udp.readUInt16BE(2), 8472);
    assert.equal(udp.readUInt16BE(4), out.length - 34, 'UDP length');
    assert.equal(udp.readUInt16BE(6), 0, 'no UDP checksum over IPv4');
    assert.equal(out.readUInt32BE(42), 0x08000000, 'VXLAN I flag');
    assert.equal(out.readUInt32BE(46), VNI << 8, 'VNI');
    assert.equal(decodeMac(out.subarray(50, 56)), OVERLAY_MAC, 'inner destination MAC: what the receiving fast_vxlan takes as its own');
    assert.equal(decodeMac(out.subarray(56, 62)), OVERLAY_SRC_MAC);
    assert.equal(out.readUInt16BE(62), innerProto);
  }

  test('a packet to a remote pod is encapsulated in eBPF and sent out of the uplink', () => {
    const pkt = podV4(R.ip, 64);
    const before = { tunnel: stat('redirect_tunnel'), ebpf: stat('encap_ebpf') };
    const r = fromPod(pkt);
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(stat('encap_ebpf') - before.ebpf, 1n);
    assert.equal(stat('redirect_tunnel') - before.tunnel, 1n, 'still counted as taken into the tunnel');
    assertEncapsulated(r.data, pkt, 0x0800);
    const innerIp = r.data.subarray(64);
    assert.equal(innerIp[8], 63, 'inner TTL decremented (this node routed it)');
    assert.ok(ipv4HeaderChecksumValid(r.data.subarray(50)), 'inner header checksum still valid');
    assert.deepEqual(innerIp.subarray(20), pkt.subarray(34), 'inner transport header and payload untouched');
  });

  test('the same flow always gets the same outer source port', () => {
    const a = fromPod(podV4(R.ip)).data.readUInt16BE(34);
    const b = fromPod(podV4(R.ip)).data.readUInt16BE(34);
    assert.equal(a, b);
  });

  test('the outer header carries the inner DSCP but not its ECN bits', () => {
    const pkt = podV4(R.ip);
    pkt[15] = 0xb9; // DSCP 46 (EF) | ECT(1)
    pkt.writeUInt16BE(0, 24);
    pkt.writeUInt16BE(ipv4Checksum(pkt.subarray(14, 34)), 24);
    const r = fromPod(pkt);
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(r.data[15], 0xb8);
    assert.equal(r.data[64 + 1], 0xb9, 'inner TOS untouched');
  });

  test('an IPv6 pod packet goes into an IPv4 tunnel with its own inner ethertype', () => {
    const pkt = podV6(R.ip6, 10);
    const r = fromPod(pkt);
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assertEncapsulated(r.data, pkt, 0x86dd);
    assert.equal(r.data[64 + 7], 9, 'hop limit decremented');
  });

  test('an IPv6 underlay address falls back to fast_vxlan (eBPF encapsulates over IPv4 only)', () => {
    const before = stat('encap_ebpf');
    const r = fromPod(podV4(R6U.ip));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(stat('encap_ebpf'), before);
    assert.equal(decodeMac(r.data.subarray(0, 6)), OVERLAY_MAC, 'the kernel path: keyed, inner MACs set, no outer header yet');
    assert.equal(r.data.length, podV4(R6U.ip).length);
  });

  test('a GSO skb eBPF may not grow (not TCP, no fixed UDP segments) falls back to fast_vxlan unchanged', () => {
    const pkt = podV4(R.ip, 64);
    const before = stat('encap_ebpf');
    const r = runGso(podObj, 'fast_from_pod', pkt, A.ifindex, 2, 1000);
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(stat('encap_ebpf'), before, 'adjust_room refused it');
    assert.equal(r.data.length, pkt.length, 'no outer header: fast_vxlan encapsulates');
    assert.equal(decodeMac(r.data.subarray(0, 6)), OVERLAY_MAC);
  });

  test('local delivery and the host stack are unaffected', () => {
    assert.equal(decodeMac(fromPod(podV4(B.ip)).data.subarray(0, 6)), B.podMac);
    const pkt = podV4('203.0.113.9');
    assert.deepEqual(fromPod(pkt).data, pkt);
  });

  test('what eBPF encapsulates is what the receiving uplink decapsulates', () => {
    // Node 2's view: this node's encapsulated packet, addressed to it; its local pod R.
    const out = fromPod(podV4(R.ip, 64)).data;
    const asNode2 = Buffer.from(out);
    asNode2.set(Buffer.from(dev.uplinkMac.split(':').map((h) => parseInt(h, 16))), 0);
    configure('overlay', true);
    const cfg = podObj.map(MAP_NAMES.config);
    const node2Cfg = encodeNodeConfig({ ...decodeNodeConfig(cfg.lookup(CONFIG_KEY)!), nodeIp: NODE2 });
    const lpod = podObj.map(MAP_NAMES.localPods);
    const rKey = encodeIp(R.ip);
    lpod.update(rKey, encodeLocalPod({ hostIfindex: B.ifindex, podIfindex: 2, podMac: B.podMac, hostMac: B.hostMac, flags: 0 }));
    cfg.update(CONFIG_KEY, node2Cfg);
    try {
      const r = fromUplink(asNode2);
      assert.equal(r.retval, TC_ACT_REDIRECT, 'decapsulated and delivered');
      assert.equal(r.data.length, out.length - 50);
      assert.equal(r.data[14 + 8], 62, 'one more hop');
      assert.deepEqual(r.data.subarray(34), out.subarray(84), 'the pod\'s transport header and payload arrive intact');
    } finally {
      lpod.delete(rKey);
      configure('overlay', true);
    }
  });
});

describe('native routing mode', () => {
  before(() => configure('native'));

  test('a packet to a remote pod is redirected to the uplink with the node as next hop', () => {
    const pkt = podV4(R.ip, 64);
    const { result: r, delta } = counting('redirect_neigh', () => fromPod(pkt));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(delta, 1n);
    assert.equal(r.data[14 + 8], 63, 'TTL decremented');
    assert.ok(ipv4HeaderChecksumValid(r.data));
    assert.deepEqual(r.data.subarray(0, 12), pkt.subarray(0, 12), 'MACs are left to the neighbour subsystem');
    assert.equal(fromPod(podV6(R.ip6)).retval, TC_ACT_REDIRECT);
    assert.equal(fromPod(podV4(NODE2)).retval, TC_ACT_REDIRECT, 'remote node address');
  });

  test('unknown destinations still go to the host stack (masquerading happens there)', () => {
    const pkt = podV4('203.0.113.9');
    assert.equal(fromPod(pkt).retval, TC_ACT_OK);
  });

  test('a packet arriving on the uplink for a local pod is delivered into it', () => {
    const pkt = ethernet(dev.uplinkMac, '02:00:00:00:00:99', 0x0800, ipv4Udp(R.ip, B.ip, 64));
    const { result: r, delta } = counting('deliver_from_net', () => fromUplink(pkt));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(delta, 1n);
    assert.equal(decodeMac(r.data.subarray(0, 6)), B.podMac);
    assert.equal(decodeMac(r.data.subarray(6, 12)), B.hostMac);
    assert.equal(r.data[14 + 8], 63);
  });

  test('everything else on the uplink passes: the node, other hosts, frames for other MACs', () => {
    for (const pkt of [
      ethernet(dev.uplinkMac, '02:00:00:00:00:99', 0x0800, ipv4Udp(R.ip, NODE_IP)),
      ethernet(dev.uplinkMac, '02:00:00:00:00:99', 0x0800, ipv4Udp('203.0.113.9', '10.1.0.77')),
      ethernet('02:00:00:00:00:42', '02:00:00:00:00:99', 0x0800, ipv4Udp(R.ip, B.ip)), // flooded, not ours
      ethernet('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:99', 0x0806, Buffer.alloc(28)),
    ]) {
      const r = fromUplink(pkt);
      assert.equal(r.retval, TC_ACT_OK);
      assert.deepEqual(r.data, pkt);
    }
  });

  test('the overlay ingress program is inert in native mode', () => {
    const pkt = ethernet(OVERLAY_MAC, OVERLAY_SRC_MAC, 0x0800, ipv4Udp(R.ip, B.ip));
    assert.equal(fromOverlay(pkt).retval, TC_ACT_OK);
  });
});

describe('local-only mode', () => {
  before(() => configure('local'));

  test('cluster entries are ignored: remote destinations go to the host stack', () => {
    const pkt = podV4(R.ip);
    const r = fromPod(pkt);
    assert.equal(r.retval, TC_ACT_OK);
    assert.deepEqual(r.data, pkt);
  });

  test('same-node redirect is unaffected', () => {
    assert.equal(fromPod(podV4(B.ip)).retval, TC_ACT_REDIRECT);
  });

  test('the VXLAN egress program drops (nothing may be tunnelled)', () => {
    assert.equal(toOverlay(ethernet(OVERLAY_MAC, OVERLAY_MAC, 0x0800, ipv4Udp(NODE_IP, R.ip))).retval, TC_ACT_SHOT);
  });
});

describe('node plumbing helpers (pure)', () => {
  test('prefixes: parsing, containment, canonical forms', () => {
    assert.equal(prefixText(parsePrefix('10.77.3.9/16')), '10.77.0.0/16');
    assert.ok(prefixContains(parsePrefix('10.77.0.0/16'), '10.77.200.1'));
    assert.ok(!prefixContains(parsePrefix('10.77.0.0/16'), '10.78.0.1'));
    assert.ok(prefixContains(parsePrefix('fd00:1::/64'), 'fd00:1::abcd'));
    assert.ok(!prefixContains(parsePrefix('fd00:1::/64'), '10.77.0.1'), 'families never mix');
    assert.ok(!prefixContains(parsePrefix('10.0.0.0/8'), '::a00:1'));
    assert.equal(canonicalDst('10.1.2.3'), canonicalDst('10.1.2.3/32'));
    assert.equal(canonicalDst('fd00::1'), canonicalDst('fd00:0:0:0:0:0:0:1/128'));
    assert.throws(() => parsePrefix('10.0.0.0/33'));
    assert.throws(() => parsePrefix('nope/8'));
  });

  test('route lines are tagged with the protocol', () => {
    assert.equal(routeReplaceLine({ dst: '10.77.2.5/32', via: '192.168.100.2', dev: 'eth0', src: '192.168.100.1' }),
      'route replace 10.77.2.5/32 via 192.168.100.2 dev eth0 src 192.168.100.1 proto 250');
    assert.equal(routeReplaceLine({ dst: 'fd00:2::5/128', via: 'fd99::2', dev: 'eth0' }), 'route replace fd00:2::5/128 via fd99::2 dev eth0 proto 250');
    assert.equal(routeReplaceLine({ dst: '10.77.0.0/16', dev: 'fast_vxlan' }), 'route replace 10.77.0.0/16 dev fast_vxlan proto 250');
    assert.equal(routeDeleteLine('10.77.2.5/32'), 'route del 10.77.2.5/32 proto 250');
    assert.ok(sameRoute({ dst: '10.77.2.5', dev: 'eth0', via: '192.168.100.2' }, { dst: '10.77.2.5/32', dev: 'eth0', via: '192.168.100.2' }));
    assert.ok(!sameRoute({ dst: '10.77.2.5/32', dev: 'eth0', via: '192.168.100.2' }, { dst: '10.77.2.5/32', dev: 'eth0', via: '192.168.100.3' }));
  });

  test('the masquerade table: pod ranges out of the uplink, not within the cluster', () => {
    const script = masqueradeScript({ uplink: 'eth0', podRanges: ['10.77.0.0/16', 'fd00:1::/64'] });
    assert.match(script, /^table inet fast\ndelete table inet fast\ntable inet fast \{/, 'replaced in one transaction');
    assert.match(script, /elements = \{ 10\.77\.0\.0\/16 \}/);
    assert.match(script, /oifname "eth0" ip saddr @pod_ranges_v4 ip daddr != @pod_ranges_v4 masquerade/);
    assert.match(script, /oifname "eth0" ip6 saddr @pod_ranges_v6 ip6 daddr != @pod_ranges_v6 masquerade/);
    assert.doesNotMatch(masqueradeScript({ uplink: 'eth0', podRanges: ['10.77.0.0/16'] }), /ip6/);
  });
});

test('the tunnel table keeps the VXLAN port out of conntrack, sent and received, and nothing else', () => {
  // Real datagrams over lo in a namespace of their own: lo output (tunnel_out) then input
  // (tunnel_in); a probe table counts, after conntrack, what was tracked and what was not.
  const t = new TestNetns(uniqueName('fnft'));
  try {
    const nft = (script: string) => execFileSync('ip', ['netns', 'exec', t.name, 'nft', '-f', '-'], { input: script });
    nft(tunnelNotrackScript(8472));
    nft(tunnelNotrackScript(8472)); // replaced, not doubled
    nft([
      'table inet probe {',
      '  counter untracked_in {}', '  counter tracked_in {}', '  counter untracked_out {}', '  counter tracked_other {}',
      '  chain in { type filter hook input priority filter; policy accept;',
      '    udp dport 8472 ct state untracked counter name untracked_in',
      '    udp dport 8472 ct state new counter name tracked_in',
      '    udp dport 9999 ct state new counter name tracked_other', '  }',
      '  chain out { type filter hook output priority filter; policy accept;',
      '    udp dport 8472 ct state untracked counter name untracked_out', '  }',
      '}',
    ].join('\n') + '\n');
    const send = (port: number) => t.exec(process.execPath, '-e',
      `const s = require('node:dgram').createSocket('udp4'); s.send(Buffer.alloc(8), ${port}, '127.0.0.1', () => s.close());`);
    send(8472);
    send(8472);
    send(9999);
    const counters = JSON.parse(t.exec('nft', '-j', 'list', 'counters', 'table', 'inet', 'probe')) as { nftables: Array<{ counter?: { name: string; packets: number } }> };
    const n = Object.fromEntries(counters.nftables.filter((e) => e.counter).map((e) => [e.counter!.name, e.counter!.packets]));
    assert.deepEqual(n, { untracked_in: 2, tracked_in: 0, untracked_out: 2, tracked_other: 1 });
    const tables = t.exec('nft', 'list', 'tables');
    assert.match(tables, /table inet fast_tunnel/);
  } finally {
    t.remove();
  }
  assert.throws(() => tunnelNotrackScript(70000), /bad VXLAN port 70000/);
});
