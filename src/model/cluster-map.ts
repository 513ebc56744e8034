// What the cluster pod map of one node should hold: every pod of the cluster that is
// not on this node (host-network pods excluded, they use their node's address), keyed
// by pod address, pointing at the underlay address of the pod's node; and every other
// node's own address (so pod → remote node traffic takes the same path both ways).
export interface RemoteEntry {
  nodeIp: string;
  kind: 'pod' | 'node';
}

export interface PodFacts {
  uid: string;
  nodeName?: string;
  hostNetwork?: boolean;
  podIPs: string[];
  terminal?: boolean;
}

export interface NodeFacts {
  name: string;
  internalIp?: string;
}

/** The entries one pod contributes to `self`'s map. */
export function podEntries(pod: PodFacts, nodeIps: ReadonlyMap<string, string>, self: string): Array<[string, RemoteEntry]> {
  if (pod.hostNetwork || pod.terminal || !pod.nodeName || pod.nodeName === self) return [];
  const nodeIp = nodeIps.get(pod.nodeName);
  if (!nodeIp) return [];
  return pod.podIPs.map((ip) => [ip, { nodeIp, kind: 'pod' }]);
}

export function nodeEntries(nodes: Iterable<NodeFacts>, self: string): Array<[string, RemoteEntry]> {
  const out: Array<[string, RemoteEntry]> = [];
  for (const n of nodes) if (n.name !== self && n.internalIp) out.push([n.internalIp, { nodeIp: n.internalIp, kind: 'node' }]);
  return out;
}

/** The whole desired map (used for a full resync after a restart or a lost watch). */
export function desiredRemotes(pods: Iterable<PodFacts>, nodes: Iterable<NodeFacts>, self: string): Map<string, RemoteEntry> {
  const nodeList = [...nodes];
  const nodeIps = new Map(nodeList.filter((n) => n.internalIp).map((n) => [n.name, n.internalIp!]));
  const desired = new Map<string, RemoteEntry>(nodeEntries(nodeList, self));
  for (const p of pods) for (const [ip, e] of podEntries(p, nodeIps, self)) desired.set(ip, e);
  return desired;
}

/** One change to apply to the cluster map: `entry` undefined means remove `ip`. */
export interface MapChange {
  ip: string;
  entry?: RemoteEntry;
}

function sameEntry(a: RemoteEntry | undefined, b: RemoteEntry | undefined): boolean {
  return a === b || (!!a && !!b && a.nodeIp === b.nodeIp && a.kind === b.kind);
}

/**
 * The cluster map an agent wants, kept up to date one pod event at a time, and a mirror of
 * what it last wrote to the BPF map. Every agent sees every pod update of the cluster, and
 * most of them (status conditions, container states) change nothing here: an event whose
 * pod contributes the same entries as before costs a few field reads and no map access;
 * an event that does change something marks its addresses dirty, and `takeChanges` turns
 * the dirty addresses into the writes the BPF map still needs (none when the mirror already
 * holds the wanted entry). Per event the work is proportional to the pod's own addresses,
 * never to the size of the cluster.
 */
export class ClusterMapState {
  private nodeIpByName = new Map<string, string>();
  private nodeMap = new Map<string, RemoteEntry>();
  /** The entries each pod contributes (pods that contribute none are absent). */
  private readonly byPod = new Map<string, Map<string, RemoteEntry>>();
  /** The pods claiming each address, oldest claim first: the last one owns it (two pods
   *  may briefly share one while an address is reused; if the new one goes first, the
   *  address goes back to the other). */
  private readonly claims = new Map<string, Set<string>>();
  /** What the BPF map holds, as far as this agent wrote it. */
  private written = new Map<string, RemoteEntry>();
  private readonly dirty = new Set<string>();

  constructor(private readonly self: string) {}

  /**
   * Rebuilds everything from complete lists (the full resync) and returns the whole
   * desired map, which the caller writes with the datapath's sync (stale entries go).
   * From then on the mirror is that map.
   */
  reset(pods: Iterable<PodFacts>, nodes: Iterable<NodeFacts>): Map<string, RemoteEntry> {
    const nodeList = [...nodes];
    this.nodeIpByName = new Map(nodeList.filter((n) => n.internalIp).map((n) => [n.name, n.internalIp!]));
    this.nodeMap = new Map(nodeEntries(nodeList, this.self));
    this.byPod.clear();
    this.claims.clear();
    this.dirty.clear();
    for (const p of pods) this.podChanged(p);
    this.dirty.clear();
    const desired = new Map(this.nodeMap);
    for (const ip of this.claims.keys()) desired.set(ip, this.wanted(ip)!);
    this.written = new Map(desired);
    return desired;
  }

  /** A pod was added or updated. False (and nothing to do) when its entries did not change. */
  podChanged(pod: PodFacts): boolean {
    const entries = podEntries(pod, this.nodeIpByName, this.self);
    const prev = this.byPod.get(pod.uid);
    if (prev ? prev.size === entries.length && entries.every(([ip, e]) => sameEntry(prev.get(ip), e)) : entries.length === 0) return false;
    const next = new Map(entries);
    if (prev) for (const ip of prev.keys()) if (!next.has(ip)) this.disown(ip, pod.uid);
    for (const [ip] of entries) {
      let c = this.claims.get(ip);
      if (!c) this.claims.set(ip, (c = new Set()));
      c.delete(pod.uid); // a renewed claim moves to the end: the latest claim wins
      c.add(pod.uid);
      this.dirty.add(ip);
    }
    if (next.size > 0) this.byPod.set(pod.uid, next);
    else this.byPod.delete(pod.uid);
    return true;
  }

  /** A pod was deleted. False when it contributed nothing. */
  podGone(uid: string): boolean {
    const prev = this.byPod.get(uid);
    if (!prev) return false;
    this.byPod.delete(uid);
    for (const ip of prev.keys()) this.disown(ip, uid);
    return true;
  }

  /** The entry the map should hold for `ip` now: its pod's, else a node's. */
  wanted(ip: string): RemoteEntry | undefined {
    let owner: string | undefined;
    for (const uid of this.claims.get(ip) ?? []) owner = uid;
    return (owner === undefined ? undefined : this.byPod.get(owner)?.get(ip)) ?? this.nodeMap.get(ip);
  }

  /** The writes the BPF map needs for the addresses changed since the last call; the
   *  mirror is updated as if they were all applied (a failed write calls for a resync). */
  takeChanges(): MapChange[] {
    const out: MapChange[] = [];
    for (const ip of this.dirty) {
      const want = this.wanted(ip);
      if (sameEntry(want, this.written.get(ip))) continue;
      if (want) {
        this.written.set(ip, want);
        out.push({ ip, entry: want });
      } else {
        this.written.delete(ip);
        out.push({ ip });
      }
    }
    this.dirty.clear();
    return out;
  }

  /** Number of entries this agent believes the map holds. */
  get size(): number {
    return this.written.size;
  }

  private disown(ip: string, uid: string): void {
    const c = this.claims.get(ip);
    if (!c?.delete(uid)) return;
    if (c.size === 0) this.claims.delete(ip);
    this.dirty.add(ip);
  }
}
