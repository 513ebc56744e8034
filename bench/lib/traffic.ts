// Traffic tools inside pod namespaces: long-running servers (iperf3, sockperf) that are
// killed by pid on cleanup, and one-shot clients whose output is parsed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { TestNetns } from '../../test/helpers/netns.js';
import { onCleanup } from './cleanup.js';

export class Server {
  private child: ChildProcess;
  private out = '';
  private drop: () => void;

  /** `ip netns exec` execs the tool itself, so the pid we hold is the server's. */
  constructor(readonly ns: TestNetns, argv: string[], private port: number, private proto: 'tcp' | 'udp') {
    this.child = spawn('ip', ['netns', 'exec', ns.name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => (this.out += d));
    this.child.stderr!.on('data', (d) => (this.out += d));
    this.drop = onCleanup(`${argv[0]} server in ${ns.name}`, () => this.stop());
  }

  async ready(timeoutMs = 5000): Promise<this> {
    const deadline = Date.now() + timeoutMs;
    while (!this.listening()) {
      if (this.child.exitCode !== null) throw new Error(`server exited ${this.child.exitCode}: ${this.out}`);
      if (Date.now() > deadline) throw new Error(`server not ready: ${this.out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this;
  }

  /** Ready once its socket is bound (tools buffer their banners when not on a terminal). */
  private listening(): boolean {
    const r = spawnSync('ip', ['netns', 'exec', this.ns.name, 'ss', '-Hn', this.proto === 'tcp' ? '-lt' : '-lu', `sport = :${this.port}`], { encoding: 'utf8' });
    return r.status === 0 && r.stdout.trim().length > 0;
  }

  async stop(): Promise<void> {
    this.drop();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }
}

function run(ns: TestNetns, argv: string[], timeoutMs: number): string {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, ...argv], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} in ${ns.name} failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

/** Optional CPU pinning of clients and servers (taskset), `undefined` = scheduler's choice. */
export function pinned(cpu: number | undefined, argv: string[]): string[] {
  return cpu === undefined ? argv : ['taskset', '-c', String(cpu), ...argv];
}

export const IPERF_PORT = 5201;
export const SOCKPERF_TCP_PORT = 11111;
export const SOCKPERF_UDP_PORT = 11112;

export function iperfServer(ns: TestNetns, cpu?: number): Promise<Server> {
  return new Server(ns, pinned(cpu, ['iperf3', '-s', '-p', String(IPERF_PORT)]), IPERF_PORT, 'tcp').ready();
}

export function sockperfServers(ns: TestNetns, ip: string, cpu?: number): Promise<Server[]> {
  return Promise.all([
    new Server(ns, pinned(cpu, ['sockperf', 'sr', '--tcp', '-i', ip, '-p', String(SOCKPERF_TCP_PORT)]), SOCKPERF_TCP_PORT, 'tcp').ready(),
    new Server(ns, pinned(cpu, ['sockperf', 'sr', '-i', ip, '-p', String(SOCKPERF_UDP_PORT)]), SOCKPERF_UDP_PORT, 'udp').ready(),
  ]);
}

export interface IperfResult { gbps: number; retransmits: number; senderCpu: number; receiverCpu: number }

/** One TCP stream for `seconds` (after a 1 s omitted ramp-up); receiver-side rate. */
export function iperf(client: TestNetns, serverIp: string, seconds: number, cpu?: number): IperfResult {
  const out = run(client, pinned(cpu, ['iperf3', '-c', serverIp, '-p', String(IPERF_PORT), '-t', String(seconds), '-O', '1', '-J']), (seconds + 30) * 1000);
  const j = JSON.parse(out.slice(out.indexOf('{'))) as {
    end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits: number }; cpu_utilization_percent: { host_total: number; remote_total: number } };
  };
  return {
    gbps: j.end.sum_received.bits_per_second / 1e9,
    retransmits: j.end.sum_sent.retransmits,
    senderCpu: j.end.cpu_utilization_percent.host_total,
    receiverCpu: j.end.cpu_utilization_percent.remote_total,
  };
}

export interface PingPong { avgUs: number; p50Us: number; p99Us: number; count: number }

/** sockperf ping-pong for `seconds`, round-trip times in microseconds. */
export function sockperfPingPong(client: TestNetns, serverIp: string, proto: 'tcp' | 'udp', seconds: number, cpu?: number): PingPong {
  const port = proto === 'tcp' ? SOCKPERF_TCP_PORT : SOCKPERF_UDP_PORT;
  const out = run(client, pinned(cpu, ['sockperf', 'pp', ...(proto === 'tcp' ? ['--tcp'] : []), '-i', serverIp, '-p', String(port), '-t', String(seconds), '--full-rtt', '-m', '64']), (seconds + 30) * 1000)
    .replace(/\x1b\[[0-9;]*m/g, '');
  const num = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`unexpected sockperf output: ${out}`);
    return Number(m[1]);
  };
  return {
    avgUs: num(/avg-rtt=([\d.]+)/),
    p50Us: num(/percentile 50\.000 =\s*([\d.]+)/),
    p99Us: num(/percentile 99\.000 =\s*([\d.]+)/),
    count: num(/Total (\d+) observations/),
  };
}
