// 1000 pods over 10 lab nodes: from `kubectl create` of one Deployment (annotated with an Ips
// pool) to every pod Running with an address, in a fresh `fast lab` (real API server, lab
// controllers and scheduler, lab kubelets, fast-cni, fast-agents, fast-controller-manager).
//
//   node --import tsx bench/ipam-pods.ts [--nodes 10] [--pods 1000] [--port 21645] [--profile 0|1]
//
// --profile 1 restarts the API server, agent/node1, kubelet/node1 and lab-controllers under `node --cpu-prof`
// before the run and prints where their CPU time went (self time by function and by file).
//
// A watch on the pods (no polling, so the observer costs next to nothing) timestamps when each
// pod is first seen, bound to a node, and Running with an address. The CPU time of every lab
// process (with its reaped children: fast-cni, portmap, ip, nsenter) is read from /proc before
// and after, to show which one is the bottleneck. At the end the addresses are checked: all
// distinct, each held by one IpEndpoint of the pool. Progress on stderr, markdown on stdout.
// The lab is always brought down.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from '../test/helpers/node-harness.js';
import { readState, writeState, type LabState } from '../src/lab/lab-state.js';
import { restartDetached, stopProcess } from '../src/lab/processes.js';
import { onCleanup, runBenchmark } from './lib/cleanup.js';
import { commandLine, environmentLine, fmt, log, numericFlags, percentile, progress, table } from './lib/report.js';

const opts = numericFlags({ nodes: 10, pods: 1000, port: 21645, profile: 0 });
const PROFILED = ['apiserver', 'agent/node1', 'kubelet/node1', 'lab-controllers'];
const NAME = 'flabibench';
const POOL = 'bench-ips';
const FAST = path.join(REPO, 'bin', 'fast');

function kubectl(state: LabState, args: string[], input?: string): string {
  return execFileSync('kubectl', ['--kubeconfig', state.hostKubeconfig, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 << 20 });
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc

const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds of a process, its own and its reaped children's. */
function cpuOf(pid: number): { self: number; children: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm) ": state(0) … utime(11) stime(12) cutime(13) cstime(14)
    return { self: (Number(f[11]) + Number(f[12])) / TICK, children: (Number(f[13]) + Number(f[14])) / TICK };
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole machine. */
function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = line[3]! + line[4]!;
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

function roleGroup(role: string): string {
  if (role.startsWith('agent/')) return 'fast-agent (all nodes)';
  if (role.startsWith('kubelet/')) return 'lab kubelet (all nodes)';
  return role;
}

function cpuByGroup(state: LabState): Map<string, { self: number; children: number }> {
  const out = new Map<string, { self: number; children: number }>();
  for (const p of state.processes) {
    const c = cpuOf(p.pid);
    if (!c) continue;
    const g = roleGroup(p.role);
    const cur = out.get(g) ?? { self: 0, children: 0 };
    out.set(g, { self: cur.self + c.self, children: cur.children + c.children });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// a watch on the benchmark's pods

interface PodTimes { created: number; bound?: number; running?: number; ip?: string; node?: string }

class PodWatch {
  readonly pods = new Map<string, PodTimes>();
  private req: http.ClientRequest | undefined;
  private closed = false;

  constructor(private readonly port: number, private readonly selector: string) {}

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = `http://127.0.0.1:${this.port}/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=false&labelSelector=${encodeURIComponent(this.selector)}`;
      this.req = http.get(url, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`watch: HTTP ${res.statusCode}`));
          return;
        }
        resolve();
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) this.onEvent(JSON.parse(line) as { type: string; object: any });
          }
        });
        res.on('end', () => { if (!this.closed) log('pod watch ended early; numbers after this point are incomplete'); });
      });
      this.req.on('error', (err) => { if (!this.closed) reject(err); });
    });
  }

  stop(): void {
    this.closed = true;
    this.req?.destroy();
  }

  private onEvent(ev: { type: string; object: any }): void {
    if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED') return;
    const now = performance.now();
    const uid = ev.object?.metadata?.uid as string | undefined;
    if (!uid) return;
    let t = this.pods.get(uid);
    if (!t) this.pods.set(uid, (t = { created: now }));
    if (t.bound === undefined && ev.object.spec?.nodeName) {
      t.bound = now;
      t.node = ev.object.spec.nodeName;
    }
    if (t.running === undefined && ev.object.status?.phase === 'Running' && ev.object.status?.podIP) {
      t.running = now;
      t.ip = ev.object.status.podIP;
    }
  }

  counts(): { created: number; bound: number; running: number } {
    let bound = 0;
    let running = 0;
    for (const t of this.pods.values()) {
      if (t.bound !== undefined) bound++;
      if (t.running !== undefined) running++;
    }
    return { created: this.pods.size, bound, running };
  }
}

async function until(what: string, check: () => boolean, timeoutMs: number, explain?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${explain ? `\n${explain()}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ---------------------------------------------------------------------------------------------
// CPU profiles (node --cpu-prof) of a few lab processes

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] }

/** Restarts a lab process under --cpu-prof (profiles are written when it exits). */
async function restartProfiled(state: LabState, role: string, profDir: string): Promise<void> {
  const i = state.processes.findIndex((p) => p.role === role);
  const p = state.processes[i]!;
  await stopProcess(p);
  const start = p.start!;
  const dir = path.join(profDir, role.replace('/', '-'));
  fs.mkdirSync(dir, { recursive: true });
  state.processes[i] = restartDetached({ ...p, start: { ...start, args: ['--cpu-prof', '--cpu-prof-interval', '2000', '--cpu-prof-dir', dir, ...start.args] } });
  writeState(state);
}

function shortUrl(url: string): string {
  if (!url) return '';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  return url.replace(/^file:\/\//, '').replace(REPO + '/', '');
}

/** Self time by function and by file, in ms, sorted. */
function summarizeProfile(file: string): { totalMs: number; byFunction: Array<[string, number]>; byFile: Array<[string, number]> } {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const totalMs = (prof.endTime - prof.startTime) / 1000;
  const perSample = totalMs / Math.max(1, prof.samples.length);
  const fn = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const n of prof.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    const cf = n.callFrame;
    if (cf.functionName === '(idle)') continue;
    const where = shortUrl(cf.url);
    const key = `${cf.functionName || '(anonymous)'}${where ? ` ${where}:${cf.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + hits * perSample);
    const fk = where || cf.functionName;
    byFile.set(fk, (byFile.get(fk) ?? 0) + hits * perSample);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { totalMs, byFunction: sorted(fn), byFile: sorted(byFile) };
}

runBenchmark(async () => {
  for (const f of [path.join(REPO, 'dist', 'src', 'lab', 'cli.js'), path.join(REPO, 'cni', 'fast-cni')]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.json && make -C cni)`);
  }
  const command = commandLine();
  const dir = `/tmp/${NAME}-${process.pid}`;
  log(`ipam-pods: ${opts.pods} pods over ${opts.nodes} lab nodes (lab ${NAME}, API port ${opts.port}, ${dir})`);

  // Through the real CLI, as a user brings a lab up.
  const profDir = path.join(os.tmpdir(), `${NAME}-prof-${process.pid}`);
  onCleanup('lab', () => {
    spawnSync(process.execPath, [FAST, 'lab', 'down', '--dir', dir], { stdio: 'ignore' });
    if (opts.profile) log(`CPU profiles kept in ${profDir} (open them in Chrome DevTools or speedscope)`); // written on exit, after down
  });
  const upStarted = performance.now();
  const up = spawnSync(process.execPath, [FAST, 'lab', 'up', '--nodes', String(opts.nodes), '--name', NAME, '--port', String(opts.port), '--dir', dir], { encoding: 'utf8', timeout: 300_000 });
  if (up.status !== 0) throw new Error(`fast lab up exited ${up.status}:\n${up.stdout}${up.stderr}`);
  const state = readState(dir)!;
  log(`lab up in ${fmt((performance.now() - upStarted) / 1000, 1)} s`);

  // A pool with room to spare: 10.244.32.0/19 (8192 addresses) in subnet 10.244.0.0/16.
  kubectl(state, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'sample.fast.io/v1alpha1', kind: 'Ips', metadata: { name: POOL }, spec: { subnet: '10.244.0.0/16', ips: ['10.244.32.0/19'] } }));
  const deadlineReady = Date.now() + 20_000;
  while (!/True/.test(kubectl(state, ['get', 'ips', POOL, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']))) {
    if (Date.now() > deadlineReady) throw new Error(`pool ${POOL} not Ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
  if (opts.profile) {
    for (const role of PROFILED) {
      await restartProfiled(state, role, profDir);
      if (role === 'apiserver') await until('API server back', () => { try { return /gitVersion/.test(kubectl(state, ['get', '--raw', '/version'])); } catch { return false; } }, 30_000);
    }
    // The profiler's SIGPROF can interrupt the BPF verifier while the agent loads its programs
    // (EAGAIN; libbpf gives up after 5 tries): start it again until it is up.
    const agentReady = path.join(state.nodes[0]!.stateDir, 'ready');
    for (let attempt = 1; ; attempt++) {
      const agent = state.processes.find((p) => p.role === 'agent/node1')!;
      try {
        await until('agent/node1 ready under --cpu-prof', () => fs.existsSync(agentReady) && fs.readFileSync(agentReady, 'utf8').trim() === String(agent.pid), 30_000,
          () => fs.readFileSync(agent.log, 'utf8').split('\n').slice(-3).join('\n'));
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        log(`agent/node1 did not come up under --cpu-prof (attempt ${attempt}); again`);
        fs.rmSync(path.join(profDir, 'agent-node1'), { recursive: true, force: true });
        await restartProfiled(state, 'agent/node1', profDir);
      }
    }
    log(`profiling ${PROFILED.join(', ')} (node --cpu-prof, ${profDir})`);
  }
  await new Promise((r) => setTimeout(r, opts.profile ? 3000 : 1000)); // let the agents' caches see the pool

  const watch = new PodWatch(opts.port, 'app=bench');
  await watch.start();
  const deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'bench', namespace: 'default' },
    spec: {
      replicas: opts.pods, selector: { matchLabels: { app: 'bench' } },
      template: {
        metadata: { labels: { app: 'bench' }, annotations: { 'fast.io/ips': POOL } },
        spec: { containers: [{ name: 'c', image: 'busybox:latest', command: ['sleep', '100000'] }] },
      },
    },
  };

  const cpu0 = cpuByGroup(state);
  const m0 = machineCpu();
  const t0 = performance.now();
  kubectl(state, ['create', '-f', '-'], JSON.stringify(deployment));
  const samples: Array<{ t: number; created: number; bound: number; running: number }> = [];
  const timeoutMs = 600_000;
  while (true) {
    await new Promise((r) => setTimeout(r, 1000));
    const c = watch.counts();
    const t = (performance.now() - t0) / 1000;
    samples.push({ t, ...c });
    progress(`${fmt(t, 0)} s: ${c.created} created, ${c.bound} scheduled, ${c.running}/${opts.pods} Running with an address`);
    if (c.running >= opts.pods) break;
    if (performance.now() - t0 > timeoutMs) throw new Error(`only ${c.running} of ${opts.pods} pods Running after ${timeoutMs / 1000} s`);
  }
  const times = [...watch.pods.values()];
  const tAll = Math.max(...times.map((x) => x.running!)) - t0;
  const cpu1 = cpuByGroup(state);
  const m1 = machineCpu();
  watch.stop();
  progress(`all ${opts.pods} pods Running in ${fmt(tAll / 1000, 1)} s`, true);

  // Correctness: distinct addresses, one IpEndpoint each.
  const ips = new Set(times.map((x) => x.ip));
  const eps = (JSON.parse(kubectl(state, ['get', 'ipendpoints', '-o', 'json'])) as { items: Array<{ spec: { pool: string; address: string; releasedAt?: string } }> }).items.filter((e) => e.spec.pool === POOL && !e.spec.releasedAt);
  const epAddrs = new Set(eps.map((e) => e.spec.address));
  const missing = [...ips].filter((ip) => !epAddrs.has(ip!));
  if (ips.size !== opts.pods || eps.length !== opts.pods || missing.length) throw new Error(`addresses: ${ips.size} distinct for ${opts.pods} pods, ${eps.length} IpEndpoints, ${missing.length} not held`);
  const perNode = new Map<string, number>();
  for (const x of times) perNode.set(x.node!, (perNode.get(x.node!) ?? 0) + 1);

  const profiles: string[] = [];
  if (opts.profile) {
    for (const role of PROFILED) {
      const p = state.processes.find((x) => x.role === role)!;
      await stopProcess(p, 20_000); // SIGTERM: the profile is written on exit
      const dir = path.join(profDir, role.replace('/', '-'));
      const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
      if (files.length === 0) {
        profiles.push(`${role}: no profile written (did not exit cleanly)`);
        continue;
      }
      const sum = summarizeProfile(path.join(dir, files[0]!));
      const busy = sum.byFile.reduce((a, [, ms]) => a + ms, 0);
      profiles.push(`**${role}** (profiled ${fmt(sum.totalMs / 1000, 1)} s, ${fmt(busy / 1000, 1)} s on CPU): by file ${sum.byFile.slice(0, 6).map(([f, ms]) => `${f} ${fmt(ms / 1000, 1)} s`).join(', ')}; top functions ${sum.byFunction.slice(0, 6).map(([f, ms]) => `\`${f}\` ${fmt(ms / 1000, 1)} s`).join(', ')}.`);
    }
  }

  // Milestones and per-pod latencies.
  const at = (n: number, k: 'created' | 'bound' | 'running') => {
    const v = times.map((x) => x[k]).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    return v.length >= n ? (v[n - 1]! - t0) / 1000 : NaN;
  };
  const lat = times.map((x) => x.running! - x.bound!);
  const total = (performance.now() - t0) / 1000;
  const wall = (m1.total - m0.total) / os.cpus().length / TICK;
  const machineBusy = (m1.busy - m0.busy) / (m1.total - m0.total);

  const out: string[] = [];
  out.push(`## IPAM: ${opts.pods} pods over ${opts.nodes} lab nodes (bench/ipam-pods.ts)`);
  out.push('');
  out.push(`Command: \`${command}\``);
  out.push('');
  out.push(`Environment: ${environmentLine()}`);
  out.push('');
  out.push(`One Deployment of ${opts.pods} replicas annotated \`fast.io/ips: ${POOL}\` (10.244.32.0/19), created with \`kubectl create -f\` in a fresh ${opts.nodes}-node \`fast lab\`; timed from the create until a pod watch has seen every pod Running with an address. Spiderpool publishes 182 s for 1000 pods on 10 nodes of 3 CPUs; the issue's floor for Fast is 20 s on this 2-core machine.`);
  out.push('');
  out.push(table(['milestone', 'time (s)'], [
    ['all pods created (Deployment → ReplicaSet → pods)', fmt(at(opts.pods, 'created'), 1)],
    ['all pods scheduled', fmt(at(opts.pods, 'bound'), 1)],
    ['first pod Running with an address', fmt(at(1, 'running'), 1)],
    ['half the pods Running', fmt(at(Math.ceil(opts.pods / 2), 'running'), 1)],
    [`**all ${opts.pods} pods Running with an address**`, `**${fmt(tAll / 1000, 1)}**`],
  ]));
  out.push('');
  out.push(`Per pod, scheduled → Running with an address: p50 ${fmt(percentile(lat, 50) / 1000, 2)} s, p90 ${fmt(percentile(lat, 90) / 1000, 2)} s, p99 ${fmt(percentile(lat, 99) / 1000, 2)} s. ${ips.size} distinct addresses, each held by one IpEndpoint; pods per node ${Math.min(...perNode.values())}–${Math.max(...perNode.values())}.`);
  out.push('');
  out.push(`CPU time during the run (${fmt(total, 1)} s wall, ${os.cpus().length} CPUs, machine ${fmt(machineBusy * 100, 0)}% busy over ${fmt(wall, 1)} s; "children" is reaped child processes: fast-cni, portmap, ip, nsenter):`);
  out.push('');
  const rows = [...cpu1].map(([g, c]) => {
    const b = cpu0.get(g) ?? { self: 0, children: 0 };
    return { g, self: c.self - b.self, children: c.children - b.children };
  }).sort((a, b) => b.self + b.children - (a.self + a.children));
  out.push(table(['process', 'CPU s (own)', 'CPU s (children)', 'share of the run'], rows.map((r) => [r.g, fmt(r.self, 1), fmt(r.children, 1), `${fmt(((r.self + r.children) / (total * os.cpus().length)) * 100, 0)}%`])));
  out.push('');
  const stateFiles = fs.readdirSync(dir).filter((f) => f.startsWith('apiserver-state.json'));
  if (stateFiles.length) {
    const bytes = stateFiles.reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
    out.push(`The lab API server's state (a snapshot plus an append-only change log written asynchronously, src/lab/apiserver/persistence.ts) is ${fmt(bytes / 2 ** 20, 1)} MiB in ${stateFiles.length} file(s) at the end.`);
  }
  out.push(`Progress (Running pods by second): ${samples.filter((_, i) => i % Math.max(1, Math.round(samples.length / 15)) === 0 || _ === samples[samples.length - 1]).map((s) => `${fmt(s.t, 0)} s ${s.running}`).join(', ')}.`);
  if (profiles.length) {
    out.push('');
    out.push('CPU profiles (`--profile 1`, self time; the run is slower with the profiler on):');
    out.push('');
    for (const p of profiles) out.push(`- ${p}`);
  }
  process.stdout.write(out.join('\n') + '\n');
});
