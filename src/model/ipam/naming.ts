// IpEndpoint: one cluster-scoped object per allocated address, named after the address, so that
// the API server refuses a second claim of an address with 409 (uniqueness is its job).

import { type IpAddress, formatIp, parseIp, tryParseIp } from './address.js';
import { IPS_API_VERSION } from './pool.js';

export const IPENDPOINT_KIND = 'IpEndpoint';
export const IPENDPOINT_PLURAL = 'ipendpoints';
export const POOL_LABEL = 'ipam.fast.io/pool';
export const NODE_LABEL = 'ipam.fast.io/node';

/** The spec of an IpEndpoint, which is also the allocator's allocation record. */
export interface AllocationRecord {
  pool: string;
  /** Canonical text (RFC 5952 for IPv6). */
  address: string;
  node: string;
  podNamespace: string;
  podName: string;
  podUID: string;
  containerID: string;
  interface: string;
  /** Set (RFC 3339) when the address was released and is cooling down; the object is deleted
   *  once the cooldown has passed, so the address stays claimed (409) until then. */
  releasedAt?: string;
}

/**
 * Object name of an address: IPv4 `10.244.0.5` → `10-244-0-5`; IPv6 as its eight groups
 * without leading zeros and without `::` compression, `fd00::a:5` → `fd00-0-0-0-0-0-a-5`, so the
 * name always starts and ends with an alphanumeric (a DNS-1123 subdomain), has ≤ 39 characters,
 * and maps back to exactly one address (4 parts: IPv4, 8 parts: IPv6).
 */
export function endpointName(address: IpAddress | string): string {
  const a = typeof address === 'string' ? parseIp(address) : address;
  if (a.family === 4) return formatIp(a).replace(/\./g, '-');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((a.value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups.join('-');
}

/** Inverse of endpointName; undefined for a name that is not one. */
export function addressFromEndpointName(name: string): IpAddress | undefined {
  const parts = name.split('-');
  if (parts.length === 4) {
    const a = tryParseIp(parts.join('.'));
    return a && endpointName(a) === name ? a : undefined;
  }
  if (parts.length === 8) {
    if (!parts.every((p) => /^(0|[1-9a-f][0-9a-f]{0,3})$/.test(p))) return undefined;
    const a = tryParseIp(parts.join(':'));
    return a && a.family === 6 ? a : undefined;
  }
  return undefined;
}

export interface IpEndpoint {
  apiVersion: typeof IPS_API_VERSION;
  kind: typeof IPENDPOINT_KIND;
  metadata: { name: string; labels?: Record<string, string>; [k: string]: unknown };
  spec: AllocationRecord;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The IpEndpoint object of a record. Pool and node are also labels (when they fit a label
 *  value, ≤ 63 characters) so that an agent can list its node's allocations with a selector. */
export function endpointObject(record: AllocationRecord): IpEndpoint {
  const labels: Record<string, string> = {};
  for (const [k, v] of [
    [POOL_LABEL, record.pool],
    [NODE_LABEL, record.node],
  ] as const) {
    if (v.length <= 63 && LABEL_VALUE.test(v)) labels[k] = v;
  }
  return {
    apiVersion: IPS_API_VERSION,
    kind: IPENDPOINT_KIND,
    metadata: { name: endpointName(record.address), labels },
    spec: { ...record },
  };
}
