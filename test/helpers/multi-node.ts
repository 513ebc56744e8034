// Several Fast nodes on one underlay, all in namespaces the test creates:
//
//   underlay (fastul-*)        bridge br0: the underlay switch, with nftables counters on
//                              what crosses it (VXLAN packets per VNI, pod addresses seen
//                              in clear, IP fragments)
//   node namespaces (fnode-*)  eth0 on br0 with the node's underlay address /24, the real
//                              agent (standalone), pods added through the real fast-cni
//   external host (fastx-*)    eth0 on br0, an underlay address, no route to any pod
//
// The test drives the agents the way the cluster watch will: ctl requests that call
// NodeDatapath (cross-node-configure, remote-sync, remote-upsert, remote-delete).
//
// Names avoid the flab* prefix: `fast lab down` removes every flab* namespace, and a lab
// torn down while these tests run must not take their underlay with it.
import { spawn, spawnSync } from 'node:child_process';
import { TestNode, PROBE, sleep } from './node-harness.js';
import { TestNetns, uniqueName, sh } from './netns.js';
import { askAgent } from '../../src/ctl/agent-client.js';

export const UNDERLAY = '192.168.100';
export const EXTERNAL_IP = `${UNDERLAY}.100`;
export const POD_RANGE = '10.77.0.0/16';
export const UPLINK = 'eth0';

export interface LabPod {
  pod: TestNetns;
  ip: string;
  containerId: string;
}

export interface LabNode {
  index: number;
  node: TestNode;
  underlayIp: string;
  pods: LabPod[];
}

export interface LabOptions {
  nodes: number;
  /** MTU the agents give pods (overlay: the underlay MTU - 50). */
  podMtu: number;
  underlayMtu?: number;
  /** VNI counted separately on the wire (the one the nodes are configured with). */
  vni?: number;
  vxlanPort?: number;
}

export class MultiNodeLab {
  readonly lab: TestNetns;
  external?: TestNetns;
  readonly nodes: LabNode[] = [];

  private constructor(readonly opts: LabOptions) {
    this.lab = new TestNetns(uniqueName('fastul'));
  }

  /** Builds the whole lab; on any failure removes what it made and rethrows. */
  static async create(opts: LabOptions): Promise<MultiNodeLab> {
    const lab = new MultiNodeLab(opts);
    try {
      await lab.build();
      return lab;
    } catch (err) {
      await lab.destroy();
      throw err;
    }
  }

  private async build(): Promise<void> {
    const mtu = String(this.opts.underlayMtu ?? 1500);
    this.lab.ip('link', 'add', 'br0', 'mtu', mtu, 'type', 'bridge');
    this.lab.ip('link', 'set', 'br0', 'up');
    this.installWireCounters();
    for (let i = 1; i <= this.opts.nodes; i++) {
      const underlayIp = `${UNDERLAY}.${i}`;
      const node = new TestNode({
        nodeAddress: underlayIp, mtu: this.opts.podMtu,
        pools: [{ name: 'default-ips', subnet: POD_RANGE, ips: [`10.77.${i}.10-10.77.${i}.200`] }],
      });
      this.nodes.push({ index: i, node, underlayIp, pods: [] });
      // The harness puts the node address on lo; here it belongs to the uplink.
      node.ns.ip('addr', 'del', `${underlayIp}/32`, 'dev', 'lo');
      this.attach(node.ns, `n${i}`, `${underlayIp}/24`, mtu);
      // Strict reverse-path filtering: the paths must be symmetric to work at all.
      node.ns.exec('sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.conf.default.rp_filter=1');
      await node.startAgent();
    }
    this.external = new TestNetns(uniqueName('fastx'));
    this.attach(this.external, 'ext', `${EXTERNAL_IP}/24`, mtu);
  }

  /** A veth from the bridge into `ns` (named eth0 there), with an address. */
  private attach(ns: TestNetns, labEnd: string, cidr: string, mtu: string): void {
    this.lab.ip('link', 'add', labEnd, 'mtu', mtu, 'type', 'veth', 'peer', 'name', UPLINK, 'mtu', mtu, 'netns', ns.name);
    this.lab.ip('link', 'set', labEnd, 'master', 'br0', 'up');
    ns.ip('addr', 'add', cidr, 'dev', UPLINK);
    ns.ip('link', 'set', UPLINK, 'up');
  }

  private installWireCounters(): void {
    const vni = this.opts.vni ?? 1;
    const port = this.opts.vxlanPort ?? 8472;
    // VXLAN header: 8 bytes after the UDP header, VNI in bits 32..55 of it.
    const rules = `table bridge fastlab {
  counter vxlan_vni {}
  counter vxlan_other_vni {}
  counter pod_ip_in_clear {}
  counter fragments {}
  chain bridged {
    type filter hook forward priority 0; policy accept;
    udp dport ${port} @th,96,24 ${vni} counter name vxlan_vni
    udp dport ${port} @th,96,24 != ${vni} counter name vxlan_other_vni
    ip saddr ${POD_RANGE} counter name pod_ip_in_clear
    ip daddr ${POD_RANGE} counter name pod_ip_in_clear
    ip frag-off & 0x3fff != 0 counter name fragments
  }
}
`;
    const r = spawnSync('ip', ['netns', 'exec', this.lab.name, 'nft', '-f', '-'], { input: rules, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`lab nft: ${r.stderr}`);
  }

  /** Packets counted on the underlay bridge since the lab was built. */
  wireCounters(): Record<'vxlan_vni' | 'vxlan_other_vni' | 'pod_ip_in_clear' | 'fragments', number> {
    const out = JSON.parse(this.lab.exec('nft', '-j', 'list', 'counters', 'table', 'bridge', 'fastlab')) as { nftables: Array<{ counter?: { name: string; packets: number } }> };
    const c: Record<string, number> = {};
    for (const e of out.nftables) if (e.counter) c[e.counter.name] = e.counter.packets;
    return c as ReturnType<MultiNodeLab['wireCounters']>;
  }

  /** A ctl request to a node's agent (what the cluster watch will call in-process). */
  request<T = any>(n: LabNode, req: Record<string, unknown>): Promise<T> {
    return askAgent<T>(n.node.socketPath, req, 60000).catch((err: Error) => {
      throw new Error(`node ${n.index} ${String(req.op)}: ${err.message}`);
    });
  }

  configure(n: LabNode, extra: Record<string, unknown>): Promise<any> {
    return this.request(n, { op: 'cross-node-configure', uplink: UPLINK, nodeIp: n.underlayIp, podRanges: [POD_RANGE], ...extra });
  }

  addPod(n: LabNode): LabPod {
    const p = n.node.addPod();
    const pod = { pod: p.pod, ip: p.ip, containerId: p.containerId };
    n.pods.push(pod);
    return pod;
  }

  /** What node `n` should know: every other node's pods and the nodes themselves. */
  desiredRemotes(n: LabNode): Array<{ ip: string; nodeIp: string; kind: 'pod' | 'node' }> {
    return this.nodes.filter((o) => o !== n).flatMap((o) => [
      { ip: o.underlayIp, nodeIp: o.underlayIp, kind: 'node' as const },
      ...o.pods.map((p) => ({ ip: p.ip, nodeIp: o.underlayIp, kind: 'pod' as const })),
    ]);
  }

  async syncAll(): Promise<void> {
    for (const n of this.nodes) await this.request(n, { op: 'remote-sync', remotes: this.desiredRemotes(n) });
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) await n.node.destroy().catch(() => undefined);
    this.external?.remove();
    this.lab.remove();
  }
}

export function pingFrom(ns: TestNetns, to: string, count = 1, size?: number): boolean {
  const args = ['netns', 'exec', ns.name, 'ping', '-c', String(count), '-W', '2', '-i', '0.2', ...(size ? ['-s', String(size), '-M', 'do'] : []), to];
  return spawnSync('ip', args, { encoding: 'utf8' }).status === 0;
}

/** net-probe: a TCP echo server in `server`, `bytes` streamed from `client` and echoed back. */
export function tcpTransfer(client: TestNetns, server: TestNetns, serverIp: string, port: number, bytes = 100000): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    const srv = spawn('ip', ['netns', 'exec', server.name, process.execPath, PROBE, 'serve', String(port)], { stdio: ['ignore', 'pipe', 'ignore'] });
    let settled = false;
    srv.stdout!.once('data', () => {
      const r = spawnSync('ip', ['netns', 'exec', client.name, process.execPath, PROBE, 'send', serverIp, String(port), String(bytes)], { encoding: 'utf8', timeout: 60000 });
      settled = true;
      srv.kill();
      resolve({ ok: r.status === 0, out: `${r.stdout}${r.stderr}` });
    });
    srv.on('exit', () => {
      if (!settled) resolve({ ok: false, out: 'server exited' });
    });
  });
}

/** Connects from `client` to a server in `server` that answers with the peer address it sees. */
export function seenSourceAddress(client: TestNetns, server: TestNetns, serverIp: string, port: number): Promise<string> {
  const serverJs = `require('net').createServer((c) => c.end(c.remoteAddress + '\\n')).listen(${port}, () => console.log('listening'))`;
  const clientJs = `const c = require('net').connect(${port}, '${serverIp}'); let s = ''; c.on('data', (d) => (s += d)); c.on('end', () => { process.stdout.write(s); process.exit(0) }); c.on('error', (e) => { console.error(e.message); process.exit(1) }); setTimeout(() => process.exit(2), 5000)`;
  return new Promise((resolve, reject) => {
    const srv = spawn('ip', ['netns', 'exec', server.name, process.execPath, '-e', serverJs], { stdio: ['ignore', 'pipe', 'ignore'] });
    srv.stdout!.once('data', () => {
      const r = spawnSync('ip', ['netns', 'exec', client.name, process.execPath, '-e', clientJs], { encoding: 'utf8' });
      srv.kill();
      if (r.status === 0) resolve(r.stdout.trim().replace(/^::ffff:/, ''));
      else reject(new Error(`connect failed: ${r.stderr}`));
    });
    srv.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

export function routesOf(ns: TestNetns): Array<{ dst: string; gateway?: string; dev: string; protocol?: string }> {
  return JSON.parse(sh('ip', ['-n', ns.name, '-j', 'route', 'show', 'proto', '250']));
}

export { sleep };
