// A whole lab for end-to-end tests: `fast lab up` in-process with its own name, directory
// and API port (so labs of different test files never collide), helpers to drive it
// with the real kubectl, and `down()` that removes everything, also after a failure.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { labUp, waitFor } from '../../src/lab/lab-up.js';
import { labDown } from '../../src/lab/lab-down.js';
import { readState, writeState, podNetnsPrefix, type LabState, type LabProcess } from '../../src/lab/lab-state.js';
import { stopProcess, restartDetached, isAlive } from '../../src/lab/processes.js';
import { podNetnsName } from '../../src/lab/kubelet/sandbox-store.js';
import { REPO } from './node-harness.js';

export interface LabPod {
  namespace: string;
  name: string;
  uid: string;
  ip?: string;
  node?: string;
  phase?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface TestLabOptions {
  nodes?: number;
  mode?: 'overlay' | 'native';
  /** Lab name: namespaces are <name>-… and <name>p-…; must start with "flab". */
  name?: string;
  port?: number;
  quiet?: boolean;
}

export class TestLab {
  private constructor(public state: LabState) {}

  static async up(o: TestLabOptions = {}): Promise<TestLab> {
    const name = o.name ?? `flab${process.pid % 10000}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    fs.rmSync(dir, { recursive: true });
    const port = o.port ?? 20000 + (process.pid % 20000);
    try {
      const state = await labUp({ name, dir, nodes: o.nodes ?? 2, apiPort: port, mode: o.mode ?? 'overlay', progress: (m) => { if (!o.quiet) process.stderr.write(`# lab: ${m}\n`); } });
      return new TestLab(state);
    } catch (err) {
      await labDown(dir, () => undefined, name);
      throw err;
    }
  }

  get kubeconfig(): string { return this.state.hostKubeconfig; }

  kubectl(...args: string[]): string {
    return execFileSync('kubectl', ['--kubeconfig', this.kubeconfig, ...args], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  }

  /** kubectl with stdin (e.g. `apply -f -`). */
  kubectlIn(input: string, ...args: string[]): string {
    return execFileSync('kubectl', ['--kubeconfig', this.kubeconfig, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  }

  json<T = any>(...args: string[]): T {
    return JSON.parse(this.kubectl(...args, '-o', 'json')) as T;
  }

  pods(selector?: string, namespace = 'default'): LabPod[] {
    const list = this.json<{ items: any[] }>('get', 'pods', '-n', namespace, ...(selector ? ['-l', selector] : []));
    return list.items.map((p) => ({
      namespace: p.metadata.namespace, name: p.metadata.name, uid: p.metadata.uid, ip: p.status?.podIP, node: p.spec?.nodeName,
      phase: p.status?.phase, labels: p.metadata.labels ?? {}, annotations: p.metadata.annotations ?? {},
    }));
  }

  async waitForRunning(selector: string, count: number, namespace = 'default', timeoutMs = 60000): Promise<LabPod[]> {
    let pods: LabPod[] = [];
    await waitFor(`${count} pods ${selector} Running`, () => {
      pods = this.pods(selector, namespace).filter((p) => p.phase === 'Running' && p.ip);
      return pods.length >= count;
    }, timeoutMs, () => this.kubectl('get', 'pods', '-A', '-o', 'wide') + this.kubectl('get', 'events', '-A'));
    return pods;
  }

  podNetns(pod: LabPod): string {
    return podNetnsName(pod.uid, podNetnsPrefix(this.state.name));
  }

  /** Runs a command inside a pod's network namespace. */
  exec(pod: LabPod, cmd: string[], timeoutMs = 30000): { status: number; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', this.podNetns(pod), ...cmd], { encoding: 'utf8', timeout: timeoutMs });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  ping(from: LabPod, to: string, count = 1): boolean {
    return this.exec(from, ['ping', '-c', String(count), '-W', '2', to]).status === 0;
  }

  /** fast-ctl on a node, reading that node's pins and asking its agent. */
  ctl(node: string, ...args: string[]): string {
    const n = this.node(node);
    return execFileSync('nsenter', [`--net=/var/run/netns/${n.netns}`, '--', process.execPath, path.join(REPO, 'dist/src/ctl/main.js'), '--config', path.join(n.dir, 'agent.json'), ...args], { encoding: 'utf8' });
  }

  node(name: string) {
    const n = this.state.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  process(role: string): LabProcess {
    const p = this.state.processes.find((x) => x.role === role);
    if (!p) throw new Error(`no process ${role}`);
    return p;
  }

  /** Stops a lab process (SIGTERM, or SIGKILL at once with kill=true). */
  async stop(role: string, kill = false): Promise<void> {
    const p = this.process(role);
    if (kill) {
      try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
      await waitFor(`${role} gone`, () => !isAlive(p.pid), 5000);
    } else {
      await stopProcess(p);
    }
  }

  /** Starts a stopped process again and records its new pid (so `down` stops it). */
  start(role: string): void {
    const i = this.state.processes.findIndex((x) => x.role === role);
    // A killed agent leaves its ready file: remove it so waitForAgent() waits for the new one.
    if (role.startsWith('agent/')) fs.rmSync(path.join(this.node(role.slice(6)).stateDir, 'ready'), { force: true });
    this.state.processes[i] = restartDetached(this.state.processes[i]!);
    writeState(this.state);
  }

  async waitForAgent(node: string): Promise<void> {
    const n = this.node(node);
    await waitFor(`agent on ${node} ready`, () => fs.existsSync(path.join(n.stateDir, 'ready')), 30000);
  }

  async down(): Promise<void> {
    await labDown(this.state.dir, () => undefined, this.state.name);
  }

  /** Namespaces, processes, mounts and files left by this lab (should be none after down). */
  debris(): string[] {
    const out: string[] = [];
    const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${this.state.name}-`) || n.startsWith(podNetnsPrefix(this.state.name)));
    out.push(...ns.map((n) => `netns ${n}`));
    out.push(...this.state.processes.filter((p) => isAlive(p.pid)).map((p) => `process ${p.role} ${p.pid}`));
    out.push(...fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(this.state.dir)).map((l) => `mount ${l}`));
    if (fs.existsSync(this.state.dir)) out.push(`dir ${this.state.dir}`);
    return out;
  }

  reload(): void {
    this.state = readState(this.state.dir) ?? this.state;
  }
}
