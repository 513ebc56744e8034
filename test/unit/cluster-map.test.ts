import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredRemotes } from '../../src/model/cluster-map.js';

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
