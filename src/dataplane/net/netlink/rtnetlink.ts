// The rtnetlink operations Fast needs: links (veth pairs), addresses, routes, neighbours.
// Each function is one request or one dump on a NetlinkSocket; names, not messages.
import { formatIp, parseIp } from '../../../model/ipam/address.js';
import * as c from './constants.js';
import { attrString, attrU32, ifaddrmsg, ifinfomsg, ndmsg, nla, nlaNested, nlaString, nlaU32, parseAttrs, rtmsg, type NlMsg } from './message.js';
import { NetlinkError, type NetlinkSocket } from './socket.js';

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  /** MAC address, lower case with colons ('' for links without one). */
  address: string;
  mtu: number;
  /** Interface flags as `ip` prints them: UP, LOWER_UP, BROADCAST, ... */
  flags: string[];
  operstate: string;
  /** IFLA_INFO_KIND: 'veth', 'vxlan', ... (absent for plain devices such as lo). */
  kind?: string;
}

export interface AddressInfo {
  family: 4 | 6;
  ifindex: number;
  address: string;
  prefixLen: number;
  scope: number;
}

export interface RouteInfo {
  family: 4 | 6;
  table: number;
  /** 'default' or the destination prefix, as `ip route` prints it. */
  dst: string;
  gateway?: string;
  oif?: number;
  scope: number;
}

const FLAG_NAMES: Array<[number, string]> = [
  [c.IFF_BROADCAST, 'BROADCAST'], [c.IFF_LOOPBACK, 'LOOPBACK'], [c.IFF_POINTOPOINT, 'POINTOPOINT'], [c.IFF_NOARP, 'NOARP'],
  [c.IFF_MULTICAST, 'MULTICAST'], [c.IFF_UP, 'UP'], [c.IFF_LOWER_UP, 'LOWER_UP'],
];

export function macBytes(mac: string): Buffer {
  const b = Buffer.from(mac.split(':').map((x) => Number.parseInt(x, 16)));
  if (b.length !== 6 || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) throw new Error(`not a MAC address: ${mac}`);
  return b;
}

function macString(b: Buffer | undefined): string {
  return b ? [...b].map((x) => x.toString(16).padStart(2, '0')).join(':') : '';
}

/** The address's family number and its bytes in network order. */
export function ipBytes(ip: string): { family: number; bytes: Buffer } {
  const a = parseIp(ip);
  const width = a.family === 4 ? 4 : 16;
  const bytes = Buffer.alloc(width);
  let v = a.value;
  for (let i = width - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family: a.family === 4 ? c.AF_INET : c.AF_INET6, bytes };
}

function ipString(b: Buffer): string {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return formatIp({ family: b.length === 4 ? 4 : 6, value: v });
}

// Links.

export function decodeLink(m: NlMsg): LinkInfo {
  const ifindex = m.payload.readInt32LE(4);
  const ifflags = m.payload.readUInt32LE(8);
  const attrs = parseAttrs(m.payload.subarray(c.IFINFOMSG_LEN));
  const linkinfo = attrs.get(c.IFLA_LINKINFO);
  const kind = linkinfo ? attrString(parseAttrs(linkinfo).get(c.IFLA_INFO_KIND)) : undefined;
  const oper = attrs.get(c.IFLA_OPERSTATE);
  return {
    ifindex,
    ifname: attrString(attrs.get(c.IFLA_IFNAME)) ?? '',
    address: macString(attrs.get(c.IFLA_ADDRESS)),
    mtu: attrU32(attrs.get(c.IFLA_MTU)) ?? 0,
    flags: FLAG_NAMES.filter(([bit]) => ifflags & bit).map(([, name]) => name),
    operstate: c.OPERSTATES[oper ? oper[0]! : 0] ?? 'UNKNOWN',
    ...(kind ? { kind } : {}),
  };
}

/** A link by name; undefined when there is none. */
export function getLink(sock: NetlinkSocket, name: string): LinkInfo | undefined {
  try {
    const [m] = sock.request(`reading link ${name}`, c.RTM_GETLINK, 0, Buffer.concat([ifinfomsg(), nlaString(c.IFLA_IFNAME, name)]));
    return m ? decodeLink(m) : undefined;
  } catch (err) {
    if (err instanceof NetlinkError && err.code === 'ENODEV') return undefined;
    throw err;
  }
}

export function listLinks(sock: NetlinkSocket): LinkInfo[] {
  return sock.dump('listing links', c.RTM_GETLINK, ifinfomsg()).filter((m) => m.type === c.RTM_NEWLINK).map(decodeLink);
}

export interface VethEnd {
  name: string;
  mtu: number;
  mac: string;
  up: boolean;
}

/**
 * A veth pair in one request; the peer is created directly in the namespace behind
 * `peerNetnsFd` (an open /var/run/netns/... or /proc/PID/ns/net), so it never appears on
 * the node. Fails with EEXIST when either name is taken (nothing is created then).
 */
export function createVeth(sock: NetlinkSocket, op: string, host: VethEnd, peer: VethEnd & { netnsFd: number }): void {
  const end = (e: VethEnd) => [nlaString(c.IFLA_IFNAME, e.name), nlaU32(c.IFLA_MTU, e.mtu), nla(c.IFLA_ADDRESS, macBytes(e.mac))];
  const upFlags = (e: VethEnd) => (e.up ? { flags: c.IFF_UP, change: c.IFF_UP } : {});
  // VETH_INFO_PEER is not a plain nest: an ifinfomsg for the peer comes before its attributes.
  const peerInfo = nla(c.VETH_INFO_PEER, Buffer.concat([ifinfomsg(upFlags(peer)), ...end(peer), nlaU32(c.IFLA_NET_NS_FD, peer.netnsFd)]));
  const linkinfo = nlaNested(c.IFLA_LINKINFO, [nlaString(c.IFLA_INFO_KIND, 'veth'), nlaNested(c.IFLA_INFO_DATA, [peerInfo])]);
  sock.request(op, c.RTM_NEWLINK, c.NLM_F_CREATE | c.NLM_F_EXCL, Buffer.concat([ifinfomsg(upFlags(host)), ...end(host), linkinfo]));
}

export function setLinkUp(sock: NetlinkSocket, name: string): void {
  sock.request(`setting ${name} up`, c.RTM_NEWLINK, 0, Buffer.concat([ifinfomsg({ flags: c.IFF_UP, change: c.IFF_UP }), nlaString(c.IFLA_IFNAME, name)]));
}

/** Deletes a link (a veth's peer, addresses and routes go with it); false when it was not there. */
export function deleteLink(sock: NetlinkSocket, name: string): boolean {
  try {
    sock.request(`deleting link ${name}`, c.RTM_DELLINK, 0, Buffer.concat([ifinfomsg(), nlaString(c.IFLA_IFNAME, name)]));
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && err.code === 'ENODEV') return false;
    throw err;
  }
}

/** deleteLink with the kernel's work off the event loop (see NetlinkSocket.requestOffThread). */
export async function deleteLinkOffThread(sock: NetlinkSocket, name: string): Promise<boolean> {
  try {
    await sock.requestOffThread(`deleting link ${name}`, c.RTM_DELLINK, 0, Buffer.concat([ifinfomsg(), nlaString(c.IFLA_IFNAME, name)]));
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && err.code === 'ENODEV') return false;
    throw err;
  }
}

// Addresses.

/** Adds address/prefixLen on a link (IPv6 without duplicate address detection when `nodad`). */
export function addAddress(sock: NetlinkSocket, ifindex: number, address: string, prefixLen: number, opts: { nodad?: boolean } = {}): void {
  const { family, bytes } = ipBytes(address);
  const flags = opts.nodad ? c.IFA_F_NODAD : 0;
  const attrs = family === c.AF_INET ? [nla(c.IFA_LOCAL, bytes), nla(c.IFA_ADDRESS, bytes)] : [nla(c.IFA_ADDRESS, bytes)];
  sock.request(`adding address ${address}/${prefixLen}`, c.RTM_NEWADDR, c.NLM_F_CREATE | c.NLM_F_EXCL,
    Buffer.concat([ifaddrmsg({ family, prefixLen, flags, index: ifindex }), ...attrs, nlaU32(c.IFA_FLAGS, flags)]));
}

export function listAddresses(sock: NetlinkSocket, ifindex?: number): AddressInfo[] {
  const out: AddressInfo[] = [];
  for (const m of sock.dump('listing addresses', c.RTM_GETADDR, ifaddrmsg({ family: c.AF_UNSPEC, prefixLen: 0, index: 0 }))) {
    const index = m.payload.readUInt32LE(4);
    if (ifindex !== undefined && index !== ifindex) continue;
    const attrs = parseAttrs(m.payload.subarray(c.IFADDRMSG_LEN));
    const bytes = attrs.get(c.IFA_LOCAL) ?? attrs.get(c.IFA_ADDRESS);
    if (!bytes) continue;
    out.push({ family: m.payload[0] === c.AF_INET ? 4 : 6, ifindex: index, address: ipString(bytes), prefixLen: m.payload[1]!, scope: m.payload[3]! });
  }
  return out;
}

// Routes.

export interface RouteSpec {
  /** 'default', or an address with its prefix length given separately. */
  dst: string;
  dstLen: number;
  oif: number;
  gateway?: string;
  scope: number;
}

/** `ip route replace`: main table, protocol boot, unicast. */
export function replaceRoute(sock: NetlinkSocket, r: RouteSpec): void {
  const isDefault = r.dst === 'default';
  const family = isDefault ? ipBytes(r.gateway!).family : ipBytes(r.dst).family;
  const attrs: Buffer[] = [];
  if (!isDefault) attrs.push(nla(c.RTA_DST, ipBytes(r.dst).bytes));
  if (r.gateway) attrs.push(nla(c.RTA_GATEWAY, ipBytes(r.gateway).bytes));
  attrs.push(nlaU32(c.RTA_OIF, r.oif));
  const what = `${isDefault ? 'default' : `${r.dst}/${r.dstLen}`}${r.gateway ? ` via ${r.gateway}` : ''}`;
  sock.request(`adding route ${what}`, c.RTM_NEWROUTE, c.NLM_F_CREATE | c.NLM_F_REPLACE,
    Buffer.concat([rtmsg({ family, dstLen: isDefault ? 0 : r.dstLen, protocol: c.RTPROT_BOOT, scope: r.scope, type: c.RTN_UNICAST }), ...attrs]));
}

/** Routes of one family from every table the kernel dumps (filter on `table`). */
export function listRoutes(sock: NetlinkSocket, family: 4 | 6): RouteInfo[] {
  const out: RouteInfo[] = [];
  for (const m of sock.dump('listing routes', c.RTM_GETROUTE, rtmsg({ family: family === 4 ? c.AF_INET : c.AF_INET6, table: 0 }))) {
    if (m.type !== c.RTM_NEWROUTE) continue;
    const attrs = parseAttrs(m.payload.subarray(c.RTMSG_LEN));
    const dstLen = m.payload[1]!;
    const dst = attrs.get(c.RTA_DST);
    const gw = attrs.get(c.RTA_GATEWAY);
    out.push({
      family,
      table: attrU32(attrs.get(c.RTA_TABLE)) ?? m.payload[4]!,
      dst: dst ? `${ipString(dst)}/${dstLen}` : dstLen === 0 ? 'default' : '',
      ...(gw ? { gateway: ipString(gw) } : {}),
      ...(attrs.has(c.RTA_OIF) ? { oif: attrU32(attrs.get(c.RTA_OIF)) } : {}),
      scope: m.payload[6]!,
    });
  }
  return out;
}

// Neighbours.

/** `ip neigh replace ADDRESS lladdr MAC dev IFINDEX nud permanent`. */
export function replacePermanentNeighbour(sock: NetlinkSocket, ifindex: number, address: string, mac: string): void {
  const { family, bytes } = ipBytes(address);
  sock.request(`adding neighbour ${address} lladdr ${mac}`, c.RTM_NEWNEIGH, c.NLM_F_CREATE | c.NLM_F_REPLACE,
    Buffer.concat([ndmsg({ family, index: ifindex, state: c.NUD_PERMANENT }), nla(c.NDA_DST, bytes), nla(c.NDA_LLADDR, macBytes(mac))]));
}
