// The canonical (1.1.0-shaped) CNI result Fast builds internally, and its output form for
// each spec version a runtime may ask for.

import { CniError, FastErrorCode } from './errors.js';
import { ipFamily, parseCidr } from './addresses.js';
import { resultForVersion } from './result-version.js';
import { requireSupportedVersion } from './version-check.js';
import { resultHasIpVersion, type CniVersion } from './versions.js';

export { parsePrevResult } from './prev-result.js';
export { resultForVersion } from './result-version.js';

export interface ResultInterface {
  name: string;
  mac?: string;
  /** 1.1.0 and later only. */
  mtu?: number;
  /** Netns path (or VM id) for container-side interfaces; absent for host-side ones. */
  sandbox?: string;
  /** 1.1.0 and later only. */
  socketPath?: string;
  /** 1.1.0 and later only. */
  pciID?: string;
}

export interface ResultIp {
  /** CIDR: the address with its subnet's prefix length, e.g. "10.1.2.3/24". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`; absent in IPAM-style results. */
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
  /** The remaining fields are 1.1.0 and later only. */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface ResultDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  interfaces?: ResultInterface[];
  ips?: ResultIp[];
  routes?: ResultRoute[];
  dns?: ResultDns;
}

export interface ResultIpJson extends ResultIp {
  /** Present before 1.0.0 only. */
  version?: '4' | '6';
}

export interface CniResultJson {
  cniVersion: CniVersion;
  interfaces?: ResultInterface[];
  ips?: ResultIpJson[];
  routes?: ResultRoute[];
  dns: ResultDns;
}

// Pre-1.0 results label each address with its family as the string "4" or "6". A malformed
// address here means Fast built a bad result, hence an internal error rather than code 7.
function ipVersionLabel(address: string): '4' | '6' {
  const family = parseCidr(address)?.family ?? ipFamily(address);
  if (family === undefined) {
    throw new CniError(FastErrorCode.Internal, 'cannot format result', `malformed address ${JSON.stringify(address)}`);
  }
  return family === 4 ? '4' : '6';
}

function formatIp(ip: ResultIp, withVersion: boolean): ResultIpJson {
  // Built key by key so the output follows the spec's field order.
  const out: ResultIpJson = withVersion
    ? { version: ipVersionLabel(ip.address), address: ip.address }
    : { address: ip.address };
  if (ip.gateway !== undefined) out.gateway = ip.gateway;
  if (ip.interface !== undefined) out.interface = ip.interface;
  return out;
}

// The exact stdout of a successful ADD for the requested version: fields the version does not
// define are dropped, and pre-1.0 results gain each IP's "version". `dns` is always present,
// as in the reference plugins' output (Go never omits a struct-valued field).
export function formatResult(result: CniResult, cniVersion: string): CniResultJson {
  const version = requireSupportedVersion(cniVersion);
  const shaped = resultForVersion(result, version);
  const withVersion = resultHasIpVersion(version);
  const out = { cniVersion: version } as CniResultJson;
  if (shaped.interfaces !== undefined) out.interfaces = shaped.interfaces;
  if (shaped.ips !== undefined) out.ips = shaped.ips.map((ip) => formatIp(ip, withVersion));
  if (shaped.routes !== undefined) out.routes = shaped.routes;
  out.dns = shaped.dns ?? {};
  return out;
}
