// Cluster IPs and node ports for Services, allocated as kube-apiserver's service registry does:
// from the service CIDR and the 30000-32767 node port range, never twice.
import type { FieldError } from './errors.js';
import { isJsonObject, type JsonObject, type KubeObject } from './types.js';

const NODE_PORT_MIN = 30000;
const NODE_PORT_MAX = 32767;

function ipToNumber(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return NaN;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function parseCidr(cidr: string): { base: number; size: number } {
  const [ip, bits] = cidr.split('/');
  const prefix = Number(bits);
  const size = 2 ** (32 - prefix);
  return { base: ipToNumber(ip) - (ipToNumber(ip) % size), size };
}

function specOf(svc: KubeObject): JsonObject {
  return isJsonObject(svc.spec) ? svc.spec : {};
}

export class ServiceAllocationError extends Error {
  constructor(readonly fieldError: FieldError) {
    super(fieldError.detail);
  }
}

/** Gives a new Service its clusterIP(s) and node ports; `others` are the existing Services. */
export function allocateServiceAddresses(svc: KubeObject, others: KubeObject[], serviceCidr: string): void {
  const spec = specOf(svc);
  if (spec.type !== 'ExternalName') allocateClusterIp(spec, others, serviceCidr);
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') allocateNodePorts(spec, others);
}

function allocateClusterIp(spec: JsonObject, others: KubeObject[], serviceCidr: string): void {
  const requested = typeof spec.clusterIP === 'string' && spec.clusterIP !== '' ? spec.clusterIP : undefined;
  if (requested === 'None') {
    spec.clusterIPs = ['None'];
    return;
  }
  const used = new Set(others.map((o) => specOf(o).clusterIP).filter((ip): ip is string => typeof ip === 'string'));
  const { base, size } = parseCidr(serviceCidr);
  if (requested) {
    const n = ipToNumber(requested);
    if (Number.isNaN(n) || n <= base || n >= base + size - 1) {
      throw new ServiceAllocationError({ type: 'FieldValueInvalid', field: 'spec.clusterIPs', badValue: [requested], detail: `failed to allocate IP ${requested}: the provided IP (${requested}) is not in the valid range. The range of valid IPs is ${serviceCidr}` });
    }
    if (used.has(requested)) {
      throw new ServiceAllocationError({ type: 'FieldValueInvalid', field: 'spec.clusterIPs', badValue: [requested], detail: `failed to allocate IP ${requested}: provided IP is already allocated` });
    }
    spec.clusterIPs = [requested];
    return;
  }
  // Like kube-apiserver, dynamic allocation avoids the low band kept for addresses chosen by
  // users (min(max(16, size/16), 256) addresses), falling back to it only when the rest is full.
  const band = Math.min(Math.max(16, Math.floor(size / 16)), 256);
  const candidates = function* (): Generator<number> {
    yield* range(base + band, base + size - 1);
    yield* range(base + 1, base + band);
  };
  for (const n of candidates()) {
    const ip = numberToIp(n);
    if (!used.has(ip)) {
      spec.clusterIP = ip;
      spec.clusterIPs = [ip];
      return;
    }
  }
  throw new ServiceAllocationError({ type: 'FieldValueInvalid', field: 'spec.clusterIPs', badValue: [], detail: 'failed to allocate IP: range is full' });
}

function* range(from: number, to: number): Generator<number> {
  for (let n = from; n < to; n++) yield n;
}

function allocateNodePorts(spec: JsonObject, others: KubeObject[]): void {
  const used = new Set<number>();
  for (const o of others) {
    for (const p of Array.isArray(specOf(o).ports) ? (specOf(o).ports as unknown[]) : []) {
      if (isJsonObject(p) && typeof p.nodePort === 'number') used.add(p.nodePort);
    }
  }
  const ports = Array.isArray(spec.ports) ? spec.ports.filter(isJsonObject) : [];
  for (const port of ports) {
    if (typeof port.nodePort === 'number') {
      if (used.has(port.nodePort)) {
        throw new ServiceAllocationError({ type: 'FieldValueInvalid', field: 'spec.ports[0].nodePort', badValue: port.nodePort, detail: 'provided port is already allocated' });
      }
      used.add(port.nodePort);
      continue;
    }
    for (let n = NODE_PORT_MIN; n <= NODE_PORT_MAX; n++) {
      if (!used.has(n)) {
        port.nodePort = n;
        used.add(n);
        break;
      }
    }
  }
}
