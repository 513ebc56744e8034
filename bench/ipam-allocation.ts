// Address allocation rate of the Kubernetes IPAM backend (KubernetesIpam, as fast-agent runs it)
// against the lab API server, which runs in its own process as in a lab (the agents here share
// this process). Nothing but IPAM is measured: no CNI, no interfaces.
//
//   node --import tsx bench/ipam-allocation.ts [--allocations 1000] [--concurrency 16] [--small-pool 256]
//
// Scenarios (each from a fresh pool, pods created beforehand and not timed):
//   1 agent, one ADD at a time          latency of one allocation (one create of an IpEndpoint)
//   1 agent, --concurrency in flight    allocation rate of one agent
//   1 agent, DELs                       release rate (one update each: spec.releasedAt)
//   4 agents, large pool                per-node blocks: nodes rarely meet
//   4 agents, small pool, all at once   contention: --small-pool addresses for exactly as many
//                                       pods, requested at the same moment on 4 nodes
// "writes/alloc" counts creates and updates of IpEndpoints per granted address; above 1 are the
// claims the API server refused with 409 (another node was faster), after which the agent tries
// the next address. Progress on stderr, a markdown table on stdout; appended to
// docs/benchmarks.md when that file exists.
import '../src/k8s/node-compat.js';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, loadAllYaml, type KubeConfig } from '@kubernetes/client-node';
import { kubeConfigForUrl } from '../src/k8s/kubeconfig.js';
import { KubernetesIpam } from '../src/agent/ipam/kubernetes.js';
import { createLogger } from '../src/agent/log.js';
import { onCleanup, runBenchmark } from './lib/cleanup.js';
import { commandLine, environmentLine, fmt, log, numericFlags, percentile, progress, table } from './lib/report.js';

const opts = numericFlags({ allocations: 1000, concurrency: 16, smallPool: 256 });
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const NS = 'bench';
const quiet = createLogger('error', {}, () => {});

interface Row {
  scenario: string;
  agents: number;
  pool: number;
  ops: number;
  inFlight: string;
  seconds: number;
  latencies: number[];
  writes: number;
  reads: number;
  conflicts: number;
}

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src', 'lab', 'apiserver', 'main.ts'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: REPO,
  });
  onCleanup('lab API server', () => {
    child.kill('SIGTERM');
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`lab API server exited ${code}`)));
  });
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

async function setup(kc: KubeConfig): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const doc of loadAllYaml(fs.readFileSync(path.join(REPO, 'deploy', 'crds', 'ips.yaml'), 'utf8'))) await ext.createCustomResourceDefinition({ body: doc });
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (let i = 0; ; i++) {
    try {
      await custom.listClusterCustomObject({ group: 'sample.fast.io', version: 'v1alpha1', plural: 'ipendpoints' });
      break;
    } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  for (let n = 0; n < 4; n++) await core.createNode({ body: { metadata: { name: `node-${n}` } } });
}

/** A pool of `size` addresses from 10.<second octet>.0.0/16 onwards. */
async function createPool(kc: KubeConfig, name: string, octet: number, size: number): Promise<void> {
  const first = (10 << 24) | (octet << 16) | 10;
  const last = first + size - 1;
  const ip = (v: number) => [24, 16, 8, 0].map((s) => (v >>> s) & 255).join('.');
  await kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({
    group: 'sample.fast.io',
    version: 'v1alpha1',
    plural: 'ips',
    body: { apiVersion: 'sample.fast.io/v1alpha1', kind: 'Ips', metadata: { name }, spec: { subnet: `10.${octet}.0.0/16`, ips: [`${ip(first)}-${ip(last)}`] } },
  });
}

async function createPods(kc: KubeConfig, prefix: string, count: number, nodes: number, pool: string): Promise<{ name: string; uid: string; node: number }[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const out: { name: string; uid: string; node: number }[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, async (_, j) => {
        const k = i + j;
        const node = k % nodes;
        const name = `${prefix}-${k}`;
        const pod = await core.createNamespacedPod({
          namespace: NS,
          body: { metadata: { name, annotations: { 'fast.io/ips': pool } }, spec: { nodeName: `node-${node}`, containers: [{ name: 'c', image: 'busybox' }] } },
        });
        return { name, uid: pod.metadata!.uid!, node };
      }),
    );
    out.push(...batch);
    progress(`${prefix}: ${out.length}/${count} pods created`);
  }
  progress(`${prefix}: ${count} pods created`, true);
  return out;
}

async function waitForPool(agents: KubernetesIpam[], pool: string): Promise<void> {
  for (;;) {
    const seen = await Promise.all(agents.map(async (a) => (await a.usage()).some((u) => u.name === pool && u.ready)));
    if (seen.every(Boolean)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs `ops` with at most `limit` in flight; returns per-op latencies (ms) and the wall time (s). */
async function run(ops: (() => Promise<unknown>)[], limit: number, label: string): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < ops.length) {
      const op = ops[next++]!;
      const s = performance.now();
      await op();
      latencies.push(performance.now() - s);
      if (latencies.length % 100 === 0) progress(`${label}: ${latencies.length}/${ops.length}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, ops.length) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  progress(`${label}: ${ops.length} in ${fmt(seconds)} s`, true);
  return { latencies, seconds };
}

type Counts = { writes: number; reads: number; conflicts: number };

function statsOf(agents: KubernetesIpam[]): Counts {
  return agents.reduce(
    (a, x) => ({ writes: a.writes + x.stats.writes, reads: a.reads + x.stats.reads, conflicts: a.conflicts + x.stats.conflicts }),
    { writes: 0, reads: 0, conflicts: 0 },
  );
}

function delta(after: Counts, before: Counts): Counts {
  return { writes: after.writes - before.writes, reads: after.reads - before.reads, conflicts: after.conflicts - before.conflicts };
}

runBenchmark(async () => {
  const command = commandLine();
  const server = await startServer();
  log(`lab API server at ${server.url} (own process)`);
  const kc = kubeConfigForUrl(server.url, { skipTLSVerify: true });
  await setup(kc);
  const agents: KubernetesIpam[] = [];
  onCleanup('agents', async () => {
    await Promise.all(agents.map((a) => a.close()));
  });
  for (let n = 0; n < 4; n++) agents.push(await KubernetesIpam.create({ kubeConfig: kc, nodeName: `node-${n}`, log: quiet, cooldownMs: 30_000 }));
  const rows: Row[] = [];
  const N = opts.allocations;
  const add = (agent: KubernetesIpam, p: { name: string; uid: string }) => () =>
    agent.allocate({ containerId: `ctr-${p.name}`, ifName: 'eth0', node: agent.nodeName, pod: { namespace: NS, name: p.name, uid: p.uid } });

  // warm-up (JIT, connections), not reported
  {
    await createPool(kc, 'warm-up', 4, 512);
    await waitForPool(agents, 'warm-up');
    const pods = await createPods(kc, 'warm', 200, 4, 'warm-up');
    await run(pods.map((p) => add(agents[p.node]!, p)), 16, 'warm-up ADD');
    await run(pods.map((p) => () => agents[p.node]!.release(`ctr-${p.name}`, 'eth0')), 16, 'warm-up DEL');
  }

  // 1 agent, sequential and concurrent
  {
    const poolSize = 2 * N + 64;
    await createPool(kc, 'one-agent', 1, poolSize);
    await waitForPool(agents, 'one-agent');
    const seq = await createPods(kc, 'seq', Math.min(N, 200), 1, 'one-agent');
    const conc = await createPods(kc, 'conc', N, 1, 'one-agent');
    const a = agents[0]!;
    let s0 = statsOf([a]);
    const r1 = await run(seq.map((p) => add(a, p)), 1, '1 agent, sequential');
    let d = delta(statsOf([a]), s0);
    rows.push({ scenario: '1 agent, one ADD at a time', agents: 1, pool: poolSize, ops: seq.length, inFlight: '1', ...r1, ...d });
    s0 = statsOf([a]);
    const r2 = await run(conc.map((p) => add(a, p)), opts.concurrency, '1 agent, concurrent');
    d = delta(statsOf([a]), s0);
    rows.push({ scenario: '1 agent', agents: 1, pool: poolSize, ops: conc.length, inFlight: String(opts.concurrency), ...r2, ...d });
    s0 = statsOf([a]);
    const r3 = await run(conc.map((p) => () => a.release(`ctr-${p.name}`, 'eth0')), opts.concurrency, '1 agent, DEL');
    d = delta(statsOf([a]), s0);
    rows.push({ scenario: '1 agent, DEL (release)', agents: 1, pool: poolSize, ops: conc.length, inFlight: String(opts.concurrency), ...r3, ...d });
  }

  // 4 agents, a large pool: each node in its own blocks
  {
    const poolSize = 4 * N;
    await createPool(kc, 'four-large', 2, poolSize);
    await waitForPool(agents, 'four-large');
    const pods = await createPods(kc, 'large', N, 4, 'four-large');
    const s0 = statsOf(agents);
    const r = await run(pods.map((p) => add(agents[p.node]!, p)), 4 * opts.concurrency, '4 agents, large pool');
    rows.push({ scenario: '4 agents, large pool', agents: 4, pool: poolSize, ops: pods.length, inFlight: `4 × ${opts.concurrency}`, ...r, ...delta(statsOf(agents), s0) });
  }

  // 4 agents, one small pool, every address asked for at the same moment
  {
    const poolSize = opts.smallPool;
    await createPool(kc, 'four-small', 3, poolSize);
    await waitForPool(agents, 'four-small');
    const pods = await createPods(kc, 'small', poolSize, 4, 'four-small');
    const s0 = statsOf(agents);
    const r = await run(pods.map((p) => add(agents[p.node]!, p)), pods.length, '4 agents, small pool');
    rows.push({ scenario: '4 agents, small pool, all at once', agents: 4, pool: poolSize, ops: pods.length, inFlight: String(pods.length), ...r, ...delta(statsOf(agents), s0) });
    const got = (await kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'sample.fast.io', version: 'v1alpha1', plural: 'ipendpoints', labelSelector: 'ipam.fast.io/pool=four-small' })) as { items: unknown[] };
    if (got.items.length !== poolSize) throw new Error(`expected ${poolSize} IpEndpoints in four-small, found ${got.items.length}`);
  }

  const md = [
    `### IPAM allocation rate (KubernetesIpam against the lab API server)`,
    '',
    `\`${command}\` — ${environmentLine()}`,
    '',
    table(
      ['scenario', 'agents', 'pool', 'ops', 'in flight', 'ops/s', 'p50 ms', 'p99 ms', 'writes/op', 'reads/op', 'refused (409)'],
      rows.map((r) => [
        r.scenario,
        String(r.agents),
        String(r.pool),
        String(r.ops),
        r.inFlight,
        fmt(r.ops / r.seconds, 0),
        fmt(percentile(r.latencies, 50), 1),
        fmt(percentile(r.latencies, 99), 1),
        fmt(r.writes / r.ops, 2),
        fmt(r.reads / r.ops, 2),
        String(r.conflicts),
      ]),
    ),
    '',
    'One API write per address in the common case (the create of the IpEndpoint named after it) and one per release ' +
      '(spec.releasedAt). With 4 nodes asking for every address of a small pool at the same moment, nodes start in ' +
      'different blocks but meet once the pool fills; each refused claim (409) costs one more write and one read.',
    '',
  ].join('\n');
  process.stdout.write(md + '\n');
  const doc = path.join(REPO, 'docs', 'benchmarks.md');
  if (fs.existsSync(doc)) {
    fs.appendFileSync(doc, '\n' + md);
    log(`appended to ${path.relative(process.cwd(), doc)}`);
  }
});
