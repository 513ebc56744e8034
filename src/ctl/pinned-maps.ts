// fast-ctl reads the pinned maps itself, so it works while the agent is down.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { BpfMap } from '../dataplane/bpf/bpf-map.js';
import {
  MAP_NAMES, decodeLocalPod, decodeClusterPod, decodeLocalDevice, decodeNodeConfig, STAT_NAMES, sumPerCpu, CONFIG_KEY, CPOD_FLAG_NODE, decodeOverlayFlags,
  type LocalDeviceEntry, type NodeConfigEntry,
} from '../dataplane/bpf/map-layouts.js';

const MAP_TYPES: Record<number, string> = { 1: 'hash', 2: 'array', 5: 'percpu_hash', 6: 'percpu_array', 9: 'lru_hash' };

export interface PinnedMapSummary {
  name: string;
  path: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  entries: number;
}

export function listPinnedMaps(bpffsDir: string): PinnedMapSummary[] {
  if (!fs.existsSync(bpffsDir)) return [];
  return fs.readdirSync(bpffsDir).filter((f) => f.startsWith('fast_')).sort().map((name) => withMap(bpffsDir, name, (m) => {
    const info = m.info();
    return { name, path: path.join(bpffsDir, name), type: MAP_TYPES[info.type] ?? String(info.type), keySize: info.keySize, valueSize: info.valueSize, maxEntries: info.maxEntries, entries: m.keys().length };
  }));
}

export function withMap<T>(bpffsDir: string, name: string, fn: (m: BpfMap) => T): T {
  const file = path.join(bpffsDir, name);
  if (!fs.existsSync(file)) throw new Error(`map ${name} is not pinned under ${bpffsDir} (is the node initialised?)`);
  const m = BpfMap.openPinned(file);
  try {
    return fn(m);
  } finally {
    m.close();
  }
}

export function readDevices(bpffsDir: string): Map<number, LocalDeviceEntry> {
  return withMap(bpffsDir, MAP_NAMES.localDevices, (m) => new Map(m.entries().map(([k, v]) => {
    const d = decodeLocalDevice(k, v);
    return [d.ifindex, d];
  })));
}

export function readNodeConfig(bpffsDir: string): NodeConfigEntry | undefined {
  if (!fs.existsSync(path.join(bpffsDir, MAP_NAMES.config))) return undefined;
  return withMap(bpffsDir, MAP_NAMES.config, (m) => {
    const v = m.lookup(CONFIG_KEY);
    return v ? decodeNodeConfig(v) : undefined;
  });
}

/** The node's cross-node settings as its programs see them (the pinned config map). */
export interface CrossNodeSummary {
  mode: string;
  nodeIp?: string;
  uplink?: string;
  /** overlay: who encapsulates pod packets, and who decapsulates GSO packets. */
  encap?: 'ebpf' | 'kernel';
  decap?: 'ebpf' | 'kernel';
  gsoDecap?: 'ebpf' | 'kernel';
}

export function crossNodeSummary(bpffsDir: string): CrossNodeSummary | undefined {
  const cfg = readNodeConfig(bpffsDir);
  if (!cfg) return undefined;
  if (cfg.mode === 'local') return { mode: 'local' };
  const uplink = readDevices(bpffsDir).get(cfg.uplinkIfindex)?.name ?? `#${cfg.uplinkIfindex}`;
  const base = { mode: cfg.mode, nodeIp: cfg.nodeIp, uplink };
  if (cfg.mode !== 'overlay') return base;
  return { ...base, ...decodeOverlayFlags(cfg.flags) };
}

export function describeCrossNode(c: CrossNodeSummary | undefined): string {
  if (!c) return 'no pinned config map';
  if (c.mode === 'local') return 'off (pods reach only this node; the rest through the host stack)';
  const where = `node ${c.nodeIp} on ${c.uplink}`;
  if (c.mode !== 'overlay') return `native routing, ${where}`;
  const encap = c.encap === 'ebpf' ? 'eBPF (IPv4 underlay; fast_vxlan otherwise)' : 'fast_vxlan';
  const decap = c.decap === 'kernel' ? 'fast_vxlan' : c.gsoDecap === 'ebpf' ? 'eBPF, large (GSO) packets included' : 'eBPF, large (GSO) packets by fast_vxlan';
  return `overlay (VXLAN), ${where}; encapsulation ${encap}; decapsulation ${decap}`;
}

/** How a packet from a local pod reaches a remote one, as the node is configured. */
export function remotePath(cfg: NodeConfigEntry | undefined, nodeIp: string, devs: Map<number, LocalDeviceEntry>): string {
  switch (cfg?.mode) {
    case 'overlay':
      // eBPF encapsulates over an IPv4 underlay only; the rest goes through fast_vxlan.
      return decodeOverlayFlags(cfg.flags).encap === 'ebpf' && net.isIPv4(nodeIp) && net.isIPv4(cfg.nodeIp)
        ? `vxlan vni ${cfg.vni} -> ${nodeIp} (eBPF encap, dev ${devs.get(cfg.uplinkIfindex)?.name ?? `#${cfg.uplinkIfindex}`})`
        : `vxlan vni ${cfg.vni} -> ${nodeIp} (fast_vxlan)`;
    case 'native':
      return `via ${nodeIp} dev ${devs.get(cfg.uplinkIfindex)?.name ?? `#${cfg.uplinkIfindex}`}`;
    default:
      return 'host stack (cross-node off)';
  }
}

/** Rows for `map dump NAME`, with names resolved for people. */
export function dumpMap(bpffsDir: string, name: string): Array<Record<string, unknown>> {
  switch (name) {
    case MAP_NAMES.localPods: {
      const devs = readDevices(bpffsDir);
      return withMap(bpffsDir, name, (m) => m.entries().map(([k, v]) => {
        const e = decodeLocalPod(k, v);
        return { ip: e.ip, hostIfindex: e.hostIfindex, hostIfName: devs.get(e.hostIfindex)?.name ?? '?', hostMac: e.hostMac, podIfindex: e.podIfindex, podMac: e.podMac };
      }));
    }
    case MAP_NAMES.clusterPods: {
      const cfg = readNodeConfig(bpffsDir);
      const devs = readDevices(bpffsDir);
      return withMap(bpffsDir, name, (m) => m.entries().map(([k, v]) => {
        const e = decodeClusterPod(k, v);
        return { ip: e.ip, kind: e.flags & CPOD_FLAG_NODE ? 'node' : 'pod', nodeIp: e.nodeIp, path: remotePath(cfg, e.nodeIp, devs) };
      }));
    }
    case MAP_NAMES.config: {
      const cfg = readNodeConfig(bpffsDir);
      if (!cfg) return [];
      const devs = readDevices(bpffsDir);
      const dev = (i: number) => (i ? devs.get(i)?.name ?? `#${i}` : '-');
      return [{
        mode: cfg.mode, nodeIp: cfg.nodeIp || '-', uplink: dev(cfg.uplinkIfindex), uplinkIfindex: cfg.uplinkIfindex,
        overlay: dev(cfg.overlayIfindex), overlayIfindex: cfg.overlayIfindex,
        vni: cfg.mode === 'overlay' ? cfg.vni : '-', port: cfg.mode === 'overlay' ? cfg.port : '-',
        encap: cfg.mode === 'overlay' ? decodeOverlayFlags(cfg.flags).encap : '-',
        overlayMac: cfg.overlayMac, overlaySrcMac: cfg.overlaySrcMac,
      }];
    }
    case MAP_NAMES.localDevices:
      return withMap(bpffsDir, name, (m) => m.entries().map(([k, v]) => ({ ...decodeLocalDevice(k, v) })));
    case MAP_NAMES.stats:
      return withMap(bpffsDir, name, (m) => m.entries().map(([k, v]) => ({ counter: STAT_NAMES[k.readUInt32LE(0)] ?? `#${k.readUInt32LE(0)}`, packets: sumPerCpu(v).toString() })).filter((r) => !r.counter.startsWith('#')));
    default:
      throw new Error(`unknown map ${name}; known: ${Object.values(MAP_NAMES).join(', ')}`);
  }
}
