// The node's eBPF datapath as the agent drives it: load the objects with their maps
// pinned under the node's bpffs directory, attach the pod program to host-side veths,
// and keep the map entries in step with the endpoints.
//
// Cross-node networking (overlay or native routing) lives here too: the node's settings
// in fast_cfg_v1, the programs on fast_vxlan / the uplink, and the cluster map
// (fast_cpod_v1) of remote pods and nodes with the node routes that go with them. The
// pinned maps and the kernel's routes are the only state: an agent that restarts adopts
// them (see crossNodeState()).
import * as net from 'node:net';
import * as path from 'node:path';
import { LoadedBpfObject } from '../dataplane/bpf/bpf-object.js';
import { attachTc, detachTc, queryAttachment, setAttachMode, type AttachMode } from '../dataplane/bpf/tc.js';
import { probeTcx, pruneDefunctTcxPins } from '../dataplane/bpf/tcx.js';
import { canDecapGsoInEbpf } from '../dataplane/bpf/kernel-btf.js';
import { ensureBpffs } from '../dataplane/net/bpffs.js';
import {
  MAP_NAMES, encodeIp, encodeIfindex, encodeLocalPod, encodeLocalDevice, decodeLocalPod, decodeIp, decodeLocalDevice,
  type OverlayPaths, encodeClusterPod, decodeClusterPod, encodeNodeConfig, decodeNodeConfig, CONFIG_KEY, CPOD_FLAG_NODE, encodeOverlayFlags, decodeOverlayFlags, type CrossNodeMode,
} from '../dataplane/bpf/map-layouts.js';
import {
  OVERLAY_DEVICE, OVERLAY_MAC, OVERLAY_SRC_MAC, DEFAULT_VNI, DEFAULT_VXLAN_PORT, VXLAN_OVERHEAD_V4, VXLAN_OVERHEAD_V6,
  ensureOverlayDevice, removeOverlayDevice, getLink, listLinks, listFastRoutes, runRouteLines, routeReplaceLine, routeDeleteLine,
  sameRoute, canonicalDst, parsePrefix, prefixContains, prefixText, applyMasquerade, removeMasquerade, ensureForwarding, detectUnderlay,
  RouteBatchError, type RouteSpec, type Prefix,
} from '../dataplane/net/cross-node.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { Endpoint } from './endpoint-store.js';

export const POD_PROGRAM = 'fast_from_pod';
export const OVERLAY_INGRESS_PROGRAM = 'fast_from_overlay';
export const OVERLAY_EGRESS_PROGRAM = 'fast_to_overlay';
export const UPLINK_PROGRAM = 'fast_from_uplink';

export type { CrossNodeMode };

/** How this node's programs are attached, and why (agent log, fast-ctl status). */
export interface AttachChoice {
  mode: AttachMode;
  /** tcx mode, but pods attach with cls_bpf during their CNI ADD and are moved to a tcx link
   *  once the node is quiet (attachMode auto; see tcx-mover.ts for why). */
  deferred: boolean;
  reason: string;
  /** Where tcx link pins live (also in tc mode: leftovers of tcx are removed from there). */
  linkDir: string;
}
export type RemoteKind = 'pod' | 'node';

export interface RemoteTarget {
  /** Underlay address of the node hosting the pod (for a node entry: the node itself). */
  nodeIp: string;
  kind: RemoteKind;
}

export interface RemoteEntry extends RemoteTarget {
  ip: string;
}

export interface CrossNodeOptions {
  mode: CrossNodeMode;
  /** The device holding nodeIp (tunnel packets and masqueraded traffic leave through
   *  it). Default: the device holding nodeIp, else the default route's device. */
  uplink?: string;
  /** This node's underlay address. Default: the uplink's first global address. */
  nodeIp?: string;
  /** Overlay: VXLAN network identifier (default 1) and UDP port (default 8472). */
  vni?: number;
  port?: number;
  /** MTU of cross-node pod traffic: fast_vxlan's MTU in overlay mode (default uplink MTU
   *  - 50, - 70 over IPv6); in native mode the uplink's MTU unless given. */
  mtu?: number;
  /** The cluster's pod ranges (CIDRs): overlay routes, and what is not masqueraded. */
  podRanges?: string[];
  /** Overlay: who encapsulates pod packets. 'ebpf' (default): fast_from_pod writes the
   *  outer headers itself and sends the packet out of the uplink (IPv4 underlays; IPv6 ones
   *  and packets eBPF cannot take fall back to fast_vxlan); 'kernel': always fast_vxlan. */
  encap?: OverlayEncap;
  /** Overlay: who decapsulates VXLAN packets for local pods. 'ebpf' (default): the uplink's
   *  program, straight into the pod (GSO packets only where the kernel allows it); 'kernel':
   *  always fast_vxlan. */
  decap?: OverlayEncap;
}

export type OverlayEncap = 'ebpf' | 'kernel';

export interface CrossNodeState {
  mode: CrossNodeMode;
  nodeIp: string;
  uplink?: { name: string; ifindex: number; mtu: number; mac: string };
  /** encap/gsoDecap: who encapsulates pod packets, and who decapsulates GSO (large,
   *  aggregated) VXLAN packets for local pods: eBPF on the uplink where the kernel can clear
   *  their tunnel GSO state, else fast_vxlan. */
  overlay?: { name: string; ifindex: number; mtu: number; port: number; vni: number } & OverlayPaths;
  podRanges: string[];
  /** The MTU pods need for cross-node traffic to fit without fragmentation. */
  podMtu?: number;
}

export interface SyncReport {
  added: number;
  updated: number;
  removed: number;
  unchanged: number;
  skipped: number;
}

let active: NodeDatapath | undefined;

interface RouteJob {
  full: boolean;
  ips: Set<string>;
  waiters: Array<{ ips: string[] | 'all'; resolve: () => void; reject: (e: Error) => void }>;
}

export class NodeDatapath {
  private cross: CrossNodeState | undefined; // undefined until configured or recovered
  private readonly lock = new KeyedMutex();
  private routeJob: RouteJob = { full: false, ips: new Set(), waiters: [] };
  private routesRunning = false;
  /** `ip` runs and route lines issued for remotes (tests, benchmarks). */
  readonly routeStats = { batches: 0, lines: 0 };

  private constructor(private readonly obj: LoadedBpfObject, private readonly netObj: LoadedBpfObject, readonly bpffsDir: string, readonly attach: AttachChoice) {}

  /** `attach`: 'auto' takes tcx links where the kernel has them, else clsact + cls_bpf (see config.ts for why 'tc' is the agent's default). */
  static open(bpfDir: string, bpffsDir: string, attach: AttachMode | 'auto' = 'tc'): NodeDatapath {
    ensureBpffs(bpffsDir);
    const pod = LoadedBpfObject.load(path.join(bpfDir, 'fast_pod.o'), bpffsDir);
    let netObj: LoadedBpfObject;
    try {
      netObj = LoadedBpfObject.load(path.join(bpfDir, 'fast_net.o'), bpffsDir); // adopts the maps pod pinned
    } catch (err) {
      pod.close();
      throw err;
    }
    let choice: AttachChoice;
    try {
      choice = chooseAttachMode(attach, pod.programFd(POD_PROGRAM), path.join(bpffsDir, 'links'));
    } catch (err) {
      pod.close();
      netObj.close();
      throw err;
    }
    setAttachMode(choice.mode, choice.linkDir);
    // Links whose device went while no agent was running (their pins stay behind).
    pruneDefunctTcxPins(choice.linkDir);
    active = new NodeDatapath(pod, netObj, bpffsDir, choice);
    return active;
  }

  /** The datapath this process opened last (for callers that were not handed one). */
  static current(): NodeDatapath | undefined {
    return active;
  }

  /** Attach first, then publish in the maps: a packet never meets a half-set-up pod. */
  addEndpoint(ep: Endpoint): void {
    attachTc(ep.hostIfindex, 'ingress', this.obj.programFd(POD_PROGRAM), { newDevice: true, via: this.attach.deferred ? 'tc' : this.attach.mode });
    this.writeEndpointEntries(ep);
  }

  /** The deferred half of an ADD: a tcx link with the same program, then the filter goes (the
   *  link runs first, so no packet is missed in between). Holds RTNL for an RCU grace period. */
  moveEndpointToTcx(ep: Pick<Endpoint, 'hostIfindex'>): void {
    attachTc(ep.hostIfindex, 'ingress', this.obj.programFd(POD_PROGRAM), { via: 'tcx' });
  }

  writeEndpointEntries(ep: Endpoint): void {
    const value = encodeLocalPod({ hostIfindex: ep.hostIfindex, podIfindex: ep.podIfindex, podMac: ep.podMac, hostMac: ep.hostMac, flags: 0 });
    for (const a of ep.addresses) this.obj.map(MAP_NAMES.localPods).update(encodeIp(a.address), value);
    this.obj.map(MAP_NAMES.localDevices).update(encodeIfindex(ep.hostIfindex), encodeLocalDevice({ name: ep.hostIfName, mac: ep.hostMac, kind: 'pod-veth', flags: 0 }));
  }

  /** Re-attaches the current program to an adopted endpoint: an atomic swap on the link or
   *  filter already there (moving it to this node's attach mode if an older agent used the
   *  other one), then the map entries (unchanged unless the record changed). Returns true
   *  when the pod is left on cls_bpf, waiting for its move to a tcx link (deferred mode). */
  adoptEndpoint(ep: Endpoint): boolean {
    // Deferred mode keeps a cls_bpf pod on cls_bpf here (its move comes later, off the start path).
    const via = this.attach.deferred ? queryAttachment(ep.hostIfindex, 'ingress')?.via ?? 'tc' : this.attach.mode;
    attachTc(ep.hostIfindex, 'ingress', this.obj.programFd(POD_PROGRAM), { via });
    this.writeEndpointEntries(ep);
    return this.attach.deferred && via === 'tc';
  }

  removeEndpoint(ep: Pick<Endpoint, 'addresses' | 'hostIfindex'>): void {
    for (const a of ep.addresses) this.obj.map(MAP_NAMES.localPods).delete(encodeIp(a.address));
    this.obj.map(MAP_NAMES.localDevices).delete(encodeIfindex(ep.hostIfindex));
    detachTc(ep.hostIfindex, 'ingress', { deviceGoing: true }); // the caller deletes the veth next
  }

  hasEndpointEntry(address: string, hostIfindex: number): boolean {
    const v = this.obj.map(MAP_NAMES.localPods).lookup(encodeIp(address));
    return !!v && decodeLocalPod(encodeIp(address), v).hostIfindex === hostIfindex;
  }

  /** Removes map entries no endpoint accounts for (a crash between steps). */
  pruneLocalEntries(valid: Endpoint[]): string[] {
    const wanted = new Set(valid.flatMap((e) => e.addresses.map((a) => a.address)));
    const removed: string[] = [];
    const map = this.obj.map(MAP_NAMES.localPods);
    for (const key of map.keys()) {
      const ip = decodeIp(key);
      if (!wanted.has(ip)) {
        map.delete(key);
        removed.push(ip);
      }
    }
    const ifindexes = new Set(valid.map((e) => e.hostIfindex));
    const devs = this.obj.map(MAP_NAMES.localDevices);
    for (const key of devs.keys()) {
      const ifindex = key.readUInt32LE(0);
      if (!ifindexes.has(ifindex) && devs.lookup(key)?.readUInt16LE(6) === 1) devs.delete(key);
    }
    return removed;
  }

  // ---- cross-node networking ----

  /**
   * Sets the node up for cross-node pod traffic, or switches mode (idempotent: calling it
   * again with the same options disturbs no flow). 'local' turns it off.
   */
  configureCrossNode(opts: CrossNodeOptions): Promise<CrossNodeState> {
    const o = validateOptions(opts);
    return this.lock.run('cross', async () => {
      if (o.mode === 'local') return this.disableInner();
      if (!o.uplink || !o.nodeIp) Object.assign(o, await detectUnderlay(o.uplink || undefined, o.nodeIp || undefined));
      const prev = await this.crossStateInner();
      const uplink = await getLink(o.uplink);
      if (!uplink) throw new Error(`uplink ${o.uplink} does not exist`);
      const v6Underlay = net.isIPv6(o.nodeIp);
      const ranges = o.podRanges.map(parsePrefix);
      const state: CrossNodeState = {
        mode: o.mode, nodeIp: o.nodeIp, podRanges: ranges.map(prefixText),
        uplink: { name: uplink.ifname, ifindex: uplink.ifindex, mtu: uplink.mtu, mac: uplink.address },
      };
      const paths: OverlayPaths = { encap: o.encap, decap: o.decap, gsoDecap: o.decap === 'ebpf' && canDecapGsoInEbpf() ? 'ebpf' : 'kernel' };
      const cfg = {
        mode: o.mode, overlayIfindex: 0, uplinkIfindex: uplink.ifindex, vni: o.vni, nodeIp: o.nodeIp,
        overlayMac: OVERLAY_MAC, overlaySrcMac: OVERLAY_SRC_MAC, port: o.port, flags: o.mode === 'overlay' ? encodeOverlayFlags(paths) : 0,
      };
      ensureForwarding(new Set([...ranges.map((r) => r.family), v6Underlay ? 6 : 4] as Array<4 | 6>));

      // New path first, then publish the mode, then take the old path down.
      if (o.mode === 'overlay') {
        const mtu = o.mtu ?? uplink.mtu - (v6Underlay ? VXLAN_OVERHEAD_V6 : VXLAN_OVERHEAD_V4);
        const dev = await ensureOverlayDevice({ port: o.port, mtu });
        attachTc(dev.ifindex, 'ingress', this.netObj.programFd(OVERLAY_INGRESS_PROGRAM));
        attachTc(dev.ifindex, 'egress', this.netObj.programFd(OVERLAY_EGRESS_PROGRAM));
        cfg.overlayIfindex = dev.ifindex;
        state.overlay = { name: dev.ifname, ifindex: dev.ifindex, mtu: dev.mtu, port: o.port, vni: o.vni, ...paths };
        state.podMtu = dev.mtu;
      } else {
        state.podMtu = o.mtu ?? uplink.mtu;
      }
      // Both modes: native delivers routed pod packets, overlay decapsulates VXLAN packets
      // for local pods there (fast_vxlan stays the path for everything else).
      attachTc(uplink.ifindex, 'ingress', this.netObj.programFd(UPLINK_PROGRAM));
      this.obj.map(MAP_NAMES.config).update(CONFIG_KEY, encodeNodeConfig(cfg));
      const unusedUplinks = new Set<number>(prev.uplink ? [prev.uplink.ifindex] : []);
      unusedUplinks.delete(uplink.ifindex);
      for (const ifindex of unusedUplinks) detachTc(ifindex, 'ingress');
      if (o.mode === 'native') {
        await removeOverlayDevice();
        pruneDefunctTcxPins(this.attach.linkDir); // fast_vxlan's links went with it
      }
      this.writeNetDevices(state);
      this.cross = state;

      const failures = await this.reconcileAllRoutes(state);
      if (state.podRanges.length) await applyMasquerade({ uplink: uplink.ifname, podRanges: state.podRanges });
      else await removeMasquerade();
      if (failures.length) throw new RouteBatchError(failures);
      return state;
    });
  }

  /** Back to node-local only: programs detached, fast_vxlan, Fast's routes and the nft
   *  table removed. The cluster map keeps its entries (they are the cluster's view). */
  disableCrossNode(): Promise<CrossNodeState> {
    return this.lock.run('cross', () => this.disableInner());
  }

  private async disableInner(): Promise<CrossNodeState> {
    const cfg = decodeNodeConfig(this.obj.map(MAP_NAMES.config).lookup(CONFIG_KEY)!);
    this.obj.map(MAP_NAMES.config).update(CONFIG_KEY, Buffer.alloc(this.obj.map(MAP_NAMES.config).valueSize));
    if (cfg.uplinkIfindex) detachTc(cfg.uplinkIfindex, 'ingress');
    await removeOverlayDevice();
    pruneDefunctTcxPins(this.attach.linkDir); // fast_vxlan's links went with it
    const stale = await listFastRoutes();
    await runRouteLines(stale.map((r) => routeDeleteLine(r.dst)));
    await removeMasquerade();
    this.writeNetDevices(undefined);
    this.cross = { mode: 'local', nodeIp: '', podRanges: [] };
    return this.cross;
  }

  /** What cross-node networking looks like now: this process's configuration, or (after
   *  a restart, before anyone configured it again) what the pinned map and kernel hold. */
  crossNodeState(): Promise<CrossNodeState> {
    return this.lock.run('cross', () => this.crossStateInner());
  }

  private async crossStateInner(): Promise<CrossNodeState> {
    if (this.cross) return this.cross;
    const cfg = decodeNodeConfig(this.obj.map(MAP_NAMES.config).lookup(CONFIG_KEY)!);
    if (cfg.mode === 'local') return { mode: 'local', nodeIp: cfg.nodeIp, podRanges: [] };
    const links = await listLinks();
    const up = links.find((l) => l.ifindex === cfg.uplinkIfindex);
    const ov = links.find((l) => l.ifname === OVERLAY_DEVICE);
    const state: CrossNodeState = {
      mode: cfg.mode, nodeIp: cfg.nodeIp, podRanges: [],
      uplink: up && { name: up.ifname, ifindex: up.ifindex, mtu: up.mtu, mac: up.address },
    };
    if (cfg.mode === 'overlay') {
      if (ov) state.overlay = { name: ov.ifname, ifindex: ov.ifindex, mtu: ov.mtu, port: cfg.port, vni: cfg.vni, ...decodeOverlayFlags(cfg.flags) };
      state.podMtu = ov?.mtu;
      // The ranges are the overlay's non-host routes.
      state.podRanges = (await listFastRoutes()).filter((r) => r.dev === OVERLAY_DEVICE && !isHostPrefix(r.dst)).map((r) => r.dst);
    } else {
      state.podMtu = up?.mtu;
    }
    this.cross = state;
    return state;
  }

  private writeNetDevices(state: CrossNodeState | undefined): void {
    const devs = this.obj.map(MAP_NAMES.localDevices);
    const keep = new Set<number>();
    if (state?.uplink) {
      keep.add(state.uplink.ifindex);
      devs.update(encodeIfindex(state.uplink.ifindex), encodeLocalDevice({ name: state.uplink.name, mac: state.uplink.mac, kind: 'uplink', flags: 0 }));
    }
    if (state?.overlay) {
      keep.add(state.overlay.ifindex);
      devs.update(encodeIfindex(state.overlay.ifindex), encodeLocalDevice({ name: state.overlay.name, mac: OVERLAY_MAC, kind: 'overlay', flags: 0 }));
    }
    for (const [k, v] of devs.entries()) {
      const d = decodeLocalDevice(k, v);
      if ((d.kind === 'uplink' || d.kind === 'overlay') && !keep.has(d.ifindex)) devs.delete(k);
    }
  }

  /** Adds or changes a remote pod (or node, kind 'node'). An entry for this node's own
   *  address is ignored (returns false): this node's pods are in the local map. */
  async upsertRemote(ip: string, nodeIp: string, kind: RemoteKind = 'pod'): Promise<boolean> {
    checkRemote(ip, { nodeIp, kind });
    const st = this.cross ?? (await this.crossNodeState());
    if (st.nodeIp && sameIp(nodeIp, st.nodeIp)) return false;
    const map = this.obj.map(MAP_NAMES.clusterPods);
    const key = encodeIp(ip);
    const value = encodeClusterPod({ nodeIp, flags: kind === 'node' ? CPOD_FLAG_NODE : 0 });
    const prev = map.lookup(key);
    // Unchanged (pod status updates): an entry in the map always has its route, see below.
    if (prev?.equals(value)) return true;
    map.update(key, value);
    try {
      await this.requestRoutes([ip]);
    } catch (err) {
      // Keep "in the map => routed": put the previous entry back (its route follows).
      if (prev) map.update(key, prev);
      else map.delete(key);
      await this.requestRoutes([ip]).catch(() => undefined);
      throw err;
    }
    return true;
  }

  /** Removes a remote and its route; false when it was not there. */
  async deleteRemote(ip: string): Promise<boolean> {
    if (!net.isIP(ip)) throw new Error(`not an IP address: ${ip}`);
    const existed = this.obj.map(MAP_NAMES.clusterPods).delete(encodeIp(ip));
    await this.requestRoutes([ip]);
    return existed;
  }

  /** Makes the cluster map (and Fast's routes) exactly `desired`: the resync after a
   *  restart or a lost watch. Stale entries and their routes go. */
  async syncRemotes(desired: Map<string, RemoteTarget>): Promise<SyncReport> {
    for (const [ip, t] of desired) checkRemote(ip, t);
    const st = this.cross ?? (await this.crossNodeState());
    const map = this.obj.map(MAP_NAMES.clusterPods);
    const report: SyncReport = { added: 0, updated: 0, removed: 0, unchanged: 0, skipped: 0 };
    const wanted = new Map<string, RemoteTarget>();
    for (const [ip, t] of desired) {
      if (st.nodeIp && sameIp(t.nodeIp, st.nodeIp)) report.skipped++;
      else wanted.set(decodeIp(encodeIp(ip)), t);
    }
    const current = new Map(this.listRemotes().map((r) => [r.ip, r]));
    for (const [ip, t] of wanted) {
      const cur = current.get(ip);
      if (cur && sameIp(cur.nodeIp, t.nodeIp) && cur.kind === t.kind) {
        report.unchanged++;
        continue;
      }
      map.update(encodeIp(ip), encodeClusterPod({ nodeIp: t.nodeIp, flags: t.kind === 'node' ? CPOD_FLAG_NODE : 0 }));
      if (cur) report.updated++;
      else report.added++;
    }
    for (const ip of current.keys()) {
      if (!wanted.has(ip)) {
        map.delete(encodeIp(ip));
        report.removed++;
      }
    }
    await this.requestRoutes('all');
    return report;
  }

  listRemotes(): RemoteEntry[] {
    return this.obj.map(MAP_NAMES.clusterPods).entries().map(([k, v]) => {
      const e = decodeClusterPod(k, v);
      return { ip: e.ip, nodeIp: e.nodeIp, kind: e.flags & CPOD_FLAG_NODE ? 'node' : 'pod' };
    });
  }

  /**
   * Route changes are coalesced: requests that arrive while a batch runs share the next
   * one, and routes are derived from the map *when the batch runs*, so the last change
   * to an address wins whatever order the callers' promises settle in.
   */
  private requestRoutes(ips: string[] | 'all'): Promise<void> {
    return new Promise((resolve, reject) => {
      if (ips === 'all') this.routeJob.full = true;
      else for (const ip of ips) this.routeJob.ips.add(ip);
      this.routeJob.waiters.push({ ips, resolve, reject });
      void this.runRouteJobs();
    });
  }

  private async runRouteJobs(): Promise<void> {
    if (this.routesRunning) return;
    this.routesRunning = true;
    try {
      while (this.routeJob.waiters.length > 0) {
        const job = this.routeJob;
        this.routeJob = { full: false, ips: new Set(), waiters: [] };
        try {
          const failures = await this.lock.run('cross', async () => {
            const st = await this.crossStateInner();
            return job.full ? this.reconcileAllRoutes(st) : this.reconcileRoutesFor(st, [...job.ips]);
          });
          for (const w of job.waiters) {
            const ips = w.ips;
            const mine = ips === 'all' ? failures : failures.filter((f) => ips.includes(f.ip));
            if (mine.length) w.reject(new RouteBatchError(mine));
            else w.resolve();
          }
        } catch (err) {
          for (const w of job.waiters) w.reject(err as Error);
        }
      }
    } finally {
      this.routesRunning = false;
    }
  }

  /** The route the node stack needs for one remote, if any. */
  private wantedRoute(st: CrossNodeState, ranges: Prefix[], ip: string, t: RemoteTarget | undefined): RouteSpec | undefined {
    if (!t || t.kind !== 'pod' || st.mode === 'local') return undefined;
    // A pod of this node wins (its own /32 through its veth must never be replaced).
    if (this.obj.map(MAP_NAMES.localPods).lookup(encodeIp(ip))) return undefined;
    const host = `${ip}/${net.isIPv6(ip) ? 128 : 32}`;
    const src = st.nodeIp && net.isIPv6(st.nodeIp) === net.isIPv6(ip) ? st.nodeIp : undefined;
    if (st.mode === 'overlay') {
      if (ranges.some((r) => prefixContains(r, ip))) return undefined; // the range route covers it
      return { dst: host, dev: OVERLAY_DEVICE, src };
    }
    // Linux has no IPv6 route through an IPv4 gateway (RTA_VIA): a pod whose family
    // differs from its node's address is reachable from pods (eBPF) but not from the node.
    if (!st.uplink || net.isIPv6(ip) !== net.isIPv6(t.nodeIp)) return undefined;
    return { dst: host, dev: st.uplink.name, via: t.nodeIp, src };
  }

  private allWantedRoutes(st: CrossNodeState): RouteSpec[] {
    if (st.mode === 'local') return [];
    const ranges = st.podRanges.map(parsePrefix);
    const out: RouteSpec[] = [];
    if (st.mode === 'overlay') {
      for (const r of ranges) {
        const src = st.nodeIp && (r.family === 6) === net.isIPv6(st.nodeIp) ? st.nodeIp : undefined;
        out.push({ dst: prefixText(r), dev: OVERLAY_DEVICE, src });
      }
    }
    for (const r of this.listRemotes()) {
      const route = this.wantedRoute(st, ranges, r.ip, r);
      if (route) out.push(route);
    }
    return out;
  }

  private async reconcileRoutesFor(st: CrossNodeState, ips: string[]): Promise<Array<{ ip: string; line: string; error: string }>> {
    const ranges = st.podRanges.map(parsePrefix);
    const lines: string[] = [];
    const owners: string[] = [];
    for (const ip of ips) {
      const v = this.obj.map(MAP_NAMES.clusterPods).lookup(encodeIp(ip));
      const e = v ? decodeClusterPod(encodeIp(ip), v) : undefined;
      const route = this.wantedRoute(st, ranges, ip, e && { nodeIp: e.nodeIp, kind: e.flags & CPOD_FLAG_NODE ? 'node' : 'pod' });
      if (route) lines.push(routeReplaceLine(route));
      // A host route of ours can only exist in native mode or, in overlay mode, outside the
      // ranges (a mode switch reconciles everything): anywhere else there is nothing to do,
      // and an overlay upsert costs no `ip` process at all.
      else if (st.mode === 'native' || (st.mode === 'overlay' && !ranges.some((r) => prefixContains(r, ip)))) {
        lines.push(routeDeleteLine(`${ip}/${net.isIPv6(ip) ? 128 : 32}`));
      } else continue;
      owners.push(ip);
    }
    return this.runLines(lines, owners);
  }

  /** Full reconcile: one listing of Fast's routes, one batch of differences. */
  private async reconcileAllRoutes(st: CrossNodeState): Promise<Array<{ ip: string; line: string; error: string }>> {
    const wanted = new Map(this.allWantedRoutes(st).map((r) => [canonicalDst(r.dst), r]));
    const actual = new Map((await listFastRoutes()).map((r) => [canonicalDst(r.dst), r]));
    const lines: string[] = [];
    const owners: string[] = [];
    for (const [key, r] of actual) {
      if (!wanted.has(key)) {
        lines.push(routeDeleteLine(r.dst));
        owners.push(r.dst.split('/')[0]!);
      }
    }
    for (const [key, r] of wanted) {
      const cur = actual.get(key);
      if (!cur || !sameRoute(cur, r)) {
        lines.push(routeReplaceLine(r));
        owners.push(r.dst.split('/')[0]!);
      }
    }
    return this.runLines(lines, owners);
  }

  private async runLines(lines: string[], owners: string[]): Promise<Array<{ ip: string; line: string; error: string }>> {
    if (lines.length === 0) return [];
    this.routeStats.batches++;
    this.routeStats.lines += lines.length;
    const failures = await runRouteLines(lines);
    return failures.map((f) => ({ ip: owners[f.index] ?? '?', line: f.line, error: f.error }));
  }

  close(): void {
    this.obj.close();
    this.netObj.close();
    if (active === this) active = undefined;
  }
}

function chooseAttachMode(wanted: AttachMode | 'auto', podProgFd: number, linkDir: string): AttachChoice {
  if (wanted === 'tc') return { mode: 'tc', deferred: false, reason: 'configured (attachMode tc)', linkDir };
  const probe = probeTcx(podProgFd);
  if (probe.supported && wanted === 'tcx') return { mode: 'tcx', deferred: false, reason: 'configured (attachMode tcx): pods get their tcx link during the CNI ADD', linkDir };
  if (probe.supported) return { mode: 'tcx', deferred: true, reason: `kernel has tcx (${probe.detail}): pods start on cls_bpf and move to a tcx link when the node is idle`, linkDir };
  if (wanted === 'tcx') throw new Error(`attachMode tcx: this kernel has no tcx links (${probe.detail}); use attachMode auto or tc`);
  return { mode: 'tc', deferred: false, reason: `kernel has no tcx links (${probe.detail}): clsact + cls_bpf`, linkDir };
}

function isHostPrefix(dst: string): boolean {
  const p = parsePrefix(dst);
  return p.bits === (p.family === 4 ? 32 : 128);
}

function sameIp(a: string, b: string): boolean {
  return encodeIp(a).equals(encodeIp(b));
}

function checkRemote(ip: string, t: RemoteTarget): void {
  if (!net.isIP(ip)) throw new Error(`not an IP address: ${ip}`);
  if (!net.isIP(t.nodeIp)) throw new Error(`remote ${ip}: not a node address: ${t.nodeIp}`);
  if (t.kind !== 'pod' && t.kind !== 'node') throw new Error(`remote ${ip}: kind must be pod or node, got ${String(t.kind)}`);
}

type ValidOptions = Required<Omit<CrossNodeOptions, 'mtu'>> & { mtu?: number };

function validateOptions(o: CrossNodeOptions): ValidOptions {
  if (!['local', 'overlay', 'native'].includes(o.mode)) throw new Error(`mode must be local, overlay or native, got ${String(o.mode)}`);
  const vni = o.vni ?? DEFAULT_VNI;
  const port = o.port ?? DEFAULT_VXLAN_PORT;
  const podRanges = o.podRanges ?? [];
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) throw new Error(`vni must be an integer in 0..16777215, got ${vni}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port must be an integer in 1..65535, got ${port}`);
  if (o.mtu !== undefined && (!Number.isInteger(o.mtu) || o.mtu < 576 || o.mtu > 65535)) throw new Error(`mtu must be an integer in 576..65535, got ${o.mtu}`);
  for (const r of podRanges) parsePrefix(r);
  if (o.uplink !== undefined && (!/^[^\s/]{1,15}$/.test(o.uplink) || o.uplink === OVERLAY_DEVICE)) throw new Error(`uplink must name the node's underlay device, got ${String(o.uplink)}`);
  if (o.nodeIp !== undefined && !net.isIP(o.nodeIp)) throw new Error(`nodeIp must be this node's underlay address, got ${String(o.nodeIp)}`);
  const encap = o.encap ?? 'ebpf';
  if (encap !== 'ebpf' && encap !== 'kernel') throw new Error(`encap must be ebpf or kernel, got ${String(encap)}`);
  const decap = o.decap ?? 'ebpf';
  if (decap !== 'ebpf' && decap !== 'kernel') throw new Error(`decap must be ebpf or kernel, got ${String(decap)}`);
  return { mode: o.mode, uplink: o.uplink ?? '', nodeIp: o.nodeIp ?? '', vni, port, mtu: o.mtu, podRanges, encap, decap };
}
