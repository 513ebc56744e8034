// Narrowing a canonical result to what one spec version can express. Shared by output
// formatting and prevResult parsing so both agree on a version's shape.

import type { CniResult, ResultDns, ResultInterface, ResultIp, ResultRoute } from './result.js';
import { resultHasExtendedFields, type CniVersion } from './versions.js';

// Copies only the defined keys listed, in that order; the copy never aliases the input.
function pick<T extends object>(source: T, keys: readonly (keyof T)[]): T {
  const out = {} as T;
  for (const key of keys) {
    const value = source[key];
    if (value !== undefined) out[key] = Array.isArray(value) ? ([...value] as T[keyof T]) : value;
  }
  return out;
}

const INTERFACE_KEYS_1_0: readonly (keyof ResultInterface)[] = ['name', 'mac', 'sandbox'];
const INTERFACE_KEYS_1_1: readonly (keyof ResultInterface)[] = ['name', 'mac', 'mtu', 'sandbox', 'socketPath', 'pciID'];
const ROUTE_KEYS_1_0: readonly (keyof ResultRoute)[] = ['dst', 'gw'];
const ROUTE_KEYS_1_1: readonly (keyof ResultRoute)[] = ['dst', 'gw', 'mtu', 'advmss', 'priority', 'table', 'scope'];
const IP_KEYS: readonly (keyof ResultIp)[] = ['address', 'gateway', 'interface'];
const DNS_KEYS: readonly (keyof ResultDns)[] = ['nameservers', 'domain', 'search', 'options'];

// Empty lists and an empty dns object say nothing; dropping them gives each result a single
// canonical form, so results compare equal however they were spelled.
function nonEmpty<T>(list: T[] | undefined): T[] | undefined {
  return list === undefined || list.length === 0 ? undefined : list;
}

function dnsForVersion(dns: ResultDns | undefined): ResultDns | undefined {
  if (dns === undefined) return undefined;
  const copy = pick(dns, DNS_KEYS);
  return Object.keys(copy).length === 0 ? undefined : copy;
}

export function resultForVersion(result: CniResult, cniVersion: CniVersion): CniResult {
  const extended = resultHasExtendedFields(cniVersion);
  const interfaceKeys = extended ? INTERFACE_KEYS_1_1 : INTERFACE_KEYS_1_0;
  const routeKeys = extended ? ROUTE_KEYS_1_1 : ROUTE_KEYS_1_0;
  const out: CniResult = {};
  const interfaces = nonEmpty(result.interfaces?.map((i) => pick(i, interfaceKeys)));
  const ips = nonEmpty(result.ips?.map((ip) => pick(ip, IP_KEYS)));
  const routes = nonEmpty(result.routes?.map((r) => pick(r, routeKeys)));
  const dns = dnsForVersion(result.dns);
  if (interfaces !== undefined) out.interfaces = interfaces;
  if (ips !== undefined) out.ips = ips;
  if (routes !== undefined) out.routes = routes;
  if (dns !== undefined) out.dns = dns;
  return out;
}
