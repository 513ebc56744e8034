// Typed views of Fast's pinned maps. Each codec mirrors a struct in bpf/fast_maps.h
// byte for byte (little-endian host fields, network-order addresses).
import { tryParseIp, formatIp } from '../../model/ipam/address.js';

export const MAP_NAMES = {
  localPods: 'fast_lpod_v1',
  clusterPods: 'fast_cpod_v1',
  localDevices: 'fast_ldev_v1',
  stats: 'fast_stats_v1',
  config: 'fast_cfg_v1',
} as const;

export interface LocalPodEntry {
  ip: string;
  hostIfindex: number;
  podIfindex: number;
  podMac: string;
  hostMac: string;
  flags: number;
}

export interface ClusterPodEntry {
  ip: string;
  nodeIp: string;
  flags: number;
}

/** struct fast_cluster_pod flags. */
export const CPOD_FLAG_NODE = 0x1; // the key is a remote node's own address
/** struct fast_config flags: overlay packets from pods are encapsulated by eBPF
 *  (FAST_CFG_F_EBPF_ENCAP), not by fast_vxlan. */
export const CFG_FLAG_EBPF_ENCAP = 0x1;
/** struct fast_config flags: the kernel can clear a decapsulated GSO skb's tunnel state
 *  (BPF_F_ADJ_ROOM_DECAP_L4_UDP), so the uplink decapsulates GSO VXLAN packets too. */
export const CFG_FLAG_GSO_DECAP = 0x2;
/** struct fast_config flags: the uplink decapsulates nothing, fast_vxlan takes every tunnel
 *  packet (FAST_CFG_F_KERNEL_DECAP; clear, the default, means eBPF decapsulation). */
export const CFG_FLAG_KERNEL_DECAP = 0x4;

/** Who does the overlay's encapsulation, its decapsulation, and the decapsulation of GSO
 *  packets: eBPF or the kernel's VXLAN device (fast_vxlan). */
export interface OverlayPaths {
  encap: 'ebpf' | 'kernel';
  decap: 'ebpf' | 'kernel';
  /** 'ebpf' only where decap is and the kernel can clear a decapsulated GSO skb's state. */
  gsoDecap: 'ebpf' | 'kernel';
}

export function encodeOverlayFlags(p: OverlayPaths): number {
  return (p.encap === 'ebpf' ? CFG_FLAG_EBPF_ENCAP : 0) | (p.decap === 'kernel' ? CFG_FLAG_KERNEL_DECAP : 0) |
    (p.decap === 'ebpf' && p.gsoDecap === 'ebpf' ? CFG_FLAG_GSO_DECAP : 0);
}

export function decodeOverlayFlags(flags: number): OverlayPaths {
  const decap = flags & CFG_FLAG_KERNEL_DECAP ? 'kernel' : 'ebpf';
  return { encap: flags & CFG_FLAG_EBPF_ENCAP ? 'ebpf' : 'kernel', decap, gsoDecap: decap === 'ebpf' && flags & CFG_FLAG_GSO_DECAP ? 'ebpf' : 'kernel' };
}

/** enum fast_mode. */
export const CROSS_NODE_MODES = { 0: 'local', 1: 'overlay', 2: 'native' } as const;
export type CrossNodeMode = (typeof CROSS_NODE_MODES)[keyof typeof CROSS_NODE_MODES];
const MODE_CODES: Record<CrossNodeMode, number> = { local: 0, overlay: 1, native: 2 };

/** struct fast_config, the only element (key 0) of fast_cfg_v1. */
export interface NodeConfigEntry {
  mode: CrossNodeMode;
  overlayIfindex: number;
  uplinkIfindex: number;
  vni: number;
  nodeIp: string;
  /** Inner destination MAC of tunnelled packets: fast_vxlan's MAC, the same on every node. */
  overlayMac: string;
  /** Inner source MAC of tunnelled packets (must differ from overlayMac). */
  overlaySrcMac: string;
  port: number;
  flags: number;
}

export const DEVICE_KINDS = { 1: 'pod-veth', 2: 'overlay', 3: 'uplink' } as const;
export type DeviceKind = (typeof DEVICE_KINDS)[keyof typeof DEVICE_KINDS];

export interface LocalDeviceEntry {
  ifindex: number;
  name: string;
  mac: string;
  kind: DeviceKind | 'unknown';
  flags: number;
}

export const STAT_NAMES = [
  'redirect_local', 'pass_stack', 'drop_spoof_src_ip', 'drop_spoof_src_mac', 'drop_unknown_proto',
  'drop_malformed', 'redirect_tunnel', 'redirect_neigh', 'deliver_from_net', 'drop_no_remote',
  'drop_vni', 'encap_from_host', 'drop_tunnel_key', 'pass_from_net', 'encap_ebpf',
] as const;

/** struct fast_ip: 16 bytes, IPv4 as ::ffff:a.b.c.d (one key shape for both families). */
export function encodeIp(ip: string): Buffer {
  const a = tryParseIp(ip);
  if (!a) throw new Error(`not an IP address: ${ip}`);
  const value = a.family === 4 ? (0xffffn << 32n) | a.value : a.value;
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(value >> 64n, 0);
  b.writeBigUInt64BE(value & 0xffffffffffffffffn, 8);
  return b;
}

export function decodeIp(b: Buffer): string {
  const value = (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);
  const isV4Mapped = value >> 32n === 0xffffn;
  return formatIp(isV4Mapped ? { family: 4, value: value & 0xffffffffn } : { family: 6, value });
}

export function encodeMac(mac: string): Buffer {
  const b = Buffer.from(mac.split(':').map((x) => Number.parseInt(x, 16)));
  if (b.length !== 6) throw new Error(`not a MAC address: ${mac}`);
  return b;
}

export function decodeMac(b: Buffer): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function encodeLocalPod(e: Omit<LocalPodEntry, 'ip'>): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(e.hostIfindex, 0);
  b.writeUInt32LE(e.podIfindex, 4);
  encodeMac(e.podMac).copy(b, 8);
  encodeMac(e.hostMac).copy(b, 14);
  b.writeUInt32LE(e.flags, 20);
  return b;
}

export function decodeLocalPod(key: Buffer, b: Buffer): LocalPodEntry {
  return {
    ip: decodeIp(key),
    hostIfindex: b.readUInt32LE(0),
    podIfindex: b.readUInt32LE(4),
    podMac: decodeMac(b.subarray(8, 14)),
    hostMac: decodeMac(b.subarray(14, 20)),
    flags: b.readUInt32LE(20),
  };
}

export function encodeClusterPod(e: Omit<ClusterPodEntry, 'ip'>): Buffer {
  const b = Buffer.alloc(24);
  encodeIp(e.nodeIp).copy(b, 0);
  b.writeUInt32LE(e.flags, 16);
  return b;
}

export function decodeClusterPod(key: Buffer, b: Buffer): ClusterPodEntry {
  return { ip: decodeIp(key), nodeIp: decodeIp(b.subarray(0, 16)), flags: b.readUInt32LE(16) };
}

export const CONFIG_KEY = Buffer.alloc(4); // array index 0

export function encodeNodeConfig(e: NodeConfigEntry): Buffer {
  const b = Buffer.alloc(52);
  b.writeUInt32LE(MODE_CODES[e.mode], 0);
  b.writeUInt32LE(e.overlayIfindex, 4);
  b.writeUInt32LE(e.uplinkIfindex, 8);
  b.writeUInt32LE(e.vni, 12);
  if (e.nodeIp) encodeIp(e.nodeIp).copy(b, 16);
  encodeMac(e.overlayMac).copy(b, 32);
  encodeMac(e.overlaySrcMac).copy(b, 38);
  b.writeUInt16LE(e.port, 44);
  b.writeUInt16LE(e.flags, 46);
  return b;
}

/** An all-zero value (a map that was never configured) decodes as mode local. */
export function decodeNodeConfig(b: Buffer): NodeConfigEntry {
  const code = b.readUInt32LE(0) as keyof typeof CROSS_NODE_MODES;
  const ip = b.subarray(16, 32);
  return {
    mode: CROSS_NODE_MODES[code] ?? 'local',
    overlayIfindex: b.readUInt32LE(4),
    uplinkIfindex: b.readUInt32LE(8),
    vni: b.readUInt32LE(12),
    nodeIp: ip.every((x) => x === 0) ? '' : decodeIp(ip),
    overlayMac: decodeMac(b.subarray(32, 38)),
    overlaySrcMac: decodeMac(b.subarray(38, 44)),
    port: b.readUInt16LE(44),
    flags: b.readUInt16LE(46),
  };
}

export function encodeIfindex(ifindex: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(ifindex, 0);
  return b;
}

const KIND_CODES: Record<string, number> = { 'pod-veth': 1, overlay: 2, uplink: 3 };

export function encodeLocalDevice(e: Omit<LocalDeviceEntry, 'ifindex'>): Buffer {
  const b = Buffer.alloc(28);
  encodeMac(e.mac).copy(b, 0);
  b.writeUInt16LE(KIND_CODES[e.kind] ?? 0, 6);
  b.writeUInt32LE(e.flags, 8);
  b.write(e.name.slice(0, 15), 12, 'latin1');
  return b;
}

export function decodeLocalDevice(key: Buffer, b: Buffer): LocalDeviceEntry {
  const nameBytes = b.subarray(12, 28);
  const end = nameBytes.indexOf(0);
  const code = b.readUInt16LE(6) as keyof typeof DEVICE_KINDS;
  return {
    ifindex: key.readUInt32LE(0),
    mac: decodeMac(b.subarray(0, 6)),
    kind: DEVICE_KINDS[code] ?? 'unknown',
    flags: b.readUInt32LE(8),
    name: nameBytes.subarray(0, end < 0 ? 16 : end).toString('latin1'),
  };
}

/** Sums a per-CPU u64 counter value across CPUs. */
export function sumPerCpu(b: Buffer): bigint {
  let total = 0n;
  for (let off = 0; off + 8 <= b.length; off += 8) total += b.readBigUInt64LE(off);
  return total;
}
