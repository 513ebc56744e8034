// The agent's record of every pod attachment on this node, one JSON file per
// attachment under <stateDir>/endpoints. It is what lets a restarted agent adopt
// the pods it already wired instead of rebuilding them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';

export interface Endpoint {
  containerId: string;
  ifName: string;
  netns: string;
  hostIfName: string;
  hostIfindex: number;
  hostMac: string;
  podIfindex: number;
  podMac: string;
  addresses: Array<{ address: string; pool: string; gateway: string }>;
  mtu: number;
  pod?: { namespace?: string; name?: string; uid?: string };
  createdAt: string;
}

export class EndpointStore {
  private readonly dir: string;
  private readonly byKey = new Map<string, Endpoint>();

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'endpoints');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(this.dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const ep = JSON.parse(fs.readFileSync(path.join(this.dir, f), 'utf8')) as Endpoint;
        this.byKey.set(endpointKey(ep.containerId, ep.ifName), ep);
      } catch {
        fs.rmSync(path.join(this.dir, f), { force: true }); // a torn write from a crash
      }
    }
  }

  get(containerId: string, ifName: string): Endpoint | undefined {
    return this.byKey.get(endpointKey(containerId, ifName));
  }

  list(): Endpoint[] {
    return [...this.byKey.values()];
  }

  /** Written atomically (temp file + rename) so a crash never leaves half a record. */
  put(ep: Endpoint): void {
    const file = this.fileFor(ep.containerId, ep.ifName);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(ep, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, file);
    this.byKey.set(endpointKey(ep.containerId, ep.ifName), ep);
  }

  remove(containerId: string, ifName: string): void {
    fs.rmSync(this.fileFor(containerId, ifName), { force: true });
    this.byKey.delete(endpointKey(containerId, ifName));
  }

  private fileFor(containerId: string, ifName: string): string {
    // Container IDs may be long enough to exceed a file name; the record holds the real key.
    return path.join(this.dir, `${createHash('sha256').update(endpointKey(containerId, ifName)).digest('hex').slice(0, 32)}.json`);
  }
}

export function endpointKey(containerId: string, ifName: string): string {
  return `${containerId}/${ifName}`;
}
