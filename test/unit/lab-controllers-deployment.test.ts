// Deployments → ReplicaSets → pods against the real lab API server (in-process, ephemeral port),
// with the scheduler binding pods to three nodes and a stand-in kubelet marking them Ready.
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppsV1Api, CoreV1Api, type V1Deployment, type V1Pod, type V1ReplicaSet } from '@kubernetes/client-node';
import { plainObject } from '../../src/k8s/resilient-informer.js';
import { TestKubelet, waitFor, startControllerTestbed, type ControllerTestbed } from '../../src/lab/controllers/testing.js';
import { isPodReady } from '../../src/lab/controllers/util.js';

const NS = 'default';
let tb: ControllerTestbed;
let kubelet: TestKubelet;
let core: CoreV1Api;
let apps: AppsV1Api;

before(async () => {
  tb = await startControllerTestbed({
    nodes: ['node-a', 'node-b', 'node-c'], resyncMs: 2000,
    // Pods labelled hang=true never become ready (a stuck rollout).
    kubelet: { filter: (p) => p.metadata?.labels?.hang !== 'true' },
  });
  ({ core, apps } = tb);
  kubelet = tb.kubelet!;
});
after(async () => {
  await tb?.stop();
});

function deployment(name: string, replicas: number, image: string): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'main', image }] },
      },
    },
  };
}

async function replicaSets(app: string): Promise<V1ReplicaSet[]> {
  return (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: `app=${app}` })).items;
}

async function pods(app: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` })).items;
}

const live = (list: V1Pod[]) => list.filter((p) => !p.metadata?.deletionTimestamp);

/** kubectl's rollout status check for Deployments (kubectl/pkg/polymorphichelpers/rollout_status.go). */
function rolloutComplete(d: V1Deployment): boolean {
  const s = d.status ?? {};
  if ((d.metadata?.generation ?? 0) > (s.observedGeneration ?? 0)) return false;
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  assert.notEqual(progressing?.reason, 'ProgressDeadlineExceeded', 'rollout timed out');
  const desired = d.spec?.replicas ?? 1;
  return (s.updatedReplicas ?? 0) >= desired && (s.replicas ?? 0) <= (s.updatedReplicas ?? 0) &&
    (s.availableReplicas ?? 0) >= (s.updatedReplicas ?? 0);
}

async function waitRolledOut(name: string, replicas: number): Promise<V1Deployment> {
  return waitFor(`deployment ${name} rolled out with ${replicas} replicas`, async () => {
    const d = await apps.readNamespacedDeployment({ name, namespace: NS });
    const ps = live(await pods(name));
    return rolloutComplete(d) && d.status?.replicas === replicas && d.status?.readyReplicas === replicas &&
      d.status?.availableReplicas === replicas && ps.length === replicas && ps.every(isPodReady) && d;
  }, { describe: async () => ({ status: (await apps.readNamespacedDeployment({ name, namespace: NS })).status, pods: (await pods(name)).map((p) => [p.metadata?.name, p.spec?.nodeName, p.status?.phase, !!p.metadata?.deletionTimestamp]) }) });
}

async function updateDeployment(name: string, change: (d: V1Deployment) => void): Promise<void> {
  for (let i = 0; ; i++) {
    const d = await apps.readNamespacedDeployment({ name, namespace: NS });
    change(d);
    try {
      await apps.replaceNamespacedDeployment({ name, namespace: NS, body: d });
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || i > 10) throw err;
    }
  }
}

test('a Deployment of 3 gets one ReplicaSet and 3 ready pods, owned and labelled as in Kubernetes', async () => {
  const created = await apps.createNamespacedDeployment({ namespace: NS, body: deployment('web', 3, 'nginx:1.25') });
  const d = await waitRolledOut('web', 3);

  const rsList = await replicaSets('web');
  assert.equal(rsList.length, 1);
  const rs = rsList[0]!;
  const hash = rs.metadata?.labels?.['pod-template-hash'];
  assert.ok(hash && /^[bcdfghjklmnpqrstvwxz2456789]+$/.test(hash), `pod-template-hash ${hash}`);
  assert.equal(rs.metadata?.name, `web-${hash}`);
  assert.equal(rs.spec?.selector?.matchLabels?.['pod-template-hash'], hash);
  assert.equal(rs.spec?.template?.metadata?.labels?.['pod-template-hash'], hash);
  assert.deepEqual(plainObject(rs.metadata?.ownerReferences), [{
    apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: created.metadata?.uid, controller: true, blockOwnerDeletion: true,
  }]);
  assert.equal(rs.metadata?.annotations?.['deployment.kubernetes.io/revision'], '1');
  assert.equal(rs.metadata?.annotations?.['deployment.kubernetes.io/desired-replicas'], '3');
  assert.equal(rs.metadata?.annotations?.['deployment.kubernetes.io/max-replicas'], '4');
  assert.equal(d.metadata?.annotations?.['deployment.kubernetes.io/revision'], '1');

  const ps = await pods('web');
  assert.equal(ps.length, 3);
  for (const p of ps) {
    assert.ok(p.metadata?.name?.startsWith(`web-${hash}-`), p.metadata?.name);
    assert.equal(p.metadata?.labels?.['pod-template-hash'], hash);
    assert.deepEqual(plainObject(p.metadata?.ownerReferences), [{
      apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata?.name, uid: rs.metadata?.uid, controller: true, blockOwnerDeletion: true,
    }]);
    assert.ok(p.spec?.nodeName, 'bound by the scheduler');
  }

  await waitFor('replicaset status', async () => {
    const s = (await apps.readNamespacedReplicaSet({ name: rs.metadata!.name!, namespace: NS })).status;
    return s?.replicas === 3 && s.readyReplicas === 3 && s.availableReplicas === 3 && s.fullyLabeledReplicas === 3 &&
      s.observedGeneration === rs.metadata?.generation;
  });
  const status = (await apps.readNamespacedDeployment({ name: 'web', namespace: NS })).status!;
  assert.equal(status.observedGeneration, d.metadata?.generation);
  assert.equal(status.updatedReplicas, 3);
  assert.equal(status.unavailableReplicas ?? 0, 0);
  const available = status.conditions?.find((c) => c.type === 'Available');
  const progressing = status.conditions?.find((c) => c.type === 'Progressing');
  assert.equal(available?.status, 'True');
  assert.equal(available?.reason, 'MinimumReplicasAvailable');
  assert.equal(progressing?.status, 'True');
  assert.equal(progressing?.reason, 'NewReplicaSetAvailable');
});

test('kubectl scale and kubectl rollout status work against the lab', async (t) => {
  const run = tb.kubectl;
  if (!run) {
    t.skip('kubectl is not installed');
    return;
  }
  assert.match(await run('rollout', 'status', 'deployment/web', '--timeout=20s'), /successfully rolled out/);
  assert.match(await run('scale', 'deployment/web', '--replicas=4'), /scaled/);
  assert.match(await run('rollout', 'status', 'deployment/web', '--timeout=20s'), /successfully rolled out/);
  await waitRolledOut('web', 4);
  assert.match(await run('scale', 'deployment/web', '--replicas=3'), /scaled/);
  await waitRolledOut('web', 3);
});

test('scaling to 5 and to 2 resizes the one ReplicaSet', async () => {
  await updateDeployment('web', (d) => { d.spec!.replicas = 5; });
  await waitRolledOut('web', 5);
  let rsList = await replicaSets('web');
  assert.equal(rsList.length, 1);
  assert.equal(rsList[0]!.spec?.replicas, 5);
  assert.equal(rsList[0]!.metadata?.annotations?.['deployment.kubernetes.io/desired-replicas'], '5');

  await updateDeployment('web', (d) => { d.spec!.replicas = 2; });
  await waitRolledOut('web', 2);
  await waitFor('terminated pods gone', async () => (await pods('web')).length === 2);
  rsList = await replicaSets('web');
  assert.equal(rsList.length, 1);
  assert.equal(rsList[0]!.spec?.replicas, 2);
});

test('a template change rolls pods over to a new ReplicaSet within maxSurge/maxUnavailable', async () => {
  const [oldRs] = await replicaSets('web');
  const oldHash = oldRs!.metadata?.labels?.['pod-template-hash'];
  // 2 replicas with the defaults (25 %/25 %): maxSurge 1 (rounded up), maxUnavailable 0 (rounded down).
  let maxTotal = 0;
  let minReady = Infinity;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const rsList = await replicaSets('web');
      maxTotal = Math.max(maxTotal, rsList.reduce((n, rs) => n + (rs.spec?.replicas ?? 0), 0));
      const ready = live(await pods('web')).filter(isPodReady).length;
      minReady = Math.min(minReady, ready);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await updateDeployment('web', (d) => { d.spec!.template!.spec!.containers[0]!.image = 'nginx:1.26'; });
  const d = await waitFor('rollout to the new template', async () => {
    const dep = await apps.readNamespacedDeployment({ name: 'web', namespace: NS });
    const rsList = await replicaSets('web');
    const ps = await pods('web');
    return rsList.length === 2 && rolloutComplete(dep) && ps.length === 2 &&
      ps.every((p) => p.metadata?.labels?.['pod-template-hash'] !== oldHash && isPodReady(p)) && dep;
  });
  sampling = false;
  await sampler;

  const rsList = await replicaSets('web');
  const newRs = rsList.find((rs) => rs.metadata?.labels?.['pod-template-hash'] !== oldHash)!;
  const old = rsList.find((rs) => rs.metadata?.labels?.['pod-template-hash'] === oldHash)!;
  assert.equal(newRs.spec?.replicas, 2);
  assert.equal(newRs.spec?.template?.spec?.containers[0]?.image, 'nginx:1.26');
  assert.equal(old.spec?.replicas, 0, 'old ReplicaSet scaled to 0 and kept for history');
  assert.equal(newRs.metadata?.annotations?.['deployment.kubernetes.io/revision'], '2');
  assert.equal(old.metadata?.annotations?.['deployment.kubernetes.io/revision'], '1');
  assert.equal(d.metadata?.annotations?.['deployment.kubernetes.io/revision'], '2');
  assert.ok(maxTotal <= 3, `ReplicaSets never asked for more than replicas + maxSurge (saw ${maxTotal})`);
  assert.ok(minReady >= 2, `never fewer ready pods than replicas - maxUnavailable (saw ${minReady})`);
  assert.equal(d.status?.updatedReplicas, 2);
});

test('Recreate stops every old pod before starting new ones', async () => {
  const body = deployment('batch', 2, 'busybox:1');
  body.spec!.strategy = { type: 'Recreate' };
  await apps.createNamespacedDeployment({ namespace: NS, body });
  await waitRolledOut('batch', 2);
  const [oldRs] = await replicaSets('batch');
  const oldHash = oldRs!.metadata?.labels?.['pod-template-hash'];
  let overlap = false;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const hashes = new Set((await pods('batch')).map((p) => p.metadata?.labels?.['pod-template-hash']));
      if (hashes.size > 1) overlap = true;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await updateDeployment('batch', (d) => { d.spec!.template!.spec!.containers[0]!.image = 'busybox:2'; });
  await waitFor('recreated', async () => {
    const ps = await pods('batch');
    return ps.length === 2 && ps.every((p) => p.metadata?.labels?.['pod-template-hash'] !== oldHash && isPodReady(p));
  });
  sampling = false;
  await sampler;
  assert.equal(overlap, false, 'old and new pods never coexist');
  await waitRolledOut('batch', 2);
  await apps.deleteNamespacedDeployment({ name: 'batch', namespace: NS });
});

test('kubectl rollout undo goes back to the previous template under a new revision', async (t) => {
  const run = tb.kubectl;
  if (!run) {
    t.skip('kubectl is not installed');
    return;
  }
  const history = await run('rollout', 'history', 'deployment/web');
  assert.match(history, /^1\s/m);
  assert.match(history, /^2\s/m);
  await run('rollout', 'undo', 'deployment/web');
  await waitFor('back on nginx:1.25', async () => {
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: NS });
    const ps = live(await pods('web'));
    return d.spec?.template?.spec?.containers[0]?.image === 'nginx:1.25' && rolloutComplete(d) &&
      ps.length === 2 && ps.every((p) => p.spec?.containers[0]?.image === 'nginx:1.25' && isPodReady(p)) && (await pods('web')).length === 2;
  });
  const rsList = await replicaSets('web');
  assert.equal(rsList.length, 2, 'the old ReplicaSet is reused, not duplicated');
  const current = rsList.find((rs) => rs.spec?.template?.spec?.containers[0]?.image === 'nginx:1.25')!;
  assert.equal(current.metadata?.annotations?.['deployment.kubernetes.io/revision'], '3');
  assert.equal(current.metadata?.annotations?.['deployment.kubernetes.io/revision-history'], '1');
  assert.equal(current.spec?.replicas, 2);
  assert.match(await run('rollout', 'status', 'deployment/web', '--timeout=20s'), /successfully rolled out/);
});

test('scale to 0 and back; a paused Deployment scales but does not roll out', async () => {
  const deploymentStatus = async () => (await apps.readNamespacedDeployment({ name: 'web', namespace: NS })).status;
  await updateDeployment('web', (d) => { d.spec!.replicas = 0; });
  await waitFor('no pods', async () => (await pods('web')).length === 0 && ((await deploymentStatus())?.replicas ?? 0) === 0);
  await updateDeployment('web', (d) => { d.spec!.replicas = 2; });
  await waitRolledOut('web', 2);

  await updateDeployment('web', (d) => { d.spec!.replicas = 3; d.spec!.paused = true; d.spec!.template!.spec!.containers[0]!.image = 'nginx:1.27'; });
  await waitFor('3 pods of the old template while paused', async () => {
    const ps = await pods('web');
    return ps.length === 3 && ps.every((p) => p.spec?.containers[0]?.image === 'nginx:1.25' && isPodReady(p));
  });
  await waitFor('paused condition', async () =>
    (await deploymentStatus())?.conditions?.find((c) => c.type === 'Progressing')?.reason === 'DeploymentPaused');
  assert.equal((await replicaSets('web')).length, 2, 'no new ReplicaSet while paused');
  await updateDeployment('web', (d) => { d.spec!.paused = false; });
  await waitFor('rolled out after resume', async () => {
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: NS });
    const ps = await pods('web');
    return rolloutComplete(d) && ps.length === 3 && ps.every((p) => p.spec?.containers[0]?.image === 'nginx:1.27' && isPodReady(p));
  });
  assert.equal((await replicaSets('web')).length, 3);
});

test('a rollout whose pods never become ready exceeds its progress deadline', async () => {
  const body = deployment('stuck', 2, 'nginx:1');
  body.spec!.progressDeadlineSeconds = 2;
  body.spec!.template!.metadata!.labels!.hang = 'true';
  await apps.createNamespacedDeployment({ namespace: NS, body });
  const d = await waitFor('ProgressDeadlineExceeded', async () => {
    const dep = await apps.readNamespacedDeployment({ name: 'stuck', namespace: NS });
    const cond = dep.status?.conditions?.find((c) => c.type === 'Progressing');
    return cond?.reason === 'ProgressDeadlineExceeded' && dep;
  }, { timeoutMs: 10_000 });
  const cond = d.status!.conditions!.find((c) => c.type === 'Progressing')!;
  assert.equal(cond.status, 'False');
  assert.match(cond.message ?? '', /has timed out progressing/);
  assert.equal(d.status?.conditions?.find((c) => c.type === 'Available')?.status, 'False');
  assert.equal(d.status?.unavailableReplicas, 2);
  await apps.deleteNamespacedDeployment({ name: 'stuck', namespace: NS });
});

test('deleting the Deployment garbage-collects its ReplicaSets and pods', async () => {
  await apps.deleteNamespacedDeployment({ name: 'web', namespace: NS });
  await waitFor('ReplicaSets and pods of web collected', async () =>
    (await replicaSets('web')).length === 0 && (await pods('web')).length === 0, {
    describe: async () => ({ rs: (await replicaSets('web')).map((r) => r.metadata?.name), pods: (await pods('web')).map((p) => p.metadata?.name) }),
  });
  await waitFor('batch collected', async () => (await pods('batch')).length === 0 && (await replicaSets('batch')).length === 0);
  // Controllers stay quiet about objects that are gone.
  assert.ok(!tb.logs.some((l) => /"level":"(warn|error)"/.test(l) && !/reconcile failed/.test(l)), tb.logs.filter((l) => /"level":"(warn|error)"/.test(l)).join(''));
});
