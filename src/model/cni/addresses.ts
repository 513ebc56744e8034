// IP and CIDR text checks for result fields. Pure string work: node:net's isIP does no I/O.

import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

export interface Cidr {
  address: string;
  prefix: number;
  family: IpFamily;
}

// A bare address; zone suffixes ("fe80::1%eth0") are refused because results never carry
// them and the kernel would not accept them on an address add.
export function ipFamily(text: string): IpFamily | undefined {
  if (text.includes('%')) return undefined;
  const family = isIP(text);
  return family === 4 || family === 6 ? family : undefined;
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const family = ipFamily(address);
  if (family === undefined) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family };
}
