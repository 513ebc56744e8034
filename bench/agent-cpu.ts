// CPU the lab's agents spend per pod (issue 5): a Deployment of N pods on a running lab
// (`fast lab up`), scaled up until every pod is Running with an address, then deleted until
// none is left; the agents' CPU from /proc (user + system, plus their reaped children's, so
// the `ip` processes an older agent spawns count) over each phase, divided by N.
//
//   node --import tsx bench/agent-cpu.ts --dir LAB_DIR [--pods 200]
//
// Everything an agent does in that time counts (CNI ADD/DEL, IPAM, its informers, the
// cluster map for the other node's pods), which is what issue 5 measures.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { environmentLine, fmt, log, parseFlags, table } from './lib/report.js';

const flags = parseFlags({ dir: '', pods: 200 });
const CLK_TCK = 100;

interface Lab { hostKubeconfig: string; processes: Array<{ role: string; pid: number }> }
const lab = JSON.parse(fs.readFileSync(path.join(flags.dir, 'lab.json'), 'utf8')) as Lab;
const agents = lab.processes.filter((p) => p.role.startsWith('agent/'));
const kubectl = (...args: string[]) => execFileSync('kubectl', ['--kubeconfig', lab.hostKubeconfig, ...args], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

function agentCpuMs(): number {
  let ticks = 0;
  for (const a of agents) {
    const f = fs.readFileSync(`/proc/${a.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
  }
  return (ticks * 1000) / CLK_TCK;
}

function runningWithIp(): number {
  const pods = JSON.parse(kubectl('get', 'pods', '-l', 'app=cpu-bench', '-o', 'json')) as { items: Array<{ status?: { phase?: string; podIP?: string } }> };
  return pods.items.filter((p) => p.status?.phase === 'Running' && p.status.podIP).length;
}

function podCount(): number {
  return (JSON.parse(kubectl('get', 'pods', '-l', 'app=cpu-bench', '-o', 'json')) as { items: unknown[] }).items.length;
}

async function until(what: string, ok: () => boolean, timeoutMs = 600_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const deployment = {
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'cpu-bench' },
  spec: {
    replicas: flags.pods, selector: { matchLabels: { app: 'cpu-bench' } },
    template: { metadata: { labels: { app: 'cpu-bench' }, annotations: { 'fast.io/ips': 'cpu-bench' } }, spec: { containers: [{ name: 'c', image: 'busybox:latest', command: ['sleep', '100000'] }] } },
  },
};

const pool = { apiVersion: 'sample.fast.io/v1alpha1', kind: 'Ips', metadata: { name: 'cpu-bench' }, spec: { subnet: '10.244.0.0/16', ips: ['10.244.32.0/19'] } };

const env0 = environmentLine();
execFileSync('kubectl', ['--kubeconfig', lab.hostKubeconfig, 'apply', '-f', '-'], { input: JSON.stringify(pool) });
const c0 = agentCpuMs();
let t = performance.now();
execFileSync('kubectl', ['--kubeconfig', lab.hostKubeconfig, 'apply', '-f', '-'], { input: JSON.stringify(deployment) });
await until(`${flags.pods} pods Running`, () => runningWithIp() === flags.pods, 300_000);
const upS = (performance.now() - t) / 1000;
const c1 = agentCpuMs();
t = performance.now();
kubectl('delete', 'deployment', 'cpu-bench');
await until('all pods gone', () => podCount() === 0);
const downS = (performance.now() - t) / 1000;
await new Promise((r) => setTimeout(r, 2000)); // DELs still finishing after the API objects are gone
const c2 = agentCpuMs();

console.log(`Environment: ${env0}; ${agents.length} agents; at the end: ${environmentLine()}\n`);
console.log(table(['phase', 'pods', 'seconds', 'agents CPU (ms)', 'agent CPU per pod (ms)'], [
  ['create to all Running', String(flags.pods), fmt(upS, 1), fmt(c1 - c0, 0), fmt((c1 - c0) / flags.pods, 1)],
  ['delete to all gone (+2 s)', String(flags.pods), fmt(downS, 1), fmt(c2 - c1, 0), fmt((c2 - c1) / flags.pods, 1)],
]));
log('done');
