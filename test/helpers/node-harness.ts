// A whole Fast node inside namespaces the test creates: a node namespace with an
// address, a private bpffs, a state directory, the real agent (compiled, from dist/)
// and the real fast-cni executable. Everything is removed in destroy(), also on failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TestNetns, uniqueName, sh } from './netns.js';
import { removeBpffs } from '../../src/dataplane/net/bpffs.js';

export const REPO = path.resolve(new URL('../..', import.meta.url).pathname);
export const FAST_CNI = path.join(REPO, 'cni', 'fast-cni');
export const AGENT = path.join(REPO, 'dist', 'src', 'agent', 'main.js');
export const CTL = path.join(REPO, 'dist', 'src', 'ctl', 'main.js');
export const PROBE = path.join(REPO, 'dist', 'src', 'tools', 'net-probe.js');

export interface CniCall {
  exitCode: number;
  stdout: string;
  json?: any;
}

export interface NodeOptions {
  pools?: Array<{ name: string; subnet: string; ips: string[] }>;
  mtu?: number;
  nodeAddress?: string;
}

export class TestNode {
  readonly ns: TestNetns;
  readonly dir: string;
  readonly configPath: string;
  readonly socketPath: string;
  readonly bpffsDir: string;
  readonly stateDir: string;
  readonly pendingDir: string;
  readonly nodeAddress: string;
  agent?: ChildProcess;
  agentLog = '';
  readonly pods: TestNetns[] = [];

  constructor(opts: NodeOptions = {}) {
    this.ns = new TestNetns(uniqueName('fnode'));
    this.nodeAddress = opts.nodeAddress ?? '192.168.77.1';
    this.ns.ip('addr', 'add', `${this.nodeAddress}/32`, 'dev', 'lo');
    this.ns.exec('sysctl', '-qw', 'net.ipv4.ip_forward=1');
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-node-'));
    this.socketPath = path.join(this.dir, 'agent.sock');
    this.bpffsDir = path.join(this.dir, 'bpffs');
    this.stateDir = path.join(this.dir, 'state');
    this.pendingDir = path.join(this.dir, 'pending-del');
    this.configPath = path.join(this.dir, 'agent.json');
    fs.writeFileSync(this.configPath, JSON.stringify({
      nodeName: this.ns.name, socketPath: this.socketPath, stateDir: this.stateDir, bpffsDir: this.bpffsDir,
      pendingDeleteDir: this.pendingDir, mtu: opts.mtu ?? 1500, logLevel: 'debug', releaseCooldownSeconds: 0,
      pools: opts.pools ?? [{ name: 'default-ips', subnet: '10.77.0.0/16', ips: ['10.77.0.10-10.77.0.200'] }],
    }));
  }

  /** Starts the agent inside the node namespace (nsenter: same mount namespace, so the
   *  bpffs mount outlives the agent as it does on a real node). */
  async startAgent(): Promise<void> {
    const readyFile = path.join(this.stateDir, 'ready');
    fs.rmSync(readyFile, { force: true });
    const child = spawn('nsenter', [`--net=${this.ns.path}`, '--', process.execPath, AGENT, '--config', this.configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d) => (this.agentLog += d.toString()));
    this.agent = child;
    const deadline = Date.now() + 15000;
    while (!fs.existsSync(readyFile)) {
      if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode}: ${this.agentLog}`);
      if (Date.now() > deadline) throw new Error(`agent not ready: ${this.agentLog}`);
      await sleep(20);
    }
  }

  async stopAgent(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const a = this.agent;
    if (!a || a.exitCode !== null || a.signalCode !== null) return;
    const exited = new Promise((r) => a.once('exit', r));
    a.kill(signal);
    await exited;
    this.agent = undefined;
  }

  conf(version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { cniVersion: version, name: 'fast-test', type: 'fast', agentSocket: this.socketPath, pendingDeleteDir: this.pendingDir, ...extra };
  }

  /** Runs the real fast-cni the way a runtime does (inside the node's namespace). */
  cni(env: Record<string, string | undefined>, stdin: string | object): CniCall {
    const input = typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
    const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
    const r = spawnSync('nsenter', [`--net=${this.ns.path}`, '--', FAST_CNI], { input, env: cleanEnv, encoding: 'utf8' });
    let json: any;
    try { json = r.stdout ? JSON.parse(r.stdout) : undefined; } catch { /* not JSON */ }
    return { exitCode: r.status ?? -1, stdout: r.stdout, json };
  }

  addPodNetns(): TestNetns {
    const p = new TestNetns(uniqueName('fpod'));
    this.pods.push(p);
    return p;
  }

  /** ADD through fast-cni for a new pod namespace; returns the pod's address. */
  addPod(version = '1.1.0', containerId = uniqueName('ctr'), name = containerId): { pod: TestNetns; ip: string; containerId: string; result: any } {
    const pod = this.addPodNetns();
    const r = this.cni(envFor('ADD', containerId, pod.path, name), this.conf(version));
    if (r.exitCode !== 0) throw new Error(`ADD failed: ${r.stdout}\n${this.agentLog.slice(-2000)}`);
    return { pod, ip: (r.json.ips[0].address as string).split('/')[0]!, containerId, result: r.json };
  }

  hostLinks(): string[] {
    return (JSON.parse(this.ns.ip('-j', 'link', 'show')) as Array<{ ifname: string }>).map((l) => l.ifname).filter((n) => n.startsWith('fst'));
  }

  ctl(...args: string[]): string {
    return sh('nsenter', [`--net=${this.ns.path}`, '--', process.execPath, CTL, '--config', this.configPath, ...args]);
  }

  allocationsFile(): Array<{ address: string; releasedAt?: string }> {
    const f = path.join(this.stateDir, 'ipam-allocations.json');
    return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : [];
  }

  async destroy(): Promise<void> {
    await this.stopAgent('SIGKILL').catch(() => undefined);
    for (const p of this.pods) p.remove();
    this.ns.remove();
    removeBpffs(this.bpffsDir);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function envFor(command: string, containerId: string, netns: string | undefined, podName = containerId, ifName = 'eth0'): Record<string, string | undefined> {
  return {
    CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: ifName, CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${podName};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function ping(from: TestNetns, to: string, count = 1): boolean {
  return spawnSync('ip', ['netns', 'exec', from.name, 'ping', '-c', String(count), '-W', '1', '-i', '0.2', to], { encoding: 'utf8' }).status === 0;
}
