// The lab kubelet's record of pod sandboxes on its node (a sandbox is the pod's
// network namespace plus the container ID the CNI saw), kept on disk like a
// runtime's so a restarted kubelet can still tear down what it made.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';

export interface Sandbox {
  uid: string;
  namespace: string;
  name: string;
  netns: string;
  containerId: string;
  result?: unknown;
  createdAt: string;
}

export class SandboxStore {
  private readonly file: string;
  private readonly sandboxes = new Map<string, Sandbox>();

  constructor(stateDir: string) {
    fs.mkdirSync(stateDir, { recursive: true });
    this.file = path.join(stateDir, 'sandboxes.json');
    try {
      for (const s of JSON.parse(fs.readFileSync(this.file, 'utf8')) as Sandbox[]) this.sandboxes.set(s.uid, s);
    } catch { /* first start */ }
  }

  get(uid: string): Sandbox | undefined { return this.sandboxes.get(uid); }
  list(): Sandbox[] { return [...this.sandboxes.values()]; }

  put(s: Sandbox): void {
    this.sandboxes.set(s.uid, s);
    this.flush();
  }

  remove(uid: string): void {
    this.sandboxes.delete(uid);
    this.flush();
  }

  private flush(): void {
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.list()));
    fs.renameSync(tmp, this.file);
  }
}

/** Pod namespaces are named from the pod UID so `fast lab exec` can find them. */
export function podNetnsName(uid: string, prefix: string): string {
  return `${prefix}${createHash('sha256').update(uid).digest('hex').slice(0, 12)}`;
}

/** A fresh sandbox container ID per attempt, 64 hex characters like containerd's. */
export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}
