// The `Ips` pool (sample.fast.io/v1alpha1, kind Ips, cluster-scoped) as the CRD writes it, and
// its validation into a usable pool or a list of problems (→ Ready=False with reason/message).
//
// What `spec.subnet` means:
//   The pool's L3 boundary: the on-link prefix of the pods that take addresses from the pool.
//   Every address of `spec.ips` must lie inside it (else OutsideSubnet). It is written as a CIDR;
//   host bits may be set — the seed writes `10.244.0.1/16` — and are ignored: the subnet is the
//   network that contains the written address (10.244.0.0/16); validation adds a note.
//   The gateway, for modes that need one, is `spec.gateway` when given (it must lie in the
//   subnet), else the first host address of the subnet (network + 1, kubefay's "gateway = first
//   address"; 10.244.0.1 for the seed, the very address it writes). The gateway is never
//   allocated. For IPv4 subnets up to /30 the network and broadcast addresses are never
//   allocated (/31 and /32 have neither, RFC 3021). For IPv6 the network address (the
//   Subnet-Router anycast address, RFC 4291 §2.6.1) is never allocated; there is no broadcast.
//   Several pools may share one subnet (both seed pools use 10.244.0.0/16); their allocatable
//   addresses may not overlap. A pool has one family: dual-stack pods use one pool per family.

import {
  type Cidr,
  type IpAddress,
  type IpFamily,
  cidrContains,
  cidrFirst,
  cidrLast,
  familyBits,
  formatCidr,
  formatIp,
  tryParseCidr,
  tryParseIp,
} from './address.js';
import { IpSet, describeEntry, parseIpEntries } from './ranges.js';
import { type LabelSelector, validateSelector } from './selector.js';

export const IPS_GROUP = 'sample.fast.io';
export const IPS_VERSION = 'v1alpha1';
export const IPS_API_VERSION = `${IPS_GROUP}/${IPS_VERSION}`;
export const IPS_KIND = 'Ips';
export const IPS_PLURAL = 'ips';
export const DEFAULT_POOL_NAME = 'default-ips';

export interface IpsSpec {
  /** CIDR, the pool's L3 boundary (see the comment at the top of this file). */
  subnet: string;
  /** Inclusive ranges `A-B`, single addresses, CIDRs. */
  ips: string[];
  excludeIPs?: string[];
  gateway?: string;
  podAffinity?: LabelSelector;
  namespaceAffinity?: LabelSelector;
  nodeAffinity?: LabelSelector;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface IpsStatus {
  totalIPCount?: number;
  allocatedIPCount?: number;
  coolingIPCount?: number;
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface Ips {
  apiVersion: typeof IPS_API_VERSION;
  kind: typeof IPS_KIND;
  metadata: { name: string; creationTimestamp?: string; generation?: number; [k: string]: unknown };
  spec: IpsSpec;
  status?: IpsStatus;
}

export type PoolReason =
  | 'InvalidSpec'
  | 'InvalidSubnet'
  | 'InvalidAddress'
  | 'RangeReversed'
  | 'MixedFamilies'
  | 'OutsideSubnet'
  | 'InvalidGateway'
  | 'InvalidSelector'
  | 'OverlapsPool'
  | 'Empty';

export interface PoolProblem {
  readonly reason: PoolReason;
  readonly message: string;
  /** JSON path of the offending field, e.g. `spec.ips[1]`. */
  readonly field: string;
}

/** A valid, usable pool. */
export interface Pool {
  readonly name: string;
  readonly spec: IpsSpec;
  readonly family: IpFamily;
  readonly subnet: Cidr;
  readonly gateway: IpAddress;
  /** Union of `spec.ips`. */
  readonly declared: IpSet;
  /** declared minus excludeIPs, network/broadcast (IPv4) or network (IPv6), and the gateway. */
  readonly allocatable: IpSet;
  /** Remarks that are not problems, e.g. host bits in the subnet. */
  readonly notes: readonly string[];
}

export type PoolValidation =
  | { readonly ok: true; readonly name: string; readonly pool: Pool }
  | { readonly ok: false; readonly name: string; readonly problems: readonly PoolProblem[]; readonly spec: unknown };

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Gateway when `spec.gateway` is absent: the first host address of the subnet. */
export function defaultGateway(subnet: Cidr): IpAddress {
  const bits = familyBits(subnet.family);
  const v = subnet.prefix >= bits - 1 ? subnet.network : subnet.network + 1n;
  return { family: subnet.family, value: v };
}

/** Addresses of the subnet that are never allocated besides the gateway. */
export function subnetReserved(subnet: Cidr): IpSet {
  const bits = familyBits(subnet.family);
  if (subnet.prefix >= bits - 1) return IpSet.empty(subnet.family);
  const first = cidrFirst(subnet);
  if (subnet.family === 6) return IpSet.single(first);
  return IpSet.single(first).union(IpSet.single(cidrLast(subnet)));
}

/** A status count: the CRD's integers are int64 and JSON numbers lose precision above 2^53,
 *  so counts saturate at Number.MAX_SAFE_INTEGER (only IPv6 pools get there). */
export function toStatusCount(n: bigint | number): number {
  const b = BigInt(n);
  return b > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(b);
}

const SELECTORS = ['podAffinity', 'namespaceAffinity', 'nodeAffinity'] as const;

/**
 * Validates an Ips spec (untrusted, as read from the API server) against the pools already
 * accepted. Returns a usable pool, or every problem found with a condition reason.
 */
export function validatePool(name: string, spec: unknown, otherPools: readonly Pool[] = []): PoolValidation {
  const problems: PoolProblem[] = [];
  const fail = (): PoolValidation => ({ ok: false, name, problems, spec });
  const add = (reason: PoolReason, field: string, message: string) => problems.push({ reason, field, message });

  if (!isRecord(spec)) {
    add('InvalidSpec', 'spec', `pool ${name}: spec must be an object`);
    return fail();
  }

  // subnet
  let subnet: Cidr | undefined;
  const notes: string[] = [];
  const subnetText = spec['subnet'];
  if (typeof subnetText !== 'string' || subnetText.trim() === '') {
    add('InvalidSubnet', 'spec.subnet', 'spec.subnet is required (a CIDR such as 10.244.0.0/16)');
  } else {
    subnet = tryParseCidr(subnetText);
    if (!subnet) add('InvalidSubnet', 'spec.subnet', `spec.subnet "${subnetText}" is not a valid CIDR`);
    else if (subnet.hostBitsSet) {
      notes.push(`subnet ${subnetText.trim()} has host bits set; the subnet is ${formatCidr(subnet)}`);
    }
  }
  const family = subnet?.family;

  // ips
  const ipsRaw = spec['ips'];
  let declared: IpSet | undefined;
  let entriesFamily: IpFamily | undefined;
  if (ipsRaw === undefined || ipsRaw === null) {
    add('InvalidSpec', 'spec.ips', 'spec.ips is required (ranges A-B, addresses or CIDRs)');
  } else if (!Array.isArray(ipsRaw)) {
    add('InvalidSpec', 'spec.ips', 'spec.ips must be a list');
  } else if (ipsRaw.length === 0) {
    add('Empty', 'spec.ips', 'spec.ips is empty');
  } else {
    const parsed = parseIpEntries(ipsRaw, family);
    entriesFamily = parsed.family;
    for (const p of parsed.problems) {
      const msg =
        p.otherFamily !== undefined && subnet
          ? `spec.ips[${p.index}] "${p.text}" is not IPv${subnet.family} like subnet ${formatCidr(subnet)}`
          : `spec.ips[${p.index}]: ${p.message}`;
      add(p.reason, `spec.ips[${p.index}]`, msg);
    }
    declared = parsed.set;
    if (subnet) {
      const sset = IpSet.cidr(subnet);
      parsed.entries.forEach((e) => {
        const es = IpSet.of(e.family, [e]);
        const outside = es.subtract(sset);
        if (!outside.isEmpty) {
          const idx = e.index ?? 0;
          let msg = `spec.ips[${idx}] ${describeEntry(e)} is not inside subnet ${formatCidr(subnet!)} (first outside address ${formatIp(outside.first()!)})`;
          if (subnet!.prefix === familyBits(subnet!.family)) {
            msg += `; a /${subnet!.prefix} subnet holds the single address ${formatIp(cidrFirst(subnet!))}`;
          }
          add('OutsideSubnet', `spec.ips[${idx}]`, msg);
        }
      });
    }
  }

  // excludeIPs
  const exRaw = spec['excludeIPs'];
  let excluded: IpSet | undefined;
  if (exRaw !== undefined && exRaw !== null) {
    if (!Array.isArray(exRaw)) add('InvalidSpec', 'spec.excludeIPs', 'spec.excludeIPs must be a list');
    else {
      const parsed = parseIpEntries(exRaw, family ?? entriesFamily);
      for (const p of parsed.problems) add(p.reason, `spec.excludeIPs[${p.index}]`, `spec.excludeIPs[${p.index}]: ${p.message}`);
      excluded = parsed.set;
    }
  }

  // gateway
  let gateway: IpAddress | undefined = subnet ? defaultGateway(subnet) : undefined;
  const gwRaw = spec['gateway'];
  if (gwRaw !== undefined && gwRaw !== null) {
    const g = typeof gwRaw === 'string' ? tryParseIp(gwRaw) : undefined;
    if (!g) add('InvalidGateway', 'spec.gateway', `spec.gateway ${JSON.stringify(gwRaw)} is not a valid IP address`);
    else if (subnet && g.family !== subnet.family) {
      add('MixedFamilies', 'spec.gateway', `spec.gateway ${formatIp(g)} is not IPv${subnet.family} like subnet ${formatCidr(subnet)}`);
    } else if (subnet && !cidrContains(subnet, g)) {
      add('InvalidGateway', 'spec.gateway', `spec.gateway ${formatIp(g)} is not inside subnet ${formatCidr(subnet)}`);
    } else gateway = g;
  }

  // selectors
  for (const s of SELECTORS) {
    for (const m of validateSelector(spec[s], `spec.${s}`)) add('InvalidSelector', `spec.${s}`, m);
  }

  if (!subnet || !declared || !gateway) return fail();

  let allocatable = declared.subtract(subnetReserved(subnet)).subtract(IpSet.single(gateway));
  if (excluded) allocatable = allocatable.subtract(excluded);
  allocatable = allocatable.intersect(IpSet.cidr(subnet));

  for (const other of [...otherPools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (other.name === name || other.family !== subnet.family) continue;
    const o = allocatable.firstOverlap(other.allocatable);
    if (o) {
      add(
        'OverlapsPool',
        'spec.ips',
        `addresses overlap pool ${other.name} (first overlapping address ${formatIp(o)})`,
      );
    }
  }

  if (problems.length === 0 && allocatable.isEmpty) {
    add(
      'Empty',
      'spec.ips',
      `no allocatable address: spec.ips (${declared.toString()}) minus excludeIPs, ` +
        `reserved subnet addresses and the gateway ${formatIp(gateway)} is empty`,
    );
  }
  if (problems.length > 0) return fail();

  const cleanSpec: IpsSpec = {
    subnet: (subnetText as string).trim(),
    ips: (ipsRaw as string[]).map((x) => x.trim()),
  };
  if (Array.isArray(exRaw)) cleanSpec.excludeIPs = (exRaw as string[]).map((x) => x.trim());
  if (typeof gwRaw === 'string') cleanSpec.gateway = gwRaw.trim();
  for (const s of SELECTORS) if (isRecord(spec[s])) cleanSpec[s] = spec[s] as LabelSelector;

  return {
    ok: true,
    name,
    pool: { name, spec: cleanSpec, family: subnet.family, subnet, gateway, declared, allocatable, notes },
  };
}

export interface PoolObject {
  readonly name: string;
  readonly spec: unknown;
  /** RFC 3339, as in metadata.creationTimestamp. */
  readonly creationTimestamp?: string;
}

/**
 * Validates all pools. Overlap is decided in a deterministic order — oldest first
 * (creationTimestamp, then name) — so an older pool stays Ready and a newer pool overlapping it
 * gets OverlapsPool.
 */
export function validatePools(objects: readonly PoolObject[]): Map<string, PoolValidation> {
  const ordered = [...objects].sort((a, b) => {
    const ta = a.creationTimestamp ?? '\uffff';
    const tb = b.creationTimestamp ?? '\uffff';
    if (ta !== tb) return ta < tb ? -1 : 1;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  const accepted: Pool[] = [];
  const out = new Map<string, PoolValidation>();
  for (const o of ordered) {
    const v = validatePool(o.name, o.spec, accepted);
    if (v.ok) accepted.push(v.pool);
    out.set(o.name, v);
  }
  return out;
}

/** The pool's Ready condition (without timestamps: the controller sets lastTransitionTime). */
export function readyCondition(v: PoolValidation): Condition {
  if (v.ok) {
    const p = v.pool;
    const notes = p.notes.length > 0 ? `; ${p.notes.join('; ')}` : '';
    return {
      type: 'Ready',
      status: 'True',
      reason: 'Valid',
      message: `${p.allocatable.size} allocatable addresses in subnet ${formatCidr(p.subnet)}, gateway ${formatIp(p.gateway)}${notes}`,
    };
  }
  return {
    type: 'Ready',
    status: 'False',
    reason: v.problems[0]?.reason ?? 'InvalidSpec',
    message: v.problems.map((p) => p.message).join('; '),
  };
}
