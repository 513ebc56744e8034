// The framing between fast-cni (C) and the agent; see docs/architecture.md.
export const CNI_MAGIC = 'FCNI';
export const CTL_MAGIC = 'FCTL';
export const WIRE_VERSION = 1;

export interface ForwardedCall {
  env: Record<string, string>;
  stdin: Buffer;
}

export interface CallResponse {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export class WireError extends Error {}

/** Decodes a complete request buffer; returns undefined while more bytes are needed. */
export function decodeCniRequest(buf: Buffer): { call: ForwardedCall; used: number } | undefined {
  if (buf.length < 12) return undefined;
  if (buf.subarray(0, 4).toString('latin1') !== CNI_MAGIC) throw new WireError('bad magic');
  const version = buf.readUInt32BE(4);
  if (version !== WIRE_VERSION) throw new WireError(`unsupported wire version ${version}`);
  const envLen = buf.readUInt32BE(8);
  if (buf.length < 12 + envLen + 4) return undefined;
  const stdinLen = buf.readUInt32BE(12 + envLen);
  const end = 16 + envLen + stdinLen;
  if (buf.length < end) return undefined;
  return { call: { env: decodeEnv(buf.subarray(12, 12 + envLen)), stdin: Buffer.from(buf.subarray(16 + envLen, end)) }, used: end };
}

function decodeEnv(b: Buffer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of b.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

export function encodeCniRequest(call: ForwardedCall): Buffer {
  const env = Buffer.from(Object.entries(call.env).map(([k, v]) => `${k}=${v}`).join('\0'), 'utf8');
  const head = Buffer.alloc(12);
  head.write(CNI_MAGIC, 0, 'latin1');
  head.writeUInt32BE(WIRE_VERSION, 4);
  head.writeUInt32BE(env.length, 8);
  const stdinLen = Buffer.alloc(4);
  stdinLen.writeUInt32BE(call.stdin.length, 0);
  return Buffer.concat([head, env, stdinLen, call.stdin]);
}

export function encodeCniResponse(r: CallResponse): Buffer {
  const out = Buffer.from(r.stdout, 'utf8');
  const err = Buffer.from(r.stderr, 'utf8');
  const b = Buffer.alloc(12 + out.length + err.length);
  b.writeUInt32BE(r.exitCode, 0);
  b.writeUInt32BE(out.length, 4);
  out.copy(b, 8);
  b.writeUInt32BE(err.length, 8 + out.length);
  err.copy(b, 12 + out.length);
  return b;
}

export function decodeCniResponse(b: Buffer): CallResponse | undefined {
  if (b.length < 8) return undefined;
  const outLen = b.readUInt32BE(4);
  if (b.length < 12 + outLen) return undefined;
  const errLen = b.readUInt32BE(8 + outLen);
  if (b.length < 12 + outLen + errLen) return undefined;
  return { exitCode: b.readUInt32BE(0), stdout: b.subarray(8, 8 + outLen).toString('utf8'), stderr: b.subarray(12 + outLen, 12 + outLen + errLen).toString('utf8') };
}

/** fast-ctl requests: magic, u32 length, JSON; the answer is u32 length + JSON. */
export function decodeCtlRequest(buf: Buffer): { request: unknown; used: number } | undefined {
  if (buf.length < 8) return undefined;
  const len = buf.readUInt32BE(4);
  if (buf.length < 8 + len) return undefined;
  return { request: JSON.parse(buf.subarray(8, 8 + len).toString('utf8')), used: 8 + len };
}

export function encodeCtlRequest(request: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(request), 'utf8');
  const head = Buffer.alloc(8);
  head.write(CTL_MAGIC, 0, 'latin1');
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

export function encodeLengthPrefixedJson(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}
