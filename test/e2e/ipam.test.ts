// End-to-end proof of issue 5 (IP address management) in a 4-node lab, with the real kubectl
// and real pods: the seed's quick start pools; a namespace-bound pool (Namespace annotated
// fast.io/ips); a static address (fast.io/ip) and a clash with a live pod (refused with an event
// naming the holder, then granted once the holder is gone and the cooldown has passed); a
// StatefulSet pod deleted and rescheduled to another node keeps its address, scale-down releases
// it; kill -9 of an agent in the middle of many ADDs leaves no leaked and no duplicated address
// once the garbage collector has run; 200 pods created at once over 4 nodes from a pool of
// exactly 200 addresses; exhaustion and recovery; every kind of malformed pool gets Ready=False
// with a reason and is never used, while other pools' allocations stay untouched; `fast-ctl ipam`
// on a node; `fast lab down` leaves nothing behind.
//
//   node --import tsx --test --test-concurrency=1 test/e2e/ipam.test.ts
//
// Needs root, the built tree (npx tsc -p tsconfig.json && make -C cni) and kubectl. About 3
// minutes, most of it the default 30 s cooldown (fast-controller-manager --cooldown-seconds and
// the agent's releaseCooldownSeconds, which the lab does not expose) plus the lab kubelet's
// back-off (up to 30 s) before a refused pod is retried.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TestLab, type LabPod } from '../helpers/lab-harness.js';
import { REPO } from '../helpers/node-harness.js';
import { waitFor } from '../../src/lab/lab-up.js';
import { parseIpEntries } from '../../src/model/ipam/ranges.js';
import { parseIp } from '../../src/model/ipam/address.js';
import { endpointName } from '../../src/model/ipam/naming.js';

const NAME = 'flabipam';
const PORT = 21644;
const NODES = 4;
const EXAMPLES = path.join(REPO, 'examples');
const COOLDOWN_S = 30; // the lab's default (fast-controller-manager and agents)

let lab: TestLab | undefined;

function L(): TestLab {
  if (!lab) throw new Error('the lab is not up');
  return lab;
}

before(async () => {
  for (const f of [path.join(REPO, 'dist', 'src', 'lab', 'api-host.js'), path.join(REPO, 'dist', 'src', 'ctl', 'main.js'), path.join(REPO, 'cni', 'fast-cni')]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.json && make -C cni)`);
  }
  lab = await TestLab.up({ nodes: NODES, name: NAME, port: PORT });
});

// Always down, even when a test failed (TestLab.up downs a lab that failed halfway itself).
after(async () => {
  if (lab && fs.existsSync(lab.state.dir)) await lab.down();
});

// ---------------------------------------------------------------------------------------------
// helpers

interface IpEndpointObj {
  metadata: { name: string; uid: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { pool: string; address: string; node: string; podNamespace: string; podName: string; podUID: string; containerID: string; interface: string; releasedAt?: string };
}

interface IpsObj {
  metadata: { name: string };
  spec: { subnet: string; ips: string[] };
  status?: {
    totalIPCount?: number; allocatedIPCount?: number; coolingIPCount?: number;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
}

interface EventObj {
  reason: string;
  message: string;
  type: string;
  count?: number;
  involvedObject: { name: string; namespace?: string; uid?: string };
  source?: { component?: string; host?: string };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** kubectl -o json with room for hundreds of pods (the harness's kubectl keeps Node's 1 MiB
 *  default maxBuffer, which `get pods -o json` outgrows at about 200 pods: ENOBUFS). */
function json<T = any>(...args: string[]): T {
  const out = execFileSync('kubectl', ['--kubeconfig', L().kubeconfig, ...args, '-o', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20 });
  return JSON.parse(out) as T;
}

function toLabPod(p: any): LabPod {
  return {
    namespace: p.metadata.namespace, name: p.metadata.name, uid: p.metadata.uid, ip: p.status?.podIP, node: p.spec?.nodeName,
    phase: p.status?.phase, labels: p.metadata.labels ?? {}, annotations: p.metadata.annotations ?? {},
  };
}

function podsOf(selector?: string, namespace = 'default'): LabPod[] {
  return json<{ items: any[] }>('get', 'pods', '-n', namespace, ...(selector ? ['-l', selector] : [])).items.map(toLabPod);
}
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Applies objects with `kubectl apply -f -` (a stream of JSON objects, as kubectl reads it). */
function apply(...items: object[]): string {
  return L().kubectlIn(items.map((i) => JSON.stringify(i)).join('\n'), 'apply', '-f', '-');
}

function ipsPool(name: string, subnet: string, ips: string[]): object {
  return { apiVersion: 'sample.fast.io/v1alpha1', kind: 'Ips', metadata: { name }, spec: { subnet, ips } };
}

interface PodTemplateOptions {
  pool?: string;
  staticIp?: string;
  nodeSelector?: Record<string, string>;
}

function podSpec(o: PodTemplateOptions): object {
  return {
    ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
    containers: [{ name: 'c', image: 'busybox:latest', command: ['sleep', '10000'] }],
  };
}

function annotations(o: PodTemplateOptions): Record<string, string> {
  return { ...(o.pool ? { 'fast.io/ips': o.pool } : {}), ...(o.staticIp ? { 'fast.io/ip': o.staticIp } : {}) };
}

function pod(name: string, o: PodTemplateOptions & { namespace?: string; labels?: Record<string, string> } = {}): object {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: o.namespace ?? 'default', labels: { e2e: 'ipam', ...o.labels }, annotations: annotations(o) },
    spec: podSpec(o),
  };
}

function deployment(name: string, replicas: number, o: PodTemplateOptions & { namespace?: string } = {}): object {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name, namespace: o.namespace ?? 'default' },
    spec: {
      replicas, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name }, annotations: annotations(o) }, spec: podSpec(o) },
    },
  };
}

function statefulSet(name: string, replicas: number, o: PodTemplateOptions = {}): object {
  return {
    apiVersion: 'apps/v1', kind: 'StatefulSet',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas, serviceName: name, podManagementPolicy: 'Parallel', selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name }, annotations: annotations(o) }, spec: podSpec(o) },
    },
  };
}

function inRanges(ip: string, entries: string[]): boolean {
  return parseIpEntries(entries).set?.contains(parseIp(ip)) ?? false;
}

function ipEndpoints(pool?: string): IpEndpointObj[] {
  const all = json<{ items: IpEndpointObj[] }>('get', 'ipendpoints').items;
  return pool ? all.filter((e) => e.spec.pool === pool) : all;
}

const isLive = (e: IpEndpointObj) => !e.spec.releasedAt && e.metadata.labels?.['ipam.fast.io/reserved'] !== 'true';

function getPool(name: string): IpsObj {
  return json<IpsObj>('get', 'ips', name);
}

function readyOf(p: IpsObj) {
  return p.status?.conditions?.find((c) => c.type === 'Ready');
}

function allPods(): LabPod[] {
  return json<{ items: any[] }>('get', 'pods', '-A').items.map(toLabPod);
}

function podNamed(name: string, namespace = 'default'): LabPod | undefined {
  return podsOf(undefined, namespace).find((p) => p.name === name);
}

/** Waits until exactly `count` pods of the selector exist, all Running with an address. */
async function waitForExactly(selector: string, count: number, namespace = 'default', timeoutMs = 90_000): Promise<LabPod[]> {
  let pods: LabPod[] = [];
  await waitFor(`exactly ${count} pods ${selector} Running in ${namespace}`, () => {
    pods = podsOf(selector, namespace);
    return pods.length === count && pods.every((p) => p.phase === 'Running' && p.ip);
  }, timeoutMs, () => L().kubectl('get', 'pods', '-n', namespace, '-o', 'wide', '-l', selector) + L().kubectl('get', 'events', '-n', namespace));
  return pods;
}

async function waitForPod(name: string, namespace = 'default', timeoutMs = 60_000): Promise<LabPod> {
  let p: LabPod | undefined;
  await waitFor(`pod ${namespace}/${name} Running`, () => {
    p = podNamed(name, namespace);
    return p?.phase === 'Running' && !!p.ip;
  }, timeoutMs, () => L().kubectl('get', 'pods', '-n', namespace, '-o', 'wide') + L().kubectl('get', 'events', '-n', namespace, '--field-selector', `involvedObject.name=${name}`));
  return p!;
}

function eventsOf(name: string, namespace = 'default'): EventObj[] {
  return json<{ items: EventObj[] }>('get', 'events', '-n', namespace, '--field-selector', `involvedObject.name=${name}`).items;
}

/** Waits for a Warning event of the pod whose message matches; returns it. */
async function waitForEvent(name: string, reason: string, match: RegExp, namespace = 'default', timeoutMs = 30_000): Promise<EventObj> {
  let ev: EventObj | undefined;
  await waitFor(`event ${reason} ${match} on ${namespace}/${name}`, () => {
    ev = eventsOf(name, namespace).find((e) => e.reason === reason && match.test(e.message));
    return !!ev;
  }, timeoutMs, () => L().kubectl('get', 'events', '-n', namespace, '--field-selector', `involvedObject.name=${name}`));
  return ev!;
}

/** The live IpEndpoints of the pods: exactly one each, holding the pod's address on its node. */
function assertHeld(pods: LabPod[], pool?: string): void {
  const eps = ipEndpoints();
  for (const p of pods) {
    const mine = eps.filter((e) => e.spec.podUID === p.uid && !e.spec.releasedAt);
    assert.equal(mine.length, 1, `${p.namespace}/${p.name} (uid ${p.uid}) holds exactly one address: ${JSON.stringify(mine.map((e) => e.spec))}`);
    const e = mine[0]!;
    assert.equal(e.metadata.name, endpointName(p.ip!), `IpEndpoint named after ${p.name}'s address`);
    assert.equal(e.spec.address, p.ip);
    assert.equal(e.spec.node, p.node, `IpEndpoint node of ${p.name}`);
    assert.equal(e.spec.podNamespace, p.namespace);
    assert.equal(e.spec.podName, p.name);
    if (pool) assert.equal(e.spec.pool, pool, `pool of ${p.name}`);
  }
}

/** Cluster-wide: no address on two Running pods, and every Running pod's address is held by its IpEndpoint. */
function assertNoDuplicates(): void {
  const running = allPods().filter((p) => p.phase === 'Running' && p.ip);
  const byIp = new Map<string, string[]>();
  for (const p of running) byIp.set(p.ip!, [...(byIp.get(p.ip!) ?? []), `${p.namespace}/${p.name}`]);
  const dups = [...byIp].filter(([, v]) => v.length > 1);
  assert.deepEqual(dups, [], 'an address on two running pods');
  const eps = new Map(ipEndpoints().map((e) => [e.metadata.name, e]));
  for (const p of running) {
    const e = eps.get(endpointName(p.ip!));
    assert.ok(e, `running pod ${p.namespace}/${p.name} ${p.ip} has an IpEndpoint`);
    assert.equal(e.spec.podUID, p.uid, `IpEndpoint ${e.metadata.name} names ${p.namespace}/${p.name}`);
    assert.equal(e.spec.releasedAt, undefined, `IpEndpoint ${e.metadata.name} of running ${p.name} is not released`);
  }
}

async function waitForPoolCounts(name: string, allocated: number, cooling?: number, timeoutMs = 30_000): Promise<void> {
  let st: IpsObj['status'];
  await waitFor(`pool ${name} allocatedIPCount ${allocated}${cooling !== undefined ? ` coolingIPCount ${cooling}` : ''}`, () => {
    st = getPool(name).status;
    return st?.allocatedIPCount === allocated && (cooling === undefined || st?.coolingIPCount === cooling);
  }, timeoutMs, () => JSON.stringify(st));
}

async function waitForAgent(node: string, timeoutMs = 30_000): Promise<void> {
  const l = L();
  l.reload();
  const pid = l.process(`agent/${node}`).pid;
  const file = path.join(l.node(node).stateDir, 'ready');
  await waitFor(`agent on ${node} ready (pid ${pid})`, () => {
    try { return fs.readFileSync(file, 'utf8').trim() === String(pid); } catch { return false; }
  }, timeoutMs, () => fs.readFileSync(l.process(`agent/${node}`).log, 'utf8').split('\n').slice(-20).join('\n'));
}

/** The lab kubelet's sandboxes on a node (uid → container ID the CNI saw). */
function sandboxes(node: string): Map<string, string> {
  const file = path.join(L().node(node).dir, 'kubelet', 'sandboxes.json');
  const list = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<{ uid: string; containerId: string }>;
  return new Map(list.map((s) => [s.uid, s.containerId]));
}

interface CtlIpam {
  pools: Array<{ name: string; total: number; allocated: number; cooling: number; ready: boolean; message?: string }>;
  allocations: Array<{ containerId: string; ifName: string; address: string; pool: string }>;
}

// ---------------------------------------------------------------------------------------------

describe('the seed\'s quick start pools', () => {
  test('examples/ applied verbatim: busybox pods in sample-ips, busybox1 pods in default-ips, one IpEndpoint each, pings across nodes', async () => {
    for (const f of ['fast-sample-ips.yaml', 'fast-default-ips-busybox1.yaml', 'fast-busybox.yaml']) L().kubectl('apply', '-f', path.join(EXAMPLES, f));
    const busybox = await waitForExactly('app=busybox', 2);
    const busybox1 = await waitForExactly('app=busybox1', 2);
    for (const p of busybox) assert.ok(inRanges(p.ip!, ['10.244.10.0-10.244.90.0']), `${p.name} ${p.ip} inside sample-ips`);
    for (const p of busybox1) assert.ok(inRanges(p.ip!, ['10.244.100.0-10.244.200.250']), `${p.name} ${p.ip} inside default-ips`);
    assertHeld(busybox, 'sample-ips');
    assertHeld(busybox1, 'default-ips');
    const all = [...busybox, ...busybox1];
    assert.equal(new Set(all.map((p) => p.ip)).size, 4);
    const a = all[0]!;
    const b = all.find((p) => p.node !== a.node);
    assert.ok(b, 'pods on two nodes');
    assert.ok(L().ping(a, b.ip!, 2), `${a.name} (${a.node}) pings ${b.name} ${b.ip} (${b.node})`);

    await waitForPoolCounts('sample-ips', 2, 0);
    await waitForPoolCounts('default-ips', 2, 0);
    for (const [name, total] of [['sample-ips', 20481], ['default-ips', 25851]] as const) {
      const p = getPool(name);
      assert.equal(p.status?.totalIPCount, total, `${name} totalIPCount`);
      assert.equal(readyOf(p)?.status, 'True');
      assert.equal(readyOf(p)?.reason, 'Valid');
    }
  });
});

describe('a namespace-bound pool (Namespace annotated fast.io/ips)', () => {
  const POOL = 'team-a-ips';
  const RANGE = ['10.244.1.10-10.244.1.29'];

  test('pods of the namespace take addresses from its pool; a pod annotation still wins; other namespaces keep the default pool', async () => {
    apply(
      ipsPool(POOL, '10.244.1.0/24', RANGE),
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', annotations: { 'fast.io/ips': POOL } } },
    );
    await waitFor(`${POOL} Ready`, () => readyOf(getPool(POOL))?.status === 'True', 20_000);
    apply(
      deployment('team-a-web', 4, { namespace: 'team-a' }),
      pod('team-a-own', { namespace: 'team-a', pool: 'sample-ips' }),
      pod('outside-team-a'),
    );
    const web = await waitForExactly('app=team-a-web', 4, 'team-a');
    for (const p of web) assert.ok(inRanges(p.ip!, RANGE), `${p.name} ${p.ip} inside ${POOL}`);
    assert.ok(new Set(web.map((p) => p.node)).size >= 2, 'namespace pool used on several nodes');
    assertHeld(web, POOL);
    const own = await waitForPod('team-a-own', 'team-a');
    assert.ok(inRanges(own.ip!, ['10.244.10.0-10.244.90.0']), `the pod's own annotation wins: ${own.ip} inside sample-ips`);
    assertHeld([own], 'sample-ips');
    const outside = await waitForPod('outside-team-a');
    assert.ok(inRanges(outside.ip!, ['10.244.100.0-10.244.200.250']), `a pod of another namespace takes default-ips: ${outside.ip}`);
    assertHeld([outside], 'default-ips');
    await waitForPoolCounts(POOL, 4);
    // The namespace's pods reach pods of other pools on other nodes.
    const far = [outside, ...podsOf('app=busybox')].find((p) => p.node !== web[0]!.node)!;
    assert.ok(L().ping(web[0]!, far.ip!, 2), `${web[0]!.name} ${web[0]!.ip} pings ${far.name} ${far.ip} across nodes`);
  });
});

describe('a static address (fast.io/ip)', () => {
  const ADDR = '10.244.50.5';

  test('a pod annotated fast.io/ip gets exactly that address', async () => {
    apply(pod('static-holder', { pool: 'sample-ips', staticIp: ADDR }));
    const p = await waitForPod('static-holder');
    assert.equal(p.ip, ADDR);
    assertHeld([p], 'sample-ips');
  });

  test('an address outside every pool the pod may use is refused with a message that says why', async () => {
    // No fast.io/ips: the pod may use default-ips only, and 10.244.50.6 lies in sample-ips.
    apply(pod('static-wrong-pool', { staticIp: '10.244.50.6' }));
    const ev = await waitForEvent('static-wrong-pool', 'FailedCreatePodSandBox', /10\.244\.50\.6/);
    assert.match(ev.message, /CNI error 10[12]/);
    assert.equal(podNamed('static-wrong-pool')?.phase, 'Pending');
    assert.equal(ipEndpoints().some((e) => e.spec.address === '10.244.50.6'), false, 'no IpEndpoint for it');
    L().kubectl('delete', 'pod', 'static-wrong-pool', '--wait=false');
  });

  test('two pods asking for the same address at the same moment: exactly one gets it', async () => {
    apply(pod('static-race-a', { pool: 'sample-ips', staticIp: '10.244.50.7' }), pod('static-race-b', { pool: 'sample-ips', staticIp: '10.244.50.7' }));
    let winner: LabPod | undefined;
    await waitFor('one of static-race-a/b Running', () => {
      winner = ['static-race-a', 'static-race-b'].map((n) => podNamed(n)).find((p) => p?.phase === 'Running');
      return !!winner;
    }, 30_000);
    const loser = winner!.name === 'static-race-a' ? 'static-race-b' : 'static-race-a';
    await waitForEvent(loser, 'FastIPAllocationFailed', new RegExp(`in use by pod default/${winner!.name} `));
    assert.equal(winner!.ip, '10.244.50.7');
    assert.equal(podNamed(loser)?.phase, 'Pending');
    assertHeld([winner!], 'sample-ips');
    L().kubectl('delete', 'pod', 'static-race-a', 'static-race-b', '--wait=false');
  });

  test('a clash with a live pod is refused: the second pod stays ContainerCreating with an event naming the holder; it starts once the holder is deleted and the cooldown has passed', { timeout: 180_000 }, async (t) => {
    const holder = podNamed('static-holder')!;
    apply(pod('static-clash', { pool: 'sample-ips', staticIp: ADDR }));
    const ev = await waitForEvent('static-clash', 'FastIPAllocationFailed', /in use by/);
    assert.equal(ev.type, 'Warning');
    assert.match(ev.message, new RegExp(`address ${ADDR.replace(/\./g, '\\.')} of pool sample-ips is in use by pod default/static-holder \\(uid ${holder.uid}\\) on node ${holder.node}`));
    const sandbox = await waitForEvent('static-clash', 'FailedCreatePodSandBox', /static-holder/);
    assert.match(sandbox.message, /CNI error 102/);
    await sleep(2000);
    const clash = podNamed('static-clash')!;
    assert.equal(clash.phase, 'Pending');
    assert.equal(clash.ip, undefined);
    assert.match(L().kubectl('get', 'pod', 'static-clash'), /ContainerCreating/);
    const described = L().kubectl('describe', 'pod', 'static-clash');
    assert.match(described, /FastIPAllocationFailed/);
    assert.match(described, /in use by pod default\/static-holder/);
    // The holder is untouched.
    assert.equal(podNamed('static-holder')?.ip, ADDR);
    assertHeld([holder], 'sample-ips');

    const deleted = Date.now();
    L().kubectl('delete', 'pod', 'static-holder', '--wait=false');
    const started = await waitForPod('static-clash', 'default', 150_000);
    const waited = Date.now() - deleted;
    t.diagnostic(`static-clash Running ${secs(waited)} after static-holder was deleted (cooldown ${COOLDOWN_S} s + kubelet back-off)`);
    assert.equal(started.ip, ADDR);
    assert.ok(waited >= (COOLDOWN_S - 1) * 1000, `the address rested for the cooldown first (${secs(waited)})`);
    assertHeld([started], 'sample-ips');
    assert.equal(podNamed('static-holder'), undefined);
  });
});

describe('sticky StatefulSet addresses', () => {
  const POOL = 'sts-ips';
  const RANGE = ['10.244.4.10-10.244.4.60'];
  let first: Map<string, LabPod>;

  test('a StatefulSet of 3 gets addresses from its pool', async () => {
    apply(ipsPool(POOL, '10.244.4.0/24', RANGE));
    await waitFor(`${POOL} Ready`, () => readyOf(getPool(POOL))?.status === 'True', 20_000);
    apply(statefulSet('web', 3, { pool: POOL }));
    const pods = await waitForExactly('app=web', 3);
    first = new Map(pods.map((p) => [p.name, p]));
    assert.deepEqual([...first.keys()].sort(), ['web-0', 'web-1', 'web-2']);
    for (const p of pods) assert.ok(inRanges(p.ip!, RANGE), `${p.name} ${p.ip}`);
    assertHeld(pods, POOL);
    for (const e of ipEndpoints(POOL)) assert.equal(e.metadata.annotations?.['ipam.fast.io/statefulset'], 'web', `${e.metadata.name} is sticky for web`);
  });

  test('a deleted StatefulSet pod comes back (new UID) with the same address', async () => {
    const old = first.get('web-0')!;
    L().kubectl('delete', 'pod', 'web-0');
    let p: LabPod | undefined;
    await waitFor('web-0 back Running with a new UID', () => {
      p = podNamed('web-0');
      return !!p && p.uid !== old.uid && p.phase === 'Running' && !!p.ip;
    }, 60_000, () => L().kubectl('get', 'pods', '-o', 'wide', '-l', 'app=web') + L().kubectl('get', 'ipendpoints', '-o', 'wide'));
    assert.equal(p!.ip, old.ip, 'same address');
    assertHeld([p!], POOL);
  });

  test('a StatefulSet pod rescheduled to another node (cordon + delete) keeps its address and is reachable there', async () => {
    const old = first.get('web-1')!;
    L().kubectl('cordon', old.node!);
    try {
      L().kubectl('delete', 'pod', 'web-1');
      let p: LabPod | undefined;
      await waitFor('web-1 back Running on another node', () => {
        p = podNamed('web-1');
        return !!p && p.uid !== old.uid && p.phase === 'Running' && !!p.ip;
      }, 60_000, () => L().kubectl('get', 'pods', '-o', 'wide', '-l', 'app=web') + L().kubectl('get', 'events', '--field-selector', 'involvedObject.name=web-1'));
      assert.notEqual(p!.node, old.node, 'rescheduled to another node');
      assert.equal(p!.ip, old.ip, `web-1 kept ${old.ip} on ${p!.node} (was on ${old.node})`);
      assertHeld([p!], POOL);
      const web0 = podNamed('web-0')!;
      const peer = web0.node !== p!.node ? web0 : podsOf('app=busybox').find((x) => x.node !== p!.node)!;
      assert.ok(L().ping(peer, p!.ip!, 2), `${peer.name} (${peer.node}) reaches web-1 ${p!.ip} on its new node ${p!.node}`);
    } finally {
      L().kubectl('uncordon', old.node!);
    }
  });

  test('scaling down releases the addresses above the new size (not reserved any more); the remaining pod keeps its own', async () => {
    const before = new Map(podsOf('app=web').map((p) => [p.name, p]));
    L().kubectl('scale', 'statefulset', 'web', '--replicas=1');
    await waitForExactly('app=web', 1);
    const gone = [before.get('web-1')!, before.get('web-2')!];
    let held: IpEndpointObj[] = [];
    await waitFor('addresses of web-1 and web-2 released', () => {
      held = ipEndpoints(POOL).filter((e) => (e.spec.podName === 'web-1' || e.spec.podName === 'web-2') && !e.spec.releasedAt);
      return held.length === 0;
    }, 30_000, () => JSON.stringify(held, null, 1));
    for (const p of gone) {
      const e = ipEndpoints(POOL).find((x) => x.spec.address === p.ip);
      if (e) {
        assert.ok(e.spec.releasedAt, `${e.metadata.name} cooling`);
        assert.notEqual(e.metadata.labels?.['ipam.fast.io/reserved'], 'true', `${e.metadata.name} no longer reserved`);
      }
    }
    assertHeld(podsOf('app=web'), POOL);
    assert.equal(podNamed('web-0')!.ip, first.get('web-0')!.ip);
    await waitForPoolCounts(POOL, 1);
  });

  test('deleting the StatefulSet releases the last address', async () => {
    const web0 = podNamed('web-0')!;
    L().kubectl('delete', 'statefulset', 'web', '--wait=false');
    await waitFor('web pods gone', () => podsOf('app=web').length === 0, 60_000, () => L().kubectl('get', 'pods', '-o', 'wide', '-l', 'app=web'));
    let e: IpEndpointObj | undefined;
    await waitFor(`${web0.ip} released`, () => {
      e = ipEndpoints(POOL).find((x) => x.spec.address === web0.ip);
      return !e || !!e.spec.releasedAt;
    }, 30_000, () => JSON.stringify(e));
    await waitForPoolCounts(POOL, 0);
  });
});

describe('kill -9 of an agent in the middle of many ADDs', () => {
  const POOL = 'crash-ips';
  const RANGE = ['10.244.3.10-10.244.3.250'];
  // Enough pods that the kill lands mid-burst: the lab wires ~70 pods/s, and noticing the
  // first Running ones through kubectl takes a few hundred ms.
  const N = 80;

  test(`${N} pods on node1, its agent killed while they are being added and restarted: all run; once the garbage collector has run no address is leaked or duplicated`, { timeout: 240_000 }, async (t) => {
    const l = L();
    apply(ipsPool(POOL, '10.244.3.0/24', RANGE));
    await waitFor(`${POOL} Ready`, () => readyOf(getPool(POOL))?.status === 'True', 20_000);
    apply(deployment('burst', N, { pool: POOL, nodeSelector: { 'kubernetes.io/hostname': 'node1' } }));
    let early: LabPod[] = [];
    await waitFor('the first pods of burst Running', () => {
      early = podsOf('app=burst').filter((p) => p.phase === 'Running' && p.ip);
      return early.length >= 1;
    }, 60_000, () => l.kubectl('get', 'pods', '-o', 'wide', '-l', 'app=burst'));
    await l.stop('agent/node1', true);
    early = podsOf('app=burst').filter((p) => p.phase === 'Running' && p.ip);
    const runningAtKill = early.length;
    const epsAtKill = ipEndpoints(POOL).filter(isLive).length;
    t.diagnostic(`agent/node1 killed with ${runningAtKill} of ${N} pods Running and ${epsAtKill} addresses claimed`);
    assert.ok(runningAtKill < N, 'the agent died while ADDs were still to come');
    await sleep(3000); // ADDs fail (try again later), DELs are recorded by fast-cni for later
    l.start('agent/node1');
    await waitForAgent('node1');
    const pods = await waitForExactly('app=burst', N, 'default', 150_000);
    // The pods that ran before the crash were adopted: same pod, same address.
    for (const p of early) assert.equal(pods.find((x) => x.uid === p.uid)?.ip, p.ip, `${p.name} kept ${p.ip} across the agent's crash`);

    // Once the garbage collector has run: released records deleted after the cooldown.
    let cooling: IpEndpointObj[] = [];
    await waitFor('no released address of crash-ips left (cooldown over, garbage collected)', () => {
      cooling = ipEndpoints(POOL).filter((e) => e.spec.releasedAt);
      return cooling.length === 0;
    }, (COOLDOWN_S + 40) * 1000, () => JSON.stringify(cooling.map((e) => e.spec), null, 1));

    const eps = ipEndpoints(POOL);
    const live = allPods().filter((p) => p.labels['app'] === 'burst');
    assert.equal(live.length, N);
    // No leak: every IpEndpoint of the pool is held by a live pod (by UID) and one per pod.
    const uids = new Set(live.map((p) => p.uid));
    const leaked = eps.filter((e) => !uids.has(e.spec.podUID));
    assert.deepEqual(leaked.map((e) => e.spec), [], 'IpEndpoints whose pod (by UID) is gone');
    assert.equal(eps.length, N, `one IpEndpoint per pod (${eps.length} for ${N} pods)`);
    assert.equal(new Set(eps.map((e) => e.spec.podUID)).size, N, 'no pod holds two addresses');
    // No duplicate: distinct addresses, and each pod runs with exactly the address its record names,
    // for the container the kubelet runs now.
    assert.equal(new Set(pods.map((p) => p.ip)).size, N, 'distinct addresses');
    assertHeld(pods, POOL);
    const sb = sandboxes('node1');
    for (const p of pods) {
      const e = eps.find((x) => x.spec.podUID === p.uid)!;
      assert.equal(e.spec.containerID, sb.get(p.uid), `${p.name}'s IpEndpoint names its current sandbox`);
    }
    // The agent's own view: the pool's allocations on node1 are exactly these containers.
    const ctl = JSON.parse(l.ctl('node1', 'ipam', '-o', 'json')) as CtlIpam;
    const mine = ctl.allocations.filter((a) => a.pool === POOL);
    assert.deepEqual(mine.map((a) => a.address).sort(), pods.map((p) => p.ip!).sort(), 'fast-ctl ipam on node1');
    for (const a of mine) assert.equal(a.containerId, sb.get(pods.find((p) => p.ip === a.address)!.uid));
    const endpointsOnNode = JSON.parse(l.ctl('node1', 'endpoint', 'list', '-o', 'json')) as Array<{ ip: string; pool?: string }>;
    assert.deepEqual(endpointsOnNode.filter((e) => e.pool === POOL).map((e) => e.ip).sort(), pods.map((p) => p.ip!).sort(), 'datapath endpoints on node1');
    await waitForPoolCounts(POOL, N, 0);
    assertNoDuplicates();
  });

  test('kill -9 of the agent, then the Deployment deleted: the DELs fast-cni recorded while it was down are finished after the restart; no address, datapath endpoint or pending DEL is left', { timeout: 180_000 }, async (t) => {
    const l = L();
    const node1 = l.node('node1');
    const pendingDir = path.join(node1.stateDir, 'pending-del');
    // Killed first, so every DEL on node1 meets a dead agent (killing "in the middle" is a race
    // the kubelet can win, and then no DEL is left to exercise the recovery).
    await l.stop('agent/node1', true);
    try {
      L().kubectl('delete', 'deployment', 'burst', '--wait=false');
      await waitFor('burst pods gone while the agent is down', () => podsOf('app=burst').length === 0, 90_000, () => l.kubectl('get', 'pods', '-o', 'wide', '-l', 'app=burst'));
      const recorded = fs.existsSync(pendingDir) ? fs.readdirSync(pendingDir).filter((f) => f.endsWith('.del')).length : 0;
      t.diagnostic(`${recorded} DELs recorded by fast-cni while agent/node1 was down`);
      assert.ok(recorded > 0, 'fast-cni recorded the DELs it could not deliver');
    } finally {
      await sleep(1000);
      l.start('agent/node1');
      await waitForAgent('node1');
    }
    let held: IpEndpointObj[] = [];
    await waitFor(`every address of ${POOL} released`, () => {
      held = ipEndpoints(POOL).filter((e) => !e.spec.releasedAt);
      return held.length === 0;
    }, 30_000, () => JSON.stringify(held.map((e) => e.spec), null, 1));
    let onNode: Array<{ ip: string; pool?: string }> = [];
    await waitFor(`no datapath endpoint of ${POOL} left on node1`, () => {
      onNode = (JSON.parse(l.ctl('node1', 'endpoint', 'list', '-o', 'json')) as Array<{ ip: string; pool?: string }>).filter((e) => inRanges(e.ip, RANGE));
      return onNode.length === 0;
    }, 30_000, () => JSON.stringify(onNode));
    const pending = fs.existsSync(pendingDir) ? fs.readdirSync(pendingDir).filter((f) => f.endsWith('.del')) : [];
    assert.deepEqual(pending, [], 'pending DELs replayed and removed');
    const ctl = JSON.parse(l.ctl('node1', 'ipam', '-o', 'json')) as CtlIpam;
    assert.deepEqual(ctl.allocations.filter((a) => a.pool === POOL), [], 'no allocation of the pool on node1');
    await waitForPoolCounts(POOL, 0);
    assertNoDuplicates();
  });
});

describe('200 pods at once over 4 nodes from a pool of exactly 200 addresses', () => {
  const POOL = 'exact-200';
  const RANGE = ['10.244.2.10-10.244.2.209'];

  test('a Deployment of 200 replicas: all Running with 200 distinct addresses, the whole pool', { timeout: 240_000 }, async (t) => {
    apply(ipsPool(POOL, '10.244.2.0/24', RANGE));
    await waitFor(`${POOL} Ready`, () => readyOf(getPool(POOL))?.status === 'True', 20_000);
    assert.equal(getPool(POOL).status?.totalIPCount, 200);
    const started = Date.now();
    apply(deployment('two-hundred', 200, { pool: POOL }));
    const pods = await waitForExactly('app=two-hundred', 200, 'default', 180_000);
    t.diagnostic(`200 pods Running ${secs(Date.now() - started)} after kubectl apply`);
    const ips = new Set(pods.map((p) => p.ip!));
    assert.equal(ips.size, 200, 'distinct addresses');
    for (const ip of ips) assert.ok(inRanges(ip, RANGE), `${ip} inside ${POOL}`);
    const perNode = new Map<string, number>();
    for (const p of pods) perNode.set(p.node!, (perNode.get(p.node!) ?? 0) + 1);
    t.diagnostic(`per node: ${[...perNode].sort().map(([n, c]) => `${n} ${c}`).join(', ')}`);
    assert.equal(perNode.size, NODES, 'pods on every node');
    assertHeld(pods, POOL);
    assert.equal(ipEndpoints(POOL).length, 200);
    await waitForPoolCounts(POOL, 200, 0);
    assertNoDuplicates();
  });

  test('one pod more is refused: Pending with an event "pool exact-200 has no free address (200 of 200 allocated)"', async () => {
    apply(pod('one-more', { pool: POOL }));
    const ev = await waitForEvent('one-more', 'FastIPAllocationFailed', /no free address/);
    assert.equal(ev.message, `pool ${POOL} has no free address (200 of 200 allocated)`);
    const sandbox = await waitForEvent('one-more', 'FailedCreatePodSandBox', /no free address/);
    assert.match(sandbox.message, /CNI error 100/);
    const p = podNamed('one-more')!;
    assert.equal(p.phase, 'Pending');
    assert.equal(p.ip, undefined);
    assert.match(L().kubectl('get', 'pod', 'one-more'), /ContainerCreating/);
    assert.equal(ipEndpoints(POOL).length, 200);
  });

  test('recovery: scaled to 199, the freed address goes to the waiting pod once its cooldown has passed', { timeout: 180_000 }, async (t) => {
    const before = podsOf('app=two-hundred');
    const scaled = Date.now();
    L().kubectl('scale', 'deployment', 'two-hundred', '--replicas=199');
    const after199 = await waitForExactly('app=two-hundred', 199);
    const removed = before.filter((p) => !after199.some((x) => x.uid === p.uid));
    assert.equal(removed.length, 1);
    const p = await waitForPod('one-more', 'default', 150_000);
    t.diagnostic(`one-more Running ${secs(Date.now() - scaled)} after the scale-down (cooldown ${COOLDOWN_S} s + kubelet back-off)`);
    assert.equal(p.ip, removed[0]!.ip, 'it got the only address that was freed');
    assertHeld([p], POOL);
    await waitForPoolCounts(POOL, 200, 0);
    assertNoDuplicates();
  });
});

describe('malformed pools', () => {
  const BAD: Array<{ name: string; subnet: string; ips: string[]; reason: string; message: RegExp }> = [
    { name: 'bad-reversed', subnet: '10.244.5.0/24', ips: ['10.244.5.50-10.244.5.10'], reason: 'RangeReversed', message: /10\.244\.5\.50-10\.244\.5\.10.*reversed/ },
    { name: 'bad-outside', subnet: '10.244.5.0/24', ips: ['10.244.6.10-10.244.6.20'], reason: 'OutsideSubnet', message: /not inside subnet 10\.244\.5\.0\/24/ },
    { name: 'bad-overlap', subnet: '10.244.0.0/16', ips: ['10.244.50.0-10.244.50.255'], reason: 'OverlapsPool', message: /overlap pool sample-ips/ },
    { name: 'bad-mixed', subnet: '10.244.5.0/24', ips: ['10.244.5.10', 'fd00::10'], reason: 'MixedFamilies', message: /fd00::10.*not IPv4/ },
    { name: 'bad-address', subnet: '10.244.5.0/24', ips: ['10.244.5.300'], reason: 'InvalidAddress', message: /"10\.244\.5\.300" is not a valid IP address/ },
    { name: 'bad-subnet', subnet: '10.244.5.0/33', ips: ['10.244.5.10'], reason: 'InvalidSubnet', message: /10\.244\.5\.0\/33/ },
  ];
  let heldBefore: IpEndpointObj[] = [];
  const podsBefore = new Map<string, string>();

  test('each kind gets Ready=False with its reason and message in `kubectl get ips -o json`, TOTAL 0', async () => {
    heldBefore = ipEndpoints().filter((e) => !e.spec.releasedAt);
    for (const p of allPods()) if (p.phase === 'Running') podsBefore.set(p.uid, p.ip!);
    apply(...BAD.map((b) => ipsPool(b.name, b.subnet, b.ips)));
    await waitFor('every malformed pool has a Ready condition', () => {
      const items = json<{ items: IpsObj[] }>('get', 'ips').items;
      return BAD.every((b) => readyOf(items.find((i) => i.metadata.name === b.name) ?? ({} as IpsObj)));
    }, 20_000, () => L().kubectl('get', 'ips'));
    const items = new Map(json<{ items: IpsObj[] }>('get', 'ips').items.map((i) => [i.metadata.name, i]));
    for (const b of BAD) {
      const c = readyOf(items.get(b.name)!)!;
      assert.equal(c.status, 'False', `${b.name} Ready`);
      assert.equal(c.reason, b.reason, `${b.name} reason (message: ${c.message})`);
      assert.match(c.message, b.message, `${b.name} message`);
      assert.equal(items.get(b.name)!.status?.totalIPCount, 0, `${b.name} totalIPCount`);
    }
    // The older pool it overlaps stays Ready, and so do the others.
    for (const name of ['sample-ips', 'default-ips', 'team-a-ips', 'sts-ips', 'crash-ips', 'exact-200']) {
      assert.equal(readyOf(items.get(name)!)?.status, 'True', `${name} still Ready`);
    }
    const table = L().kubectl('get', 'ips');
    for (const b of BAD) assert.match(table, new RegExp(`^${b.name}\\s+0\\s+0\\s+False\\s`, 'm'), `kubectl get ips row of ${b.name}`);
  });

  test('a malformed pool is never used: pods asking for it stay Pending with an event naming the reason, no IpEndpoint is created', async () => {
    apply(...BAD.map((b) => pod(`uses-${b.name}`, { pool: b.name, labels: { malformed: 'yes' } })));
    for (const b of BAD) {
      const ev = await waitForEvent(`uses-${b.name}`, 'FastIPAllocationFailed', new RegExp(`pool ${b.name} is not Ready: ${b.reason}`));
      assert.equal(ev.type, 'Warning');
    }
    await sleep(2000);
    for (const b of BAD) {
      const p = podNamed(`uses-${b.name}`)!;
      assert.equal(p.phase, 'Pending', `uses-${b.name}`);
      assert.equal(p.ip, undefined);
      assert.deepEqual(ipEndpoints(b.name), [], `no IpEndpoint of ${b.name}`);
    }
  });

  test('existing allocations of other pools stay untouched (same objects, same resourceVersions, same pods)', () => {
    const now = new Map(ipEndpoints().map((e) => [e.metadata.name, e]));
    for (const e of heldBefore) {
      const n = now.get(e.metadata.name);
      assert.ok(n, `${e.metadata.name} (${e.spec.pool}) still there`);
      assert.equal(n.metadata.uid, e.metadata.uid, `${e.metadata.name} same object`);
      assert.equal(n.metadata.resourceVersion, e.metadata.resourceVersion, `${e.metadata.name} not written`);
    }
    const running = new Map(allPods().filter((p) => p.phase === 'Running').map((p) => [p.uid, p.ip]));
    for (const [uid, ip] of podsBefore) assert.equal(running.get(uid), ip, `pod ${uid} still Running with ${ip}`);
    assert.equal(getPool('sample-ips').status?.allocatedIPCount, heldBefore.filter((e) => e.spec.pool === 'sample-ips').length);
    assertNoDuplicates();
  });

  test('a malformed pool corrected becomes Ready and its waiting pod starts with an address from it', { timeout: 90_000 }, async () => {
    apply(ipsPool('bad-reversed', '10.244.5.0/24', ['10.244.5.10-10.244.5.50']));
    await waitFor('bad-reversed Ready', () => readyOf(getPool('bad-reversed'))?.status === 'True', 20_000, () => JSON.stringify(getPool('bad-reversed').status));
    const p = await waitForPod('uses-bad-reversed', 'default', 60_000);
    assert.ok(inRanges(p.ip!, ['10.244.5.10-10.244.5.50']), `${p.ip}`);
    assertHeld([p], 'bad-reversed');
    L().kubectl('delete', 'pod', '-l', 'malformed=yes', '--wait=false');
  });
});

describe('fast-ctl ipam on a node', () => {
  test('`nsenter --net=/var/run/netns/<lab>-node1 node dist/src/ctl/main.js --config <dir>/node1/agent.json ipam` shows pools and the node\'s allocations', async () => {
    const l = L();
    const text = l.ctl('node1', 'ipam');
    assert.match(text, /POOL\s+READY\s+TOTAL\s+ALLOCATED\s+COOLING/);
    assert.match(text, /ADDRESS\s+POOL\s+CONTAINER\s+IFNAME/);
    assert.match(text, /^exact-200\s+true\s+200\s+200\s+0\s*$/m);
    assert.match(text, /^bad-mixed\s+false\s+0\s/m);

    // Agent and API server agree: pools, readiness, totals; the node's allocations are its
    // live IpEndpoints, container by container.
    let ctl!: CtlIpam;
    const pools = new Map(json<{ items: IpsObj[] }>('get', 'ips').items.map((i) => [i.metadata.name, i]));
    await waitFor('agent counts match the pool statuses', () => {
      ctl = JSON.parse(l.ctl('node1', 'ipam', '-o', 'json')) as CtlIpam;
      const st = new Map(json<{ items: IpsObj[] }>('get', 'ips').items.map((i) => [i.metadata.name, i.status]));
      return ctl.pools.every((p) => st.get(p.name)?.allocatedIPCount === p.allocated);
    }, 20_000, () => JSON.stringify(ctl.pools));
    assert.deepEqual(ctl.pools.map((p) => p.name).sort(), [...pools.keys()].sort());
    for (const p of ctl.pools) {
      const s = pools.get(p.name)!;
      assert.equal(p.ready, readyOf(s)?.status === 'True', `${p.name} ready`);
      assert.equal(p.total, s.status?.totalIPCount, `${p.name} total`);
    }
    const mine = ipEndpoints().filter((e) => e.spec.node === 'node1' && isLive(e));
    assert.deepEqual(ctl.allocations.map((a) => a.address).sort(), mine.map((e) => e.spec.address).sort());
    for (const a of ctl.allocations) {
      const e = mine.find((x) => x.spec.address === a.address)!;
      assert.equal(a.containerId, e.spec.containerID);
      assert.equal(a.pool, e.spec.pool);
      assert.equal(a.ifName, 'eth0');
    }
  });
});

describe('the end', () => {
  test('no address on two running pods anywhere; fast lab down leaves nothing behind', async () => {
    assertNoDuplicates();
    const l = L();
    const dir = l.state.dir;
    await l.down();
    assert.deepEqual(l.debris(), []);
    const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((x) => x.split(' ')[0]!).filter((n) => n.startsWith(`${NAME}-`) || n.startsWith(`${NAME}p-`));
    assert.deepEqual(ns, []);
    assert.equal(fs.existsSync(dir), false);
  });
});
