// fast-controller-manager against the lab API server: the IP garbage collector (pod gone by UID,
// node gone, sweep after downtime, cooldown), pool status counts, leader election (one leader,
// takeover on stop and on lease expiry), and the process itself (JSON logs, clean SIGTERM).
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import { reuseConnections, type KubernetesIpam } from '../../src/agent/ipam/kubernetes.js';
import { kubeConfigForUrl } from '../../src/k8s/kubeconfig.js';
import { ControllerManager } from '../../src/controller-manager/manager.js';
import { parseArgs } from '../../src/controller-manager/cli.js';
import { kubeconfigFor } from '../../src/lab/apiserver/kubeconfig.js';
import {
  type Lab, add, createNamespace, createNode, createPod, createPool, deletePod, endpoints, getPool, newAgent, sleep, startLab, testLog, waitFor,
} from './ipam-k8s-harness.test.js';

let lab: Lab;
let g1: KubernetesIpam;
let g2: KubernetesIpam;

before(async () => {
  lab = await startLab();
  await createNode(lab, 'g1');
  await createNode(lab, 'g2');
  await createNamespace(lab, 'gc');
  await createPool(lab, 'default-ips', { subnet: '10.50.0.0/16', ips: ['10.50.1.0/24'] });
  g1 = await newAgent(lab, 'g1', { cooldownMs: 300 });
  g2 = await newAgent(lab, 'g2', { cooldownMs: 300 });
});

after(async () => {
  await lab.close();
});

function manager(identity: string, extra: Partial<ConstructorParameters<typeof ControllerManager>[0]> = {}): ControllerManager {
  return new ControllerManager({
    kubeConfig: lab.kc,
    log: testLog({ cm: identity }),
    identity,
    cooldownMs: 300,
    sweepMs: 60_000,
    leaseDurationMs: 1500,
    renewDeadlineMs: 1000,
    retryPeriodMs: 150,
    ...extra,
  });
}

async function endpointOf(containerID: string) {
  return (await endpoints(lab)).find((e) => e.spec.containerID === containerID);
}

test('GC: the allocation of a deleted pod is released even when a new pod takes its name, then deleted after the cooldown', async () => {
  const cm = manager('cm-gc');
  await cm.start();
  try {
    await cm.whenActive();
    const uid1 = await createPod(lab, 'gc', 'p', 'g1');
    const first = await add(g1, 'gc', 'p', uid1, 'ctr-p-1');
    // the pod is deleted and recreated (same name, new UID) without a DEL reaching the agent
    await deletePod(lab, 'gc', 'p');
    const uid2 = await createPod(lab, 'gc', 'p', 'g1');
    assert.notEqual(uid1, uid2);
    const released = await waitFor(async () => {
      const e = await endpointOf('ctr-p-1');
      return e?.spec.releasedAt ? e : undefined;
    }, 'old allocation released');
    assert.equal(released.spec.podUID, uid1);
    await waitFor(async () => !(await endpointOf('ctr-p-1')), 'deleted after the cooldown');
    // the new pod gets an address of its own
    const second = await add(g1, 'gc', 'p', uid2, 'ctr-p-2');
    assert.equal((await endpointOf('ctr-p-2'))?.spec.podUID, uid2);
    assert.ok(first.address && second.address);
    // a live pod's allocation is left alone
    await sleep(300);
    assert.ok(await endpointOf('ctr-p-2'));
    assert.equal((await endpointOf('ctr-p-2'))?.spec.releasedAt, undefined);
  } finally {
    await cm.stop();
  }
});

test('GC: the allocations of a deleted node are released; a released address is deleted after the cooldown; pool counts follow', async () => {
  const cm = manager('cm-gc2');
  await cm.start();
  try {
    await cm.whenActive();
    const uid = await createPod(lab, 'gc', 'on-g2', 'g2');
    await add(g2, 'gc', 'on-g2', uid, 'ctr-on-g2');
    const uid3 = await createPod(lab, 'gc', 'stays', 'g1');
    await add(g1, 'gc', 'stays', uid3, 'ctr-stays');
    await waitFor(async () => (await getPool(lab, 'default-ips')).status?.allocatedIPCount === 3, 'allocatedIPCount 3 (with ctr-p-2)');
    const pool = await getPool(lab, 'default-ips');
    assert.equal(pool.status?.totalIPCount, 256); // a /24 inside a /16: only the subnet's own network/broadcast are reserved
    assert.equal(pool.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');

    await lab.core.deleteNode({ name: 'g2' });
    await waitFor(async () => !(await endpointOf('ctr-on-g2')), "node g2's allocation released and deleted");
    assert.ok(await endpointOf('ctr-stays'), 'the allocation on g1 stays');

    // a DEL: cooling, counted as such, then deleted by the controller
    assert.equal(await g1.release('ctr-stays', 'eth0'), 1);
    await waitFor(async () => !(await endpointOf('ctr-stays')), 'released address deleted after the cooldown');
    await waitFor(async () => {
      const s = (await getPool(lab, 'default-ips')).status;
      return s?.allocatedIPCount === 1 && s.coolingIPCount === 0;
    }, 'counts back to 1 allocated (ctr-p-2)');
    assert.ok(cm.gc!.stats.deleted >= 2, JSON.stringify(cm.gc!.stats));
  } finally {
    await cm.stop();
    await createNode(lab, 'g2').catch(() => undefined);
  }
});

test('GC: pods deleted while no controller-manager ran are found by the sweep at start', async () => {
  const uid = await createPod(lab, 'gc', 'orphan', 'g1');
  await add(g1, 'gc', 'orphan', uid, 'ctr-orphan');
  await deletePod(lab, 'gc', 'orphan');
  await sleep(100);
  assert.ok(await endpointOf('ctr-orphan'));
  const cm = manager('cm-sweep');
  await cm.start();
  try {
    await waitFor(async () => !(await endpointOf('ctr-orphan')), 'orphan collected');
  } finally {
    await cm.stop();
  }
});

test('leader election: one of two controller-managers acts; the other takes over when the first stops', async () => {
  const a = manager('cm-a', { leaseName: 'le-test' });
  const b = manager('cm-b', { leaseName: 'le-test' });
  await a.start();
  await b.start();
  try {
    await a.whenActive();
    for (let i = 0; i < 10; i++) {
      assert.equal(Number(a.isLeader) + Number(b.isLeader), 1, 'exactly one leader');
      await sleep(100);
    }
    assert.ok(a.isLeader && a.gc && !b.gc, 'the first one leads, the other runs no controller');
    // only the leader acts
    const uid = await createPod(lab, 'gc', 'le-pod', 'g1');
    await add(g1, 'gc', 'le-pod', uid, 'ctr-le');
    await deletePod(lab, 'gc', 'le-pod');
    await waitFor(async () => !(await endpointOf('ctr-le')), 'collected by the leader');
    assert.equal(b.gc, undefined);

    const t0 = Date.now();
    await a.stop();
    await b.whenActive();
    assert.ok(b.isLeader && !a.isLeader);
    assert.ok(Date.now() - t0 < 1500, `handover took ${Date.now() - t0} ms (the lease was handed back)`);
    const uid2 = await createPod(lab, 'gc', 'le-pod2', 'g1');
    await add(g1, 'gc', 'le-pod2', uid2, 'ctr-le2');
    await deletePod(lab, 'gc', 'le-pod2');
    await waitFor(async () => !(await endpointOf('ctr-le2')), 'collected by the new leader');
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('leader election: a lease held by a crashed leader is taken over once it expires, not before', async () => {
  const coord = lab.kc.makeApiClient(CoordinationV1Api);
  const now = new V1MicroTime(Date.now());
  await coord.createNamespacedLease({
    namespace: 'kube-system',
    body: { metadata: { name: 'le-crash', namespace: 'kube-system' }, spec: { holderIdentity: 'ghost', leaseDurationSeconds: 2, acquireTime: now, renewTime: now, leaseTransitions: 0 } },
  });
  const c = manager('cm-c', { leaseName: 'le-crash' });
  const t0 = Date.now();
  await c.start();
  try {
    await sleep(1000);
    assert.equal(c.isLeader, false, 'the ghost still holds a valid lease');
    await waitFor(() => c.isLeader || undefined, 'takeover', 6000);
    const waited = Date.now() - t0;
    assert.ok(waited >= 1900, `took over after ${waited} ms`);
    const lease = await coord.readNamespacedLease({ name: 'le-crash', namespace: 'kube-system' });
    assert.equal(lease.spec?.holderIdentity, 'cm-c');
    assert.equal(lease.spec?.leaseTransitions, 1);
  } finally {
    await c.stop();
  }
});

test('reuseConnections: one HTTP agent per cluster and TLS settings instead of one per request', () => {
  const kc = kubeConfigForUrl('https://127.0.0.1:1', { skipTLSVerify: true });
  const k = kc as unknown as { createDispatcher(cluster: unknown, opts: unknown): unknown };
  const cluster = kc.getCurrentCluster();
  assert.notEqual(k.createDispatcher(cluster, { rejectUnauthorized: false }), k.createDispatcher(cluster, { rejectUnauthorized: false }), 'the client alone makes a new one each time');
  assert.equal(reuseConnections(kc), kc);
  reuseConnections(kc); // idempotent
  const first = k.createDispatcher(cluster, { rejectUnauthorized: false });
  assert.ok(first);
  assert.equal(k.createDispatcher(cluster, { rejectUnauthorized: false }), first);
  assert.notEqual(k.createDispatcher(cluster, { rejectUnauthorized: true }), first);
});

test('command line: flags, defaults and errors', () => {
  assert.deepEqual(parseArgs(['--kubeconfig', '/k', '--cooldown-seconds=5', '--sweep-seconds', '10', '--identity', 'me']), {
    kubeconfig: '/k', cooldownSeconds: 5, sweepSeconds: 10, identity: 'me',
    leaseNamespace: 'kube-system', leaseName: 'fast-controller-manager', leaseDurationSeconds: 15, logLevel: 'info',
  });
  assert.throws(() => parseArgs(['--cooldown-seconds', 'x']), /--cooldown-seconds needs a number/);
  assert.throws(() => parseArgs(['--bogus', '1']), /unknown flag --bogus/);
  assert.throws(() => parseArgs(['stray']), /unexpected argument stray/);
});

test('the process: JSON logs on stderr, leads, exits 0 on SIGTERM and hands the lease back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-cm-'));
  const kcFile = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kcFile, kubeconfigFor(lab.server.url), { mode: 0o600 });
  const main = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'src', 'controller-manager', 'main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--kubeconfig', kcFile, '--identity', 'proc', '--lease-name', 'le-proc', '--cooldown-seconds', '1', '--sweep-seconds', '5'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitFor(() => stderr.includes('controllers running') || undefined, 'controllers running', 20_000);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: string; component: string });
    assert.ok(lines.every((l) => l.component === 'fast-controller-manager' && typeof l.msg === 'string'));
    assert.ok(lines.some((l) => l.msg === 'became the leader'));
    assert.ok(lines.some((l) => l.msg === 'handed the lease back'));
    const lease = await lab.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'le-proc', namespace: 'kube-system' });
    assert.equal(lease.spec?.holderIdentity, '');
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
