// The lab scheduler against the real lab API server: even spreading, spec.nodeName, nodeSelector,
// unschedulable and NotReady nodes, FailedScheduling with PodScheduled=False, and binding once a
// fitting node appears.
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { createNode, waitFor, startControllerTestbed, type ControllerTestbed } from '../../src/lab/controllers/testing.js';
import { sleep } from '../../src/lab/controllers/util.js';
import { nodeMatchesPod, unschedulableMessage, untoleratedTaint } from '../../src/lab/controllers/scheduler.js';

let tb: ControllerTestbed;
let core: CoreV1Api;

before(async () => {
  tb = await startControllerTestbed({
    controllers: ['scheduler'], resyncMs: 1000,
    prepare: async (c) => {
      for (const n of ['node-a', 'node-b', 'node-c']) await createNode(c, n, { labels: { zone: n === 'node-c' ? 'z2' : 'z1' } });
      await createNode(c, 'node-cordoned', { unschedulable: true, labels: { disk: 'ssd' } });
      await createNode(c, 'node-down', { ready: false, labels: { disk: 'ssd' } });
      for (const ns of ['spread', 'pinned', 'pending']) await c.createNamespace({ body: { metadata: { name: ns } } });
    },
  });
  core = tb.core;
});
after(async () => {
  await tb?.stop();
});

function pod(namespace: string, name: string, spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace }, spec: { containers: [{ name: 'main', image: 'busybox' }], ...spec } };
}

async function podsOf(namespace: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace })).items;
}

test('12 pods spread 4/4/4 over 3 schedulable nodes, never on cordoned or NotReady ones', async () => {
  await Promise.all(Array.from({ length: 12 }, (_, i) => core.createNamespacedPod({ namespace: 'spread', body: pod('spread', `p${i}`) })));
  const pods = await waitFor('12 pods bound', async () => {
    const list = await podsOf('spread');
    return list.length === 12 && list.every((p) => p.spec?.nodeName) && list;
  });
  const perNode: Record<string, number> = {};
  for (const p of pods) perNode[p.spec!.nodeName!] = (perNode[p.spec!.nodeName!] ?? 0) + 1;
  assert.deepEqual(perNode, { 'node-a': 4, 'node-b': 4, 'node-c': 4 });
  for (const p of pods) {
    const cond = p.status?.conditions?.find((c) => c.type === 'PodScheduled');
    assert.equal(cond?.status, 'True', 'the binding sets PodScheduled=True');
  }
  // Events are recorded asynchronously, after the binding.
  const events = await waitFor('12 Scheduled events', async () => {
    const list = (await core.listNamespacedEvent({ namespace: 'spread', fieldSelector: 'reason=Scheduled' })).items;
    return list.length === 12 && list;
  });
  assert.match(events[0]!.message ?? '', /^Successfully assigned spread\/p\d+ to node-[abc]$/);
  assert.equal(events[0]!.source?.component, 'default-scheduler');
});

test('spec.nodeName is honoured and counted; nodeSelector and node affinity restrict the choice', async () => {
  // A pod that names its node is left alone (even an unschedulable one: kubelet admission decides).
  await core.createNamespacedPod({ namespace: 'pinned', body: pod('pinned', 'on-c', { nodeName: 'node-c' }) });
  await core.createNamespacedPod({ namespace: 'pinned', body: pod('pinned', 'z2-only', { nodeSelector: { zone: 'z2' } }) });
  await core.createNamespacedPod({
    namespace: 'pinned',
    body: pod('pinned', 'not-a', {
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'NotIn', values: ['node-a', 'node-b'] }] }] } } },
    }),
  });
  const pods = await waitFor('pinned pods bound', async () => {
    const list = await podsOf('pinned');
    return list.length === 3 && list.every((p) => p.spec?.nodeName) && list;
  });
  const where = Object.fromEntries(pods.map((p) => [p.metadata!.name!, p.spec!.nodeName!]));
  assert.deepEqual(where, { 'on-c': 'node-c', 'z2-only': 'node-c', 'not-a': 'node-c' });
  const onC = pods.find((p) => p.metadata?.name === 'on-c')!;
  assert.equal(onC.status?.conditions?.find((c) => c.type === 'PodScheduled'), undefined, 'never bound by the scheduler');

  // node-c now has 7 pods, a and b 4 each: the next free pods go to a and b.
  await core.createNamespacedPod({ namespace: 'pinned', body: pod('pinned', 'free-1') });
  await core.createNamespacedPod({ namespace: 'pinned', body: pod('pinned', 'free-2') });
  const free = await waitFor('free pods bound', async () => {
    const list = (await podsOf('pinned')).filter((p) => p.metadata?.name?.startsWith('free-'));
    return list.length === 2 && list.every((p) => p.spec?.nodeName) && list;
  });
  assert.deepEqual(free.map((p) => p.spec?.nodeName).sort(), ['node-a', 'node-b']);
});

test('a pod no node fits gets FailedScheduling and PodScheduled=False, and is bound when a node appears', async () => {
  await core.createNamespacedPod({ namespace: 'pending', body: pod('pending', 'needs-ssd', { nodeSelector: { disk: 'ssd' } }) });
  const stuck = await waitFor('PodScheduled=False', async () => {
    const p = await core.readNamespacedPod({ name: 'needs-ssd', namespace: 'pending' });
    const cond = p.status?.conditions?.find((c) => c.type === 'PodScheduled');
    return cond?.status === 'False' && p;
  });
  const cond = stuck.status!.conditions!.find((c) => c.type === 'PodScheduled')!;
  assert.equal(cond.reason, 'Unschedulable');
  assert.equal(cond.message,
    "0/5 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable, 3 node(s) didn't match Pod's node affinity/selector.");
  assert.equal(stuck.spec?.nodeName, undefined);
  const events = await waitFor('FailedScheduling event', async () => {
    const list = (await core.listNamespacedEvent({ namespace: 'pending', fieldSelector: 'involvedObject.name=needs-ssd,reason=FailedScheduling' })).items;
    return list.length > 0 && list;
  });
  assert.equal(events[0]!.type, 'Warning');
  assert.equal(events[0]!.message, cond.message);
  assert.equal(events[0]!.involvedObject.uid, stuck.metadata?.uid);

  // Node status heartbeats and resyncs (no scheduling-relevant change) do not retry it.
  const failures = async () => (await core.listNamespacedEvent({ namespace: 'pending', fieldSelector: 'reason=FailedScheduling' })).items
    .reduce((n, e) => n + (e.count ?? 1), 0);
  await sleep(200);
  const before = await failures();
  for (let i = 0; i < 3; i++) {
    const n = await core.readNode({ name: 'node-a' });
    n.status!.conditions![0]!.lastHeartbeatTime = new Date();
    await core.replaceNodeStatus({ name: 'node-a', body: n });
    await sleep(200);
  }
  await sleep(1200); // more than the resync period
  assert.equal(await failures(), before, 'no retry without a node change');

  // A fitting node appears: the pod is bound to it.
  await createNode(core, 'node-ssd', { labels: { disk: 'ssd' } });
  const bound = await waitFor('bound to node-ssd', async () => {
    const p = await core.readNamespacedPod({ name: 'needs-ssd', namespace: 'pending' });
    return p.spec?.nodeName ? p : undefined;
  });
  assert.equal(bound.spec?.nodeName, 'node-ssd');
  assert.equal(bound.status?.conditions?.find((c) => c.type === 'PodScheduled')?.status, 'True');
});

test('uncordoning a node (spec.unschedulable=false) schedules pods waiting for it', async () => {
  await core.createNamespacedPod({
    namespace: 'pending',
    body: pod('pending', 'wants-cordoned', { nodeSelector: { 'kubernetes.io/hostname': 'node-cordoned' } }),
  });
  await waitFor('unschedulable', async () =>
    (await core.readNamespacedPod({ name: 'wants-cordoned', namespace: 'pending' })).status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False'));
  const node = await core.readNode({ name: 'node-cordoned' });
  node.spec!.unschedulable = false;
  await core.replaceNode({ name: 'node-cordoned', body: node });
  const bound = await waitFor('bound after uncordon', async () => (await core.readNamespacedPod({ name: 'wants-cordoned', namespace: 'pending' })).spec?.nodeName);
  assert.equal(bound, 'node-cordoned');
});

test('filters: taints and tolerations, affinity terms, messages', () => {
  const node = { metadata: { name: 'n', labels: { a: '1' } }, spec: { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] } };
  assert.equal(untoleratedTaint({ spec: { containers: [] } }, node)?.key, 'dedicated');
  assert.equal(untoleratedTaint({ spec: { containers: [], tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] } }, node), undefined);
  assert.equal(untoleratedTaint({ spec: { containers: [], tolerations: [{ operator: 'Exists' }] } }, node), undefined);
  assert.equal(untoleratedTaint({ spec: { containers: [], tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'cpu' }] } }, node)?.key, 'dedicated');
  const prefer = { spec: { containers: [], affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }] }] } } } } };
  assert.equal(nodeMatchesPod(prefer, node), true);
  assert.equal(nodeMatchesPod({ spec: { containers: [], nodeSelector: { a: '2' } } }, node), false);
  assert.equal(unschedulableMessage(0, new Map()), 'no nodes available to schedule pods');
});
