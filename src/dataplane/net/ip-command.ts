// Netlink work through iproute2 in batches, for the code that still configures the node
// this way (cross-node networking: the overlay device, routes to remote pods and nodes,
// coalesced into one batch per cluster-map change; src/dataplane/net/cross-node.ts).
//
// Pod wiring no longer uses it: CNI ADD/DEL are on the hot path, and the two `ip`
// processes forked per ADD from the ~150 MB agent cost ~10 ms of wall time and ~10 ms of CPU
// per pod (bench/pod-wiring.ts), so pod-link.ts speaks rtnetlink in-process (./netlink; docs/architecture.md
// "Netlink"). Moving the cross-node batches to ./netlink too is possible with the same
// module (routes are already there); they are not per CNI call, so it was not done here.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

// Absolute paths, resolved once: every spawn would otherwise walk PATH (~0.3 ms each, measured).
const IP = findExecutable('ip', ['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
const NSENTER = findExecutable('nsenter', ['/usr/bin', '/bin', '/usr/sbin', '/sbin']);
const NAMED_NETNS_DIRS = ['/var/run/netns/', '/run/netns/'];

function findExecutable(name: string, dirs: string[]): string {
  for (const d of dirs) if (fs.existsSync(path.join(d, name))) return path.join(d, name);
  return name;
}

/**
 * The process to run: `ip` itself for a named namespace (`ip -n NAME`, one exec less than
 * nsenter, ~0.7 ms measured), nsenter for any other namespace path, plain `ip` for our own.
 */
function command(ipArgs: string[], netnsPath?: string): [string, string[]] {
  if (!netnsPath) return [IP, ipArgs];
  const dir = NAMED_NETNS_DIRS.find((d) => netnsPath.startsWith(d));
  const name = dir ? netnsPath.slice(dir.length) : '';
  if (name && !name.includes('/')) return [IP, ['-n', name, ...ipArgs]];
  return [NSENTER, [`--net=${netnsPath}`, '--', IP, ...ipArgs]];
}

export class IpCommandError extends Error {
  constructor(readonly commands: string[], readonly stderr: string) {
    super(`ip failed: ${stderr.trim() || 'unknown error'} [${commands.join(' ; ')}]`);
    this.name = 'IpCommandError';
  }
}

export interface IpOptions {
  /** Run inside the network namespace at this path (nsenter), instead of our own. */
  netnsPath?: string;
  /** Ask for JSON output (only `show`-style commands print anything). */
  json?: boolean;
  /** Keep going after a failing line (used for best-effort cleanup). */
  force?: boolean;
}

/** A command as argv words (preferred: words are quoted for the batch) or a plain line. */
export type IpCommand = string | string[];

/**
 * One word of a batch line. The batch reader cuts lines at `#` even inside quotes, so a
 * word holding `#` (or a newline, or both quote kinds) cannot go through a batch at all.
 */
function batchWord(w: string): string | undefined {
  if (/[#\n\r\0]/.test(w) || (w.includes("'") && w.includes('"'))) return undefined;
  if (/^[A-Za-z0-9_.:\/@+=,-]+$/.test(w)) return w;
  return w.includes("'") ? `"${w}"` : `'${w}'`;
}

function batchLine(c: IpCommand): string | undefined {
  if (typeof c === 'string') return c;
  const words = c.map(batchWord);
  return words.every((w) => w !== undefined) ? words.join(' ') : undefined;
}

/** Runs several `ip` commands in one process; resolves with stdout. */
export async function ipBatch(commands: IpCommand[], opts: IpOptions = {}): Promise<string> {
  const lines = commands.map(batchLine);
  if (lines.every((l) => l !== undefined)) return runBatch(lines as string[], opts);
  // Rare names the batch syntax cannot carry: one process per command, argv as given.
  let out = '';
  for (const c of commands) out += await runArgv(typeof c === 'string' ? c.split(/\s+/) : c, opts);
  return out;
}

function runArgv(words: string[], opts: IpOptions): Promise<string> {
  const ipArgs = [...(opts.json ? ['-j'] : []), ...words];
  const [file, args] = command(ipArgs, opts.netnsPath);
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && !opts.force) reject(new IpCommandError([words.join(' ')], stderr || err.message));
      else resolve(stdout.endsWith('\n') || stdout === '' ? stdout : stdout + '\n');
    });
  });
}

function runBatch(commands: string[], opts: IpOptions): Promise<string> {
  const ipArgs = [...(opts.json ? ['-j'] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'];
  const [file, args] = command(ipArgs, opts.netnsPath);
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new IpCommandError(commands, stderr || err.message));
      else resolve(stdout);
    });
    child.stdin!.end(commands.join('\n') + '\n');
  });
}

/** Deletes a link (its peer, addresses and routes go with it); false when it was not there. */
export async function deleteLink(name: string, opts: Omit<IpOptions, 'json'> = {}): Promise<boolean> {
  try {
    await ipBatch([['link', 'del', 'dev', name]], opts);
    return true;
  } catch (err) {
    if (err instanceof IpCommandError && /Cannot find device|does not exist/.test(err.stderr)) return false;
    throw err;
  }
}

/** One `ip` command with JSON output, parsed. */
export async function ipJson<T = unknown>(command: IpCommand, opts: Omit<IpOptions, 'json'> = {}): Promise<T> {
  const out = await ipBatch([command], { ...opts, json: true });
  return lastJsonLine(out) as T;
}

/** `ip -j -batch` prints one JSON document per show command; we want the last. */
export function lastJsonLine(out: string): unknown {
  const lines = out.split('\n').filter((l) => l.trim().length > 0);
  if (lines.length === 0) return [];
  return JSON.parse(lines[lines.length - 1]!);
}
