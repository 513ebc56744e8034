// A long-lived helper process inside a node namespace that executes CNI plugins the way a
// runtime does and times only the plugin process (fork+exec to exit). Keeping it alive
// means the measurement contains neither nsenter nor a Node.js start.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as path from 'node:path';
import { REPO } from '../../test/helpers/node-harness.js';
import { onCleanup } from './cleanup.js';

const WORKER = path.join(REPO, 'bench', 'lib', 'invoke-worker.ts');

export interface Invocation {
  ms: number;
  status: number;
  stdout: string;
  stderr: string;
  json?: any;
}

export class Invoker {
  private child: ChildProcess;
  private nextId = 1;
  private waiting = new Map<number, (r: Invocation) => void>();
  private ready: Promise<void>;
  private dropCleanup: () => void;

  constructor(netnsPath: string) {
    // nsenter --net only: same mount namespace, so /var/run/netns/* and the agent's
    // socket look exactly as they do to the agent.
    this.child = spawn('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '--import', 'tsx', WORKER], {
      cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.dropCleanup = onCleanup('invoke worker', () => this.close());
    const lines = createInterface({ input: this.child.stdout!, terminal: false });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`invoke worker exited ${code}`)));
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; id: number; ns: number; status: number; stdout: string; stderr: string; error?: string };
        if (msg.ready) return resolve();
        const done = this.waiting.get(msg.id);
        this.waiting.delete(msg.id);
        let json: any;
        try { json = msg.stdout ? JSON.parse(msg.stdout) : undefined; } catch { /* not JSON */ }
        done?.({ ms: msg.ns / 1e6, status: msg.status, stdout: msg.stdout, stderr: msg.stderr + (msg.error ?? ''), json });
      });
    });
  }

  async start(): Promise<this> {
    await this.ready;
    return this;
  }

  /** Executes `file` with exactly `env` (plus PATH) and `input` on stdin. */
  async run(file: string, env: Record<string, string | undefined>, input: string | object, args: string[] = []): Promise<Invocation> {
    await this.ready;
    const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
    for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
    const id = this.nextId++;
    const result = new Promise<Invocation>((resolve) => this.waiting.set(id, resolve));
    this.child.stdin!.write(JSON.stringify({ id, file, args, env: cleanEnv, input: typeof input === 'string' ? input : JSON.stringify(input) }) + '\n');
    return result;
  }

  async close(): Promise<void> {
    this.dropCleanup();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}
