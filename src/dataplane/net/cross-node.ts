// Node-level plumbing for cross-node pod networking (the eBPF programs do the per-packet
// work; this is what the node's own stack needs around them):
//
//  - the overlay device: `fast_vxlan`, VXLAN in collect-metadata mode (`external`: the
//    eBPF programs choose VNI and remote per packet), UDP 8472 by default, no ARP (every
//    neighbour resolves to the device's own MAC, which is the same fixed MAC on every node,
//    so inner destination MACs always match the receiving device), no IPv6 link-local
//    address (nothing of its own to send), MTU = uplink MTU - 50 (- 70 over IPv6);
//  - routes so the node stack reaches remote pods, all tagged `proto 250` so that Fast's
//    routes can be listed and reconciled without any other state:
//      overlay: one route per cluster pod range into fast_vxlan (its egress program finds
//               the remote node per packet), plus a /32 for a remote pod outside the ranges;
//      native:  a /32 (/128) per remote pod via the remote node's underlay address;
//    applied in `ip -batch` runs (thousands of routes cost one process; the caller,
//    NodeDatapath, coalesces concurrent changes into one run);
//  - masquerading (nftables table `inet fast`) of pod traffic leaving through the uplink
//    for destinations outside the cluster's pod ranges;
//  - overlay only: the tunnel's own UDP packets kept out of connection tracking (nftables
//    table `inet fast_tunnel`, created with fast_vxlan and removed with it);
//  - sysctls: forwarding.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ipBatch, ipJson, IpCommandError, deleteLink } from './ip-command.js';

export const OVERLAY_DEVICE = 'fast_vxlan';
/** fast_vxlan's MAC on every node: the inner destination MAC of tunnelled packets. */
export const OVERLAY_MAC = '02:fa:57:00:00:01';
/** Inner source MAC of tunnelled packets: anything but the device's own MAC (the vxlan
 *  driver drops a frame whose source is its own MAC as a loop). */
export const OVERLAY_SRC_MAC = '02:fa:57:00:00:02';
export const DEFAULT_VXLAN_PORT = 8472;
export const DEFAULT_VNI = 1;
/** VXLAN encapsulation: outer IPv4 (20) or IPv6 (40) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD_V4 = 50;
export const VXLAN_OVERHEAD_V6 = 70;
/** Routing protocol number marking Fast's routes (unassigned in /etc/iproute2/rt_protos). */
export const ROUTE_PROTO = 250;
export const NFT_TABLE = 'fast';
export const NFT_TUNNEL_TABLE = 'fast_tunnel';

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  linkinfo?: { info_kind?: string; info_data?: { external?: boolean; port?: number } };
}

/** `ip -d link show`, undefined when the device does not exist. */
export async function getLink(name: string): Promise<LinkInfo | undefined> {
  try {
    return (JSON.parse(await runIp(['-j', '-d', 'link', 'show', 'dev', name])) as LinkInfo[])[0];
  } catch (err) {
    if (err instanceof IpCommandError && /does not exist|Cannot find device/.test(err.stderr)) return undefined;
    throw err;
  }
}

export async function listLinks(): Promise<LinkInfo[]> {
  return ipJson<LinkInfo[]>('link show');
}

interface IpAddrLink { ifname: string; addr_info?: Array<{ family: string; local: string; scope: string }> }

/**
 * Fills in the node's underlay device and address when they were not configured: the
 * device holding nodeIp, else the device of the default route (IPv4 first); the
 * device's first global address (IPv4 first).
 */
export async function detectUnderlay(uplink?: string, nodeIp?: string): Promise<{ uplink: string; nodeIp: string }> {
  const links = JSON.parse(await runIp(['-j', 'addr', 'show'])) as IpAddrLink[];
  let dev = uplink;
  if (!dev && nodeIp) dev = links.find((l) => l.addr_info?.some((a) => a.local === nodeIp))?.ifname;
  if (!dev) {
    for (const family of ['-4', '-6']) {
      const routes = JSON.parse((await runIp(['-j', family, 'route', 'show', 'default']).catch(() => '[]')) || '[]') as Array<{ dev?: string }>;
      dev = routes.find((r) => r.dev)?.dev;
      if (dev) break;
    }
  }
  if (!dev) throw new Error('no uplink given and no default route to find one');
  let ip = nodeIp;
  if (!ip) {
    const addrs = (links.find((l) => l.ifname === dev)?.addr_info ?? []).filter((a) => a.scope === 'global');
    ip = (addrs.find((a) => a.family === 'inet') ?? addrs.find((a) => a.family === 'inet6'))?.local;
  }
  if (!ip) throw new Error(`no nodeIp given and ${dev} has no global address`);
  return { uplink: dev, nodeIp: ip };
}

export interface OverlaySpec {
  port: number;
  mtu: number;
}

/**
 * Creates fast_vxlan, or adopts it when it already has the right kind and port (an agent
 * restart must not disturb established flows); a device with another port is replaced.
 */
export async function ensureOverlayDevice(spec: OverlaySpec): Promise<LinkInfo> {
  let existing = await getLink(OVERLAY_DEVICE);
  const info = existing?.linkinfo;
  if (existing && (info?.info_kind !== 'vxlan' || !info.info_data?.external || info.info_data.port !== spec.port)) {
    await removeOverlayDevice();
    existing = undefined;
  }
  const cmds: string[] = [];
  if (!existing) cmds.push(`link add ${OVERLAY_DEVICE} address ${OVERLAY_MAC} mtu ${spec.mtu} type vxlan external dstport ${spec.port}`);
  cmds.push(
    `link set ${OVERLAY_DEVICE} addrgenmode none`,
    `link set ${OVERLAY_DEVICE} arp off mtu ${spec.mtu} address ${OVERLAY_MAC} up`,
  );
  try {
    await ipBatch(cmds);
  } catch (err) {
    if (!existing) await removeOverlayDevice();
    throw err;
  }
  const link = await getLink(OVERLAY_DEVICE);
  if (!link) throw new Error(`${OVERLAY_DEVICE} vanished while being created`);
  await runNft(tunnelNotrackScript(spec.port));
  return link;
}

/** Deleting the device also removes the routes through it. Idempotent. */
export async function removeOverlayDevice(): Promise<boolean> {
  await runNft(`table inet ${NFT_TUNNEL_TABLE}\ndelete table inet ${NFT_TUNNEL_TABLE}\n`);
  return deleteLink(OVERLAY_DEVICE);
}

/**
 * The `inet fast_tunnel` table (replaced atomically): the VXLAN packets themselves, sent
 * and received by this node on the tunnel port, skip connection tracking. Conntrack
 * would otherwise look up (and keep) a UDP flow per node pair and run the NAT hooks on
 * every outer packet, in both directions, on both nodes, for state nothing uses (the pods'
 * own connections are tracked, where at all, by their own namespaces). Raw priority runs
 * before conntrack; packets of the pods' flows are not matched (they are inside).
 * A host firewall that accepts only `ct state established` must accept the tunnel port
 * explicitly (it had to already, for the first packet of each direction).
 */
export function tunnelNotrackScript(port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad VXLAN port ${port}`);
  return [
    `table inet ${NFT_TUNNEL_TABLE}`,
    `delete table inet ${NFT_TUNNEL_TABLE}`,
    `table inet ${NFT_TUNNEL_TABLE} {`,
    '  comment "owned by Fast (fast-agent): VXLAN packets of the pod overlay are not tracked"',
    '  chain tunnel_in {',
    '    type filter hook prerouting priority raw; policy accept;',
    `    udp dport ${port} notrack`,
    '  }',
    '  chain tunnel_out {',
    '    type filter hook output priority raw; policy accept;',
    `    udp dport ${port} notrack`,
    '  }',
    '}',
  ].join('\n') + '\n';
}

// ---- addresses and prefixes ----

export interface Prefix {
  family: 4 | 6;
  /** Network address, canonical text. */
  network: string;
  bits: number;
  /** As a 128-bit number (IPv4 in the ::ffff:0:0/96 space) for containment tests. */
  value: bigint;
  /** Prefix length in the 128-bit space. */
  bits128: number;
}

function ipToBig(ip: string): bigint {
  if (net.isIPv4(ip)) return (0xffffn << 32n) | ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    text = text.slice(0, v4.index) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

function bigToIp(v: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Shortest form is left to `ip`; this is only used in commands and comparisons.
  return groups.join(':');
}

/** Parses `a.b.c.d/n`, `x::/n` or a bare address (a host prefix). */
export function parsePrefix(text: string): Prefix {
  const [addr, lenText] = text.split('/') as [string, string | undefined];
  const family = net.isIPv4(addr) ? 4 : net.isIPv6(addr) ? 6 : 0;
  if (!family) throw new Error(`not an IP prefix: ${text}`);
  const max = family === 4 ? 32 : 128;
  const bits = lenText === undefined ? max : Number(lenText);
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (lenText !== undefined && !/^\d+$/.test(lenText))) throw new Error(`bad prefix length in ${text}`);
  const bits128 = family === 4 ? 96 + bits : bits;
  const full = ipToBig(addr);
  const mask = bits128 === 0 ? 0n : ((1n << BigInt(bits128)) - 1n) << BigInt(128 - bits128);
  const value = full & mask;
  const low = family === 4 ? value & 0xffffffffn : value;
  return { family, network: bigToIp(low, family), bits, value, bits128 };
}

export function prefixContains(p: Prefix, ip: string): boolean {
  const v = ipToBig(ip);
  const mask = p.bits128 === 0 ? 0n : ((1n << BigInt(p.bits128)) - 1n) << BigInt(128 - p.bits128);
  return (v & mask) === p.value;
}

export function prefixText(p: Prefix): string {
  return `${p.network}/${p.bits}`;
}

/** Canonical `addr/len` for comparing what `ip -j route` prints with what we want. */
export function canonicalDst(dst: string): string {
  const p = parsePrefix(dst);
  return `${p.value.toString(16)}/${p.bits128}`;
}

// ---- routes ----

export interface RouteSpec {
  /** Destination prefix, `a.b.c.d/n` (host routes with /32 or /128). */
  dst: string;
  dev: string;
  via?: string;
  src?: string;
}

export function routeReplaceLine(r: RouteSpec): string {
  return `route replace ${r.dst}${r.via ? ` via ${r.via}` : ''} dev ${r.dev}${r.src ? ` src ${r.src}` : ''} proto ${ROUTE_PROTO}`;
}

export function routeDeleteLine(dst: string): string {
  // Matching on the protocol means we never delete a route that is not ours (a pod's own
  // /32 through its veth, say).
  return `route del ${dst} proto ${ROUTE_PROTO}`;
}

interface IpRoute { dst: string; dev?: string; gateway?: string; via?: { host?: string }; prefsrc?: string }

function runIp(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new IpCommandError([args.join(' ')], stderr || err.message));
      else resolve(stdout);
    });
  });
}

/** Every route Fast installed (both families), as RouteSpecs. */
export async function listFastRoutes(): Promise<RouteSpec[]> {
  const [v4, v6] = await Promise.all([
    runIp(['-j', 'route', 'show', 'proto', String(ROUTE_PROTO)]),
    runIp(['-j', '-6', 'route', 'show', 'proto', String(ROUTE_PROTO)]),
  ]);
  const parse = (out: string, hostBits: number) =>
    (out.trim() ? (JSON.parse(out) as IpRoute[]) : []).map((r): RouteSpec => ({
      dst: r.dst.includes('/') ? r.dst : `${r.dst}/${hostBits}`, dev: r.dev ?? '', via: r.gateway ?? r.via?.host, src: r.prefsrc,
    }));
  return [...parse(v4, 32), ...parse(v6, 128)];
}

export function sameRoute(a: RouteSpec, b: RouteSpec): boolean {
  const norm = (ip?: string) => (ip ? canonicalDst(ip) : '');
  return canonicalDst(a.dst) === canonicalDst(b.dst) && a.dev === b.dev && norm(a.via) === norm(b.via) && norm(a.src) === norm(b.src);
}

export class RouteBatchError extends Error {
  constructor(readonly failures: Array<{ line: string; error: string }>) {
    super(`${failures.length} route change(s) failed: ${failures.slice(0, 5).map((f) => `${f.line}: ${f.error}`).join('; ')}`);
    this.name = 'RouteBatchError';
  }
}

/**
 * Runs route lines in one `ip -force -batch` and returns the failed lines with their
 * errors. A `route del` of a route that is already gone is not a failure.
 */
export async function runRouteLines(lines: string[]): Promise<Array<{ index: number; line: string; error: string }>> {
  if (lines.length === 0) return [];
  try {
    await ipBatch(lines, { force: true });
    return [];
  } catch (err) {
    if (!(err instanceof IpCommandError)) throw err;
    const failures: Array<{ index: number; line: string; error: string }> = [];
    let message: string[] = [];
    for (const text of err.stderr.split('\n')) {
      const m = /^Command failed -:(\d+)/.exec(text);
      if (!m) {
        if (text.trim()) message.push(text.trim());
        continue;
      }
      const index = Number(m[1]) - 1;
      const line = lines[index] ?? '?';
      const error = message.join(' ') || 'failed';
      message = [];
      if (line.startsWith('route del') && /No such process|ESRCH|not found/i.test(error)) continue;
      failures.push({ index, line, error });
    }
    if (failures.length === 0 && message.length > 0 && !/Command failed/.test(err.stderr)) {
      // ip failed before running any line (not a per-line failure).
      throw err;
    }
    return failures;
  }
}

// ---- masquerading ----

function runNft(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('nft', ['-f', '-'], (err, _stdout, stderr) => {
      if (err) reject(new Error(`nft failed: ${(stderr || err.message).trim()}`));
      else resolve();
    });
    child.stdin!.end(script);
  });
}

export interface MasqueradeSpec {
  uplink: string;
  podRanges: string[];
}

/** The `inet fast` table, replaced atomically (one nft transaction). */
export function masqueradeScript(spec: MasqueradeSpec): string {
  const prefixes = spec.podRanges.map(parsePrefix);
  const v4 = prefixes.filter((p) => p.family === 4).map(prefixText);
  const v6 = prefixes.filter((p) => p.family === 6).map(prefixText);
  const lines = [
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    '  comment "owned by Fast (fast-agent): pod traffic leaving the cluster is masqueraded"',
  ];
  if (v4.length) lines.push(`  set pod_ranges_v4 { type ipv4_addr; flags interval; auto-merge; elements = { ${v4.join(', ')} } }`);
  if (v6.length) lines.push(`  set pod_ranges_v6 { type ipv6_addr; flags interval; auto-merge; elements = { ${v6.join(', ')} } }`);
  lines.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  const oif = JSON.stringify(spec.uplink);
  if (v4.length) lines.push(`    oifname ${oif} ip saddr @pod_ranges_v4 ip daddr != @pod_ranges_v4 masquerade`);
  if (v6.length) lines.push(`    oifname ${oif} ip6 saddr @pod_ranges_v6 ip6 daddr != @pod_ranges_v6 masquerade`);
  lines.push('  }', '}');
  return lines.join('\n') + '\n';
}

export async function applyMasquerade(spec: MasqueradeSpec): Promise<void> {
  await runNft(masqueradeScript(spec));
}

/** Removes the table (idempotent: created empty first, then deleted, in one transaction). */
export async function removeMasquerade(): Promise<void> {
  await runNft(`table inet ${NFT_TABLE}\ndelete table inet ${NFT_TABLE}\n`);
}

// ---- sysctls ----

/** Writes a sysctl of the caller's network namespace when it differs; returns the old value. */
export function ensureSysctl(name: string, value: string): string {
  const file = `/proc/sys/${name.replace(/\./g, '/')}`;
  const old = fs.readFileSync(file, 'utf8').trim();
  if (old !== value) fs.writeFileSync(file, value);
  return old;
}

/** Forwarding for the families in use (IPv6 only when there are IPv6 pod ranges: turning
 *  it on changes how a host treats router advertisements). */
export function ensureForwarding(families: Set<4 | 6>): void {
  if (families.has(4)) ensureSysctl('net.ipv4.ip_forward', '1');
  if (families.has(6)) ensureSysctl('net.ipv6.conf.all.forwarding', '1');
}
