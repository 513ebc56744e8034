// The three set-ups the benchmarks compare, all in namespaces created here and removed
// through cleanup.ts even on failure or Ctrl-C:
//  - a Fast node: test/helpers' TestNode (node namespace, real agent, real fast-cni);
//  - a bridge node: a node namespace made the same way, with the reference `bridge` +
//    `host-local` plugins from /usr/lib/cni (host-local's state in a temporary folder);
//  - a plain veth pair between two namespaces (the limit for same-node traffic).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TestNode, envFor } from '../../test/helpers/node-harness.js';
import { TestNetns } from '../../test/helpers/netns.js';
import { onCleanup } from './cleanup.js';

export const CNI_DIR = '/usr/lib/cni';
export const BRIDGE = path.join(CNI_DIR, 'bridge');
/** The newest version the Debian reference plugins (1.1.x) accept; both sides use it. */
export const CNI_VERSION = '1.0.0';

export interface Pod { pod: TestNetns; ip: string; containerId: string }

let counter = 0;
/** Unique per run without chance: test/helpers' uniqueName draws 2 random bytes, which
 *  collide (birthday) once a run makes a few hundred names. */
export function benchName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}-${(++counter).toString(36)}`;
}

/** A pod namespace removed on cleanup (a bench's own, not a TestNode's list). */
export function podNetns(prefix: string): TestNetns {
  const ns = new TestNetns(benchName(prefix));
  onCleanup(`pod namespace ${ns.name}`, () => ns.remove());
  return ns;
}

/** A Fast node with the agent running; the agent logs at `info` as in production
 *  (TestNode's default is `debug`), the pool is sized for `pods` pods. */
export async function startFastNode(pods = 200, mtu = 1500): Promise<TestNode> {
  const hosts = Math.max(pods + 20, 250);
  const third = Math.ceil((hosts + 10) / 256);
  const node = new TestNode({ mtu, pools: [{ name: 'default-ips', subnet: '10.77.0.0/16', ips: [`10.77.0.10-10.77.${third}.250`] }] });
  onCleanup(`fast node ${node.ns.name}`, () => node.destroy());
  const cfg = JSON.parse(fs.readFileSync(node.configPath, 'utf8')) as Record<string, unknown>;
  cfg.logLevel = 'info';
  fs.writeFileSync(node.configPath, JSON.stringify(cfg));
  await node.startAgent();
  return node;
}

/** With attachMode auto the pods move to tcx ~1 s after the last ADD: measure after that. */
export async function settledAttachments(node: Pick<TestNode, 'ctl'>, ips: string[]): Promise<string[]> {
  const read = () => {
    const rows = JSON.parse(node.ctl('endpoint', 'list', '-o', 'json')) as Array<{ ip: string; attach: string }>;
    return ips.map((ip) => rows.find((r) => r.ip === ip)?.attach ?? 'none');
  };
  const waiting = () => (JSON.parse(node.ctl('status', '-o', 'json')) as { attach?: { waitingForTcx?: number } }).attach?.waitingForTcx ?? 0;
  for (let i = 0; i < 100 && waiting() > 0; i++) await new Promise((r) => setTimeout(r, 100));
  return read();
}

/** The node namespace for the reference plugins, made the way TestNode makes its own. */
export class BridgeNode {
  readonly ns: TestNetns;
  readonly dir: string;
  readonly pods: TestNetns[] = [];
  readonly bridgeName = 'fbench0';

  constructor(readonly subnet = '10.88.0.0/16', readonly mtu = 1500) {
    this.ns = new TestNetns(benchName('bnode'));
    onCleanup(`bridge node ${this.ns.name}`, () => this.destroy());
    this.ns.ip('addr', 'add', '192.168.78.1/32', 'dev', 'lo');
    this.ns.exec('sysctl', '-qw', 'net.ipv4.ip_forward=1');
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-bench-bridge-'));
  }

  /** A usual bridge network: gateway on the bridge, no masquerade (Fast does none either). */
  conf(version = CNI_VERSION): Record<string, unknown> {
    return {
      cniVersion: version, name: 'bench-bridge', type: 'bridge', bridge: this.bridgeName,
      isGateway: true, ipMasq: false, mtu: this.mtu,
      ipam: { type: 'host-local', ranges: [[{ subnet: this.subnet }]], dataDir: path.join(this.dir, 'ipam') },
    };
  }

  addPodNetns(): TestNetns {
    const p = new TestNetns(benchName('bpod'));
    this.pods.push(p);
    return p;
  }

  /** ADD through the bridge plugin, run the way TestNode.cni runs fast-cni (not timed). */
  addPod(containerId = benchName('bctr')): Pod {
    const pod = this.addPodNetns();
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (const [k, v] of Object.entries(envFor('ADD', containerId, pod.path))) if (v !== undefined) env[k] = v;
    const r = spawnSync('nsenter', [`--net=${this.ns.path}`, '--', BRIDGE], { input: JSON.stringify(this.conf()), env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`bridge ADD failed: ${r.stdout}${r.stderr}`);
    const res = JSON.parse(r.stdout) as { ips: Array<{ address: string }> };
    return { pod, ip: res.ips[0]!.address.split('/')[0]!, containerId };
  }

  vethCount(): number {
    return (JSON.parse(this.ns.ip('-j', 'link', 'show', 'type', 'veth')) as unknown[]).length;
  }

  destroy(): void {
    for (const p of this.pods) p.remove();
    this.pods.length = 0;
    this.ns.remove();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Two namespaces joined by one veth pair, /24 addresses, nothing else: the limit. */
export class VethPair {
  readonly a: Pod;
  readonly b: Pod;

  constructor(mtu = 1500) {
    const na = new TestNetns(benchName('vpod'));
    let nb: TestNetns | undefined;
    onCleanup(`veth pair ${na.name}`, () => { na.remove(); nb?.remove(); });
    nb = new TestNetns(benchName('vpod'));
    na.ip('link', 'add', 'eth0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', nb.name);
    na.ip('addr', 'add', '10.99.0.1/24', 'dev', 'eth0');
    nb.ip('addr', 'add', '10.99.0.2/24', 'dev', 'eth0');
    na.ip('link', 'set', 'eth0', 'up');
    nb.ip('link', 'set', 'eth0', 'up');
    this.a = { pod: na, ip: '10.99.0.1', containerId: 'veth-a' };
    this.b = { pod: nb, ip: '10.99.0.2', containerId: 'veth-b' };
  }
}
