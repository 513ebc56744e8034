// Which pool a pod gets, end to end against the lab API server (pod annotation, namespace
// annotation, affinities, default-ips, the network configuration's pools), the failures that say
// why (101 + pod event), and malformed pools: Ready=False with reason from the controller-manager,
// never used by agents, their allocations untouched.
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALLOCATION_FAILED_REASON } from '../../src/agent/ipam/kubernetes.js';
import { ControllerManager } from '../../src/controller-manager/manager.js';
import { FastErrorCode } from '../../src/model/cni/errors.js';
import type { KubernetesIpam } from '../../src/agent/ipam/kubernetes.js';
import {
  type Lab, add, addFails, createNamespace, createNode, createPod, createPool, endpoints, eventsOf, getPool, newAgent, startLab, testLog, waitFor,
} from './ipam-k8s-harness.test.js';

let lab: Lab;
let plain: KubernetesIpam;
let gpu: KubernetesIpam;

function inRange(address: string, from: string, to: string): boolean {
  const v = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  return v(address) >= v(from) && v(address) <= v(to);
}

before(async () => {
  lab = await startLab();
  await createNode(lab, 'plain-node');
  await createNode(lab, 'gpu-node', { gpu: 'true' });
  await createPool(lab, 'default-ips', { subnet: '10.244.0.1/16', ips: ['10.244.100.0-10.244.100.50'] });
  await createPool(lab, 'sample-ips', { subnet: '10.244.0.1/16', ips: ['10.244.10.0-10.244.10.50'] });
  await createPool(lab, 'ns-pool', { subnet: '10.246.0.0/24', ips: ['10.246.0.10-10.246.0.30'] });
  await createPool(lab, 'gpu-pool', {
    subnet: '10.247.0.0/24',
    ips: ['10.247.0.0/26'],
    nodeAffinity: { matchLabels: { gpu: 'true' } },
    podAffinity: { matchExpressions: [{ key: 'app', operator: 'In', values: ['ml'] }] },
  });
  await createPool(lab, 'restricted', { subnet: '10.248.0.0/24', ips: ['10.248.0.10-10.248.0.20'], podAffinity: { matchLabels: { app: 'x' } } });
  await createPool(lab, 'broken', { subnet: '10.249.0.0/24', ips: ['10.249.0.20-10.249.0.10'] });
  await createNamespace(lab, 'apps');
  await createNamespace(lab, 'bound', { annotations: { 'fast.io/ips': 'ns-pool' } });
  plain = await newAgent(lab, 'plain-node');
  gpu = await newAgent(lab, 'gpu-node');
});

after(async () => {
  await lab.close();
});

test('the pod annotation fast.io/ips names the pool; a list is tried in order, skipping pools that do not exist', async () => {
  const uid = await createPod(lab, 'apps', 'annotated', 'plain-node', { annotations: { 'fast.io/ips': 'sample-ips' } });
  const g = await add(plain, 'apps', 'annotated', uid);
  assert.equal(g.pool, 'sample-ips');
  assert.ok(inRange(g.address, '10.244.10.0', '10.244.10.50'), g.address);
  assert.equal(g.gateway, '10.244.0.1');

  const uid2 = await createPod(lab, 'apps', 'listed', 'plain-node', { annotations: { 'fast.io/ips': 'no-such-pool, sample-ips' } });
  assert.equal((await add(plain, 'apps', 'listed', uid2)).pool, 'sample-ips');
});

test('the namespace annotation binds its pods to a pool; the pod annotation wins over it', async () => {
  const uid = await createPod(lab, 'bound', 'p1', 'plain-node');
  const g = await add(plain, 'bound', 'p1', uid);
  assert.equal(g.pool, 'ns-pool');
  assert.ok(inRange(g.address, '10.246.0.10', '10.246.0.30'), g.address);
  const uid2 = await createPod(lab, 'bound', 'p2', 'plain-node', { annotations: { 'fast.io/ips': 'sample-ips' } });
  assert.equal((await add(plain, 'bound', 'p2', uid2)).pool, 'sample-ips');
});

test('without annotations: a pool whose affinities select pod and node, else default-ips', async () => {
  const uid = await createPod(lab, 'apps', 'trainer', 'gpu-node', { labels: { app: 'ml' } });
  const g = await add(gpu, 'apps', 'trainer', uid);
  assert.equal(g.pool, 'gpu-pool');
  assert.ok(inRange(g.address, '10.247.0.1', '10.247.0.63'), g.address);

  // same labels on a node without gpu=true: the affinity does not hold
  const uid2 = await createPod(lab, 'apps', 'trainer-cpu', 'plain-node', { labels: { app: 'ml' } });
  assert.equal((await add(plain, 'apps', 'trainer-cpu', uid2)).pool, 'default-ips');

  const uid3 = await createPod(lab, 'apps', 'web', 'plain-node', { labels: { app: 'web' } });
  const g3 = await add(plain, 'apps', 'web', uid3);
  assert.equal(g3.pool, 'default-ips');
  assert.ok(inRange(g3.address, '10.244.100.0', '10.244.100.50'), g3.address);
});

test("the network configuration's ipam.pool stands in for default-ips", async () => {
  const uid = await createPod(lab, 'apps', 'confpool', 'plain-node');
  const g = await add(plain, 'apps', 'confpool', uid, 'ctr-confpool', ['sample-ips']);
  assert.equal(g.pool, 'sample-ips');
});

test('a pod that may use no pool fails with 101 saying why, and an event on the pod', async () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['missing', { 'fast.io/ips': 'no-such-pool' }, /annotation fast\.io\/ips names pool "no-such-pool" which does not exist/],
    ['notready', { 'fast.io/ips': 'broken' }, /pool broken is not Ready: RangeReversed: .*reversed/],
    ['notpermitted', { 'fast.io/ips': 'restricted' }, /pool restricted does not select pod apps\/notpermitted \(podAffinity app=x\)/],
    ['several', { 'fast.io/ips': 'broken,restricted' }, /may use no pool: pool broken is not Ready.*; pool restricted does not select/],
  ];
  for (const [name, annotations, re] of cases) {
    const uid = await createPod(lab, 'apps', name, 'plain-node', { annotations });
    const err = await addFails(plain, 'apps', name, uid);
    assert.equal(err.code, FastErrorCode.NoPoolForPod, `${name}: ${err.message}`);
    assert.match(err.msg, re);
    const events = await waitFor(async () => {
      const evs = await eventsOf(lab, 'apps', name);
      return evs.length > 0 ? evs : undefined;
    }, `event on ${name}`);
    assert.equal(events[0]!.reason, ALLOCATION_FAILED_REASON);
    assert.equal(events[0]!.type, 'Warning');
    assert.match(events[0]!.message ?? '', re);
  }
});

test('a pod of a namespace whose default pool is missing is told so', async () => {
  await createNamespace(lab, 'nodefault', { annotations: { 'fast.io/ips': 'gone-pool' } });
  const uid = await createPod(lab, 'nodefault', 'p', 'plain-node');
  const err = await addFails(plain, 'nodefault', 'p', uid);
  assert.equal(err.code, FastErrorCode.NoPoolForPod);
  assert.match(err.msg, /namespace nodefault annotation fast\.io\/ips names pool "gone-pool" which does not exist/);
});

test('malformed pools get Ready=False with reason and message, are never used, and keep their allocations', async () => {
  const cm = new ControllerManager({ kubeConfig: lab.kc, log: testLog({ cm: 'a' }), identity: 'cm-pools', leaseNamespace: 'kube-system', leaseDurationMs: 3000, retryPeriodMs: 200 });
  await cm.start();
  try {
    await cm.whenActive();
    const bad: [string, Record<string, unknown>, string, RegExp][] = [
      ['bad-reversed', { subnet: '10.250.0.0/24', ips: ['10.250.0.9-10.250.0.1'] }, 'RangeReversed', /reversed/],
      ['bad-outside', { subnet: '10.250.1.0/24', ips: ['10.250.2.1-10.250.2.9'] }, 'OutsideSubnet', /not inside subnet 10\.250\.1\.0\/24/],
      ['bad-overlap', { subnet: '10.244.0.0/16', ips: ['10.244.10.40-10.244.10.60'] }, 'OverlapsPool', /overlap pool sample-ips/],
      ['bad-mixed', { subnet: '10.250.3.0/24', ips: ['10.250.3.1', 'fd00::1'] }, 'MixedFamilies', /not IPv4/],
      ['bad-address', { subnet: '10.250.4.0/24', ips: ['10.250.4.300'] }, 'InvalidAddress', /not a valid IP address/],
      ['bad-subnet', { subnet: '10.250.5.0/33', ips: ['10.250.5.1'] }, 'InvalidSubnet', /not a valid CIDR/],
    ];
    for (const [name, spec] of bad) await createPool(lab, name, spec);
    for (const [name, , reason, re] of bad) {
      const pool = await waitFor(async () => {
        const p = await getPool(lab, name);
        return p.status?.conditions?.some((c) => c.type === 'Ready') ? p : undefined;
      }, `status of ${name}`);
      const ready = pool.status!.conditions!.find((c) => c.type === 'Ready')!;
      assert.equal(ready.status, 'False', name);
      assert.equal(ready.reason, reason, `${name}: ${ready.message}`);
      assert.match(ready.message, re);
      assert.equal(pool.status!.totalIPCount, 0);
      const uid = await createPod(lab, 'apps', `user-of-${name}`, 'plain-node', { annotations: { 'fast.io/ips': name } });
      const err = await addFails(plain, 'apps', `user-of-${name}`, uid);
      assert.equal(err.code, FastErrorCode.NoPoolForPod);
      assert.match(err.msg, new RegExp(`pool ${name} is not Ready: ${reason}`));
    }
    // The older pool keeps its range: sample-ips stays Ready.
    const sample = await waitFor(async () => {
      const p = await getPool(lab, 'sample-ips');
      return p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? p : undefined;
    }, 'sample-ips Ready');
    assert.equal(sample.status!.totalIPCount, 51);
    assert.ok((sample.status!.allocatedIPCount as number) >= 3);

    // A Ready pool with allocations becomes invalid: the allocations stay, the counts too.
    const before = (await endpoints(lab)).filter((e) => e.spec.pool === 'ns-pool').map((e) => e.metadata.name).sort();
    assert.ok(before.length >= 1);
    const nsPool = (await getPool(lab, 'ns-pool')) as { metadata?: unknown; spec: Record<string, unknown> };
    await lab.custom.replaceClusterCustomObject({ group: 'sample.fast.io', version: 'v1alpha1', plural: 'ips', name: 'ns-pool', body: { ...nsPool, spec: { ...nsPool.spec, ips: ['10.246.0.30-10.246.0.10'] } } });
    const broken = await waitFor(async () => {
      const p = await getPool(lab, 'ns-pool');
      return p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'False' ? p : undefined;
    }, 'ns-pool not Ready');
    assert.equal(broken.status!.allocatedIPCount, before.length);
    assert.equal(broken.status!.observedGeneration, 2);
    const afterNames = (await endpoints(lab)).filter((e) => e.spec.pool === 'ns-pool').map((e) => e.metadata.name).sort();
    assert.deepEqual(afterNames, before);
    await waitFor(async () => (await plain.usage()).find((u) => u.name === 'ns-pool')?.ready === false, 'agent sees ns-pool not ready');
    const uid = await createPod(lab, 'bound', 'after-break', 'plain-node');
    const err = await addFails(plain, 'bound', 'after-break', uid);
    assert.equal(err.code, FastErrorCode.NoPoolForPod);
    assert.match(err.msg, /pool ns-pool is not Ready: RangeReversed/);
  } finally {
    await cm.stop();
  }
});
