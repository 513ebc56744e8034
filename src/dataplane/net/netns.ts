// Network namespace helpers.
import * as fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { libcCalls } from '../bpf/libbpf.js';

const run = promisify(execFile);
const CLONE_NEWNET = 0x40000000;

const NSFS_MAGIC = 0x6e736673;

/** True only for a network namespace handle (a bind mount of nsfs or /proc/PID/ns/net). */
export function netnsExists(path: string): boolean {
  try {
    return fs.statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Runs a synchronous function with the calling (main) thread switched into another
 * network namespace, and switches back even if it throws. Only synchronous code may
 * run inside: setns() is per thread and the event loop must not observe the switch.
 */
export function withNetnsSync<T>(path: string, fn: () => T): T {
  const self = fs.openSync('/proc/thread-self/ns/net', 'r');
  const target = fs.openSync(path, 'r');
  try {
    if (libcCalls.setns(target, CLONE_NEWNET) !== 0) throw new Error(`setns ${path} failed`);
    try {
      return fn();
    } finally {
      if (libcCalls.setns(self, CLONE_NEWNET) !== 0) {
        // Continuing in the wrong namespace would corrupt everything after this point.
        process.stderr.write('fatal: cannot return to the original network namespace\n');
        process.exit(70);
      }
    }
  } finally {
    fs.closeSync(self);
    fs.closeSync(target);
  }
}

/** Named namespaces under /var/run/netns (tests and the lab use these). */
export async function addNamedNetns(name: string): Promise<string> {
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return `/var/run/netns/${name}`;
}

export async function deleteNamedNetns(name: string): Promise<void> {
  await run('ip', ['netns', 'del', name]).catch(() => undefined);
}
