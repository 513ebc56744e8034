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
