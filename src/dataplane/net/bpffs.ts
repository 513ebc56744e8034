// Fast pins its maps under a per-node directory. That directory must live on a bpffs:
// if it does not, we mount a private bpffs instance there (several lab nodes can then
// share one kernel without seeing each other's pins).
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';

const BPF_FS_MAGIC = 0xcafe4a11;

export function isBpffs(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

export function ensureBpffs(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (isBpffs(dir)) return;
  execFileSync('mount', ['-t', 'bpf', 'bpf', dir]);
}

/** Unmounts a bpffs we mounted (pins vanish with it); used by tests and `fast lab down`. */
export function removeBpffs(dir: string): void {
  if (isBpffs(dir)) {
    try { execFileSync('umount', [dir]); } catch { execFileSync('umount', ['-l', dir]); }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
