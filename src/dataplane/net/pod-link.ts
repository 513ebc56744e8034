// A pod's network attachment: a veth pair whose pod end is the pod's interface, a /32
// (and /128) address on it, a default route through a link-local gateway whose
// neighbour entry is the host-side veth's MAC (no bridge, no ARP for the gateway), and
// on the node a host route plus a permanent neighbour entry for each pod address.
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { ipBatch, ipJson, IpCommandError, deleteLink, type IpCommand } from './ip-command.js';

export const GATEWAY_V4 = '169.254.1.1';
export const GATEWAY_V6 = 'fe80::1';

export interface PodLinkSpec {
  netnsPath: string;
  ifName: string;
  hostIfName: string;
  addresses: string[]; // bare addresses, one per family at most
  mtu: number;
  podMac: string;
  hostMac: string;
}

export interface PodLink {
  hostIfName: string;
  hostIfindex: number;
  hostMac: string;
  podIfindex: number;
  podMac: string;
}

/** Host-side names are derived from the attachment so a DEL can find them without state. */
export function hostIfNameFor(containerId: string, ifName: string): string {
  return 'fst' + createHash('sha256').update(`${containerId}/${ifName}`).digest('hex').slice(0, 11);
}

/** A random locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

// Commands are argv words: interface names are the runtime's choice and may collide with
// ip keywords or batch syntax, so they always follow `dev`/`name` and are quoted by ipBatch.
function hostCommands(s: PodLinkSpec): IpCommand[] {
  const cmds: IpCommand[] = [
    ['link', 'add', 'name', s.hostIfName, 'mtu', String(s.mtu), 'address', s.hostMac, 'type', 'veth', 'peer', 'name', s.ifName, 'mtu', String(s.mtu), 'address', s.podMac, 'netns', s.netnsPath],
    `link set dev ${s.hostIfName} up`,
  ];
  for (const a of s.addresses) {
    const bits = net.isIPv6(a) ? 128 : 32;
    cmds.push(`route replace ${a}/${bits} dev ${s.hostIfName} scope link`);
    cmds.push(`neigh replace ${a} lladdr ${s.podMac} dev ${s.hostIfName} nud permanent`);
  }
  cmds.push(`link show dev ${s.hostIfName}`);
  return cmds;
}

function podCommands(s: PodLinkSpec): IpCommand[] {
  const dev = s.ifName;
  const cmds: IpCommand[] = [`link set dev lo up`, ['link', 'set', 'dev', dev, 'up']];
  for (const a of s.addresses) {
    if (net.isIPv6(a)) {
      cmds.push(['addr', 'add', `${a}/128`, 'dev', dev, 'nodad']);
      cmds.push(['neigh', 'replace', GATEWAY_V6, 'lladdr', s.hostMac, 'dev', dev, 'nud', 'permanent']);
      cmds.push(['route', 'replace', 'default', 'via', GATEWAY_V6, 'dev', dev]);
    } else {
      cmds.push(['addr', 'add', `${a}/32`, 'dev', dev]);
      cmds.push(['neigh', 'replace', GATEWAY_V4, 'lladdr', s.hostMac, 'dev', dev, 'nud', 'permanent']);
      cmds.push(['route', 'replace', GATEWAY_V4, 'dev', dev, 'scope', 'link']);
      cmds.push(['route', 'replace', 'default', 'via', GATEWAY_V4, 'dev', dev]);
    }
  }
  cmds.push(['link', 'show', 'dev', dev]);
  return cmds;
}

interface IpLink { ifindex: number; ifname: string; address: string; mtu: number; flags: string[]; operstate?: string }

/** Creates everything; on any failure removes what it made (the veth pair) and rethrows. */
export async function createPodLink(spec: PodLinkSpec): Promise<PodLink> {
  let hostLink: IpLink;
  try {
    hostLink = (parseLast(await ipBatch(hostCommands(spec), { json: true })))[0]!;
  } catch (err) {
    await deleteHostLink(spec.hostIfName);
    throw err;
  }
  try {
    const podLink = (parseLast(await ipBatch(podCommands(spec), { json: true, netnsPath: spec.netnsPath })))[0]!;
    return { hostIfName: spec.hostIfName, hostIfindex: hostLink.ifindex, hostMac: spec.hostMac, podIfindex: podLink.ifindex, podMac: spec.podMac };
  } catch (err) {
    await deleteHostLink(spec.hostIfName);
    throw err;
  }
}

function parseLast(out: string): IpLink[] {
  const lines = out.split('\n').filter((l) => l.trim());
  return JSON.parse(lines[lines.length - 1]!) as IpLink[];
}

/** Deleting the host end removes the peer, its addresses and the host routes. Idempotent. */
export function deleteHostLink(hostIfName: string): Promise<boolean> {
  return deleteLink(hostIfName);
}

export async function showLink(name: string, netnsPath?: string): Promise<IpLink | undefined> {
  try {
    return (await ipJson<IpLink[]>(['link', 'show', 'dev', name], { netnsPath }))[0];
  } catch (err) {
    if (err instanceof IpCommandError) return undefined;
    throw err;
  }
}

/** Lists Fast's host-side veths on this node (by name prefix). */
export async function listHostLinks(): Promise<IpLink[]> {
  const links = await ipJson<IpLink[]>('link show type veth');
  return links.filter((l) => l.ifname.startsWith('fst'));
}

export interface PodSideState {
  link?: IpLink;
  addresses: string[];
  defaultRoutes: string[];
}

/** What the pod's namespace holds for this interface (used by CHECK). `addr show`
 *  carries the link too; iproute2 6.1 drops addr_info when `link show` precedes it in a batch. */
export async function inspectPodSide(netnsPath: string, ifName: string): Promise<PodSideState> {
  const out = await ipBatch([['addr', 'show', 'dev', ifName], `route show default`], { json: true, netnsPath, force: true }).catch(() => '');
  const docs = out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown[]);
  const linkDoc = docs.find((d) => d.length > 0 && (d[0] as IpLink).ifname === ifName) as Array<IpLink & { addr_info: Array<{ local: string; scope: string }> }> | undefined;
  const link = linkDoc?.[0];
  const addresses = (link?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => a.local);
  const defaultRoutes = docs.flat().filter((r) => (r as { dst?: string }).dst === 'default').map((r) => (r as { gateway?: string }).gateway ?? '');
  return { link, addresses, defaultRoutes };
}
