// Static addresses (fast.io/ip) and their clashes (102 + pod event), pools that pin a Deployment,
// and sticky StatefulSet addresses: kept across delete and re-add on another node, released when
// the StatefulSet scales below the ordinal or is deleted.
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALLOCATION_FAILED_REASON, RESERVED_LABEL, STATEFULSET_ANNOTATION, type KubernetesIpam } from '../../src/agent/ipam/kubernetes.js';
import { ControllerManager } from '../../src/controller-manager/manager.js';
import { endpointName } from '../../src/model/ipam/naming.js';
import { FastErrorCode } from '../../src/model/cni/errors.js';
import {
  type Lab, add, addFails, createNamespace, createNode, createPod, createPool, deletePod, endpoints, eventsOf, newAgent, startLab, testLog, waitFor,
} from './ipam-k8s-harness.test.js';
import type { IpEndpointJson } from '../../src/agent/ipam/kubernetes.js';

let lab: Lab;
let a: KubernetesIpam;
let b: KubernetesIpam;

before(async () => {
  lab = await startLab();
  await createNode(lab, 'node-a');
  await createNode(lab, 'node-b');
  await createPool(lab, 'static-pool', { subnet: '10.30.0.0/24', ips: ['10.30.0.10-10.30.0.20'] });
  await createPool(lab, 'fixed', { subnet: '10.31.0.0/24', ips: ['10.31.0.5', '10.31.0.6'] });
  await createPool(lab, 'default-ips', { subnet: '10.32.0.0/16', ips: ['10.32.1.0/24'] });
  await createNamespace(lab, 'web');
  await createNamespace(lab, 'sts');
  a = await newAgent(lab, 'node-a', { cooldownMs: 60_000 });
  b = await newAgent(lab, 'node-b', { cooldownMs: 60_000 });
});

after(async () => {
  await lab.close();
});

async function endpoint(name: string): Promise<IpEndpointJson | undefined> {
  return (await endpoints(lab)).find((e) => e.metadata.name === name);
}

test('fast.io/ip gives the pod that address; a retried ADD gives it again', async () => {
  const ann = { 'fast.io/ips': 'static-pool', 'fast.io/ip': '10.30.0.15' };
  const uid = await createPod(lab, 'web', 's1', 'node-a', { annotations: ann });
  const g = await add(a, 'web', 's1', uid, 'ctr-s1');
  assert.deepEqual(g, { address: '10.30.0.15', pool: 'static-pool', gateway: '10.30.0.1' });
  assert.equal((await add(a, 'web', 's1', uid, 'ctr-s1')).address, '10.30.0.15');
  const ep = await endpoint('10-30-0-15');
  assert.equal(ep?.spec.podUID, uid);
  assert.equal(ep?.spec.containerID, 'ctr-s1');
});

test('a static address held by a live pod is refused with 102 naming the holder, and an event', async () => {
  const uid1 = (await lab.core.readNamespacedPod({ name: 's1', namespace: 'web' })).metadata!.uid!;
  const uid = await createPod(lab, 'web', 's2', 'node-b', { annotations: { 'fast.io/ips': 'static-pool', 'fast.io/ip': '10.30.0.15' } });
  const err = await addFails(b, 'web', 's2', uid, 'ctr-s2');
  assert.equal(err.code, FastErrorCode.StaticAddressConflict);
  assert.equal(err.msg, `address 10.30.0.15 of pool static-pool is in use by pod web/s1 (uid ${uid1}) on node node-a`);
  const ev = await waitFor(async () => (await eventsOf(lab, 'web', 's2'))[0], 'event on s2');
  assert.equal(ev.reason, ALLOCATION_FAILED_REASON);
  assert.equal(ev.type, 'Warning');
  assert.match(ev.message ?? '', /in use by pod web\/s1/);
  // a second failure counts on the same event
  await addFails(b, 'web', 's2', uid, 'ctr-s2');
  await waitFor(async () => ((await eventsOf(lab, 'web', 's2'))[0]?.count ?? 0) >= 2, 'event count 2');
});

test('a static address outside the pools the pod may use is refused with 101', async () => {
  const uid = await createPod(lab, 'web', 's3', 'node-a', { annotations: { 'fast.io/ips': 'static-pool', 'fast.io/ip': '10.31.0.5' } });
  const err = await addFails(a, 'web', 's3', uid, 'ctr-s3');
  assert.equal(err.code, FastErrorCode.NoPoolForPod);
  assert.match(err.msg, /asks for 10\.31\.0\.5, which is in none of the pools the pod may use \(static-pool\); it belongs to pool fixed/);
});

test('a released static address rests for the cooldown: another pod is refused, the same pod name gets it back', async () => {
  assert.equal(await a.release('ctr-s1', 'eth0'), 1);
  assert.equal(await a.release('ctr-s1', 'eth0'), 0, 'DEL is idempotent');
  const ep = await endpoint('10-30-0-15');
  assert.ok(ep?.spec.releasedAt, 'released, still claimed');
  const uid2 = (await lab.core.readNamespacedPod({ name: 's2', namespace: 'web' })).metadata!.uid!;
  const err = await addFails(b, 'web', 's2', uid2, 'ctr-s2');
  assert.equal(err.code, FastErrorCode.StaticAddressConflict);
  assert.match(err.msg, /^address 10\.30\.0\.15 of pool static-pool was released by pod web\/s1 and rests for \d+ s more$/);

  // s1 recreated (same name, new UID) on the other node: its address comes back at once
  await deletePod(lab, 'web', 's1');
  const uid = await createPod(lab, 'web', 's1', 'node-b', { annotations: { 'fast.io/ips': 'static-pool', 'fast.io/ip': '10.30.0.15' } });
  const g = await add(b, 'web', 's1', uid, 'ctr-s1-again');
  assert.equal(g.address, '10.30.0.15');
  const after = await endpoint('10-30-0-15');
  assert.equal(after?.spec.releasedAt, undefined);
  assert.equal(after?.spec.podUID, uid);
  assert.equal(after?.spec.node, 'node-b');
});

test('a pool with exactly the addresses of a Deployment pins its pods; one more is refused with 100', async () => {
  const got: string[] = [];
  for (const n of ['d-1', 'd-2']) {
    const uid = await createPod(lab, 'web', n, 'node-a', { annotations: { 'fast.io/ips': 'fixed' } });
    got.push((await add(a, 'web', n, uid)).address);
  }
  assert.deepEqual(got.sort(), ['10.31.0.5', '10.31.0.6']);
  const uid = await createPod(lab, 'web', 'd-3', 'node-a', { annotations: { 'fast.io/ips': 'fixed' } });
  const err = await addFails(a, 'web', 'd-3', uid);
  assert.equal(err.code, FastErrorCode.PoolExhausted);
  assert.equal(err.msg, 'pool fixed has no free address (2 of 2 allocated)');
});

async function createStatefulSet(name: string, replicas: number): Promise<string> {
  const s = await lab.apps.createNamespacedStatefulSet({
    namespace: 'sts',
    body: {
      metadata: { name },
      spec: {
        replicas,
        serviceName: name,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
      },
    },
  });
  return s.metadata!.uid!;
}

function owner(name: string, uid: string) {
  return [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name, uid, controller: true, blockOwnerDeletion: true }];
}

test('a StatefulSet pod keeps its address across delete and re-add on another node; scale-down and deletion release it', async () => {
  const cm = new ControllerManager({ kubeConfig: lab.kc, log: testLog({ cm: 'sticky' }), identity: 'cm-sticky', cooldownMs: 500, sweepMs: 60_000, leaseDurationMs: 3000, retryPeriodMs: 200 });
  await cm.start();
  try {
    await cm.whenActive();
    const setUid = await createStatefulSet('db', 3);
    const addrs: string[] = [];
    for (const i of [0, 1, 2]) {
      const uid = await createPod(lab, 'sts', `db-${i}`, 'node-a', { labels: { app: 'db' }, ownerReferences: owner('db', setUid) });
      addrs.push((await add(a, 'sts', `db-${i}`, uid, `ctr-db-${i}`)).address);
    }
    const ep0 = (await endpoint(endpointName(addrs[0]!)))!;
    assert.equal(ep0.metadata.annotations?.[STATEFULSET_ANNOTATION], 'db');

    // DEL on node-a: the address stays reserved for db-0
    assert.equal(await a.release('ctr-db-0', 'eth0'), 1);
    const reserved = (await endpoint(endpointName(addrs[0]!)))!;
    assert.equal(reserved.metadata.labels?.[RESERVED_LABEL], 'true');
    assert.equal(reserved.spec.podUID, '');
    assert.equal(reserved.spec.releasedAt, undefined);
    assert.ok(!(await a.owned()).some((o) => o.address === addrs[0]), 'a reservation is not a live allocation of the node');

    // db-0 rescheduled to node-b: same address, new UID/node/container
    await deletePod(lab, 'sts', 'db-0');
    const uid0 = await createPod(lab, 'sts', 'db-0', 'node-b', { labels: { app: 'db' }, ownerReferences: owner('db', setUid) });
    await waitFor(async () => (await b.usage()).length > 0, 'b ready');
    const g0 = await add(b, 'sts', 'db-0', uid0, 'ctr-db-0-b');
    assert.equal(g0.address, addrs[0]);
    const moved = (await endpoint(endpointName(addrs[0]!)))!;
    assert.equal(moved.spec.node, 'node-b');
    assert.equal(moved.spec.podUID, uid0);
    assert.equal(moved.spec.containerID, 'ctr-db-0-b');
    assert.equal(moved.metadata.labels?.[RESERVED_LABEL], undefined);
    assert.ok((await b.owned()).some((o) => o.address === addrs[0]));

    // db-1's pod vanishes without a DEL (its node crashed): the GC keeps the address for db-1
    await deletePod(lab, 'sts', 'db-1');
    await waitFor(async () => (await endpoint(endpointName(addrs[1]!)))?.metadata.labels?.[RESERVED_LABEL] === 'true', 'db-1 reserved by the GC');

    // scale to 1: the reservations of db-1 and db-2 are released (after db-2's pod is gone)
    await a.release('ctr-db-2', 'eth0');
    await deletePod(lab, 'sts', 'db-2');
    const set = await lab.apps.readNamespacedStatefulSet({ name: 'db', namespace: 'sts' });
    await lab.apps.replaceNamespacedStatefulSet({ name: 'db', namespace: 'sts', body: { ...set, spec: { ...set.spec!, replicas: 1 } } });
    for (const i of [1, 2]) {
      await waitFor(async () => !(await endpoint(endpointName(addrs[i]!))), `db-${i}'s address released and deleted after the cooldown`);
    }
    assert.ok(await endpoint(endpointName(addrs[0]!)), 'db-0 keeps its address');

    // the StatefulSet is deleted: db-0 (deleted with it) loses its address too
    await b.release('ctr-db-0-b', 'eth0');
    await lab.apps.deleteNamespacedStatefulSet({ name: 'db', namespace: 'sts' });
    await deletePod(lab, 'sts', 'db-0').catch(() => undefined);
    await waitFor(async () => !(await endpoint(endpointName(addrs[0]!))), "db-0's address released after the StatefulSet is deleted");
    assert.ok(cm.gc!.stats.released >= 3, JSON.stringify(cm.gc!.stats));
  } finally {
    await cm.stop();
  }
});

