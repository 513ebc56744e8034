// Lab processes run detached (their own process group), logging to files in the lab
// directory, so `fast lab up` can return and `fast lab down` can stop them later.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { LabProcess } from './lab-state.js';

export interface StartOptions {
  role: string;
  command: string;
  args: string[];
  log: string;
  /** Run inside this network namespace (nsenter keeps the mount namespace, so bpffs mounts persist). */
  netns?: string;
  env?: NodeJS.ProcessEnv;
}

export function startDetached(o: StartOptions): LabProcess {
  const out = fs.openSync(o.log, 'a');
  const [cmd, args] = o.netns ? ['nsenter', [`--net=/var/run/netns/${o.netns}`, '--', o.command, ...o.args]] : [o.command, o.args];
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...o.env } });
  child.unref();
  fs.closeSync(out);
  return { role: o.role, pid: child.pid!, log: o.log, start: { command: o.command, args: o.args, netns: o.netns } };
}

/** Starts a recorded process again (after it was stopped or killed). */
export function restartDetached(p: LabProcess): LabProcess {
  if (!p.start) throw new Error(`${p.role} has no start record`);
  return startDetached({ role: p.role, log: p.log, ...p.start });
}

/** A zombie (exited, not yet reaped by init) counts as gone: it holds nothing any more. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** SIGTERM the process group, then SIGKILL whatever is still there after a grace period. */
export async function stopProcess(p: LabProcess, graceMs = 3000): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try { process.kill(-p.pid, s); } catch { try { process.kill(p.pid, s); } catch { /* gone */ } }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(p.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(p.pid)) signal('SIGKILL');
}
