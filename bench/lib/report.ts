// Shared bits for the benchmarks: statistics, progress on stderr, markdown tables, the
// environment line, and flags.
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(samples: number[]): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(samples: number[]): number {
  return samples.reduce((a, b) => a + b, 0) / samples.length;
}

export function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

/** A markdown table; the first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length), 3));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  const sep = '|' + widths.map((w, i) => (i === 0 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|') + '|';
  return [line(header), sep, ...rows.map(line)].join('\n');
}

/** Progress lines on stderr; on a terminal the same line is rewritten. */
export function progress(msg: string, done = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${msg}${done ? '\n' : ''}`);
  else if (done || !msg.includes('\r')) process.stderr.write(msg + '\n');
}

export function log(msg: string): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  process.stderr.write(msg + '\n');
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return '?';
  }
}

export function debVersion(pkg: string): string {
  return tryRun('dpkg-query', ['-W', '-f=${Version}', pkg]);
}

/** One line describing the machine the numbers come from. */
export function environmentLine(extra: string[] = []): string {
  const cpu = os.cpus()[0]?.model ?? '?';
  return [
    `kernel ${os.release()}`,
    `${os.cpus().length} CPUs (${cpu})`,
    `Node.js ${process.version}`,
    `containernetworking-plugins ${debVersion('containernetworking-plugins')}`,
    ...extra,
    `load average ${loadAverage()}`,
    new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
  ].join(', ');
}

/** `--name value` / `--name=value` flags; a flag's type is its default's (number or
 *  string), and a string flag may be limited to `choices`. */
export function parseFlags<T extends Record<string, number | string>>(defaults: T, choices: Partial<Record<keyof T, string[]>> = {}, argv = process.argv.slice(2)): T {
  const out: Record<string, number | string> = { ...defaults };
  const known = () => Object.keys(defaults).map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ');
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) throw new Error(`unknown argument ${argv[i]} (flags: ${known()})`);
    const key = m[1]!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!(key in defaults)) throw new Error(`unknown flag --${m[1]} (flags: ${known()})`);
    const v = m[2] ?? argv[++i];
    if (v === undefined) throw new Error(`--${m[1]} needs a value`);
    if (typeof defaults[key] === 'number') {
      if (!Number.isFinite(Number(v))) throw new Error(`--${m[1]} needs a number`);
      out[key] = Number(v);
    } else {
      const allowed = choices[key as keyof T];
      if (allowed && !allowed.includes(v)) throw new Error(`--${m[1]} is one of ${allowed.join(', ')}`);
      out[key] = v;
    }
  }
  return out as T;
}

/** Numeric flags only (kept for the benchmarks that use it). */
export function numericFlags<T extends Record<string, number>>(defaults: T, argv = process.argv.slice(2)): T {
  return parseFlags(defaults, {}, argv);
}

/** The 1-minute load average: this machine is shared, so every result says how busy it was. */
export function loadAverage(): string {
  return os.loadavg()[0]!.toFixed(1);
}

/** The command line that produced a run, for the docs. */
export function commandLine(): string {
  const script = process.argv[1] ? process.argv[1].replace(process.cwd() + '/', '') : '?';
  return ['node', '--import', 'tsx', script, ...process.argv.slice(2)].join(' ');
}

/** A ratio column of a latency table: `stat` of each set-up over `stat` of `baseline`. */
export interface LatencyRatio<S extends string> {
  title: string;
  stat: 'p50Us' | 'avgUs';
  baseline: S;
}

/**
 * The round-trip table both pod benchmarks print: per protocol and set-up the median
 * p50/avg/p99 over repetitions (`stat` gives it), then the ratio columns.
 */
export function latencyTable<S extends string>(
  stat: (proto: 'tcp' | 'udp', s: S, k: 'p50Us' | 'avgUs' | 'p99Us') => number,
  setups: readonly S[],
  ratios: Array<LatencyRatio<S>>,
): string {
  const rows: string[][] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    for (const s of setups) {
      rows.push([`${proto.toUpperCase()} ${s}`, fmt(stat(proto, s, 'p50Us')), fmt(stat(proto, s, 'avgUs')), fmt(stat(proto, s, 'p99Us')),
        ...ratios.map((r) => fmt(stat(proto, s, r.stat) / stat(proto, r.baseline, r.stat), 3))]);
    }
  }
  return table(['protocol / set-up', 'RTT p50', 'RTT avg', 'RTT p99', ...ratios.map((r) => r.title)], rows);
}
