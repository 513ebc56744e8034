// StatefulSets against the real lab API server: ordinal names, OrderedReady creation (one pod at a
// time, each only once its predecessor is Running and Ready), scale-down from the highest ordinal,
// identity labels, status, and rolling update. Readiness is set by the test, pod by pod.
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AppsV1Api, CoreV1Api, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { plainObject } from '../../src/k8s/resilient-informer.js';
import { TestKubelet, waitFor, startControllerTestbed, type ControllerTestbed } from '../../src/lab/controllers/testing.js';
import { sleep } from '../../src/lab/controllers/util.js';

const NS = 'default';
let tb: ControllerTestbed;
let kubelet: TestKubelet;
let core: CoreV1Api;
let apps: AppsV1Api;

before(async () => {
  tb = await startControllerTestbed({
    nodes: ['node-a', 'node-b'], resyncMs: 1000,
    // Readiness is decided by the test; the stand-in kubelet only finishes pod deletions.
    kubelet: { autoReady: false },
  });
  ({ core, apps } = tb);
  kubelet = tb.kubelet!;
});
after(async () => {
  await tb?.stop();
});

function statefulSet(name: string, replicas: number, image = 'redis:7'): V1StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: NS },
    spec: {
      replicas,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'main', image }] } },
    },
  };
}

async function podNames(app: string): Promise<string[]> {
  const list = (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` })).items;
  return list.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata!.name!).sort();
}

async function readPod(name: string): Promise<V1Pod> {
  return core.readNamespacedPod({ name, namespace: NS });
}

/** Waits for exactly `names` to exist and checks that nothing else appears for a while. */
async function expectExactly(app: string, names: string[], settleMs = 400): Promise<void> {
  await waitFor(`pods ${names.join(',')}`, async () => JSON.stringify(await podNames(app)) === JSON.stringify(names), {
    describe: () => podNames(app),
  });
  await sleep(settleMs);
  assert.deepEqual(await podNames(app), names, 'no other pod created while waiting for readiness');
}

test('a StatefulSet of 3 creates db-0, db-1, db-2 in order, each after its predecessor is Ready', async () => {
  const created = await apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet('db', 3) });

  await expectExactly('db', ['db-0']);
  const pod0 = await readPod('db-0');
  assert.equal(pod0.metadata?.labels?.['statefulset.kubernetes.io/pod-name'], 'db-0');
  assert.equal(pod0.metadata?.labels?.['apps.kubernetes.io/pod-index'], '0');
  assert.ok(pod0.metadata?.labels?.['controller-revision-hash']?.startsWith('db-'));
  assert.equal(pod0.spec?.hostname, 'db-0');
  assert.equal(pod0.spec?.subdomain, 'db');
  assert.deepEqual(plainObject(pod0.metadata?.ownerReferences), [{
    apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: created.metadata?.uid, controller: true, blockOwnerDeletion: true,
  }]);
  await waitFor('db-0 scheduled', async () => (await readPod('db-0')).spec?.nodeName);

  // Running but not Ready is not enough.
  await kubelet.markReady(NS, 'db-0', false);
  await expectExactly('db', ['db-0']);
  await kubelet.markReady(NS, 'db-0');
  await expectExactly('db', ['db-0', 'db-1']);
  await waitFor('db-1 scheduled', async () => (await readPod('db-1')).spec?.nodeName);
  await kubelet.markReady(NS, 'db-1');
  await expectExactly('db', ['db-0', 'db-1', 'db-2']);
  await waitFor('db-2 scheduled', async () => (await readPod('db-2')).spec?.nodeName);
  await kubelet.markReady(NS, 'db-2');

  const sts = await waitFor('statefulset status', async () => {
    const s = await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS });
    const st = s.status;
    return st?.replicas === 3 && st.readyReplicas === 3 && st.availableReplicas === 3 && st.updatedReplicas === 3 &&
      st.currentReplicas === 3 && st.observedGeneration === s.metadata?.generation && s;
  }, { describe: async () => (await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS })).status });
  assert.equal(sts.status?.currentRevision, sts.status?.updateRevision);
  assert.equal(sts.status?.currentRevision, pod0.metadata?.labels?.['controller-revision-hash']);

  if (tb.kubectl) assert.match(await tb.kubectl('rollout', 'status', 'statefulset/db', '--timeout=20s'), /roll out complete/);
});

test('scaling down to 1 removes db-2 first, then db-1, one at a time', async () => {
  // Watch the order of deletions through the pods' deletionTimestamp.
  const order: string[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const list = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=db' })).items;
      for (const p of list) {
        if (p.metadata?.deletionTimestamp && !order.includes(p.metadata.name!)) order.push(p.metadata.name!);
      }
      for (const n of ['db-1', 'db-2']) {
        if (!list.some((p) => p.metadata?.name === n) && !order.includes(n)) order.push(n);
      }
      await sleep(5);
    }
  })();
  const s = await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS });
  s.spec!.replicas = 1;
  await apps.replaceNamespacedStatefulSet({ name: 'db', namespace: NS, body: s });
  await waitFor('scaled down to db-0', async () => JSON.stringify(await podNames('db')) === '["db-0"]' &&
    (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=db' })).items.length === 1);
  sampling = false;
  await sampler;
  assert.deepEqual(order, ['db-2', 'db-1']);
  await waitFor('status after scale down', async () => {
    const st = (await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS })).status;
    return st?.replicas === 1 && st.readyReplicas === 1;
  });
});

test('scale down waits while a remaining pod is unhealthy', async () => {
  const s = await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS });
  s.spec!.replicas = 3;
  await apps.replaceNamespacedStatefulSet({ name: 'db', namespace: NS, body: s });
  await expectExactly('db', ['db-0', 'db-1'], 100);
  await kubelet.markReady(NS, 'db-1');
  await expectExactly('db', ['db-0', 'db-1', 'db-2'], 100);
  await kubelet.markReady(NS, 'db-2');
  await waitFor('3 ready', async () => (await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS })).status?.readyReplicas === 3);
  // db-0 turns unready: removing db-2 must wait (OrderedReady).
  await kubelet.markReady(NS, 'db-0', false);
  await waitFor('db-0 seen unready', async () => (await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS })).status?.readyReplicas === 2);
  const s2 = await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS });
  s2.spec!.replicas = 2;
  await apps.replaceNamespacedStatefulSet({ name: 'db', namespace: NS, body: s2 });
  await sleep(500);
  assert.deepEqual(await podNames('db'), ['db-0', 'db-1', 'db-2']);
  await kubelet.markReady(NS, 'db-0');
  await expectExactly('db', ['db-0', 'db-1'], 100);
});

test('a template change replaces pods from the highest ordinal down', async () => {
  const before = await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS });
  const oldRevision = before.status?.currentRevision;
  const recreated: string[] = [];
  const seenUids = new Map<string, string>();
  for (const n of ['db-0', 'db-1']) seenUids.set(n, (await readPod(n)).metadata!.uid!);
  before.spec!.template!.spec!.containers[0]!.image = 'redis:8';
  await apps.replaceNamespacedStatefulSet({ name: 'db', namespace: NS, body: before });
  // Each replacement is made ready by the test, which lets the next one proceed.
  await waitFor('all pods on the new revision', async () => {
    for (const n of ['db-1', 'db-0']) {
      let p: V1Pod;
      try {
        p = await readPod(n);
      } catch {
        continue;
      }
      if (p.metadata?.uid !== seenUids.get(n) && !recreated.includes(n)) recreated.push(n);
      if (p.metadata?.uid !== seenUids.get(n) && !p.metadata?.deletionTimestamp &&
        p.status?.conditions?.find((c) => c.type === 'Ready')?.status !== 'True') {
        await kubelet.markReady(NS, n).catch(() => {});
      }
    }
    const s = await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS });
    return s.status?.updatedReplicas === 2 && s.status.readyReplicas === 2 && s.status.currentRevision === s.status.updateRevision &&
      s.status.currentRevision !== oldRevision;
  }, { describe: async () => (await apps.readNamespacedStatefulSet({ name: 'db', namespace: NS })).status });
  assert.deepEqual(recreated, ['db-1', 'db-0']);
  for (const n of ['db-0', 'db-1']) {
    const p = await readPod(n);
    assert.equal(p.spec?.containers[0]?.image, 'redis:8');
  }
});

test('deleting the StatefulSet garbage-collects its pods', async () => {
  await apps.deleteNamespacedStatefulSet({ name: 'db', namespace: NS });
  await waitFor('pods collected', async () => (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=db' })).items.length === 0);
});
