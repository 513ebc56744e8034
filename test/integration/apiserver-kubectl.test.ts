// The real kubectl (/usr/bin/kubectl) against the lab API server: Fast's CRDs and the seed's
// quick-start YAML are applied, read, described, patched, labelled, watched and deleted exactly
// as a user does on a cluster. Needs no root: the server listens on an ephemeral loopback port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startApiServer, writeKubeconfig, type ApiServer } from '../../src/lab/apiserver/index.js';
import type { KubeObject } from '../../src/lab/apiserver/types.js';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KUBECTL = '/usr/bin/kubectl';
const FAST_CRDS = path.join(repo, 'deploy/crds/ips.yaml');
const EXAMPLES = '/work/shared/examples';
const SEEDS = ['fast-sample-ips.yaml', 'fast-busybox.yaml', 'fast-default-ips-busybox1.yaml'].map((f) => path.join(EXAMPLES, f));

/** A minimal Ips CRD, used only while deploy/crds/ips.yaml does not exist yet. */
const MINIMAL_IPS_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ips.sample.fast.io
spec:
  group: sample.fast.io
  scope: Cluster
  names: {kind: Ips, listKind: IpsList, plural: ips, singular: ips}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: TOTAL, type: integer, jsonPath: .status.totalIPCount}
    - {name: READY, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: AGE, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [subnet, ips]
            properties:
              subnet: {type: string}
              ips: {type: array, items: {type: string}}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
`;

let server: ApiServer;
let dir: string;
let env: NodeJS.ProcessEnv;
let crdFile: string;

/** Runs kubectl (asynchronously: the server lives in this process) and returns its stdout. */
async function kubectl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(KUBECTL, args, { env, timeout: 30_000 });
    return stdout;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    throw new Error(`kubectl ${args.join(' ')} exited ${String(e.code)}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** The data rows of a table printed by kubectl, as arrays of cells. */
function rows(output: string): string[][] {
  return output.trim().split('\n').slice(1).map((line) => line.trim().split(/\s{2,}/));
}

const PODS = { group: '', version: 'v1', resource: 'pods' };

/** What the lab's controllers and kubelet will do for a Deployment: a ReplicaSet and running pods. */
function simulateWorkload(name: string, node: string, ips: string[]): void {
  const store = server.store;
  const deployment = store.get({ group: 'apps', version: 'v1', resource: 'deployments' }, name, { namespace: 'default' });
  const spec = deployment.spec as { template: { metadata: { labels: Record<string, string> }; spec: object } };
  const hash = '5d8f7c9b4';
  const labels = { ...spec.template.metadata.labels, 'pod-template-hash': hash };
  const rs = store.create({ group: 'apps', version: 'v1', resource: 'replicasets' }, {
    metadata: {
      name: `${name}-${hash}`,
      labels,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid: deployment.metadata.uid!, controller: true, blockOwnerDeletion: true }],
    },
    spec: { replicas: ips.length, selector: { matchLabels: labels }, template: { ...spec.template, metadata: { ...spec.template.metadata, labels } } },
  }, { namespace: 'default' });
  ips.forEach((ip, i) => {
    const pod = store.create(PODS, {
      metadata: {
        name: `${name}-${hash}-${String(i).padStart(5, 'x')}`,
        labels,
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name!, uid: rs.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: { ...(spec.template.spec as object), nodeName: node },
    }, { namespace: 'default' });
    store.patch(PODS, pod.metadata.name!, 'merge', {
      status: {
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [{ name: 'busybox', ready: true, restartCount: 0, state: { running: { startedAt: '2025-01-01T00:00:00Z' } } }],
      },
    }, { namespace: 'default', subresource: 'status' });
  });
  store.create({ group: '', version: 'v1', resource: 'events' }, {
    metadata: { name: `${name}.scaling` },
    involvedObject: { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: 'default', uid: deployment.metadata.uid },
    reason: 'ScalingReplicaSet',
    message: `Scaled up replica set ${rs.metadata.name} to ${ips.length}`,
    type: 'Normal',
    source: { component: 'deployment-controller' },
    count: 1,
    firstTimestamp: deployment.metadata.creationTimestamp,
    lastTimestamp: deployment.metadata.creationTimestamp,
  }, { namespace: 'default' });
}

before(async () => {
  // Pods are bound to nodes but no kubelet runs here to confirm their deletion.
  server = await startApiServer({ port: 0, podGracefulDeletion: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apiserver-kubectl-'));
  // HOME holds kubectl's discovery cache: a fresh one per run, never the user's.
  env = { PATH: process.env.PATH, HOME: dir, KUBECONFIG: writeKubeconfig(path.join(dir, 'kubeconfig'), server.url) };
  crdFile = FAST_CRDS;
  if (!fs.existsSync(crdFile)) {
    crdFile = path.join(dir, 'ips-crd.yaml');
    fs.writeFileSync(crdFile, MINIMAL_IPS_CRD);
  }
});

after(async () => {
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('kubectl talks to the lab API server', async () => {
  const version = JSON.parse(await kubectl('version', '-o', 'json')) as { serverVersion: { gitVersion: string } };
  assert.match(version.serverVersion.gitVersion, /^v1\.32\./);
  const resources = await kubectl('api-resources', '--no-headers');
  for (const r of ['pods', 'deployments', 'endpointslices', 'networkpolicies', 'leases', 'customresourcedefinitions']) {
    assert.match(resources, new RegExp(`^${r}\\s`, 'm'));
  }
  assert.deepEqual(rows(await kubectl('get', 'ns')).map((r) => r[0]), ['default', 'kube-node-lease', 'kube-public', 'kube-system']);
});

test('kubectl applies Fast\'s CRD and the seed quick start, and reads them back', async () => {
  assert.match(await kubectl('apply', '-f', crdFile), /customresourcedefinition.apiextensions.k8s.io\/ips.sample.fast.io created/);
  for (const seed of SEEDS) assert.match(await kubectl('apply', '-f', seed), / created/);
  // Applying again: kubectl computes a three-way patch (strategic merge for the Deployment,
  // JSON merge for the custom resource and the CRD) and finds nothing to change.
  assert.match(await kubectl('apply', '-f', SEEDS[1]), /deployment.apps\/busybox unchanged/);
  assert.match(await kubectl('apply', '-f', SEEDS[0]), /ips.sample.fast.io\/sample-ips unchanged/);
  assert.match(await kubectl('apply', '-f', crdFile), /ips.sample.fast.io unchanged/);

  const ips = await kubectl('get', 'ips');
  assert.match(ips.split('\n')[0], /^NAME\s+.*AGE/);
  assert.deepEqual(rows(ips).map((r) => r[0]), ['default-ips', 'sample-ips']);
  const sample = JSON.parse(await kubectl('get', 'ips', 'sample-ips', '-o', 'json')) as KubeObject;
  assert.deepEqual((sample.spec as { ips: string[] }).ips, ['10.244.10.0-10.244.90.0']);
  assert.ok(sample.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration']);

  const deploys = await kubectl('get', 'deploy');
  assert.match(deploys.split('\n')[0], /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$/);
  assert.deepEqual(rows(deploys).map((r) => [r[0], r[1]]), [['busybox', '0/2'], ['busybox1', '0/2']]);
});

test('kubectl get pods -o wide shows IP and NODE; describe shows the ReplicaSet and events', async () => {
  server.store.create({ group: '', version: 'v1', resource: 'nodes' }, { metadata: { name: 'lab-node-1' } });
  simulateWorkload('busybox', 'lab-node-1', ['10.244.10.1', '10.244.10.2']);

  const wide = await kubectl('get', 'pods', '-o', 'wide');
  assert.match(wide.split('\n')[0], /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/);
  const pods = rows(wide);
  assert.equal(pods.length, 2);
  for (const [i, pod] of pods.entries()) {
    assert.deepEqual([pod[1], pod[2], pod[5], pod[6]], ['1/1', 'Running', `10.244.10.${i + 1}`, 'lab-node-1']);
  }
  assert.deepEqual(rows(await kubectl('get', 'pods', '--field-selector', 'spec.nodeName=lab-node-1', '-l', 'app=busybox')).length, 2);

  const describe = await kubectl('describe', 'deploy', 'busybox');
  assert.match(describe, /^Name:\s+busybox$/m);
  assert.match(describe, /^Replicas:\s+2 desired/m);
  assert.match(describe, /^NewReplicaSet:\s+busybox-5d8f7c9b4/m);
  assert.match(describe, /ScalingReplicaSet\s+.*Scaled up replica set busybox-5d8f7c9b4 to 2/);
  assert.match(await kubectl('describe', 'ips', 'sample-ips'), /^Name:\s+sample-ips$/m);
  assert.match(await kubectl('get', 'all'), /deployment.apps\/busybox/);
});

test('kubectl patch (merge, strategic, json) and label', async () => {
  assert.match(await kubectl('patch', 'deploy', 'busybox', '--type', 'merge', '-p', '{"spec":{"replicas":3}}'), /deployment.apps\/busybox patched/);
  await kubectl('patch', 'deploy', 'busybox', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"busybox","image":"busybox:1.36"}]}}}}');
  const containers = JSON.parse(await kubectl('get', 'deploy', 'busybox', '-o', 'jsonpath={.spec.template.spec.containers}')) as { image: string; command: string[] }[];
  assert.equal(containers.length, 1);
  assert.equal(containers[0].image, 'busybox:1.36');
  assert.deepEqual(containers[0].command, ['sleep', '10000'], 'strategic merge kept the rest of the container');
  await kubectl('patch', 'deploy', 'busybox', '--type', 'json', '-p', '[{"op":"add","path":"/metadata/annotations/owner","value":"lab"}]');
  assert.match(await kubectl('patch', 'ips', 'sample-ips', '--type', 'merge', '-p', '{"spec":{"ips":["10.244.10.0-10.244.20.0"]}}'), /patched/);
  await assert.rejects(kubectl('patch', 'ips', 'sample-ips', '-p', '{"spec":{"subnet":"10.0.0.0/8"}}'), /strategic-merge-patch\+json is not supported/);

  assert.match(await kubectl('label', 'deploy', 'busybox', 'tier=web'), /deployment.apps\/busybox labeled/);
  assert.match(await kubectl('label', 'ips', 'sample-ips', 'team=net'), /labeled/);
  assert.deepEqual(rows(await kubectl('get', 'deploy', '-l', 'tier=web')).map((r) => r[0]), ['busybox']);
  assert.deepEqual(rows(await kubectl('get', 'ips', '-l', 'team=net')).map((r) => r[0]), ['sample-ips']);
  assert.match(await kubectl('scale', 'deploy', 'busybox1', '--replicas=4'), /scaled/);
  assert.match(await kubectl('get', 'deploy', 'busybox1'), /busybox1\s+0\/4/);
});

test('kubectl get --watch prints changes as they happen', async () => {
  const watching = kubectl('get', 'deploy', '--watch', '--request-timeout=3s');
  await new Promise((r) => setTimeout(r, 1000));
  server.store.patch({ group: 'apps', version: 'v1', resource: 'deployments' }, 'busybox1', 'merge',
    { status: { replicas: 4, readyReplicas: 4, updatedReplicas: 4, availableReplicas: 4 } },
    { namespace: 'default', subresource: 'status' });
  const output = await watching;
  assert.match(output, /^busybox1\s+0\/4/m, 'the initial list');
  assert.match(output, /^busybox1\s+4\/4\s+4\s+4/m, 'the change seen through the watch');
});

test('kubectl generator commands (protobuf bodies) and kubectl run; deleting the namespace empties it', async () => {
  assert.match(await kubectl('create', 'namespace', 'lab-team'), /namespace\/lab-team created/);
  assert.match(await kubectl('create', 'deployment', 'web', '-n', 'lab-team', '--image=nginx:1.25', '--replicas=2', '--port=8080'), /deployment.apps\/web created/);
  assert.match(await kubectl('create', 'service', 'clusterip', 'web', '-n', 'lab-team', '--tcp=80:8080'), /service\/web created/);
  assert.match(await kubectl('run', 'probe', '-n', 'lab-team', '--image=busybox', '--restart=Never', '--env=MODE=test', '--', 'sleep', '60'), /pod\/probe created/);
  const deploy = JSON.parse(await kubectl('get', 'deploy', 'web', '-n', 'lab-team', '-o', 'json')) as KubeObject;
  const spec = deploy.spec as { replicas: number; template: { spec: { containers: { image: string; ports: { containerPort: number }[] }[] } } };
  assert.equal(spec.replicas, 2);
  assert.equal(spec.template.spec.containers[0].image, 'nginx:1.25');
  assert.equal(spec.template.spec.containers[0].ports[0].containerPort, 8080);
  assert.match(await kubectl('get', 'svc', 'web', '-n', 'lab-team'), /^web\s+ClusterIP\s+10\.\d+\.\d+\.\d+\s+<none>\s+80\/TCP/m);
  assert.match(await kubectl('get', 'pod', 'probe', '-n', 'lab-team', '-o', 'jsonpath={.spec.containers[0].env[0].value}'), /^test$/);
  // kubectl waits until the namespace controller has emptied and removed the namespace.
  assert.match(await kubectl('delete', 'namespace', 'lab-team'), /namespace "lab-team" deleted/);
  assert.doesNotMatch(await kubectl('get', 'ns'), /lab-team/);
});

test('kubectl delete -f removes the seed objects; their ReplicaSets and pods are collected', async () => {
  assert.match(await kubectl('delete', '-f', SEEDS[1]), /deployment.apps "busybox" deleted/);
  for (let i = 0; i < 100 && rows(await kubectl('get', 'pods')).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await kubectl('get', 'pods')).trim(), '');
  assert.equal((await kubectl('get', 'rs')).trim(), '');

  await kubectl('delete', '-f', SEEDS[0], '-f', SEEDS[2]);
  assert.match(await kubectl('delete', '-f', crdFile), /customresourcedefinition.apiextensions.k8s.io "ips.sample.fast.io" deleted/);
  assert.equal((await kubectl('get', 'deploy')).trim(), '');
  // Depending on kubectl's discovery cache, either message (both are a real cluster's).
  await assert.rejects(kubectl('get', 'ips'), /the server doesn't have a resource type "ips"|the server could not find the requested resource/);
});
