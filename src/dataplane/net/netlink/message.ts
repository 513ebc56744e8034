// Netlink message and attribute encoding and decoding (pure: no sockets here).
//
// A message is a 16-byte nlmsghdr, a fixed family header (ifinfomsg, rtmsg, ...) and a
// run of attributes; every attribute is a 4-byte header (length, type), its payload and
// padding to 4 bytes. Nested attributes are attributes whose payload is more attributes.
import * as c from './constants.js';

export const align4 = (n: number): number => (n + 3) & ~3;

export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

/** One attribute (header, payload, padding). */
export function nla(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(align4(c.NLA_HDRLEN + payload.length));
  out.writeUInt16LE(c.NLA_HDRLEN + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, c.NLA_HDRLEN);
  return out;
}

/** An attribute holding attributes (NLA_F_NESTED set, as current iproute2 does). */
export function nlaNested(type: number, children: Buffer[]): Buffer {
  return nla(type | c.NLA_F_NESTED, Buffer.concat(children));
}

export function nlaU32(type: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return nla(type, b);
}

/** A NUL-terminated string, as the kernel's NLA_NUL_STRING/NLA_STRING policies accept. */
export function nlaString(type: number, value: string): Buffer {
  return nla(type, Buffer.concat([Buffer.from(value, 'utf8'), Buffer.alloc(1)]));
}

/** nlmsghdr + body; the length is filled in. */
export function nlmsg(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const h = Buffer.alloc(c.NLMSG_HDRLEN);
  h.writeUInt32LE(c.NLMSG_HDRLEN + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq >>> 0, 8);
  h.writeUInt32LE(0, 12); // to the kernel
  return Buffer.concat([h, body]);
}

export class NetlinkParseError extends Error {
  constructor(message: string) {
    super(`malformed netlink answer: ${message}`);
    this.name = 'NetlinkParseError';
  }
}

/** Splits a datagram into messages. */
export function parseMessages(buf: Buffer): NlMsg[] {
  const out: NlMsg[] = [];
  let off = 0;
  while (off + c.NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < c.NLMSG_HDRLEN || off + len > buf.length) throw new NetlinkParseError(`message length ${len} at offset ${off} of ${buf.length}`);
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + c.NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** Attributes by type (flags masked off; a repeated type keeps the last). */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + c.NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < c.NLA_HDRLEN || off + len > buf.length) throw new NetlinkParseError(`attribute length ${len} at offset ${off} of ${buf.length}`);
    out.set(buf.readUInt16LE(off + 2) & c.NLA_TYPE_MASK, buf.subarray(off + c.NLA_HDRLEN, off + len));
    off += align4(len);
  }
  return out;
}

/** A NUL-terminated string attribute's value. */
export function attrString(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

export function attrU32(b: Buffer | undefined): number | undefined {
  return b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
}

export interface NlError {
  /** Positive errno; 0 for a plain ACK. */
  errno: number;
  /** The kernel's extended-ACK text, when it gave one. */
  extack?: string;
}

/**
 * An NLMSG_ERROR payload: a negative errno, the request's header (or all of the request
 * when the kernel did not cap it) and, with extended ACKs, attributes after that.
 */
export function parseError(m: NlMsg): NlError {
  if (m.payload.length < 4) throw new NetlinkParseError('NLMSG_ERROR shorter than its errno');
  const errno = -m.payload.readInt32LE(0) || 0; // never -0
  if (!(m.flags & c.NLM_F_ACK_TLVS) || m.payload.length < 4 + c.NLMSG_HDRLEN) return { errno };
  const echoedLen = m.flags & c.NLM_F_CAPPED ? c.NLMSG_HDRLEN : m.payload.readUInt32LE(4);
  const tlvs = parseAttrs(m.payload.subarray(4 + align4(echoedLen)));
  const extack = attrString(tlvs.get(c.NLMSGERR_ATTR_MSG));
  return extack ? { errno, extack } : { errno };
}

/** NLMSG_DONE carries the dump's result as an int (0, or a negative errno). */
export function parseDone(m: NlMsg): number {
  return m.payload.length >= 4 ? -m.payload.readInt32LE(0) || 0 : 0;
}

// Family headers.

export function ifinfomsg(o: { family?: number; index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(c.IFINFOMSG_LEN);
  b.writeUInt8(o.family ?? c.AF_UNSPEC, 0);
  b.writeInt32LE(o.index ?? 0, 4);
  b.writeUInt32LE(o.flags ?? 0, 8);
  b.writeUInt32LE(o.change ?? 0, 12);
  return b;
}

export function ifaddrmsg(o: { family: number; prefixLen: number; flags?: number; scope?: number; index: number }): Buffer {
  const b = Buffer.alloc(c.IFADDRMSG_LEN);
  b.writeUInt8(o.family, 0);
  b.writeUInt8(o.prefixLen, 1);
  b.writeUInt8(o.flags ?? 0, 2);
  b.writeUInt8(o.scope ?? c.RT_SCOPE_UNIVERSE, 3);
  b.writeUInt32LE(o.index, 4);
  return b;
}

export function rtmsg(o: { family: number; dstLen?: number; table?: number; protocol?: number; scope?: number; type?: number }): Buffer {
  const b = Buffer.alloc(c.RTMSG_LEN);
  b.writeUInt8(o.family, 0);
  b.writeUInt8(o.dstLen ?? 0, 1);
  b.writeUInt8(o.table ?? c.RT_TABLE_MAIN, 4);
  b.writeUInt8(o.protocol ?? 0, 5);
  b.writeUInt8(o.scope ?? c.RT_SCOPE_UNIVERSE, 6);
  b.writeUInt8(o.type ?? 0, 7);
  return b;
}

export function ndmsg(o: { family: number; index: number; state: number }): Buffer {
  const b = Buffer.alloc(c.NDMSG_LEN);
  b.writeUInt8(o.family, 0);
  b.writeInt32LE(o.index, 4);
  b.writeUInt16LE(o.state, 8);
  return b;
}
