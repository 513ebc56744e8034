// Test namespaces: every test makes its own and removes it, even when it fails.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}${randomBytes(4).toString('hex')}`;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class TestNetns {
  readonly path: string;
  constructor(readonly name: string) {
    sh('ip', ['netns', 'add', name]);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    this.path = `/var/run/netns/${name}`;
  }
  ip(...args: string[]): string {
    return sh('ip', ['-n', this.name, ...args]);
  }
  exec(cmd: string, ...args: string[]): string {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }
  ifindex(dev: string): number {
    return (JSON.parse(this.ip('-j', 'link', 'show', 'dev', dev)) as Array<{ ifindex: number }>)[0]!.ifindex;
  }
  mac(dev: string): string {
    return (JSON.parse(this.ip('-j', 'link', 'show', 'dev', dev)) as Array<{ address: string }>)[0]!.address;
  }
  remove(): void {
    if (!this.name) return;
    try { sh('ip', ['netns', 'del', this.name]); } catch { /* already gone */ }
  }
}
