// fast lab timings: `fast lab up` with 2 and 10 nodes (the real CLI, until it returns: every
// agent ready and every node Ready), `fast lab down`, and the time from `kubectl create` of 100
// pods (a Deployment of 100 replicas; 100 bare pods in one YAML stream) to all of them Running with
// an address, then from `kubectl delete` to all pods gone and every address released.
//
//   node --import tsx bench/lab-up.ts [--reps 3] [--small 2] [--large 10] [--pods 100] [--pod-reps 3] [--port 21470]
//
// Each lab size is brought up and down --reps times (median reported); the pod workloads run
// --pod-reps times each on the last lab of each size. Pod state is polled from the API server
// every 50 ms. The lab is named flablb (namespaces flablb-*, flablbp-*), in /tmp/flablb-bench.
// Progress on stderr, markdown tables on stdout.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from '../test/helpers/node-harness.js';
import { onCleanup, runBenchmark } from './lib/cleanup.js';
import { commandLine, environmentLine, fmt, log, median, numericFlags, progress, table } from './lib/report.js';

const opts = numericFlags({ reps: 3, small: 2, large: 10, pods: 100, podReps: 3, port: 21470 });
const NAME = 'flablb';
const DIR = '/tmp/flablb-bench';
const FAST = path.join(REPO, 'bin', 'fast');
const API = `http://127.0.0.1:${opts.port}`;
const POOL = { name: 'default-ips', range: '10.244.100.0-10.244.200.250' };

interface Run { status: number; stdout: string; stderr: string; ms: number }

function run(cmd: string, args: string[], input?: string): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr, ms: performance.now() - t0 }));
    child.stdin.end(input ?? '');
  });
}

async function must(cmd: string, args: string[], input?: string): Promise<Run> {
  const r = await run(cmd, args, input);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}${r.stderr}`);
  return r;
}

const kubectl = (args: string[], input?: string) => must('kubectl', ['--kubeconfig', path.join(DIR, 'kubeconfig'), ...args], input);

async function labUp(nodes: number): Promise<number> {
  const r = await run(process.execPath, [FAST, 'lab', 'up', '--nodes', String(nodes), '--name', NAME, '--port', String(opts.port), '--dir', DIR]);
  if (r.status !== 0) throw new Error(`fast lab up --nodes ${nodes} failed:\n${r.stderr}`);
  return r.ms;
}

async function labDown(): Promise<number> {
  return (await must(process.execPath, [FAST, 'lab', 'down', '--dir', DIR])).ms;
}

async function getJson<T>(p: string): Promise<T> {
  const res = await fetch(API + p);
  if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

interface PodJ { metadata: { name: string; uid: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status?: { phase?: string; podIP?: string } }
interface EpJ { spec: { podUID: string; address: string; releasedAt?: string } }

const pods = (selector: string) => getJson<{ items: PodJ[] }>(`/api/v1/namespaces/default/pods?labelSelector=${encodeURIComponent(selector)}`).then((l) => l.items);
const endpoints = () => getJson<{ items: EpJ[] }>('/apis/sample.fast.io/v1alpha1/ipendpoints').then((l) => l.items);

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function deploymentYaml(name: string, replicas: number): string {
  return JSON.stringify({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
    spec: {
      replicas, selector: { matchLabels: { bench: name } },
      template: { metadata: { labels: { bench: name } }, spec: { containers: [{ name: 'c', image: 'busybox:latest', command: ['sleep', '100000'] }] } },
    },
  });
}

/** A YAML stream of bare pods (documents separated by ---): kubectl validates each one. */
function barePodsYaml(name: string, count: number): string {
  return Array.from({ length: count }, (_, i) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}-${String(i).padStart(3, '0')}
  labels: {bench: ${name}}
spec:
  containers:
    - {name: c, image: "busybox:latest", command: [sleep, "100000"]}
`).join('---\n');
}

/** Progress that changed, at most every 500 ms (tests of 100 pods poll every 50 ms). */
let lastProgress = { msg: '', at: 0 };
function tick(msg: string): void {
  const now = Date.now();
  if (msg === lastProgress.msg || (!process.stderr.isTTY && now - lastProgress.at < 500)) return;
  lastProgress = { msg, at: now };
  progress(msg);
}

interface PodRun { createMs: number; firstMs: number; allMs: number; deleteMs: number; nodes: number }

/** kubectl create → all Running with distinct addresses; kubectl delete → all gone, all addresses released. */
async function podRun(kind: 'deployment' | 'bare', rep: number): Promise<PodRun> {
  const name = `bench-${kind}-${rep}`;
  const manifest = kind === 'deployment' ? deploymentYaml(name, opts.pods) : barePodsYaml(name, opts.pods);
  const t0 = performance.now();
  const created = await kubectl(['create', '-f', '-'], manifest);
  let firstMs = NaN;
  const running = await until(`${opts.pods} ${kind} pods Running`, 300_000, async () => {
    const items = (await pods(`bench=${name}`)).filter((p) => p.status?.phase === 'Running' && p.status.podIP);
    if (items.length > 0 && Number.isNaN(firstMs)) firstMs = performance.now() - t0;
    tick(`  ${kind} rep ${rep}: ${items.length}/${opts.pods} Running`);
    return items.length >= opts.pods ? items : undefined;
  });
  const allMs = performance.now() - t0;
  progress(`  ${kind} rep ${rep}: all ${opts.pods} Running in ${fmt(allMs / 1000, 2)} s`, true);
  const ips = new Set(running.map((p) => p.status!.podIP!));
  if (ips.size !== opts.pods) throw new Error(`${opts.pods} pods but ${ips.size} distinct addresses`);
  const uids = new Set(running.map((p) => p.metadata.uid));
  const eps = (await endpoints()).filter((e) => uids.has(e.spec.podUID) && !e.spec.releasedAt);
  if (eps.length !== opts.pods) throw new Error(`${opts.pods} pods Running but ${eps.length} live IpEndpoints`);

  const t1 = performance.now();
  await kubectl(kind === 'deployment' ? ['delete', 'deployment', name, '--wait=false'] : ['delete', 'pods', '-l', `bench=${name}`, '--wait=false']);
  await until(`${kind} pods gone and addresses released`, 300_000, async () => {
    const left = (await pods(`bench=${name}`)).length;
    const held = (await endpoints()).filter((e) => uids.has(e.spec.podUID) && !e.spec.releasedAt).length;
    tick(`  ${kind} rep ${rep}: deleting, ${left} pods left, ${held} addresses held`);
    return left === 0 && held === 0 ? true : undefined;
  });
  const deleteMs = performance.now() - t1;
  sampleLoad();
  progress(`  ${kind} rep ${rep}: all gone and released in ${fmt(deleteMs / 1000, 2)} s`, true);
  return { createMs: created.ms, firstMs, allMs, deleteMs, nodes: new Set(running.map((p) => p.spec.nodeName)).size };
}

/** 1-minute load averages seen during the run: the machine may be shared. */
const loads: number[] = [];
const sampleLoad = () => loads.push(os.loadavg()[0]!);

const s = (ms: number) => fmt(ms / 1000, 2);
const range = (xs: number[]) => `${s(Math.min(...xs))}–${s(Math.max(...xs))}`;

runBenchmark(async () => {
  for (const f of [path.join(REPO, 'dist', 'src', 'lab', 'cli.js'), path.join(REPO, 'cni', 'fast-cni')]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.json && make -C cni)`);
  }
  if (fs.existsSync(DIR)) throw new Error(`${DIR} exists: a lab is up there (node bin/fast lab down --dir ${DIR})`);
  const command = commandLine();
  log(`lab-up: fast lab up/down with ${opts.small} and ${opts.large} nodes × ${opts.reps}; ${opts.pods} pods (Deployment, bare) × ${opts.podReps} on the last lab of each size`);
  onCleanup('the benchmark lab', async () => { if (fs.existsSync(DIR)) await labDown(); });

  const upRows: string[][] = [];
  const podRows: string[][] = [];
  for (const nodes of [opts.small, opts.large]) {
    const ups: number[] = [];
    const downs: number[] = [];
    for (let r = 1; r <= opts.reps; r++) {
      progress(`fast lab up --nodes ${nodes}, rep ${r}/${opts.reps}`);
      sampleLoad();
      const up = await labUp(nodes);
      ups.push(up);
      log(`  fast lab up --nodes ${nodes} rep ${r}: ${s(up)} s`);
      if (r === opts.reps && opts.pods > 0 && opts.podReps > 0) {
        await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'sample.fast.io/v1alpha1', kind: 'Ips', metadata: { name: POOL.name }, spec: { subnet: '10.244.0.1/16', ips: [POOL.range] } }));
        for (const kind of ['deployment', 'bare'] as const) {
          const runs: PodRun[] = [];
          for (let p = 1; p <= opts.podReps; p++) runs.push(await podRun(kind, p));
          const what = kind === 'deployment' ? `Deployment, ${opts.pods} replicas` : `${opts.pods} bare pods (one YAML stream)`;
          podRows.push([what, String(nodes), s(median(runs.map((x) => x.createMs))), s(median(runs.map((x) => x.firstMs))),
            s(median(runs.map((x) => x.allMs))), range(runs.map((x) => x.allMs)), fmt(opts.pods / (median(runs.map((x) => x.allMs)) / 1000), 1),
            s(median(runs.map((x) => x.deleteMs)))]);
        }
      }
      progress(`fast lab down (${nodes} nodes), rep ${r}/${opts.reps}`);
      const down = await labDown();
      downs.push(down);
      log(`  fast lab down (${nodes} nodes) rep ${r}: ${s(down)} s`);
    }
    upRows.push([String(nodes), s(median(ups)), range(ups), s(median(downs)), range(downs)]);
  }

  const out = [
    `Command: \`${command}\``,
    '',
    `Environment: 1-minute load average ${fmt(Math.min(...loads), 1)}–${fmt(Math.max(...loads), 1)} during the run; ${environmentLine([`kubectl ${(await run('kubectl', ['version', '--client', '-o', 'json']).then((r) => (JSON.parse(r.stdout) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion).catch(() => '?'))}`])}`,
    '',
    `\`fast lab up\` until it returns (every agent ready, every node Ready), and \`fast lab down\`; ${opts.reps} repetitions, seconds:`,
    '',
    table(['nodes', 'up median', 'up min–max', 'down median', 'down min–max'], upRows),
    '',
    `From \`kubectl create -f -\` to all ${opts.pods} pods Running with an address (scheduled, sandbox made, real fast-cni ADD, status written), and from \`kubectl delete\` to every pod gone and every IpEndpoint released; ${opts.podReps} repetitions, median seconds (kubectl = the create command alone):`,
    '',
    table(['workload', 'nodes', 'kubectl', 'first Running', 'all Running', 'all min–max', 'pods/s', 'delete → released'], podRows),
    '',
  ].join('\n');
  process.stdout.write(out);
});
