// End-to-end proof of `fast lab` (issue 3): a 3-node lab brought up by `fast lab up`, the
// seed's quick start applied with the real kubectl (pods get addresses from their pools and
// ping each other on the same node and across nodes), the real kubectl creating, getting,
// describing, patching, scaling and deleting, addresses released when pods go, the API
// server stopped and restarted under running agents and kubelets (they catch up without a
// restart of their own), `fast lab status` and `fast lab exec` through the real CLI, and
// `fast lab down` leaving nothing behind (checked, not assumed).
//
//   node --import tsx --test --test-concurrency=1 test/e2e/lab.test.ts
//
// Needs root, the built tree (npx tsc -p tsconfig.json && make -C cni) and /usr/bin/kubectl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TestLab, type LabPod } from '../helpers/lab-harness.js';
import { REPO } from '../helpers/node-harness.js';
import { waitFor, REPO as LAB_UP_REPO } from '../../src/lab/lab-up.js';
import { parseIpEntries } from '../../src/model/ipam/ranges.js';
import { parseIp } from '../../src/model/ipam/address.js';

const NAME = 'flable2e';
const PORT = 21451;
const NODES = 3;
const EXAMPLES = path.join(REPO, 'examples');
const SEED = {
  sampleIps: path.join(EXAMPLES, 'fast-sample-ips.yaml'),
  defaultIpsBusybox1: path.join(EXAMPLES, 'fast-default-ips-busybox1.yaml'),
  busybox: path.join(EXAMPLES, 'fast-busybox.yaml'),
};
const POOLS: Record<string, string[]> = {
  'sample-ips': ['10.244.10.0-10.244.90.0'],
  'default-ips': ['10.244.100.0-10.244.200.250'],
};
const FAST = path.join(REPO, 'bin', 'fast');

let lab: TestLab | undefined;
let labDir: string | undefined;

function L(): TestLab {
  if (!lab) throw new Error('the lab is not up');
  return lab;
}

before(async () => {
  for (const f of [path.join(REPO, 'dist', 'src', 'lab', 'cli.js'), path.join(REPO, 'cni', 'fast-cni')]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.json && make -C cni)`);
  }
  lab = await TestLab.up({ nodes: NODES, name: NAME, port: PORT });
  labDir = lab.state.dir;
});

// Always down, even when a test (or `up` itself) failed.
after(async () => {
  if (lab && fs.existsSync(lab.state.dir)) await lab.down();
  else if (labDir && fs.existsSync(labDir)) spawnSync(process.execPath, [FAST, 'lab', 'down', '--dir', labDir], { stdio: 'ignore' });
});

test('the lab code finds the repository whether run from source or from dist/', () => {
  assert.equal(path.resolve(LAB_UP_REPO), path.resolve(REPO));
});

// ---------------------------------------------------------------------------------------
// helpers

interface IpEndpointObj {
  metadata: { name: string };
  spec: { pool: string; address: string; node: string; podNamespace: string; podName: string; podUID: string; releasedAt?: string };
}

function inPool(ip: string, pool: string): boolean {
  return parseIpEntries(POOLS[pool]!).set?.contains(parseIp(ip)) ?? false;
}

/** The data rows of a table printed by kubectl, as cells, keyed by the header. */
function table(output: string): Array<Record<string, string>> {
  const [header, ...lines] = output.trim().split('\n');
  const cols = header!.trim().split(/\s{2,}/);
  return lines.map((l) => {
    const cells = l.trim().split(/\s{2,}/);
    return Object.fromEntries(cols.map((c, i) => [c, cells[i] ?? '']));
  });
}

function ipEndpoints(): IpEndpointObj[] {
  return L().json<{ items: IpEndpointObj[] }>('get', 'ipendpoints').items;
}

function poolStatus(name: string): { totalIPCount?: number; allocatedIPCount?: number; coolingIPCount?: number } {
  const pools = L().json<{ items: Array<{ metadata: { name: string }; status?: Record<string, number> }> }>('get', 'ips').items;
  return pools.find((p) => p.metadata.name === name)?.status ?? {};
}

/** Waits until exactly `count` pods of the selector exist, all Running with an address. */
async function waitForExactly(selector: string, count: number, timeoutMs = 90_000): Promise<LabPod[]> {
  let pods: LabPod[] = [];
  await waitFor(`exactly ${count} pods ${selector} Running`, () => {
    pods = L().pods(selector);
    return pods.length === count && pods.every((p) => p.phase === 'Running' && p.ip);
  }, timeoutMs, () => L().kubectl('get', 'pods', '-o', 'wide') + L().kubectl('get', 'events'));
  return pods;
}

/** Every address of these (deleted) pods is released: its IpEndpoint has releasedAt or is gone. */
async function waitForReleased(gone: LabPod[], timeoutMs = 30_000): Promise<void> {
  const uids = new Set(gone.map((p) => p.uid));
  let held: IpEndpointObj[] = [];
  await waitFor(`addresses of ${gone.map((p) => p.name).join(', ')} released`, () => {
    held = ipEndpoints().filter((e) => uids.has(e.spec.podUID) && !e.spec.releasedAt);
    return held.length === 0;
  }, timeoutMs, () => `still held: ${JSON.stringify(held.map((e) => e.spec))}\n${L().kubectl('get', 'ipendpoints', '-o', 'wide')}`);
}

/** The IpEndpoints of these (running) pods hold exactly their addresses, not released. */
function assertHeld(pods: LabPod[]): void {
  const eps = ipEndpoints();
  for (const p of pods) {
    const e = eps.find((x) => x.spec.podUID === p.uid && !x.spec.releasedAt);
    assert.ok(e, `no live IpEndpoint for ${p.name} (${p.ip})`);
    assert.equal(e.spec.address, p.ip, `IpEndpoint of ${p.name}`);
    assert.equal(e.spec.node, p.node, `IpEndpoint node of ${p.name}`);
  }
}

async function waitForAllocated(pool: string, count: number): Promise<void> {
  await waitFor(`pool ${pool} allocatedIPCount ${count}`, () => poolStatus(pool).allocatedIPCount === count, 30_000,
    () => JSON.stringify(poolStatus(pool)) + '\n' + L().kubectl('get', 'ipendpoints', '-o', 'wide'));
}

/** Pings every ordered pair; returns the failures. Asserts both same-node and cross-node pairs were tried. */
function pingAll(pods: LabPod[], requireSameNode = true): string[] {
  const failures: string[] = [];
  let same = 0;
  let across = 0;
  for (const a of pods) for (const b of pods) {
    if (a === b) continue;
    if (a.node === b.node) same++;
    else across++;
    if (!L().ping(a, b.ip!, 1) && !L().ping(a, b.ip!, 2)) failures.push(`${a.name} (${a.node}) -> ${b.name} ${b.ip} (${b.node}), ${a.node === b.node ? 'same node' : 'across nodes'}`);
  }
  assert.ok(across > 0, 'no pair of pods across nodes to ping');
  if (requireSameNode) assert.ok(same > 0, 'no pair of pods on the same node to ping');
  return failures;
}

function fastCli(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [FAST, 'lab', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

interface StatusJson {
  up: boolean;
  nodes: Array<{ name: string; ready: string; agent: boolean; kubelet: boolean }>;
  processes: Array<{ role: string; pid: number; alive: boolean }>;
}

function labStatus(): StatusJson {
  const r = fastCli('status', '--dir', L().state.dir, '-o', 'json');
  assert.equal(r.status, 0, `fast lab status exited ${r.status}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson;
}

function assertHealthy(s: StatusJson): void {
  assert.equal(s.up, true);
  assert.deepEqual(s.nodes.map((n) => n.name).sort(), Array.from({ length: NODES }, (_, i) => `node${i + 1}`));
  for (const n of s.nodes) {
    assert.equal(n.ready, 'True', `${n.name} Ready`);
    assert.equal(n.agent, true, `${n.name} agent running`);
    assert.equal(n.kubelet, true, `${n.name} kubelet running`);
  }
  const roles = s.processes.map((p) => p.role);
  for (const r of ['apiserver', 'lab-controllers', 'fast-controller-manager']) assert.ok(roles.includes(r), `process ${r} recorded`);
  for (let i = 1; i <= NODES; i++) for (const r of [`agent/node${i}`, `kubelet/node${i}`]) assert.ok(roles.includes(r), `process ${r} recorded`);
  for (const p of s.processes) assert.equal(p.alive, true, `${p.role} (pid ${p.pid}) alive`);
}

const INFORMER_DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: informer
spec:
  replicas: 4
  selector:
    matchLabels: {app: informer}
  template:
    metadata:
      labels: {app: informer}
    spec:
      containers:
        - {name: c, image: busybox:latest, command: [sleep, "10000"]}
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------

test('lab up with 3 nodes: kubectl sees 3 Ready nodes; `fast lab status -o json` reports every node and process healthy', () => {
  const nodes = table(L().kubectl('get', 'nodes'));
  assert.deepEqual(nodes.map((n) => n['NAME']).sort(), ['node1', 'node2', 'node3']);
  for (const n of nodes) assert.equal(n['STATUS'], 'Ready', `node ${n['NAME']}`);
  assertHealthy(labStatus());
  // The CRDs were applied by `up`.
  const crds = L().kubectl('get', 'crd', '-o', 'name');
  assert.match(crds, /ips\.sample\.fast\.io/);
  assert.match(crds, /ipendpoints\.sample\.fast\.io/);
});

test('quick start: the seed YAML applied with kubectl; pods Running with addresses inside their pools; pings on the same node and across nodes', async () => {
  for (const f of [SEED.sampleIps, SEED.defaultIpsBusybox1, SEED.busybox]) L().kubectl('apply', '-f', f);
  const busybox = await waitForExactly('app=busybox', 2);
  const busybox1 = await waitForExactly('app=busybox1', 2);
  for (const p of busybox) assert.ok(inPool(p.ip!, 'sample-ips'), `${p.name} ${p.ip} inside sample-ips`);
  for (const p of busybox1) assert.ok(inPool(p.ip!, 'default-ips'), `${p.name} ${p.ip} inside default-ips`);
  const all = [...busybox, ...busybox1];
  assert.equal(new Set(all.map((p) => p.ip)).size, 4, 'four distinct addresses');
  assertHeld(all);
  // Four pods on three nodes: at least one pair shares a node, and they are spread.
  assert.ok(new Set(all.map((p) => p.node)).size >= 2, `pods spread over nodes: ${all.map((p) => p.node).join(', ')}`);
  const failures = pingAll(all);
  assert.deepEqual(failures, [], 'every pod pings every other pod');
  await waitForAllocated('sample-ips', 2);
  await waitForAllocated('default-ips', 2);
});

test('kubectl get: `pods -o wide` shows IP and NODE; `ips` shows TOTAL/ALLOCATED/READY printer columns', () => {
  const wide = L().kubectl('get', 'pods', '-o', 'wide');
  const header = wide.split('\n')[0]!.trim().split(/\s{2,}/);
  for (const c of ['NAME', 'READY', 'STATUS', 'IP', 'NODE']) assert.ok(header.includes(c), `column ${c} in ${header.join(' | ')}`);
  const rows = table(wide);
  const pods = L().pods();
  assert.equal(rows.length, pods.length);
  for (const p of pods) {
    const row = rows.find((r) => r['NAME'] === p.name);
    assert.ok(row, `row for ${p.name}`);
    assert.equal(row['STATUS'], 'Running');
    assert.equal(row['READY'], '1/1');
    assert.equal(row['IP'], p.ip);
    assert.equal(row['NODE'], p.node);
  }

  const ips = L().kubectl('get', 'ips');
  const ipsHeader = ips.split('\n')[0]!.trim().split(/\s{2,}/);
  assert.deepEqual(ipsHeader, ['NAME', 'TOTAL', 'ALLOCATED', 'READY', 'AGE']);
  const pools = Object.fromEntries(table(ips).map((r) => [r['NAME'], r]));
  assert.equal(pools['sample-ips']?.['TOTAL'], '20481'); // 10.244.10.0-10.244.90.0
  assert.equal(pools['sample-ips']?.['ALLOCATED'], '2');
  assert.equal(pools['sample-ips']?.['READY'], 'True');
  assert.equal(pools['default-ips']?.['ALLOCATED'], '2');
  assert.equal(pools['default-ips']?.['READY'], 'True');
  // -o wide adds the priority-1 columns.
  const ipsWide = L().kubectl('get', 'ips', '-o', 'wide').split('\n')[0]!;
  assert.match(ipsWide, /SUBNET/);
  assert.match(ipsWide, /COOLING/);
  // IpEndpoints by their short name, with their own printer columns.
  const eps = table(L().kubectl('get', 'ipep'));
  assert.equal(eps.length, 4);
  for (const p of pods) assert.ok(eps.some((e) => e['ADDRESS'] === p.ip && e['POD'] === p.name && e['NODE'] === p.node), `ipep row for ${p.name}`);
});

test('kubectl describe: `describe deploy busybox` and `describe ips sample-ips`', () => {
  const d = L().kubectl('describe', 'deploy', 'busybox');
  assert.match(d, /^Name:\s+busybox$/m);
  assert.match(d, /^Selector:\s+app=busybox$/m);
  assert.match(d, /^Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$/m);
  assert.match(d, /fast\.io\/ips: sample-ips/);
  assert.match(d, /^NewReplicaSet:\s+busybox-[a-z0-9]+ \(2\/2 replicas created\)$/m);
  assert.match(d, /ScalingReplicaSet/);

  const ips = L().kubectl('describe', 'ips', 'sample-ips');
  assert.match(ips, /^Name:\s+sample-ips$/m);
  assert.match(ips, /^Kind:\s+Ips$/m);
  assert.match(ips, /10\.244\.10\.0-10\.244\.90\.0/);
  assert.match(ips, /Total IP Count:\s+20481/);
  assert.match(ips, /Allocated IP Count:\s+2/);
  assert.match(ips, /Reason:\s+Valid/);
});

test('kubectl patch: a merge patch of replicas scales up, a strategic patch adds a label; pods follow with pool addresses', async () => {
  const before = L().pods('app=busybox');
  L().kubectl('patch', 'deploy', 'busybox', '--type', 'merge', '-p', '{"spec":{"replicas":4}}');
  L().kubectl('patch', 'deploy', 'busybox', '-p', '{"metadata":{"labels":{"tier":"web"}}}'); // strategic is kubectl's default
  L().kubectl('patch', 'deploy', 'busybox', '--type', 'json', '-p', '[{"op":"add","path":"/metadata/annotations/e2e","value":"yes"}]');
  const d = L().json('get', 'deploy', 'busybox');
  assert.equal(d.metadata.labels.tier, 'web');
  assert.equal(d.metadata.annotations.e2e, 'yes');
  assert.equal(d.spec.replicas, 4);
  const pods = await waitForExactly('app=busybox', 4);
  for (const p of before) assert.ok(pods.some((x) => x.uid === p.uid), `${p.name} kept (labels on the Deployment do not roll it)`);
  for (const p of pods) assert.ok(inPool(p.ip!, 'sample-ips'), `${p.name} ${p.ip} inside sample-ips`);
  assert.equal(new Set(pods.map((p) => p.ip)).size, 4);
  assertHeld(pods);
  await waitForAllocated('sample-ips', 4);
  assert.match(L().kubectl('get', 'deploy', 'busybox', '--show-labels'), /tier=web/);
});

test('kubectl patch (strategic merge of a container by name): the image is kept, pods are replaced by a rollout, old addresses are released', async () => {
  const old = L().pods('app=busybox');
  L().kubectl('patch', 'deploy', 'busybox', '-p', JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'busybox', env: [{ name: 'ROLLOUT', value: '1' }] }] } } } }));
  const d = L().json('get', 'deploy', 'busybox');
  const containers = d.spec.template.spec.containers as Array<{ name: string; image: string; env?: Array<{ name: string; value: string }> }>;
  assert.equal(containers.length, 1, 'merged by name, not appended or replaced');
  assert.equal(containers[0]!.image, 'busybox:latest');
  assert.deepEqual(containers[0]!.env, [{ name: 'ROLLOUT', value: '1' }]);
  let pods: LabPod[] = [];
  await waitFor('rollout done: 4 new pods Running, old ones gone', () => {
    pods = L().pods('app=busybox');
    return pods.length === 4 && pods.every((p) => p.phase === 'Running' && p.ip && !old.some((o) => o.uid === p.uid));
  }, 120_000, () => L().kubectl('get', 'pods', '-o', 'wide') + L().kubectl('get', 'rs'));
  for (const p of pods) assert.ok(inPool(p.ip!, 'sample-ips'), `${p.name} ${p.ip} inside sample-ips`);
  assertHeld(pods);
  await waitForReleased(old);
  await waitForAllocated('sample-ips', 4);
  assert.match(L().kubectl('rollout', 'status', 'deploy/busybox', '--timeout=30s'), /successfully rolled out/);
  assert.deepEqual(pingAll(pods, false), [], 'the new pods ping each other');
});

test('kubectl scale: a Deployment scaled up and down; pods follow; the addresses of deleted pods are released', async () => {
  L().kubectl('scale', 'deploy', 'busybox', '--replicas=7');
  const up = await waitForExactly('app=busybox', 7);
  assert.equal(new Set(up.map((p) => p.ip)).size, 7, 'distinct addresses');
  for (const p of up) assert.ok(inPool(p.ip!, 'sample-ips'), `${p.name} ${p.ip} inside sample-ips`);
  assert.equal(new Set(up.map((p) => p.node)).size, NODES, 'seven pods spread over the three nodes');
  assertHeld(up);
  await waitForAllocated('sample-ips', 7);

  L().kubectl('scale', 'deploy', 'busybox', '--replicas=1');
  const down = await waitForExactly('app=busybox', 1);
  assert.ok(up.some((p) => p.uid === down[0]!.uid), 'the remaining pod is one of the seven');
  const gone = up.filter((p) => p.uid !== down[0]!.uid);
  await waitForReleased(gone);
  assertHeld(down);
  await waitForAllocated('sample-ips', 1);
  // Their sandboxes are gone too.
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  for (const p of gone) assert.ok(!netns.includes(L().podNetns(p)), `netns of ${p.name} removed`);
  assert.match(L().kubectl('get', 'deploy', 'busybox'), /busybox\s+1\/1\s+1\s+1/);
});

test('informer recovery: the API server is killed and restarted under running agents and kubelets; a new Deployment then gets addresses and pings across nodes, no agent restarted', async () => {
  const l = L();
  const pidsBefore = Object.fromEntries(l.state.processes.filter((p) => p.role !== 'apiserver').map((p) => [p.role, p.pid]));
  const oldPods = [...l.pods('app=busybox'), ...l.pods('app=busybox1')];

  const killedAt = new Date().toISOString();
  await l.stop('apiserver', true); // SIGKILL: a crash, not a graceful stop
  assert.throws(() => l.kubectl('get', 'nodes', '--request-timeout=2s'), 'the API server is down');
  await sleep(6000); // agents, kubelets and controllers lose their watches and retry meanwhile
  const restartedAt = new Date().toISOString();
  l.start('apiserver');
  await waitFor('API server back', () => {
    try { return l.kubectl('get', '--raw', '/version').includes('gitVersion'); } catch { return false; }
  }, 20_000);

  // kubectl create: no annotation, so the pods take the default pool.
  l.kubectlIn(INFORMER_DEPLOYMENT, 'create', '-f', '-');
  const fresh = await waitForExactly('app=informer', 4, 90_000);
  for (const p of fresh) assert.ok(inPool(p.ip!, 'default-ips'), `${p.name} ${p.ip} inside default-ips`);
  assert.ok(new Set(fresh.map((p) => p.node)).size >= 2, 'the new pods are on several nodes');
  assertHeld(fresh);
  // New pods reach each other and the pods from before the outage, across nodes: every
  // agent learnt the new pods (cluster map) after the restart.
  const failures = pingAll([...fresh, ...oldPods], false);
  assert.deepEqual(failures, [], 'pings after the API server restart');

  // The same processes as before did it: none was restarted...
  l.reload();
  for (const [role, pid] of Object.entries(pidsBefore)) assert.equal(l.process(role).pid, pid, `${role} was not restarted`);
  assertHealthy(labStatus());
  // ...and each agent really lost its watches and recovered them (its own log says so).
  for (const n of l.state.nodes) {
    const lines = fs.readFileSync(path.join(n.dir, 'agent.log'), 'utf8').split('\n').flatMap((x) => { try { return [JSON.parse(x) as { time: string; msg: string }]; } catch { return []; } });
    assert.ok(lines.some((x) => x.time >= killedAt && x.time <= restartedAt && /informer failed/.test(x.msg)), `agent on ${n.name} noticed the outage`);
    assert.ok(lines.some((x) => x.time >= restartedAt && /informer recovered/.test(x.msg)), `agent on ${n.name} recovered its informers`);
  }
});

test('`fast lab exec POD -- ping` through the real CLI reaches a pod on another node', () => {
  const pods = [...L().pods('app=informer'), ...L().pods('app=busybox1')];
  const a = pods[0]!;
  const b = pods.find((p) => p.node !== a.node);
  assert.ok(b, 'a pod on another node');
  const r = fastCli('exec', '--dir', L().state.dir, a.name, '--', 'ping', '-c1', '-W', '2', b.ip!);
  assert.equal(r.status, 0, `fast lab exec ping: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /1 packets transmitted, 1 (packets )?received/);
  // The command really runs inside the pod: its eth0 carries the pod's address.
  const addr = fastCli('exec', '--dir', L().state.dir, a.name, '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0');
  assert.equal(addr.status, 0, addr.stderr);
  assert.match(addr.stdout, new RegExp(`inet ${a.ip!.replace(/\./g, '\\.')}/32`));
});

test('kubectl create deployment|namespace|service (imperative: kubectl sends protobuf bodies)', () => {
  try {
    assert.match(L().kubectl('create', 'namespace', 'e2e-imperative'), /namespace\/e2e-imperative created/);
    assert.match(L().kubectl('create', 'deployment', 'imperative', '-n', 'e2e-imperative', '--image=busybox:latest', '--replicas=0', '--', 'sleep', '10000'), /deployment\.apps\/imperative created/);
    assert.match(L().kubectl('create', 'service', 'clusterip', 'imperative', '-n', 'e2e-imperative', '--tcp=80:80'), /service\/imperative created/);
    const d = L().json('get', 'deploy', 'imperative', '-n', 'e2e-imperative');
    assert.deepEqual(d.spec.template.spec.containers[0].command, ['sleep', '10000']);
    assert.equal(d.spec.replicas, 0);
    assert.match(L().json('get', 'service', 'imperative', '-n', 'e2e-imperative').spec.clusterIP, /^\d+\.\d+\.\d+\.\d+$/);
  } finally {
    L().kubectl('delete', 'namespace', 'e2e-imperative', '--ignore-not-found', '--wait=false');
  }
});

test('kubectl create -f of a `kind: List` (validated against /openapi/v2)', () => {
  const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'listed' }, spec: { selector: { app: 'busybox1' }, ports: [{ port: 80 }] } }] });
  try {
    assert.match(L().kubectlIn(list, 'create', '-f', '-'), /service\/listed created/);
  } finally {
    L().kubectl('delete', 'service', 'listed', '--ignore-not-found');
  }
});

test('deleting a Deployment releases its pods\' addresses (IpEndpoints and the pool\'s allocatedIPCount)', async () => {
  const pods = L().pods('app=informer');
  assert.equal(pods.length, 4);
  assertHeld(pods);
  const allocatedBefore = poolStatus('default-ips').allocatedIPCount!;
  assert.equal(allocatedBefore, 6, 'default-ips holds busybox1 (2) and informer (4)');
  L().kubectl('delete', 'deployment', 'informer');
  await waitFor('informer pods gone', () => L().pods('app=informer').length === 0, 60_000, () => L().kubectl('get', 'pods', '-o', 'wide'));
  await waitForReleased(pods);
  await waitForAllocated('default-ips', 2);
  assert.equal(L().json('get', 'rs', '-l', 'app=informer').items.length, 0, 'ReplicaSets garbage-collected');
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  for (const p of pods) assert.ok(!netns.includes(L().podNetns(p)), `netns of ${p.name} removed`);
});

test('kubectl delete -f: the seed YAML deleted; every pod gone and every address released', async () => {
  const pods = [...L().pods('app=busybox'), ...L().pods('app=busybox1')];
  assert.equal(pods.length, 3);
  const out = L().kubectl('delete', '-f', SEED.busybox, '-f', SEED.defaultIpsBusybox1, '-f', SEED.sampleIps);
  assert.match(out, /deployment\.apps "busybox" deleted/);
  assert.match(out, /deployment\.apps "busybox1" deleted/);
  assert.match(out, /ips\.sample\.fast\.io "sample-ips" deleted/);
  assert.match(out, /ips\.sample\.fast\.io "default-ips" deleted/);
  await waitFor('no pods left', () => L().pods().length === 0, 60_000, () => L().kubectl('get', 'pods', '-o', 'wide'));
  await waitForReleased(pods);
  assert.equal(L().json('get', 'ips').items.length, 0);
  assert.equal(L().json('get', 'deploy').items.length, 0);
  assert.equal(L().json('get', 'rs').items.length, 0);
  assert.deepEqual(ipEndpoints().filter((e) => !e.spec.releasedAt).map((e) => e.metadata.name), [], 'no address held');
});

test('fast lab down leaves nothing behind: no namespace, process, mount or file', async () => {
  const l = L();
  const dir = l.state.dir;
  await l.down();
  assert.deepEqual(l.debris(), []);
  // Checked independently of the harness too: no process mentions the lab's directory,
  // no namespace carries the lab's name, no bpffs is mounted under it.
  const procs = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir); } catch { return false; }
  });
  assert.deepEqual(procs, [], 'processes referring to the lab directory');
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((x) => x.split(' ')[0]!).filter((n) => n.startsWith(NAME));
  assert.deepEqual(ns, []);
  assert.equal(fs.readFileSync('/proc/mounts', 'utf8').includes(dir), false);
  assert.equal(fs.existsSync(dir), false);
  const st = fastCli('status', '--dir', dir, '-o', 'json');
  assert.equal(st.status, 1);
  assert.deepEqual(JSON.parse(st.stdout), { up: false });
});
