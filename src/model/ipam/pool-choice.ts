// Which pool(s) a pod may take its address from, in the order to try them.
//
// Precedence:
//   1. the pod's annotation `fast.io/ips` — one name, a comma-separated list, or a JSON array
//      string (`["a","b"]`), tried in order;
//   2. else the same annotation on the pod's Namespace (kubefay's namespace-bound subnets);
//   3. else every Ready pool that declares at least one affinity and whose given affinities
//      (podAffinity, namespaceAffinity, nodeAffinity) all select the pod, its namespace and its
//      node, in name order (pools without any affinity are only used when named, so a pod
//      without annotations is not captured by e.g. `sample-ips`);
//   4. else `default-ips`.
// In every case a pool must exist, be Ready, and have all its given affinities match: a pool's
// affinities say who may use it, naming the pool does not override them. Named pools that are
// unusable are skipped (and reported in `rejected`); when none is left the choice fails with a
// message saying why each was refused.

import { type IpAddress, formatIp, tryParseIp } from './address.js';
import { DEFAULT_POOL_NAME, type Pool, type PoolValidation, readyCondition } from './pool.js';
import { type LabelSelector, type Labels, formatSelector, matchesSelector } from './selector.js';

export const POOL_ANNOTATION = 'fast.io/ips';
export const STATIC_IP_ANNOTATION = 'fast.io/ip';
/** Label every Namespace carries (Kubernetes ≥ 1.21); used when the Namespace is not known. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface ObjectInfo {
  readonly name: string;
  readonly labels?: Labels;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface PodInfo extends ObjectInfo {
  readonly namespace: string;
  readonly uid?: string;
}

export interface PoolChoiceInput {
  readonly pod: PodInfo;
  /** The pod's Namespace object, when known. */
  readonly namespace?: ObjectInfo;
  readonly node: ObjectInfo;
  /** Every pool's validation (Ready or not), keyed by pool name or as a list. */
  readonly pools: ReadonlyMap<string, PoolValidation> | Iterable<PoolValidation>;
}

export type PoolSource = 'pod-annotation' | 'namespace-annotation' | 'affinity' | 'default';

export type PoolChoiceReason =
  | 'InvalidAnnotation'
  | 'PoolNotFound'
  | 'PoolNotReady'
  | 'PoolNotPermitted'
  | 'NoPool'
  | 'InvalidStaticAddress'
  | 'StaticAddressNotInPool';

export interface RejectedPool {
  readonly pool: string;
  readonly reason: 'PoolNotFound' | 'PoolNotReady' | 'PoolNotPermitted';
  readonly message: string;
}

export interface PoolChoice {
  readonly ok: true;
  readonly source: PoolSource;
  /** Pools to try, in order (at least one). */
  readonly candidates: readonly string[];
  /** Named pools that were skipped, and why. */
  readonly rejected: readonly RejectedPool[];
  /** Present when the pod asks for `fast.io/ip`: the address and the candidate pool holding it. */
  readonly staticAddress?: { readonly address: IpAddress; readonly pool: string };
}

export interface PoolChoiceError {
  readonly ok: false;
  readonly reason: PoolChoiceReason;
  readonly message: string;
  readonly source?: PoolSource;
  readonly rejected: readonly RejectedPool[];
}

export type PoolChoiceResult = PoolChoice | PoolChoiceError;

/** Parses the value of `fast.io/ips`: `a`, `a, b`, or `["a","b"]`; duplicates are dropped. */
export function parsePoolAnnotation(value: string): { ok: true; names: string[] } | { ok: false; message: string } {
  const t = value.trim();
  let names: string[];
  if (t.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch {
      return { ok: false, message: `is not a valid JSON array of pool names: ${value}` };
    }
    if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== 'string')) {
      return { ok: false, message: `is not a JSON array of strings: ${value}` };
    }
    names = (parsed as string[]).map((x) => x.trim());
  } else {
    names = t.split(',').map((x) => x.trim());
  }
  if (names.some((n) => n === '')) return { ok: false, message: `has an empty pool name: ${JSON.stringify(value)}` };
  if (names.length === 0) return { ok: false, message: 'names no pool' };
  return { ok: true, names: [...new Set(names)] };
}

function poolMap(pools: PoolChoiceInput['pools']): Map<string, PoolValidation> {
  if (pools instanceof Map) return pools as Map<string, PoolValidation>;
  const m = new Map<string, PoolValidation>();
  for (const p of pools as Iterable<PoolValidation>) m.set(p.name, p);
  return m;
}

function podRef(pod: PodInfo): string {
  return `${pod.namespace}/${pod.name}`;
}

function namespaceLabels(pod: PodInfo, ns: ObjectInfo | undefined): Labels {
  return ns?.labels ?? { [NAMESPACE_NAME_LABEL]: pod.namespace };
}

function hasAffinity(p: Pool): boolean {
  return p.spec.podAffinity !== undefined || p.spec.namespaceAffinity !== undefined || p.spec.nodeAffinity !== undefined;
}

/** Whether all of the pool's given affinities select the pod, its namespace and its node. */
export function poolPermits(
  pool: Pool,
  pod: PodInfo,
  namespace: ObjectInfo | undefined,
  node: ObjectInfo,
): { ok: true } | { ok: false; message: string } {
  const checks: [string, LabelSelector | undefined, Labels | undefined, string][] = [
    ['nodeAffinity', pool.spec.nodeAffinity, node.labels, `node ${node.name}`],
    ['namespaceAffinity', pool.spec.namespaceAffinity, namespaceLabels(pod, namespace), `namespace ${pod.namespace}`],
    ['podAffinity', pool.spec.podAffinity, pod.labels, `pod ${podRef(pod)}`],
  ];
  for (const [field, sel, labels, what] of checks) {
    if (!matchesSelector(sel, labels)) {
      return { ok: false, message: `pool ${pool.name} does not select ${what} (${field} ${formatSelector(sel)})` };
    }
  }
  return { ok: true };
}

/** Decides the ordered candidate pools of a pod, and the pool of its static address if any. */
export function choosePools(input: PoolChoiceInput): PoolChoiceResult {
  const { pod, namespace, node } = input;
  const pools = poolMap(input.pools);
  const rejected: RejectedPool[] = [];

  const check = (name: string, why: string): boolean => {
    const v = pools.get(name);
    if (!v) {
      const message =
        why === ''
          ? `pod ${podRef(pod)} has no ${POOL_ANNOTATION} annotation (nor has its namespace), no pool selects it by affinity, and the default pool "${name}" does not exist`
          : `${why} names pool "${name}" which does not exist`;
      rejected.push({ pool: name, reason: 'PoolNotFound', message });
      return false;
    }
    if (!v.ok) {
      const c = readyCondition(v);
      rejected.push({ pool: name, reason: 'PoolNotReady', message: `pool ${name} is not Ready: ${c.reason}: ${c.message}` });
      return false;
    }
    const perm = poolPermits(v.pool, pod, namespace, node);
    if (!perm.ok) {
      rejected.push({ pool: name, reason: 'PoolNotPermitted', message: perm.message });
      return false;
    }
    return true;
  };

  const failWith = (source: PoolSource): PoolChoiceError => ({
    ok: false,
    reason: rejected.length === 1 ? rejected[0]!.reason : 'NoPool',
    message:
      rejected.length === 1
        ? rejected[0]!.message
        : `pod ${podRef(pod)} may use no pool: ${rejected.map((r) => r.message).join('; ')}`,
    source,
    rejected,
  });

  let source: PoolSource;
  let candidates: string[];

  const podAnn = pod.annotations?.[POOL_ANNOTATION];
  const nsAnn = namespace?.annotations?.[POOL_ANNOTATION];
  if (podAnn !== undefined && podAnn.trim() !== '') {
    source = 'pod-annotation';
    const parsed = parsePoolAnnotation(podAnn);
    const why = `pod ${podRef(pod)} annotation ${POOL_ANNOTATION}`;
    if (!parsed.ok) return { ok: false, reason: 'InvalidAnnotation', message: `${why} ${parsed.message}`, source, rejected };
    candidates = parsed.names.filter((n) => check(n, why));
  } else if (nsAnn !== undefined && nsAnn.trim() !== '') {
    source = 'namespace-annotation';
    const parsed = parsePoolAnnotation(nsAnn);
    const why = `namespace ${pod.namespace} annotation ${POOL_ANNOTATION}`;
    if (!parsed.ok) return { ok: false, reason: 'InvalidAnnotation', message: `${why} ${parsed.message}`, source, rejected };
    candidates = parsed.names.filter((n) => check(n, why));
  } else {
    const byAffinity: string[] = [];
    for (const name of [...pools.keys()].sort()) {
      const v = pools.get(name)!;
      if (v.ok && hasAffinity(v.pool) && poolPermits(v.pool, pod, namespace, node).ok) byAffinity.push(name);
    }
    if (byAffinity.length > 0) {
      source = 'affinity';
      candidates = byAffinity;
    } else {
      source = 'default';
      candidates = check(DEFAULT_POOL_NAME, '') ? [DEFAULT_POOL_NAME] : [];
    }
  }
  if (candidates.length === 0) return failWith(source);

  const staticText = pod.annotations?.[STATIC_IP_ANNOTATION];
  if (staticText === undefined || staticText.trim() === '') return { ok: true, source, candidates, rejected };

  const address = tryParseIp(staticText);
  const why = `pod ${podRef(pod)} annotation ${STATIC_IP_ANNOTATION}`;
  if (!address) {
    return { ok: false, reason: 'InvalidStaticAddress', message: `${why} "${staticText}" is not a valid IP address`, source, rejected };
  }
  const shown = formatIp(address);
  for (const name of candidates) {
    const v = pools.get(name)!;
    if (v.ok && v.pool.allocatable.contains(address)) {
      return { ok: true, source, candidates, rejected, staticAddress: { address, pool: name } };
    }
  }
  for (const name of candidates) {
    const v = pools.get(name)!;
    if (v.ok && v.pool.declared.contains(address)) {
      const p = v.pool;
      const what =
        p.gateway.value === address.value
          ? 'the gateway'
          : 'reserved (excludeIPs, or the network/broadcast address of the subnet)';
      return {
        ok: false,
        reason: 'StaticAddressNotInPool',
        message: `${why} asks for ${shown}, which is ${what} of pool ${name}`,
        source,
        rejected,
      };
    }
  }
  let hint = '; no Ready pool holds it';
  for (const v of pools.values()) {
    if (!v.ok || !v.pool.allocatable.contains(address)) continue;
    const perm = poolPermits(v.pool, pod, namespace, node);
    hint = perm.ok
      ? `; it belongs to pool ${v.name}, which the pod would have to name in ${POOL_ANNOTATION}`
      : `; it belongs to pool ${v.name}, and ${perm.message}`;
    break;
  }
  return {
    ok: false,
    reason: 'StaticAddressNotInPool',
    message: `${why} asks for ${shown}, which is in none of the pools the pod may use (${candidates.join(', ')})${hint}`,
    source,
    rejected,
  };
}
