// Attaching the pod program as a pinned tcx link or a clsact + cls_bpf filter, with real
// packets between two pod namespaces: the program stays attached with no process holding
// it, a re-attach swaps it atomically on the same link, a mode switch moves the hook to
// the other mechanism and leaves nothing of the old one, and pins of gone devices go.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoadedBpfObject } from '../../src/dataplane/bpf/bpf-object.js';
import { libbpf } from '../../src/dataplane/bpf/libbpf.js';
import { attachTc, detachTc, queryTc, queryClsact, setAttachMode } from '../../src/dataplane/bpf/tc.js';
import { probeTcx, readTcxPin, tcxPinPath, listTcxPins, pruneDefunctTcxPins } from '../../src/dataplane/bpf/tcx.js';
import { ensureBpffs, removeBpffs } from '../../src/dataplane/net/bpffs.js';
import { withNetnsSync } from '../../src/dataplane/net/netns.js';
import { MAP_NAMES, encodeIp, encodeLocalPod, STAT_NAMES, sumPerCpu } from '../../src/dataplane/bpf/map-layouts.js';
import { TestNetns, uniqueName } from '../helpers/netns.js';

const OBJ = path.resolve('bpf/fast_pod.o');
const PROG = 'fast_from_pod';
let node: TestNetns;
let podA: TestNetns;
let podB: TestNetns;
let pinDir: string;
let linkDir: string;
let obj: LoadedBpfObject;
const A = { ip: '10.9.0.2', podMac: '02:aa:00:00:00:02', hostMac: '02:bb:00:00:00:02', ifindex: 0 };
const B = { ip: '10.9.0.3', podMac: '02:aa:00:00:00:03', hostMac: '02:bb:00:00:00:03', ifindex: 0 };

function wirePod(pod: TestNetns, host: string, peer: string, p: typeof A): void {
  node.ip('link', 'add', host, 'address', p.hostMac, 'type', 'veth', 'peer', 'name', peer, 'address', p.podMac, 'netns', pod.name);
  node.ip('link', 'set', host, 'up');
  pod.ip('link', 'set', peer, 'name', 'eth0');
  pod.ip('link', 'set', 'eth0', 'up');
  pod.ip('addr', 'add', `${p.ip}/32`, 'dev', 'eth0');
  pod.ip('neigh', 'replace', '169.254.1.1', 'lladdr', p.hostMac, 'dev', 'eth0', 'nud', 'permanent');
  pod.ip('route', 'replace', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
  pod.ip('route', 'replace', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
  p.ifindex = node.ifindex(host);
}

before(() => {
  node = new TestNetns(uniqueName('fbpf'));
  podA = new TestNetns(uniqueName('fbpf'));
  podB = new TestNetns(uniqueName('fbpf'));
  // The node namespace has no route to the pods: only the eBPF redirect connects them.
  wirePod(podA, 'hA', 'pA', A);
  wirePod(podB, 'hB', 'pB', B);
  pinDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-bpffs-'));
  ensureBpffs(pinDir);
  linkDir = path.join(pinDir, 'links');
  obj = LoadedBpfObject.load(OBJ, pinDir);
  for (const p of [A, B]) {
    obj.map(MAP_NAMES.localPods).update(encodeIp(p.ip), encodeLocalPod({ hostIfindex: p.ifindex, podIfindex: 2, podMac: p.podMac, hostMac: p.hostMac, flags: 0 }));
  }
});

after(() => {
  setAttachMode('tc');
  obj?.close();
  if (pinDir) removeBpffs(pinDir);
  for (const ns of [podA, podB, node]) ns?.remove();
});

const inNode = <T>(fn: () => T): T => withNetnsSync(node.path, fn);
const ping = (): boolean => spawnSync('ip', ['netns', 'exec', podA.name, 'ping', '-c', '1', '-W', '1', B.ip]).status === 0;

function redirects(): bigint {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(STAT_NAMES.indexOf('redirect_local'));
  return sumPerCpu(obj.map(MAP_NAMES.stats).lookup(key)!);
}

/** The kernel's id of a loaded program (struct bpf_prog_info starts with type, id). */
function progId(o: LoadedBpfObject): number {
  const info = Buffer.alloc(8);
  libbpf.objGetInfoByFd(o.programFd(PROG), info, [info.length]);
  return info.readUInt32LE(4);
}

test('this kernel has tcx links (the probe attaches nothing)', () => {
  const probe = probeTcx(obj.programFd(PROG));
  assert.equal(probe.supported, true, probe.detail);
  assert.deepEqual(inNode(() => [queryTc(A.ifindex, 'ingress'), queryTc(B.ifindex, 'ingress')]), [undefined, undefined]);
});

test('without a program pods cannot reach each other', () => {
  assert.equal(ping(), false);
});

test('tcx: pinned links carry pod-to-pod traffic through the redirect, no cls_bpf filter', () => {
  setAttachMode('tcx', linkDir);
  inNode(() => {
    attachTc(A.ifindex, 'ingress', obj.programFd(PROG), { newDevice: true });
    attachTc(B.ifindex, 'ingress', obj.programFd(PROG), { newDevice: true });
  });
  const before = redirects();
  assert.ok(ping(), 'ping A -> B over the tcx links');
  assert.ok(redirects() >= before + 2n, 'request and reply took bpf_redirect_peer');
  const link = readTcxPin(tcxPinPath(linkDir, A.ifindex, 'ingress'));
  assert.equal(link?.ifindex, A.ifindex);
  assert.equal(link?.direction, 'ingress');
  assert.equal(link?.progId, progId(obj));
  assert.equal(inNode(() => queryTc(A.ifindex, 'ingress')), progId(obj));
  assert.equal(inNode(() => queryClsact(A.ifindex, 'ingress')), undefined);
  assert.doesNotMatch(node.exec('tc', 'qdisc', 'show', 'dev', 'hA'), /clsact/);
});

test('tcx: a re-attach swaps the program on the same link (atomic, no new link)', () => {
  const again = LoadedBpfObject.load(OBJ, pinDir);
  try {
    const pin = tcxPinPath(linkDir, A.ifindex, 'ingress');
    const old = readTcxPin(pin)!;
    inNode(() => attachTc(A.ifindex, 'ingress', again.programFd(PROG)));
    const now = readTcxPin(pin)!;
    assert.equal(now.linkId, old.linkId, 'same link');
    assert.equal(now.progId, progId(again), 'new program');
    assert.notEqual(now.progId, old.progId);
    assert.ok(ping());
  } finally {
    again.close(); // the link holds the program; our fds do not matter
  }
  assert.ok(ping(), 'still attached with no fd of ours open');
});

test('tc mode moves the hook to cls_bpf and removes the link pin; tcx moves it back', () => {
  setAttachMode('tc', linkDir);
  inNode(() => attachTc(A.ifindex, 'ingress', obj.programFd(PROG)));
  assert.equal(fs.existsSync(tcxPinPath(linkDir, A.ifindex, 'ingress')), false);
  assert.equal(inNode(() => queryClsact(A.ifindex, 'ingress')), progId(obj));
  assert.ok(ping(), 'A over cls_bpf, B over tcx');
  setAttachMode('tcx', linkDir);
  inNode(() => attachTc(A.ifindex, 'ingress', obj.programFd(PROG)));
  assert.equal(inNode(() => queryClsact(A.ifindex, 'ingress')), undefined, 'filter removed after the link is in place');
  assert.equal(readTcxPin(tcxPinPath(linkDir, A.ifindex, 'ingress'))?.progId, progId(obj));
  assert.ok(ping());
});

test('detach removes the link and its pin (idempotent)', () => {
  inNode(() => detachTc(A.ifindex, 'ingress'));
  inNode(() => detachTc(A.ifindex, 'ingress'));
  assert.equal(fs.existsSync(tcxPinPath(linkDir, A.ifindex, 'ingress')), false);
  assert.equal(inNode(() => queryTc(A.ifindex, 'ingress')), undefined);
  assert.equal(ping(), false, 'A is cut off without its program');
  inNode(() => attachTc(A.ifindex, 'ingress', obj.programFd(PROG), { newDevice: true }));
  assert.ok(ping());
});

test('a deleted device leaves a defunct link whose pin the prune removes', () => {
  node.ip('link', 'del', 'hB');
  const pins = listTcxPins(linkDir);
  const b = pins.find((l) => l.pinnedIfindex === B.ifindex);
  assert.equal(b?.ifindex, 0, 'defunct: the kernel detached it');
  assert.deepEqual(pruneDefunctTcxPins(linkDir), [tcxPinPath(linkDir, B.ifindex, 'ingress')]);
  assert.deepEqual(listTcxPins(linkDir).map((l) => l.pinnedIfindex), [A.ifindex]);
  inNode(() => detachTc(A.ifindex, 'ingress'));
  assert.deepEqual(fs.readdirSync(linkDir), []);
});
