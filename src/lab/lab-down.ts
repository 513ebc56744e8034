// `fast lab down`: removes everything a lab made — processes, namespaces (and the
// links, routes, nftables/iptables rules inside them), bpffs mounts, files — also when
// `up` crashed halfway. Only namespaces named flab* are touched.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readState, podNetnsPrefix, DEFAULT_LAB_NAME, type LabState } from './lab-state.js';
import { stopProcess, isAlive } from './processes.js';
import { deleteLabNamespaces } from './topology.js';
import { removeBpffs } from '../dataplane/net/bpffs.js';

export interface DownReport {
  processes: number;
  namespaces: string[];
  mounts: number;
}

export async function labDown(dir: string, progress: (m: string) => void, labName?: string): Promise<DownReport> {
  const state = readState(dir);
  const name = state?.name ?? labName ?? DEFAULT_LAB_NAME;
  const report: DownReport = { processes: 0, namespaces: [], mounts: 0 };
  if (state) {
    // Kubelets and agents first, then the control plane: nothing restarts what we remove.
    for (const group of [0, 1, 2, 3]) {
      const alive = state.processes.filter((p) => rank(p.role) === group && isAlive(p.pid));
      await Promise.all(alive.map((p) => stopProcess(p)));
      report.processes += alive.length;
    }
    progress(`stopped ${report.processes} processes`);
  }
  report.namespaces = deleteLabNamespaces([`${name}-`, podNetnsPrefix(name)], state?.namespaces ?? []);
  progress(`removed ${report.namespaces.length} namespaces`);
  report.mounts = unmountUnder(dir, state);
  fs.rmSync(dir, { recursive: true, force: true });
  progress(`removed ${dir}`);
  return report;
}

function rank(role: string): number {
  if (role.startsWith('kubelet')) return 0;
  if (role.startsWith('agent')) return 1;
  if (role === 'apiserver') return 3;
  return 2;
}

/** bpffs instances the agents mounted under the lab directory. */
function unmountUnder(dir: string, state: LabState | undefined): number {
  const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(path.resolve(dir) + '/'));
  for (const n of state?.nodes ?? []) if (!mounts.includes(n.bpffsDir)) mounts.push(n.bpffsDir);
  let count = 0;
  for (const m of mounts.sort().reverse()) {
    try {
      removeBpffs(m);
      count++;
    } catch { /* not mounted */ }
  }
  return count;
}
