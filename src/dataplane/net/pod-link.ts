// A pod's network attachment: a veth pair whose pod end is the pod's interface, a /32
// (and /128) address on it, a default route through a link-local gateway whose
// neighbour entry is the host-side veth's MAC (no bridge, no ARP for the gateway), and
// on the node a host route plus a permanent neighbour entry for each pod address.
//
// All of it is rtnetlink requests from this process (./netlink): one socket in the
// agent's namespace, kept open, and one per pod operation opened inside the pod's
// namespace (withNetnsSync), which stays bound to it. The requests are synchronous
// syscalls of a few tens of microseconds; a whole ADD blocks the event loop for about a
// millisecond, less than the two `ip` processes it replaces took to start (see
// docs/benchmarks.md).
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { withNetnsSync } from './netns.js';
import {
  NetlinkSocket, addAddress, createVeth, deleteLink, deleteLinkOffThread, getLink, listAddresses, listLinks, listRoutes,
  replacePermanentNeighbour, replaceRoute, setLinkUp, withPlace, type LinkInfo,
} from './netlink/index.js';
import { RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN } from './netlink/constants.js';

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

export type { LinkInfo };

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

let nodeSocket: NetlinkSocket | undefined;

/** The agent's own namespace: opened on first use (never inside withNetnsSync) and kept. */
function node(): NetlinkSocket {
  return (nodeSocket ??= NetlinkSocket.open());
}

/** Runs fn with a socket inside the namespace at netnsPath, closed afterwards. */
function inNetns<T>(netnsPath: string, fn: (sock: NetlinkSocket) => T): T {
  let sock: NetlinkSocket;
  try {
    sock = withNetnsSync(netnsPath, () => NetlinkSocket.open());
  } catch (err) {
    throw withPlace(err, `entering network namespace ${netnsPath}`);
  }
  try {
    return fn(sock);
  } finally {
    sock.close();
  }
}

function openNetnsFd(netnsPath: string): number {
  try {
    return fs.openSync(netnsPath, 'r');
  } catch (err) {
    throw new Error(`opening network namespace ${netnsPath}: ${(err as Error).message}`);
  }
}

/** Creates everything; on any failure removes what it made (the veth pair) and rethrows. */
export async function createPodLink(spec: PodLinkSpec): Promise<PodLink> {
  return createPodLinkSync(spec);
}

export function createPodLinkSync(s: PodLinkSpec): PodLink {
  const nl = node();
  const nsFd = openNetnsFd(s.netnsPath);
  try {
    return inNetns(s.netnsPath, (pod) => {
      // One request: when it fails the kernel made nothing, so there is nothing to clean up.
      createVeth(nl, `creating veth ${s.hostIfName} (peer ${s.ifName} in ${s.netnsPath})`,
        { name: s.hostIfName, mtu: s.mtu, mac: s.hostMac, up: true },
        // The peer cannot be brought up in the same request (veth_open answers ENOTCONN
        // before the pair is joined): the pod side does it.
        { name: s.ifName, mtu: s.mtu, mac: s.podMac, up: false, netnsFd: nsFd });
      try {
        const hostIfindex = wireNodeSide(nl, s);
        const podIfindex = wirePodSide(pod, s);
        return { hostIfName: s.hostIfName, hostIfindex, hostMac: s.hostMac, podIfindex, podMac: s.podMac };
      } catch (err) {
        removeAfterFailure(nl, s.hostIfName, err);
        throw err;
      }
    });
  } finally {
    fs.closeSync(nsFd);
  }
}

/** Deleting the host end takes the peer, its addresses and routes, and the node's routes with it. */
function removeAfterFailure(nl: NetlinkSocket, hostIfName: string, cause: unknown): void {
  try {
    deleteLink(nl, hostIfName);
  } catch (err) {
    (cause as Error).message += `; removing ${hostIfName} afterwards failed too: ${(err as Error).message}`;
  }
}

/** Host route and permanent neighbour per pod address; returns the host veth's ifindex. */
function wireNodeSide(nl: NetlinkSocket, s: PodLinkSpec): number {
  try {
    const host = getLink(nl, s.hostIfName);
    if (!host) throw new Error(`veth ${s.hostIfName} vanished right after it was created`);
    for (const a of s.addresses) {
      replaceRoute(nl, { dst: a, dstLen: net.isIPv6(a) ? 128 : 32, oif: host.ifindex, scope: RT_SCOPE_LINK });
      replacePermanentNeighbour(nl, host.ifindex, a, s.podMac);
    }
    return host.ifindex;
  } catch (err) {
    throw withPlace(err, `on ${s.hostIfName}`);
  }
}

/** lo up, the addresses, the gateway's neighbour entry and the routes; returns the pod interface's ifindex. */
function wirePodSide(pod: NetlinkSocket, s: PodLinkSpec): number {
  try {
    setLinkUp(pod, 'lo');
    setLinkUp(pod, s.ifName);
    const link = getLink(pod, s.ifName);
    if (!link) throw new Error(`interface ${s.ifName} is not in the namespace after its creation`);
    for (const a of s.addresses) {
      if (net.isIPv6(a)) {
        addAddress(pod, link.ifindex, a, 128, { nodad: true });
        replacePermanentNeighbour(pod, link.ifindex, GATEWAY_V6, s.hostMac);
        replaceRoute(pod, { dst: 'default', dstLen: 0, gateway: GATEWAY_V6, oif: link.ifindex, scope: RT_SCOPE_UNIVERSE });
      } else {
        addAddress(pod, link.ifindex, a, 32);
        replacePermanentNeighbour(pod, link.ifindex, GATEWAY_V4, s.hostMac);
        replaceRoute(pod, { dst: GATEWAY_V4, dstLen: 32, oif: link.ifindex, scope: RT_SCOPE_LINK });
        replaceRoute(pod, { dst: 'default', dstLen: 0, gateway: GATEWAY_V4, oif: link.ifindex, scope: RT_SCOPE_UNIVERSE });
      }
    }
    return link.ifindex;
  } catch (err) {
    throw withPlace(err, `on ${s.ifName} in ${s.netnsPath}`);
  }
}

/**
 * Deleting the host end removes the peer, its addresses and the host routes. Idempotent.
 * The kernel spends 15–20 ms in a veth deletion (RCU grace periods), so the request is sent
 * from a worker thread, on a socket of its own opened here, synchronously, in the caller's
 * namespace.
 */
export async function deleteHostLink(hostIfName: string): Promise<boolean> {
  const sock = NetlinkSocket.open();
  try {
    return await deleteLinkOffThread(sock, hostIfName);
  } catch (err) {
    throw withPlace(err, 'on the node');
  } finally {
    sock.close();
  }
}

/** A link by name on the node, or in the namespace at netnsPath; undefined when either is missing. */
export async function showLink(name: string, netnsPath?: string): Promise<LinkInfo | undefined> {
  if (!netnsPath) return getLink(node(), name);
  try {
    return inNetns(netnsPath, (sock) => getLink(sock, name));
  } catch {
    return undefined;
  }
}

/** Lists Fast's host-side veths on this node (by name prefix). */
export async function listHostLinks(): Promise<LinkInfo[]> {
  return listLinks(node()).filter((l) => l.kind === 'veth' && l.ifname.startsWith('fst'));
}

export interface PodSideState {
  link?: LinkInfo;
  /** Global-scope addresses on the interface. */
  addresses: string[];
  /** Gateways of the main table's default routes (IPv4 and IPv6). */
  defaultRoutes: string[];
}

/** What the pod's namespace holds for this interface (used by CHECK); empty when the namespace is gone. */
export async function inspectPodSide(netnsPath: string, ifName: string): Promise<PodSideState> {
  try {
    return inNetns(netnsPath, (sock) => {
      const link = getLink(sock, ifName);
      const addresses = link ? listAddresses(sock, link.ifindex).filter((a) => a.scope === RT_SCOPE_UNIVERSE).map((a) => a.address) : [];
      const defaultRoutes = [...listRoutes(sock, 4), ...listRoutes(sock, 6)]
        .filter((r) => r.table === RT_TABLE_MAIN && r.dst === 'default')
        .map((r) => r.gateway ?? '');
      return { link, addresses, defaultRoutes };
    });
  } catch {
    return { addresses: [], defaultRoutes: [] };
  }
}
