// Propagation of a new pod's address to every other node's cluster map (fast_cpod_v1),
// with 10 nodes and 5000 pods.
//
//   node --import tsx bench/propagation.ts [--nodes 10] [--pods 5000] [--samples 200] [--native 0] [--heartbeats 1] [--spread 1]
//
// A `fast lab` of N nodes (real API server, real agents with their watches and pinned
// maps) whose kubelets are stopped once the nodes are registered: 5000 real sandboxes
// (a namespace, a veth pair, two `ip` batches and a CNI chain each) would take this 2-core
// machine many minutes and measure the kubelet, not the agents. This script plays the
// kubelet instead: it creates each pod bound to a node and then reports its address with
// the same status merge-patch the lab kubelet sends (phase Running, podIP, podIPs). While
// the kubelets are stopped, it also sends their node heartbeats (a status patch of every
// node every 10 s, as the lab kubelet does), since the agents react to node updates:
// spread evenly over the 10 s (--spread 1, independent kubelets of a real cluster), or all
// at once (--spread 0, close to the lab, whose kubelets start within a second or two).
//
// t0 is taken just before the status patch is sent; a pod has propagated when its address
// is in the pinned fast_cpod_v1 of every node but its own (read directly with the BpfMap
// API, which is what the eBPF programs see). Two phases:
//   - burst: the 5000 pods created as fast as the API server takes them (8 requests in
//     flight), propagation of each;
//   - steady: on top of those 5000, `samples` new pods one at a time (the next one once the
//     previous one reached every node, after a 20 ms pause): the time for a new pod's
//     address to reach every node in a cluster of that size. The floor (p99 < 1 s) is
//     checked on this phase, and reported for the burst too.
// Agents' CPU time is read from /proc during each phase.
//
// Lab name flabxprop (API port 21573, /tmp/flabxprop); removed at the end, on failure and
// on Ctrl-C.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runBenchmark, onCleanup } from './lib/cleanup.js';
import { commandLine, environmentLine, fmt, log, numericFlags, percentile, progress, table, median } from './lib/report.js';
import { REPO } from '../test/helpers/node-harness.js';
import { BpfMap } from '../src/dataplane/bpf/bpf-map.js';
import { encodeIp, MAP_NAMES } from '../src/dataplane/bpf/map-layouts.js';
import { readState, type LabState } from '../src/lab/lab-state.js';

const opts = numericFlags({ nodes: 10, pods: 5000, samples: 200, native: 0, heartbeats: 1, spread: 1 });
const MODE = opts.native ? 'native' : 'overlay';
const NAME = 'flabxprop';
const PORT = 21573;
const DIR = `/tmp/${NAME}`;
const API = `http://127.0.0.1:${PORT}`;
const FAST = path.join(REPO, 'bin', 'fast');
const CONCURRENCY = 8;
const HEARTBEAT_MS = 10_000;

const nodeName = (i: number) => `node${i + 1}`;
const nodeIp = (i: number) => `172.30.0.${11 + i}`;
/** Pod k's address: inside the pool's subnet (10.244.0.0/16, the cluster's pod range). */
const podIp = (k: number) => `10.244.${1 + (k >> 8)}.${k & 255}`;

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function api(method: string, url: string, body: unknown, contentType = 'application/json'): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(API + url, { method, headers: { 'content-type': contentType }, body: JSON.stringify(body) });
    const text = await res.text();
    if (res.ok) return;
    if (attempt < 5 && (res.status === 429 || res.status >= 500)) {
      await sleep(100 * 2 ** attempt);
      continue;
    }
    throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  }
}

const createPod = (name: string, node: number) => api('POST', '/api/v1/namespaces/default/pods', {
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels: { app: 'prop' } },
  spec: { nodeName: nodeName(node), containers: [{ name: 'c', image: 'none' }] },
});

/** What the lab kubelet reports once the sandbox is up (pod-status.ts runningStatus). */
const reportRunning = (name: string, node: number, ip: string) => api('PATCH', `/api/v1/namespaces/default/pods/${name}/status`, {
  status: { phase: 'Running', hostIP: nodeIp(node), hostIPs: [{ ip: nodeIp(node) }], podIP: ip, podIPs: [{ ip }], startTime: new Date().toISOString() },
}, 'application/merge-patch+json');

/** The lab kubelet's heartbeat (node-registration.ts postStatus). */
const heartbeat = (node: number) => {
  const now = new Date().toISOString();
  return api('PATCH', `/api/v1/nodes/${nodeName(node)}/status`, {
    status: {
      addresses: [{ type: 'InternalIP', address: nodeIp(node) }, { type: 'Hostname', address: nodeName(node) }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'lab kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }],
    },
  }, 'application/merge-patch+json');
};

interface Pending { k: number; node: number; key: Buffer; t0: number; seen: Array<number | undefined>; left: number; done?: number }

/** Watches the nodes' pinned cluster maps for pending pods. */
class MapWatcher {
  readonly maps: BpfMap[];
  /** Pending pods in the order their status was sent, per node still to reach. */
  private readonly queues: Pending[][];
  constructor(state: LabState) {
    this.maps = state.nodes.map((n) => BpfMap.openPinned(path.join(n.bpffsDir, MAP_NAMES.clusterPods)));
    this.queues = state.nodes.map(() => []);
    onCleanup('pinned map fds', () => { for (const m of this.maps) m.close(); });
  }

  add(p: Pending): void {
    for (let n = 0; n < this.maps.length; n++) if (n !== p.node) this.queues[n]!.push(p);
  }

  pending(): number {
    return this.queues.reduce((a, q) => a + q.length, 0);
  }

  /** One pass. Each agent applies events in order, so a node's queue is scanned from its
   *  oldest entry and the scan stops after 64 consecutive misses (the frontier). */
  poll(now = performance.now()): void {
    for (let n = 0; n < this.maps.length; n++) {
      const q = this.queues[n]!;
      let misses = 0;
      let write = 0;
      for (let i = 0; i < q.length; i++) {
        const p = q[i]!;
        if (misses < 64 && this.maps[n]!.lookup(p.key)) {
          p.seen[n] = now;
          if (--p.left === 0) p.done = now;
          continue;
        }
        misses++;
        q[write++] = p;
      }
      q.length = write;
    }
  }

  count(n: number): number {
    return this.maps[n]!.keys().length;
  }
}

function agentCpuSeconds(state: LabState): number[] {
  const tick = Number(sh('getconf', ['CLK_TCK']).trim());
  return state.nodes.map((n) => {
    const pid = state.processes.find((p) => p.role === `agent/${n.name}`)!.pid;
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / tick; // utime, stime
  });
}

function resyncCount(state: LabState): number {
  return state.nodes.reduce((a, n) => a + (fs.readFileSync(path.join(n.dir, 'agent.log'), 'utf8').match(/"cluster map resynced"/g)?.length ?? 0), 0);
}

/** Gaps between consecutive full resyncs of each agent inside [from, to] (wall clock ms). */
function resyncGaps(state: LabState, from: number, to: number): number[] {
  const gaps: number[] = [];
  for (const n of state.nodes) {
    const times = [...fs.readFileSync(path.join(n.dir, 'agent.log'), 'utf8').matchAll(/"time":"([^"]+)","level":"info","msg":"cluster map resynced"/g)]
      .map((m) => Date.parse(m[1]!)).filter((t) => t >= from && t <= to);
    for (let i = 1; i < times.length; i++) gaps.push(times[i]! - times[i - 1]!);
  }
  return gaps;
}

function stats(samples: number[]) {
  return { p50: percentile(samples, 50), p90: percentile(samples, 90), p99: percentile(samples, 99), max: Math.max(...samples), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

runBenchmark(async () => {
  const command = commandLine();
  log(`propagation: ${opts.nodes} nodes (${MODE}), ${opts.pods} pods, ${opts.samples} steady-state samples`);
  onCleanup(`lab ${NAME}`, () => { spawnSync(process.execPath, [FAST, 'lab', 'down', '--dir', DIR], { stdio: 'ignore' }); });
  progress(`lab up (${opts.nodes} nodes)`);
  sh(process.execPath, [FAST, 'lab', 'up', '--nodes', String(opts.nodes), '--mode', MODE, '--name', NAME, '--port', String(PORT), '--dir', DIR]);
  const state = readState(DIR)!;
  const kubectl = (args: string[], input?: string) => sh('kubectl', ['--kubeconfig', state.hostKubeconfig, ...args], input);
  kubectl(['apply', '-f', '-'], 'apiVersion: sample.fast.io/v1alpha1\nkind: Ips\nmetadata: {name: default-ips}\nspec: {subnet: 10.244.0.1/16, ips: [10.244.100.0-10.244.200.250]}\n');
  const configured = (n: string) => fs.readFileSync(path.join(DIR, n, 'agent.log'), 'utf8').includes('cross-node datapath configured');
  await until('cross-node datapath configured on every node', () => state.nodes.every((n) => configured(n.name)), 60000);

  // The kubelets go (this script reports pods and heartbeats in their place).
  for (const p of state.processes.filter((x) => x.role.startsWith('kubelet/'))) {
    try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ }
  }
  await until('kubelets stopped', () => state.processes.filter((x) => x.role.startsWith('kubelet/')).every((p) => { try { process.kill(p.pid, 0); return false; } catch { return true; } }), 10000);
  let beating = true;
  const beats = Promise.all(state.nodes.map(async (_, i) => {
    if (opts.spread) await sleep((i * HEARTBEAT_MS) / state.nodes.length);
    while (beating && opts.heartbeats) {
      const t = Date.now();
      await heartbeat(i).catch((e: Error) => log(`heartbeat: ${e.message}`));
      while (beating && Date.now() - t < HEARTBEAT_MS) await sleep(50);
    }
  }));
  onCleanup('heartbeats', async () => { beating = false; await beats; });

  const watcher = new MapWatcher(state);
  const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');

  // ---- burst ----
  const burst: Pending[] = [];
  const cpu0 = agentCpuSeconds(state);
  const resync0 = resyncCount(state);
  const tBurst = performance.now();
  let next = 0;
  let apiDone = 0;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (next < opts.pods) {
      const k = next++;
      const node = k % opts.nodes;
      const name = `prop-${k}`;
      await createPod(name, node);
      const p: Pending = { k, node, key: encodeIp(podIp(k)), t0: performance.now(), seen: [], left: opts.nodes - 1 };
      burst.push(p);
      watcher.add(p);
      await reportRunning(name, node, podIp(k));
      apiDone++;
    }
  });
  let apiFinished = false;
  const apiAll = Promise.all(workers).then(() => { apiFinished = true; });
  let lastLog = 0;
  while (!apiFinished || watcher.pending() > 0) {
    watcher.poll();
    if (performance.now() - lastLog > 2000) {
      lastLog = performance.now();
      progress(`burst: ${apiDone}/${opts.pods} pods reported, ${watcher.pending()} (pod, node) pairs pending`);
    }
    if (performance.now() - tBurst > 30 * 60_000) throw new Error('burst did not converge in 30 min');
    await sleep(apiFinished ? 5 : 2);
  }
  await apiAll;
  const tBurstEnd = performance.now();
  const cpu1 = agentCpuSeconds(state);
  const resync1 = resyncCount(state);
  const burstLat = burst.map((p) => p.done! - p.t0);
  const apiRate = opts.pods / ((Math.max(...burst.map((p) => p.t0)) - tBurst) / 1000);
  log(`burst: ${opts.pods} pods in every map after ${fmt((tBurstEnd - tBurst) / 1000, 1)} s; propagation p50 ${fmt(percentile(burstLat, 50), 0)} ms, p99 ${fmt(percentile(burstLat, 99), 0)} ms`);
  const entries = state.nodes.map((_, n) => watcher.count(n));

  // ---- idle: what a cluster of this size costs the agents with nothing happening ----
  progress('idle 30 s (heartbeats only)');
  const cpuIdle0 = agentCpuSeconds(state);
  const resyncIdle0 = resyncCount(state);
  const idleFrom = Date.now();
  await sleep(30_000);
  const idleGaps = resyncGaps(state, idleFrom, Date.now());
  const cpuIdle1 = agentCpuSeconds(state);
  const resyncIdle1 = resyncCount(state);

  // ---- steady ----
  const steady: Pending[] = [];
  const cpu2 = agentCpuSeconds(state);
  const tSteady = performance.now();
  for (let s = 0; s < opts.samples; s++) {
    const k = opts.pods + s;
    const node = s % opts.nodes;
    const name = `prop-${k}`;
    await createPod(name, node);
    const p: Pending = { k, node, key: encodeIp(podIp(k)), t0: performance.now(), seen: [], left: opts.nodes - 1 };
    steady.push(p);
    watcher.add(p);
    const patched = reportRunning(name, node, podIp(k));
    const deadline = performance.now() + 30_000;
    while (p.done === undefined) {
      watcher.poll();
      if (performance.now() > deadline) throw new Error(`pod ${name} ${podIp(k)} did not reach every node in 30 s`);
      await new Promise((r) => setImmediate(r));
    }
    await patched;
    if (s % 25 === 0) progress(`steady: ${s}/${opts.samples}, last ${fmt(p.done - p.t0, 1)} ms`);
    await sleep(20);
  }
  const tSteadyEnd = performance.now();
  const cpu3 = agentCpuSeconds(state);
  const loadAfter = fs.readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
  progress('done', true);

  const steadyLat = steady.map((p) => p.done! - p.t0);
  const firstNode = steady.map((p) => Math.min(...p.seen.filter((x): x is number => x !== undefined)) - p.t0);
  const perNode = steady.flatMap((p) => p.seen.filter((x): x is number => x !== undefined).map((x) => x - p.t0));
  const b = stats(burstLat);
  const st = stats(steadyLat);
  const cpuPct = (a: number[], z: number[], secs: number) => a.map((x, i) => (100 * (z[i]! - x)) / secs);
  const burstSecs = (tBurstEnd - tBurst) / 1000;
  const steadySecs = (tSteadyEnd - tSteady) / 1000;

  const out: string[] = [];
  out.push(`Command: \`${command}\``);
  out.push('');
  out.push(`Environment: ${environmentLine([`${opts.nodes}-node lab, ${MODE} mode`, `load average ${loadBefore} before, ${loadAfter} after (the machine is shared)`, `${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`])}`);
  out.push('');
  out.push(`Set-up: kubelets stopped after registration; this script creates each pod bound to a node and reports its address with the kubelet's status patch, and sends the nodes' heartbeats every ${HEARTBEAT_MS / 1000} s${opts.heartbeats ? (opts.spread ? ', spread evenly over the period' : ', all nodes at once') : ' (disabled for this run)'}. Propagation = from just before the status patch is sent until the address is in the pinned fast_cpod_v1 of all ${opts.nodes - 1} other nodes (read with the BpfMap API). Map entries per node after the burst: ${[...new Set(entries)].join(', ')} (pods on the other nodes + ${opts.nodes - 1} node entries).`);
  out.push('');
  out.push(table(['phase', 'pods', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean ms', 'agents CPU % (median, max)'], [
    [`burst (${CONCURRENCY} API requests in flight, ${fmt(apiRate, 0)} pods/s reported)`, String(opts.pods), fmt(b.p50, 1), fmt(b.p90, 1), fmt(b.p99, 1), fmt(b.max, 1), fmt(b.mean, 1),
      `${fmt(median(cpuPct(cpu0, cpu1, burstSecs)), 0)}, ${fmt(Math.max(...cpuPct(cpu0, cpu1, burstSecs)), 0)}`],
    [`steady (one new pod at a time on top of ${opts.pods})`, String(opts.samples), fmt(st.p50, 1), fmt(st.p90, 1), fmt(st.p99, 1), fmt(st.max, 1), fmt(st.mean, 1),
      `${fmt(median(cpuPct(cpu2, cpu3, steadySecs)), 0)}, ${fmt(Math.max(...cpuPct(cpu2, cpu3, steadySecs)), 0)}`],
  ]));
  out.push('');
  out.push(`Steady phase detail: first node reached p50 ${fmt(percentile(firstNode, 50), 1)} ms / p99 ${fmt(percentile(firstNode, 99), 1)} ms; any single node p50 ${fmt(percentile(perNode, 50), 1)} ms / p99 ${fmt(percentile(perNode, 99), 1)} ms; all nodes (above) p50 ${fmt(st.p50, 1)} ms / p99 ${fmt(st.p99, 1)} ms.`);
  const quarter = Math.max(1, Math.floor(steadyLat.length / 4));
  out.push(`Steady phase over time: p50 of the first ${quarter} samples ${fmt(median(steadyLat.slice(0, quarter)), 1)} ms, of the last ${quarter} ${fmt(median(steadyLat.slice(-quarter)), 1)} ms.`);
  out.push(`Burst: all ${opts.pods} pods in every map ${fmt(burstSecs, 1)} s after the first was created; full resyncs logged by the agents during the burst: ${resync1 - resync0}.`);
  out.push(`Idle 30 s with ${opts.pods} pods (heartbeats only): agents' CPU median ${fmt(median(cpuPct(cpuIdle0, cpuIdle1, 30)), 1)} %, max ${fmt(Math.max(...cpuPct(cpuIdle0, cpuIdle1, 30)), 1)} % of one CPU each; full resyncs logged: ${resyncIdle1 - resyncIdle0} (all agents together), median gap between two resyncs of one agent ${idleGaps.length ? `${fmt(median(idleGaps), 0)} ms` : 'n/a'}.`);
  out.push('');
  out.push(`Floor propagation p99 < 1 s: steady ${st.p99 < 1000 ? 'met' : 'NOT met'} (${fmt(st.p99, 0)} ms); burst ${b.p99 < 1000 ? 'met' : 'NOT met'} (${fmt(b.p99, 0)} ms)`);
  process.stdout.write(out.join('\n') + '\n');
});
