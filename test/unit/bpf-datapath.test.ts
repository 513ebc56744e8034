// The pod program, run by the kernel on crafted packets (BPF_PROG_TEST_RUN).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoadedBpfObject } from '../../src/dataplane/bpf/bpf-object.js';
import { testRun } from '../../src/dataplane/bpf/test-run.js';
import { ensureBpffs, removeBpffs } from '../../src/dataplane/net/bpffs.js';
import { withNetnsSync } from '../../src/dataplane/net/netns.js';
import { MAP_NAMES, encodeIp, encodeLocalPod, decodeMac, STAT_NAMES, sumPerCpu } from '../../src/dataplane/bpf/map-layouts.js';
import { TestNetns, uniqueName } from '../helpers/netns.js';
import { ethernet, ipv4Udp, ipv6Udp, arpRequest, ipv4HeaderChecksumValid } from '../helpers/packets.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const OBJ = path.resolve('bpf/fast_pod.o');
let ns: TestNetns;
let pinDir: string;
let obj: LoadedBpfObject;
let prog: number;
// Two pods: A (sender) and B (receiver), each with a real host-side veth in the test namespace.
const A = { ip: '10.1.0.2', ip6: 'fd00::2', podMac: '02:aa:00:00:00:02', hostMac: '02:bb:00:00:00:02', ifindex: 0 };
const B = { ip: '10.1.0.3', ip6: 'fd00::3', podMac: '02:aa:00:00:00:03', hostMac: '02:bb:00:00:00:03', ifindex: 0 };

before(() => {
  ns = new TestNetns(uniqueName('fbpf'));
  ns.ip('link', 'add', 'hA', 'type', 'veth', 'peer', 'name', 'pA');
  ns.ip('link', 'add', 'hB', 'type', 'veth', 'peer', 'name', 'pB');
  A.ifindex = ns.ifindex('hA');
  B.ifindex = ns.ifindex('hB');
  pinDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-bpffs-'));
  ensureBpffs(pinDir);
  obj = LoadedBpfObject.load(OBJ, pinDir);
  prog = obj.programFd('fast_from_pod');
  for (const p of [A, B]) {
    const value = encodeLocalPod({ hostIfindex: p.ifindex, podIfindex: 2, podMac: p.podMac, hostMac: p.hostMac, flags: 0 });
    obj.map(MAP_NAMES.localPods).update(encodeIp(p.ip), value);
    obj.map(MAP_NAMES.localPods).update(encodeIp(p.ip6), value);
  }
});

after(() => {
  obj?.close();
  if (pinDir) removeBpffs(pinDir);
  ns?.remove();
});

function run(packet: Buffer, ifindex: number) {
  return withNetnsSync(ns.path, () => testRun(prog, packet, ifindex));
}

function stat(name: (typeof STAT_NAMES)[number]): bigint {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(STAT_NAMES.indexOf(name));
  return sumPerCpu(obj.map(MAP_NAMES.stats).lookup(key)!);
}

test('maps are pinned by name under the node directory', () => {
  for (const name of Object.values(MAP_NAMES)) assert.ok(fs.existsSync(path.join(pinDir, name)), name);
});

test('a packet to a pod on this node is redirected into it with rewritten MACs and TTL-1', () => {
  const before = stat('redirect_local');
  const pkt = ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp(A.ip, B.ip, 64));
  const r = run(pkt, A.ifindex);
  assert.equal(r.retval, TC_ACT_REDIRECT);
  assert.equal(decodeMac(r.data.subarray(0, 6)), B.podMac, 'destination MAC is the target pod');
  assert.equal(decodeMac(r.data.subarray(6, 12)), B.hostMac, 'source MAC is the target gateway');
  assert.equal(r.data[14 + 8], 63, 'TTL decremented');
  assert.ok(ipv4HeaderChecksumValid(r.data), 'IPv4 checksum still valid');
  assert.equal(stat('redirect_local'), before + 1n);
});

test('IPv6 to a local pod is redirected too', () => {
  const r = run(ethernet(A.hostMac, A.podMac, 0x86dd, ipv6Udp(A.ip6, B.ip6, 10)), A.ifindex);
  assert.equal(r.retval, TC_ACT_REDIRECT);
  assert.equal(r.data[14 + 7], 9, 'hop limit decremented');
  assert.equal(decodeMac(r.data.subarray(0, 6)), B.podMac);
  assert.equal(decodeMac(r.data.subarray(6, 12)), B.hostMac);
});

// The TTL and checksum are written directly (incremental update, RFC 1624): every TTL, so
// the end-around carry cases are covered, and nothing else in the packet changes.
test('local redirect: checksum valid for every TTL, only MACs, TTL and checksum change', () => {
  for (let ttl = 2; ttl <= 255; ttl++) {
    const pkt = ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp(A.ip, B.ip, ttl));
    const r = run(pkt, A.ifindex);
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(r.data[14 + 8], ttl - 1);
    assert.ok(ipv4HeaderChecksumValid(r.data), `checksum after TTL ${ttl}`);
    const expect = Buffer.from(pkt);
    r.data.copy(expect, 0, 0, 12);
    r.data.copy(expect, 14 + 8, 14 + 8, 14 + 9);
    r.data.copy(expect, 14 + 10, 14 + 10, 14 + 12);
    assert.deepEqual(r.data, expect, `only MACs, TTL and checksum change (TTL ${ttl})`);
  }
});

/** The IPv4 header's checksum over bytes 14..34 of a frame, written into it. */
function setIpv4Checksum(frame: Buffer): void {
  frame.writeUInt16BE(0, 24);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += frame.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  frame.writeUInt16BE(~sum & 0xffff, 24);
}

// Checksums at the edges of the incremental update (its end-around carry and the carry
// between its bytes), reached by choosing the IP ID.
test('local redirect: checksum valid at the carry edges of the incremental update', () => {
  for (const target of [0xfeff, 0xfffe, 0xff00, 0x00ff, 0x0100, 0x0001]) {
    const pkt = ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp(A.ip, B.ip, 64));
    let id = 0;
    for (; id <= 0xffff; id++) {
      pkt.writeUInt16BE(id, 14 + 4);
      setIpv4Checksum(pkt);
      if (pkt.readUInt16BE(24) === target) break;
    }
    assert.ok(id <= 0xffff, `an ID giving checksum ${target.toString(16)}`);
    const r = run(pkt, A.ifindex);
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.ok(ipv4HeaderChecksumValid(r.data), `checksum ${target.toString(16)} after TTL-1: ${r.data.readUInt16BE(24).toString(16)}`);
  }
});

test('an expiring IPv6 hop limit is left to the stack unchanged', () => {
  const pkt = ethernet(A.hostMac, A.podMac, 0x86dd, ipv6Udp(A.ip6, B.ip6, 1));
  const r = run(pkt, A.ifindex);
  assert.equal(r.retval, TC_ACT_OK);
  assert.deepEqual(r.data, pkt);
});

test('a spoofed source is dropped before anything is written', () => {
  const pkt = ethernet(A.hostMac, '02:de:ad:be:ef:00', 0x86dd, ipv6Udp(A.ip6, B.ip6, 10));
  const r = run(pkt, A.ifindex);
  assert.equal(r.retval, TC_ACT_SHOT);
});

test('a packet for an unknown destination goes to the host stack unchanged', () => {
  const pkt = ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp(A.ip, '192.0.2.1'));
  const r = run(pkt, A.ifindex);
  assert.equal(r.retval, TC_ACT_OK);
  assert.deepEqual(r.data, pkt);
});

test('a spoofed source IP is dropped', () => {
  const before = stat('drop_spoof_src_ip');
  const r = run(ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp('10.1.0.99', B.ip)), A.ifindex);
  assert.equal(r.retval, TC_ACT_SHOT);
  assert.equal(stat('drop_spoof_src_ip'), before + 1n);
});

test("another local pod's source IP sent from the wrong veth is dropped", () => {
  const r = run(ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp(B.ip, A.ip)), A.ifindex);
  assert.equal(r.retval, TC_ACT_SHOT);
});

test('a spoofed source MAC is dropped', () => {
  const before = stat('drop_spoof_src_mac');
  const r = run(ethernet(A.hostMac, '02:de:ad:be:ef:00', 0x0800, ipv4Udp(A.ip, B.ip)), A.ifindex);
  assert.equal(r.retval, TC_ACT_SHOT);
  assert.equal(stat('drop_spoof_src_mac'), before + 1n);
});

test('a spoofed IPv6 source is dropped; link-local ND traffic passes', () => {
  assert.equal(run(ethernet(A.hostMac, A.podMac, 0x86dd, ipv6Udp('fd00::99', B.ip6)), A.ifindex).retval, TC_ACT_SHOT);
  assert.equal(run(ethernet(A.hostMac, A.podMac, 0x86dd, ipv6Udp('fe80::1', 'ff02::1')), A.ifindex).retval, TC_ACT_OK);
});

test('ARP from the pod passes; ARP claiming another address is dropped', () => {
  assert.equal(run(ethernet('ff:ff:ff:ff:ff:ff', A.podMac, 0x0806, arpRequest(A.podMac, A.ip, '169.254.1.1')), A.ifindex).retval, TC_ACT_OK);
  assert.equal(run(ethernet('ff:ff:ff:ff:ff:ff', A.podMac, 0x0806, arpRequest(A.podMac, B.ip, '169.254.1.1')), A.ifindex).retval, TC_ACT_SHOT);
});

test('unknown ethertypes and truncated packets are dropped', () => {
  assert.equal(run(ethernet(A.hostMac, A.podMac, 0x88cc, Buffer.alloc(46)), A.ifindex).retval, TC_ACT_SHOT);
  // (The kernel's test runner itself refuses IPv4 shorter than a header, so the
  // truncated case is exercised with ARP, which it passes through as-is.)
  assert.equal(run(ethernet(A.hostMac, A.podMac, 0x0806, Buffer.alloc(10)), A.ifindex).retval, TC_ACT_SHOT);
});

test('an expiring TTL is left to the stack (which answers time-exceeded)', () => {
  const pkt = ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp(A.ip, B.ip, 1));
  const r = run(pkt, A.ifindex);
  assert.equal(r.retval, TC_ACT_OK);
  assert.deepEqual(r.data, pkt, 'unchanged');
  assert.equal(run(ethernet(A.hostMac, A.podMac, 0x0800, ipv4Udp(A.ip, B.ip, 0)), A.ifindex).retval, TC_ACT_OK);
});

test('a second load adopts the pinned maps and their contents', () => {
  const again = LoadedBpfObject.load(OBJ, pinDir);
  try {
    assert.ok(again.map(MAP_NAMES.localPods).lookup(encodeIp(A.ip)), 'entry survives reload');
  } finally {
    again.close();
  }
});
