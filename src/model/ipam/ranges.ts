// Address sets as sorted, merged lists of inclusive intervals, and the parser of `spec.ips`
// entries. Nothing here materialises the addresses of a set: a /8 or an IPv6 /64 is one interval.

import {
  type Cidr,
  type IpAddress,
  type IpFamily,
  cidrFirst,
  cidrLast,
  formatCidr,
  formatIp,
  tryParseCidr,
  tryParseIp,
} from './address.js';

/** Inclusive interval of address values of one family. */
export interface Interval {
  readonly start: bigint;
  readonly end: bigint;
}

function normalise(intervals: Iterable<Interval>): Interval[] {
  const xs = [...intervals].filter((x) => x.start <= x.end);
  xs.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Interval[] = [];
  for (const x of xs) {
    const last = out[out.length - 1];
    if (last && x.start <= last.end + 1n) {
      if (x.end > last.end) out[out.length - 1] = { start: last.start, end: x.end };
    } else {
      out.push({ start: x.start, end: x.end });
    }
  }
  return out;
}

/**
 * An immutable set of addresses of one family, held as sorted, disjoint, non-adjacent inclusive
 * intervals. Size, membership, rank (`indexOf`) and `nth` cost O(log intervals); set algebra
 * is linear in the number of intervals.
 */
export class IpSet {
  /** prefix[i] = number of addresses in intervals before i. */
  private readonly prefix: readonly bigint[];
  readonly size: bigint;

  private constructor(
    readonly family: IpFamily,
    readonly intervals: readonly Interval[],
  ) {
    const prefix: bigint[] = [];
    let n = 0n;
    for (const iv of intervals) {
      prefix.push(n);
      n += iv.end - iv.start + 1n;
    }
    this.prefix = prefix;
    this.size = n;
  }

  static empty(family: IpFamily): IpSet {
    return new IpSet(family, []);
  }

  /** Any intervals (unsorted, overlapping, adjacent, reversed ones are dropped) → normal form. */
  static of(family: IpFamily, intervals: Iterable<Interval>): IpSet {
    return new IpSet(family, normalise(intervals));
  }

  static range(start: IpAddress, end: IpAddress): IpSet {
    if (start.family !== end.family) throw new Error('range ends of different families');
    return IpSet.of(start.family, [{ start: start.value, end: end.value }]);
  }

  static single(a: IpAddress): IpSet {
    return IpSet.range(a, a);
  }

  static cidr(c: Cidr): IpSet {
    return IpSet.range(cidrFirst(c), cidrLast(c));
  }

  get isEmpty(): boolean {
    return this.intervals.length === 0;
  }

  first(): IpAddress | undefined {
    const iv = this.intervals[0];
    return iv ? { family: this.family, value: iv.start } : undefined;
  }

  last(): IpAddress | undefined {
    const iv = this.intervals[this.intervals.length - 1];
    return iv ? { family: this.family, value: iv.end } : undefined;
  }

  /** Index of the interval containing v, or -1. */
  private find(v: bigint): number {
    let lo = 0;
    let hi = this.intervals.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const iv = this.intervals[mid]!;
      if (v < iv.start) hi = mid - 1;
      else if (v > iv.end) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  contains(a: IpAddress): boolean {
    return a.family === this.family && this.find(a.value) >= 0;
  }

  /** Rank of an address within the set (0-based), undefined when not a member. */
  indexOf(a: IpAddress): bigint | undefined {
    if (a.family !== this.family) return undefined;
    const i = this.find(a.value);
    if (i < 0) return undefined;
    return this.prefix[i]! + (a.value - this.intervals[i]!.start);
  }

  /** The n-th address (0-based) in ascending order. Throws when n is out of range. */
  nth(n: bigint | number): IpAddress {
    const k = BigInt(n);
    if (k < 0n || k >= this.size) throw new RangeError(`index ${k} outside a set of ${this.size} addresses`);
    let lo = 0;
    let hi = this.intervals.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.prefix[mid]! <= k) lo = mid;
      else hi = mid - 1;
    }
    return { family: this.family, value: this.intervals[lo]!.start + (k - this.prefix[lo]!) };
  }

  private same(o: IpSet): void {
    if (o.family !== this.family) throw new Error(`cannot combine IPv${this.family} and IPv${o.family} sets`);
  }

  union(o: IpSet): IpSet {
    this.same(o);
    return IpSet.of(this.family, [...this.intervals, ...o.intervals]);
  }

  intersect(o: IpSet): IpSet {
    this.same(o);
    const out: Interval[] = [];
    let i = 0;
    let j = 0;
    while (i < this.intervals.length && j < o.intervals.length) {
      const a = this.intervals[i]!;
      const b = o.intervals[j]!;
      const s = a.start > b.start ? a.start : b.start;
      const e = a.end < b.end ? a.end : b.end;
      if (s <= e) out.push({ start: s, end: e });
      if (a.end < b.end) i++;
      else j++;
    }
    return new IpSet(this.family, out);
  }

  subtract(o: IpSet): IpSet {
    this.same(o);
    const out: Interval[] = [];
    let j = 0;
    for (const a of this.intervals) {
      let cur = a.start;
      while (j < o.intervals.length && o.intervals[j]!.end < cur) j++;
      let k = j;
      while (k < o.intervals.length && o.intervals[k]!.start <= a.end) {
        const b = o.intervals[k]!;
        if (b.start > cur) out.push({ start: cur, end: b.start - 1n });
        if (b.end >= a.end) {
          cur = a.end + 1n;
          break;
        }
        cur = b.end + 1n;
        k++;
      }
      if (cur <= a.end) out.push({ start: cur, end: a.end });
    }
    return new IpSet(this.family, out);
  }

  /** The lowest address in both sets, if any. */
  firstOverlap(o: IpSet): IpAddress | undefined {
    if (o.family !== this.family) return undefined;
    let i = 0;
    let j = 0;
    while (i < this.intervals.length && j < o.intervals.length) {
      const a = this.intervals[i]!;
      const b = o.intervals[j]!;
      const s = a.start > b.start ? a.start : b.start;
      const e = a.end < b.end ? a.end : b.end;
      if (s <= e) return { family: this.family, value: s };
      if (a.end < b.end) i++;
      else j++;
    }
    return undefined;
  }

  overlaps(o: IpSet): boolean {
    return this.firstOverlap(o) !== undefined;
  }

  isSubsetOf(o: IpSet): boolean {
    return o.family === this.family && this.subtract(o).isEmpty;
  }

  equals(o: IpSet): boolean {
    return (
      o.family === this.family &&
      o.intervals.length === this.intervals.length &&
      this.intervals.every((x, i) => x.start === o.intervals[i]!.start && x.end === o.intervals[i]!.end)
    );
  }

  /** Lazily iterates the addresses in ascending order, starting at rank `from`. */
  *addresses(from: bigint = 0n): Generator<IpAddress> {
    if (from >= this.size) return;
    const startAt = from < 0n ? 0n : from;
    let idx = 0;
    while (idx + 1 < this.intervals.length && this.prefix[idx + 1]! <= startAt) idx++;
    for (let i = idx; i < this.intervals.length; i++) {
      const iv = this.intervals[i]!;
      let v = i === idx ? iv.start + (startAt - this.prefix[i]!) : iv.start;
      for (; v <= iv.end; v++) yield { family: this.family, value: v };
    }
  }

  /** e.g. `10.0.0.1-10.0.0.9, 10.0.1.0` */
  toString(): string {
    return this.toStrings().join(', ');
  }

  toStrings(): string[] {
    return this.intervals.map((iv) => {
      const a = formatIp({ family: this.family, value: iv.start });
      if (iv.start === iv.end) return a;
      return `${a}-${formatIp({ family: this.family, value: iv.end })}`;
    });
  }
}

// ---------------------------------------------------------------------------
// `spec.ips` / `spec.excludeIPs` entries

export type EntryKind = 'single' | 'range' | 'cidr';
export type EntryProblemReason = 'InvalidAddress' | 'RangeReversed' | 'MixedFamilies';

export interface IpEntry {
  readonly text: string;
  readonly kind: EntryKind;
  readonly family: IpFamily;
  readonly start: bigint;
  readonly end: bigint;
  /** For a CIDR entry. A CIDR with host bits set denotes its whole network, as `subnet` does. */
  readonly cidr?: Cidr;
  /** Position in the list given to parseIpEntries. */
  readonly index?: number;
}

export interface EntryProblem {
  readonly index: number;
  readonly text: string;
  readonly reason: EntryProblemReason;
  readonly message: string;
  /** A valid entry of another family than the list's. */
  readonly otherFamily?: IpFamily;
}

export type EntryResult =
  | { ok: true; entry: IpEntry }
  | { ok: false; reason: EntryProblemReason; message: string };

/** One entry: `A-B` (inclusive, A ≤ B, same family), `A`, or `A/len`. Whitespace is ignored. */
export function parseIpEntry(text: unknown): EntryResult {
  if (typeof text !== 'string') {
    return { ok: false, reason: 'InvalidAddress', message: `${JSON.stringify(text)} is not a string` };
  }
  const t = text.trim();
  const dash = t.indexOf('-');
  if (dash >= 0) {
    const as = t.slice(0, dash).trim();
    const bs = t.slice(dash + 1).trim();
    const a = tryParseIp(as);
    const b = tryParseIp(bs);
    if (!a || !b) {
      const bad = !a ? as : bs;
      return { ok: false, reason: 'InvalidAddress', message: `range "${t}": "${bad}" is not a valid IP address` };
    }
    if (a.family !== b.family) {
      return {
        ok: false,
        reason: 'MixedFamilies',
        message: `range "${t}" mixes an IPv${a.family} and an IPv${b.family} address`,
      };
    }
    if (a.value > b.value) {
      return {
        ok: false,
        reason: 'RangeReversed',
        message: `range "${t}" is reversed: ${formatIp(a)} comes after ${formatIp(b)}`,
      };
    }
    return { ok: true, entry: { text: t, kind: 'range', family: a.family, start: a.value, end: b.value } };
  }
  if (t.includes('/')) {
    const c = tryParseCidr(t);
    if (!c) return { ok: false, reason: 'InvalidAddress', message: `"${t}" is not a valid CIDR` };
    const first = cidrFirst(c).value;
    const last = cidrLast(c).value;
    return { ok: true, entry: { text: t, kind: 'cidr', family: c.family, start: first, end: last, cidr: c } };
  }
  const a = tryParseIp(t);
  if (!a) return { ok: false, reason: 'InvalidAddress', message: `"${t}" is not a valid IP address` };
  return { ok: true, entry: { text: t, kind: 'single', family: a.family, start: a.value, end: a.value } };
}

export interface ParsedEntries {
  /** The family of the entries (the expected one if given, else that of the first valid entry). */
  readonly family: IpFamily | undefined;
  readonly entries: readonly IpEntry[];
  /** Union of the valid entries of `family`. */
  readonly set: IpSet | undefined;
  readonly problems: readonly EntryProblem[];
}

/** Parses a list of entries; entries of another family than `expected` (or than the first
 *  valid entry) are MixedFamilies problems. */
export function parseIpEntries(texts: readonly unknown[], expected?: IpFamily): ParsedEntries {
  const entries: IpEntry[] = [];
  const problems: EntryProblem[] = [];
  let family = expected;
  texts.forEach((text, index) => {
    const r = parseIpEntry(text);
    const shown = typeof text === 'string' ? text : JSON.stringify(text);
    if (!r.ok) {
      problems.push({ index, text: shown, reason: r.reason, message: r.message });
      return;
    }
    if (family === undefined) family = r.entry.family;
    if (r.entry.family !== family) {
      problems.push({
        index,
        text: shown,
        reason: 'MixedFamilies',
        message: `"${r.entry.text}" is IPv${r.entry.family} but the pool is IPv${family}`,
        otherFamily: r.entry.family,
      });
      return;
    }
    entries.push({ ...r.entry, index });
  });
  const set = family === undefined ? undefined : IpSet.of(family, entries);
  return { family, entries, set, problems };
}

/** Text of an entry's span, for messages. */
export function describeEntry(e: IpEntry): string {
  if (e.cidr) return formatCidr(e.cidr);
  const a = formatIp({ family: e.family, value: e.start });
  return e.start === e.end ? a : `${a}-${formatIp({ family: e.family, value: e.end })}`;
}
