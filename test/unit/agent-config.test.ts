// The agent's configuration: file, then environment, then flags; every value checked with a
// message that names it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, ConfigError } from '../../src/agent/config.js';

const POOLS = JSON.stringify([{ name: 'default-ips', subnet: '10.1.0.0/24', ips: ['10.1.0.10-10.1.0.20'] }]);

function withFile(content: unknown, fn: (file: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-cfg-'));
  const file = path.join(dir, 'agent.json');
  fs.writeFileSync(file, JSON.stringify(content));
  try {
    fn(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('attachMode defaults to auto (tcx moved in the background) with a 1 s idle wait', () => {
  const c = loadConfig([], { FAST_POOLS: POOLS });
  assert.equal(c.attachMode, 'auto');
  assert.equal(c.tcxMoveIdleMs, 1000);
});

test('file < environment < flags', () => {
  withFile({ pools: JSON.parse(POOLS), attachMode: 'tc', tcxMoveIdleMs: 5 }, (file) => {
    assert.equal(loadConfig(['--config', file], {}).attachMode, 'tc');
    assert.equal(loadConfig(['--config', file], { FAST_ATTACH_MODE: 'tcx' }).attachMode, 'tcx');
    assert.equal(loadConfig(['--config', file, '--attachMode', 'auto'], { FAST_ATTACH_MODE: 'tcx' }).attachMode, 'auto');
    assert.equal(loadConfig(['--config', file], { FAST_TCX_MOVE_IDLE_MS: '250' }).tcxMoveIdleMs, 250);
  });
});

test('bad values are refused with a message naming the setting', () => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ FAST_ATTACH_MODE: 'xdp' }, /attachMode must be auto, tcx or tc, got xdp/],
    [{ FAST_TCX_MOVE_IDLE_MS: '-1' }, /tcxMoveIdleMs must be an integer >= 0, got -1/],
    [{ FAST_TCX_MOVE_IDLE_MS: 'soon' }, /tcxMoveIdleMs must be an integer >= 0, got NaN/],
    [{ FAST_MTU: '100' }, /mtu must be an integer in 576\.\.65535/],
    [{ FAST_OVERLAY_ENCAP: 'gre' }, /overlayEncap must be ebpf or kernel/],
  ];
  for (const [env, message] of bad) assert.throws(() => loadConfig([], { FAST_POOLS: POOLS, ...env }), (e: Error) => e instanceof ConfigError && message.test(e.message), JSON.stringify(env));
  assert.throws(() => loadConfig([], {}), /standalone mode needs at least one pool/);
});

test('settings without a default (uplink, nodeIp, kubeconfig) are settable from the environment and by flag', () => {
  const c = loadConfig(['--nodeIp', '172.30.0.11'], { FAST_POOLS: POOLS, FAST_UPLINK: 'eth1' });
  assert.equal(c.uplink, 'eth1');
  assert.equal(c.nodeIp, '172.30.0.11');
  assert.equal(c.kubeconfig, undefined);
});

test('kubeconfig: KUBECONFIG < file < FAST_KUBECONFIG < --kubeconfig', () => {
  withFile({ pools: JSON.parse(POOLS), kubeconfig: '/from/file' }, (file) => {
    assert.equal(loadConfig(['--config', file], { KUBECONFIG: '/from/env' }).kubeconfig, '/from/file');
    assert.equal(loadConfig(['--config', file], { KUBECONFIG: '/from/env', FAST_KUBECONFIG: '/fast/env' }).kubeconfig, '/fast/env');
    assert.equal(loadConfig(['--config', file, '--kubeconfig', '/flag'], { FAST_KUBECONFIG: '/fast/env' }).kubeconfig, '/flag');
  });
  assert.equal(loadConfig([], { FAST_POOLS: POOLS, KUBECONFIG: '/from/env' }).kubeconfig, '/from/env');
});

test('an unknown flag, a VNI or port out of range and an empty node name are refused', () => {
  assert.throws(() => loadConfig(['--uplnk', 'eth0'], { FAST_POOLS: POOLS }), /unknown flag --uplnk/);
  assert.throws(() => loadConfig([], { FAST_POOLS: POOLS, FAST_VNI: '16777216' }), /vni must be an integer in 1\.\.16777215, got 16777216/);
  assert.throws(() => loadConfig([], { FAST_POOLS: POOLS, FAST_VXLAN_PORT: '0' }), /vxlanPort must be an integer in 1\.\.65535, got 0/);
  assert.throws(() => loadConfig([], { FAST_POOLS: POOLS, FAST_NODE_NAME: '' }), /nodeName must be a non-empty string/);
});
