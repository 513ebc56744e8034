// Reading a result back in (prevResult on CHECK/DEL, or a chained plugin's output) from any
// supported version's shape into the canonical form. Anything malformed is error 7: the
// result sits inside the network configuration the runtime handed us.

import { ipFamily, parseCidr, type IpFamily } from './addresses.js';
import { invalidConfig } from './errors.js';
import {
  isJsonObject,
  objectAt,
  optionalArray,
  optionalInteger,
  optionalObject,
  optionalString,
  optionalStringArray,
  ownField,
  requiredString,
  wrongType,
  type JsonObject,
} from './fields.js';
import type { CniResult, ResultDns, ResultInterface, ResultIp, ResultRoute } from './result.js';
import { resultForVersion } from './result-version.js';
import { requireSupportedVersion } from './version-check.js';
import { resultHasExtendedFields, type CniVersion } from './versions.js';

const MAX_U32 = 0xffff_ffff;

function cidrField(obj: JsonObject, key: string, path: string): { text: string; family: IpFamily } {
  const text = requiredString(obj, key, path);
  const cidr = parseCidr(text);
  if (cidr === undefined) throw invalidConfig(`${path} must be an address in CIDR form, got ${JSON.stringify(text)}`);
  return { text, family: cidr.family };
}

// A gateway of the other family than its address or destination cannot be installed.
function gatewayField(obj: JsonObject, key: string, path: string, family: IpFamily): string | undefined {
  const text = optionalString(obj, key, path);
  if (text === undefined) return undefined;
  const gwFamily = ipFamily(text);
  if (gwFamily === undefined) throw invalidConfig(`${path} must be an IP address, got ${JSON.stringify(text)}`);
  if (gwFamily !== family) throw invalidConfig(`${path} is IPv${gwFamily} but its address is IPv${family}`);
  return text;
}

function parseInterface(obj: JsonObject, path: string, extended: boolean): ResultInterface {
  const name = requiredString(obj, 'name', `${path}.name`);
  if (name === '') throw invalidConfig(`${path}.name must not be empty`);
  const out: ResultInterface = { name };
  const mac = optionalString(obj, 'mac', `${path}.mac`);
  if (mac !== undefined) out.mac = mac;
  // Fields a version does not define are skipped unread, as the reference plugins' decoders
  // ignore unknown keys.
  if (extended) {
    const mtu = optionalInteger(obj, 'mtu', `${path}.mtu`, 0, MAX_U32);
    if (mtu !== undefined) out.mtu = mtu;
  }
  const sandbox = optionalString(obj, 'sandbox', `${path}.sandbox`);
  if (sandbox !== undefined) out.sandbox = sandbox;
  if (extended) {
    const socketPath = optionalString(obj, 'socketPath', `${path}.socketPath`);
    if (socketPath !== undefined) out.socketPath = socketPath;
    const pciID = optionalString(obj, 'pciID', `${path}.pciID`);
    if (pciID !== undefined) out.pciID = pciID;
  }
  return out;
}

// Before 1.0.0 each IP says its family; we derive it when missing (runtimes converting
// results across versions have omitted it) but a label contradicting the address is corrupt.
function checkIpVersionLabel(obj: JsonObject, path: string, family: IpFamily): void {
  const label = ownField(obj, 'version');
  if (label === undefined) return;
  if (label !== '4' && label !== '6') wrongType(`${path}.version`, '"4" or "6"', label);
  if (Number(label) !== family) throw invalidConfig(`${path}.version is "${label}" but the address is IPv${family}`);
}

function parseIp(obj: JsonObject, path: string, interfaceCount: number): ResultIp {
  const { text: address, family } = cidrField(obj, 'address', `${path}.address`);
  checkIpVersionLabel(obj, path, family);
  const out: ResultIp = { address };
  const gateway = gatewayField(obj, 'gateway', `${path}.gateway`, family);
  if (gateway !== undefined) out.gateway = gateway;
  const index = optionalInteger(obj, 'interface', `${path}.interface`, 0, MAX_U32);
  if (index !== undefined) {
    if (index >= interfaceCount) {
      throw invalidConfig(`${path}.interface is ${index} but there are only ${interfaceCount} interfaces`);
    }
    out.interface = index;
  }
  return out;
}

function parseRoute(obj: JsonObject, path: string, extended: boolean): ResultRoute {
  const { text: dst, family } = cidrField(obj, 'dst', `${path}.dst`);
  const out: ResultRoute = { dst };
  const gw = gatewayField(obj, 'gw', `${path}.gw`, family);
  if (gw !== undefined) out.gw = gw;
  if (!extended) return out;
  const mtu = optionalInteger(obj, 'mtu', `${path}.mtu`, 0, MAX_U32);
  if (mtu !== undefined) out.mtu = mtu;
  const advmss = optionalInteger(obj, 'advmss', `${path}.advmss`, 0, MAX_U32);
  if (advmss !== undefined) out.advmss = advmss;
  const priority = optionalInteger(obj, 'priority', `${path}.priority`, 0, MAX_U32);
  if (priority !== undefined) out.priority = priority;
  const table = optionalInteger(obj, 'table', `${path}.table`, 0, MAX_U32);
  if (table !== undefined) out.table = table;
  // Route scope is a u8 in rtnetlink.
  const scope = optionalInteger(obj, 'scope', `${path}.scope`, 0, 255);
  if (scope !== undefined) out.scope = scope;
  return out;
}

export function parseDns(obj: JsonObject, path: string): ResultDns {
  const out: ResultDns = {};
  const nameservers = optionalStringArray(obj, 'nameservers', `${path}.nameservers`);
  if (nameservers !== undefined) out.nameservers = nameservers;
  const domain = optionalString(obj, 'domain', `${path}.domain`);
  if (domain !== undefined) out.domain = domain;
  const search = optionalStringArray(obj, 'search', `${path}.search`);
  if (search !== undefined) out.search = search;
  const options = optionalStringArray(obj, 'options', `${path}.options`);
  if (options !== undefined) out.options = options;
  return out;
}

function parseList<T>(obj: JsonObject, key: string, path: string, parse: (item: JsonObject, itemPath: string) => T): T[] | undefined {
  const list = optionalArray(obj, key, `${path}.${key}`);
  return list?.map((_, i) => parse(objectAt(list, i, `${path}.${key}`), `${path}.${key}[${i}]`));
}

// The result's shape is taken from the configuration's cniVersion, as libcni does: the runtime
// converts a cached result to the version of the config it sends. A "cniVersion" key inside
// the result itself is therefore not consulted.
export function parsePrevResult(value: unknown, cniVersion: string, path = 'prevResult'): CniResult {
  const version = requireSupportedVersion(cniVersion);
  if (!isJsonObject(value)) wrongType(path, 'an object', value);
  return parseResultObject(value, version, path);
}

function parseResultObject(obj: JsonObject, cniVersion: CniVersion, path: string): CniResult {
  const extended = resultHasExtendedFields(cniVersion);
  const result: CniResult = {};
  const interfaces = parseList(obj, 'interfaces', path, (item, p) => parseInterface(item, p, extended));
  if (interfaces !== undefined) result.interfaces = interfaces;
  const count = interfaces?.length ?? 0;
  const ips = parseList(obj, 'ips', path, (item, p) => parseIp(item, p, count));
  if (ips !== undefined) result.ips = ips;
  const routes = parseList(obj, 'routes', path, (item, p) => parseRoute(item, p, extended));
  if (routes !== undefined) result.routes = routes;
  const dns = optionalObject(obj, 'dns', `${path}.dns`);
  if (dns !== undefined) result.dns = parseDns(dns, `${path}.dns`);
  return resultForVersion(result, cniVersion);
}
