// The lab's network: a lab namespace holding an underlay bridge, N node namespaces
// attached to it by veths, and an external host that is not a node. Nothing outside
// namespaces named flab* is ever touched.
import { execFileSync } from 'node:child_process';

export const UNDERLAY_PREFIX = '172.30.0';
export const UNDERLAY_GATEWAY = `${UNDERLAY_PREFIX}.1`;
export const EXTERNAL_IP = `${UNDERLAY_PREFIX}.254`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function nodeUnderlayIp(index: number): string {
  return `${UNDERLAY_PREFIX}.${10 + index}`;
}

/** The lab namespace with bridge br0; the API server listens on its gateway address. */
export function createUnderlay(netns: string): void {
  ip('netns', 'add', netns);
  ip('-n', netns, 'link', 'set', 'lo', 'up');
  ip('-n', netns, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', netns, 'addr', 'add', `${UNDERLAY_GATEWAY}/24`, 'dev', 'br0');
  ip('-n', netns, 'link', 'set', 'br0', 'up');
}

/** GRO on, as on a real NIC (a veth has it off by default): what arrives is aggregated
 *  before the stack sees it. The same on every underlay link, so node-to-node traffic and
 *  pod traffic (tunnelled or not) get the same underlay. */
function enableGro(netns: string, dev: string): void {
  execFileSync('ip', ['netns', 'exec', netns, 'ethtool', '-K', dev, 'gro', 'on'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A host on the underlay: eth0 in its own namespace, its peer on the bridge. */
export function attachHost(underlayNetns: string, hostNetns: string, port: string, address: string, mtu = 1500): void {
  ip('netns', 'add', hostNetns);
  ip('-n', hostNetns, 'link', 'set', 'lo', 'up');
  ip('-n', underlayNetns, 'link', 'add', port, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', hostNetns);
  enableGro(underlayNetns, port);
  enableGro(hostNetns, 'eth0');
  ip('-n', underlayNetns, 'link', 'set', port, 'master', 'br0', 'up');
  ip('-n', hostNetns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
  ip('-n', hostNetns, 'link', 'set', 'eth0', 'up');
  ip('-n', hostNetns, 'route', 'add', 'default', 'via', UNDERLAY_GATEWAY);
}

export function enableForwarding(netns: string): void {
  execFileSync('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
}

/** Removes the lab's namespaces (nodes, pods, underlay); links inside vanish with them. */
export function deleteLabNamespaces(prefixes: string[], extra: string[] = []): string[] {
  const all = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  const mine = new Set([...all.filter((n) => prefixes.some((p) => n.startsWith(p))), ...extra.filter((n) => all.includes(n))]);
  for (const n of mine) {
    try { ip('netns', 'del', n); } catch { /* already gone */ }
  }
  return [...mine];
}
