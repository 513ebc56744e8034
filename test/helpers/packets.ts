// Crafted packets for eBPF tests.
import * as net from 'node:net';
import { encodeMac } from '../../src/dataplane/bpf/map-layouts.js';

function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) + (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ethernet(dstMac: string, srcMac: string, ethertype: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  encodeMac(dstMac).copy(h, 0);
  encodeMac(srcMac).copy(h, 6);
  h.writeUInt16BE(ethertype, 12);
  return Buffer.concat([h, payload]);
}

/** An IPv4 UDP packet with a valid header checksum. */
export function ipv4Udp(src: string, dst: string, ttl = 64, payload = Buffer.from('fast')): Buffer {
  const udp = Buffer.alloc(8 + payload.length);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(8080, 2);
  udp.writeUInt16BE(udp.length, 4);
  payload.copy(udp, 8);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + udp.length, 2);
  ip[8] = ttl;
  ip[9] = 17;
  ipv4Bytes(src).copy(ip, 12);
  ipv4Bytes(dst).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([ip, udp]);
}

export function ipv6Udp(src: string, dst: string, hopLimit = 64): Buffer {
  if (!net.isIPv6(src) || !net.isIPv6(dst)) throw new Error('ipv6 expected');
  const udp = Buffer.alloc(12);
  udp.writeUInt16BE(12, 4);
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(udp.length, 4);
  ip[6] = 17;
  ip[7] = hopLimit;
  v6(src).copy(ip, 8);
  v6(dst).copy(ip, 24);
  return Buffer.concat([ip, udp]);
}

function v6(ip: string): Buffer {
  const [h, t] = ip.split('::') as [string, string | undefined];
  const hs = h ? h.split(':') : [];
  const ts = t ? t.split(':') : [];
  const all = [...hs, ...new Array(8 - hs.length - ts.length).fill('0'), ...ts];
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return b;
}

export function arpRequest(senderMac: string, senderIp: string, targetIp: string): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(1, 6);
  encodeMac(senderMac).copy(b, 8);
  ipv4Bytes(senderIp).copy(b, 14);
  ipv4Bytes(targetIp).copy(b, 24);
  return b;
}

export function ipv4HeaderChecksumValid(packet: Buffer): boolean {
  return checksum(packet.subarray(14, 34)) === 0;
}
