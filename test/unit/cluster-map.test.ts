import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterMapState, desiredRemotes, type PodFacts } from '../../src/model/cluster-map.js';

const nodes = [{ name: 'n1', internalIp: '172.30.0.11' }, { name: 'n2', internalIp: '172.30.0.12' }, { name: 'n3' }];

test('remote pods map to their node; own pods, host-network, terminal and unplaced pods do not appear', () => {
  const pods = [
    { uid: 'a', nodeName: 'n1', podIPs: ['10.0.0.1'] },
    { uid: 'b', nodeName: 'n2', podIPs: ['10.0.0.2', 'fd00::2'] },
    { uid: 'c', nodeName: 'n2', hostNetwork: true, podIPs: ['172.30.0.12'] },
    { uid: 'd', nodeName: 'n2', terminal: true, podIPs: ['10.0.0.4'] },
    { uid: 'e', podIPs: [] },
    { uid: 'f', nodeName: 'n3', podIPs: ['10.0.0.6'] }, // node without an address yet
  ];
  const m = desiredRemotes(pods, nodes, 'n1');
  assert.deepEqual([...m.entries()].sort(), [
    ['10.0.0.2', { nodeIp: '172.30.0.12', kind: 'pod' }],
    ['172.30.0.12', { nodeIp: '172.30.0.12', kind: 'node' }],
    ['fd00::2', { nodeIp: '172.30.0.12', kind: 'pod' }],
  ]);
});

const sorted = <T>(xs: T[]) => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

test('incremental state: a pod update that changes nothing asks for no write; address, node and deletion changes do', () => {
  const s = new ClusterMapState('n1');
  assert.deepEqual([...s.reset([], nodes).entries()], [['172.30.0.12', { nodeIp: '172.30.0.12', kind: 'node' }]]);
  const pending: PodFacts = { uid: 'a', nodeName: 'n2', podIPs: [] };
  assert.equal(s.podChanged(pending), false); // scheduled, no address yet: nothing to do
  assert.equal(s.podChanged({ ...pending, podIPs: ['10.0.0.1'] }), true);
  assert.deepEqual(s.takeChanges(), [{ ip: '10.0.0.1', entry: { nodeIp: '172.30.0.12', kind: 'pod' } }]);
  assert.equal(s.podChanged({ ...pending, podIPs: ['10.0.0.1'] }), false); // a status-only update
  assert.deepEqual(s.takeChanges(), []);
  // a second address, then the first one gone
  assert.equal(s.podChanged({ ...pending, podIPs: ['10.0.0.1', 'fd00::1'] }), true);
  assert.deepEqual(s.takeChanges(), [{ ip: 'fd00::1', entry: { nodeIp: '172.30.0.12', kind: 'pod' } }]);
  assert.equal(s.podChanged({ ...pending, podIPs: ['fd00::1'] }), true);
  assert.deepEqual(s.takeChanges(), [{ ip: '10.0.0.1' }]);
  // terminal: its entries go; deleted afterwards: nothing more
  assert.equal(s.podChanged({ ...pending, podIPs: ['fd00::1'], terminal: true }), true);
  assert.deepEqual(s.takeChanges(), [{ ip: 'fd00::1' }]);
  assert.equal(s.podGone('a'), false);
  assert.equal(s.size, 1); // the node entry
});

test('incremental state: an address reused by a pod on another node moves; the old pod going does not remove it', () => {
  const s = new ClusterMapState('n3');
  s.reset([{ uid: 'a', nodeName: 'n1', podIPs: ['10.0.0.9'] }], nodes);
  assert.equal(s.podChanged({ uid: 'b', nodeName: 'n2', podIPs: ['10.0.0.9'] }), true);
  assert.deepEqual(s.takeChanges(), [{ ip: '10.0.0.9', entry: { nodeIp: '172.30.0.12', kind: 'pod' } }]);
  assert.equal(s.podGone('a'), true);
  assert.deepEqual(s.takeChanges(), []); // b holds it
  assert.equal(s.podGone('b'), true);
  assert.deepEqual(s.takeChanges(), [{ ip: '10.0.0.9' }]);
});

test('incremental state: changes that cancel out before a flush write nothing; a pod on this node never appears', () => {
  const s = new ClusterMapState('n1');
  s.reset([], nodes);
  s.podChanged({ uid: 'a', nodeName: 'n2', podIPs: ['10.0.0.1'] });
  s.podGone('a');
  assert.deepEqual(s.takeChanges(), []);
  assert.equal(s.podChanged({ uid: 'c', nodeName: 'n1', podIPs: ['10.0.0.3'] }), false);
  assert.equal(s.podChanged({ uid: 'd', nodeName: 'n2', hostNetwork: true, podIPs: ['172.30.0.12'] }), false);
});

test('incremental state matches a full recomputation after any sequence of events, and reset gives the same map', () => {
  let seed = 0x2545f491;
  const rnd = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const s = new ClusterMapState('n1');
  s.reset([], nodes);
  const mirror = new Map<string, { nodeIp: string; kind: string }>([['172.30.0.12', { nodeIp: '172.30.0.12', kind: 'node' }]]);
  const live = new Map<string, PodFacts>();
  for (let i = 0; i < 3000; i++) {
    const uid = `p${rnd(40)}`;
    if (rnd(5) === 0) {
      live.delete(uid);
      s.podGone(uid);
    } else {
      const pod: PodFacts = { uid, nodeName: ['n1', 'n2', 'n3', undefined][rnd(4)], podIPs: rnd(4) === 0 ? [] : [`10.0.0.${rnd(30)}`], terminal: rnd(10) === 0 };
      live.set(uid, pod);
      s.podChanged(pod);
    }
    if (rnd(3) === 0) for (const c of s.takeChanges()) c.entry ? mirror.set(c.ip, c.entry) : mirror.delete(c.ip);
  }
  for (const c of s.takeChanges()) c.entry ? mirror.set(c.ip, c.entry) : mirror.delete(c.ip);
  // Every address the mirror holds is wanted by a live pod (or is a node); no live pod's
  // address is missing unless another live pod claimed it after.
  const full = desiredRemotes(live.values(), nodes, 'n1');
  for (const [ip, e] of mirror) assert.ok(full.has(ip), `stale ${ip} -> ${JSON.stringify(e)}`);
  for (const ip of full.keys()) assert.ok(mirror.has(ip), `missing ${ip}`);
  const again = new ClusterMapState('n1').reset(live.values(), nodes);
  assert.deepEqual(sorted([...again.keys()]), sorted([...full.keys()]));
});

test('incremental state: when the pod that took an address over goes, the pod still claiming it gets it back', () => {
  const s = new ClusterMapState('n3');
  s.reset([{ uid: 'a', nodeName: 'n1', podIPs: ['10.0.0.9'] }], nodes);
  s.podChanged({ uid: 'b', nodeName: 'n2', podIPs: ['10.0.0.9'] });
  s.takeChanges();
  s.podGone('b');
  assert.deepEqual(s.takeChanges(), [{ ip: '10.0.0.9', entry: { nodeIp: '172.30.0.11', kind: 'pod' } }]);
});
