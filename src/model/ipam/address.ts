// IPv4 / IPv6 addresses as bigints tagged with their family, and CIDR prefixes.
// Pure: no I/O, no Node APIs.

export type IpFamily = 4 | 6;

/** An address: `value` is the unsigned integer of the address (32 or 128 bits). */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

export function familyBits(family: IpFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/** The largest address value of a family (255.255.255.255 or ffff:…:ffff). */
export function maxValue(family: IpFamily): bigint {
  return (1n << BigInt(familyBits(family))) - 1n;
}

export function ip(family: IpFamily, value: bigint): IpAddress {
  if (value < 0n || value > maxValue(family)) {
    throw new AddressError(`value ${value} out of range for IPv${family}`);
  }
  return { family, value };
}

// ---------------------------------------------------------------------------
// parsing

const DEC_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseV4Value(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // Leading zeros are refused: "010" is octal to some parsers and decimal to others.
    if (!DEC_OCTET.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6Value(s: string): bigint | undefined {
  if (s.length === 0 || s.includes('%')) return undefined; // zones are not addresses of a pool
  let head: string[];
  let tail: string[];
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) return undefined;
    const h = s.slice(0, dbl);
    const t = s.slice(dbl + 2);
    head = h === '' ? [] : h.split(':');
    tail = t === '' ? [] : t.split(':');
  } else {
    head = s.split(':');
    tail = [];
  }
  const groups: number[] = [];
  // An embedded dotted IPv4 may only be the last element of the text.
  let v4: bigint | undefined;
  const last = tail.length > 0 ? tail[tail.length - 1] : dbl < 0 ? head[head.length - 1] : undefined;
  if (last !== undefined && last.includes('.')) {
    v4 = parseV4Value(last);
    if (v4 === undefined) return undefined;
    if (tail.length > 0) tail = tail.slice(0, -1);
    else head = head.slice(0, -1);
  }
  const toGroups = (xs: string[]): number[] | undefined => {
    const out: number[] = [];
    for (const x of xs) {
      if (!HEX_GROUP.test(x)) return undefined;
      out.push(parseInt(x, 16));
    }
    return out;
  };
  const hg = toGroups(head);
  const tg = toGroups(tail);
  if (!hg || !tg) return undefined;
  const explicit = hg.length + tg.length + (v4 !== undefined ? 2 : 0);
  if (dbl >= 0) {
    // "::" stands for at least one zero group.
    if (explicit > 7) return undefined;
    groups.push(...hg, ...new Array<number>(8 - explicit).fill(0), ...tg);
  } else {
    if (explicit !== 8) return undefined;
    groups.push(...hg);
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (v4 !== undefined) v = (v << 32n) | v4;
  return v;
}

/** Parses an address; undefined when it is not a valid IPv4 or IPv6 address. */
export function tryParseIp(s: string): IpAddress | undefined {
  const t = s.trim();
  if (t.includes(':')) {
    const v = parseV6Value(t);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4Value(t);
  return v === undefined ? undefined : { family: 4, value: v };
}

export function parseIp(s: string): IpAddress {
  const a = tryParseIp(s);
  if (!a) throw new AddressError(`"${s}" is not a valid IP address`);
  return a;
}

// ---------------------------------------------------------------------------
// formatting

function formatV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
}

/** RFC 5952: lower case, no leading zeros, "::" for the longest run (≥ 2) of zero groups,
 *  the first one on a tie; IPv4-mapped addresses as ::ffff:a.b.c.d. */
function formatV6(v: bigint): string {
  if (v >> 32n === 0xffffn) return `::ffff:${formatV4(v & 0xffffffffn)}`;
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((g) => g.toString(16)).join(':');
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function formatIp(a: IpAddress): string {
  return a.family === 4 ? formatV4(a.value) : formatV6(a.value);
}

/** Canonical text of an address given as text (throws on an invalid one). */
export function canonicalIp(s: string): string {
  return formatIp(parseIp(s));
}

// ---------------------------------------------------------------------------
// arithmetic and comparison

/** Orders IPv4 before IPv6, then by value. */
export function compareIp(a: IpAddress, b: IpAddress): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

/** a + offset (offset may be negative); throws when the result leaves the family's space. */
export function addOffset(a: IpAddress, offset: bigint | number): IpAddress {
  const v = a.value + BigInt(offset);
  if (v < 0n || v > maxValue(a.family)) {
    throw new AddressError(`${formatIp(a)} + ${offset} leaves the IPv${a.family} address space`);
  }
  return { family: a.family, value: v };
}

// ---------------------------------------------------------------------------
// CIDR

export interface Cidr {
  readonly family: IpFamily;
  /** The network address (host bits cleared). */
  readonly network: bigint;
  readonly prefix: number;
  /** The address exactly as written before the slash. */
  readonly written: IpAddress;
  /** True when the written address had host bits set, e.g. the seed's `10.244.0.1/16`.
   *  That is accepted: the prefix denotes the network containing the written address. */
  readonly hostBitsSet: boolean;
}

export function hostMask(family: IpFamily, prefix: number): bigint {
  return (1n << BigInt(familyBits(family) - prefix)) - 1n;
}

export function tryParseCidr(s: string): Cidr | undefined {
  const t = s.trim();
  const slash = t.indexOf('/');
  if (slash < 0) return undefined;
  const a = tryParseIp(t.slice(0, slash));
  const ps = t.slice(slash + 1);
  if (!a || !/^(0|[1-9][0-9]{0,2})$/.test(ps)) return undefined;
  const prefix = Number(ps);
  if (prefix > familyBits(a.family)) return undefined;
  const mask = hostMask(a.family, prefix);
  const network = a.value & ~mask;
  return { family: a.family, network, prefix, written: a, hostBitsSet: network !== a.value };
}

export function parseCidr(s: string): Cidr {
  const c = tryParseCidr(s);
  if (!c) throw new AddressError(`"${s}" is not a valid CIDR (address/prefix-length)`);
  return c;
}

export function cidrFirst(c: Cidr): IpAddress {
  return { family: c.family, value: c.network };
}

export function cidrLast(c: Cidr): IpAddress {
  return { family: c.family, value: c.network | hostMask(c.family, c.prefix) };
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(familyBits(c.family) - c.prefix);
}

export function cidrContains(c: Cidr, a: IpAddress): boolean {
  return a.family === c.family && (a.value & ~hostMask(c.family, c.prefix)) === c.network;
}

/** Canonical network form, e.g. `10.244.0.0/16` for `10.244.0.1/16`. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(cidrFirst(c))}/${c.prefix}`;
}
