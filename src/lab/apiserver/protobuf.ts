// Request bodies in Kubernetes' protobuf encoding. kubectl's generator commands (kubectl create
// namespace|deployment|service ...) send their object only this way, through client-go's typed
// clients, and client-go does not fall back to JSON on 415. The envelope is "k8s\0" followed by
// a runtime.Unknown message; its raw bytes are the object, decoded here with the field tables of
// protobuf-schemas.ts. A field the tables do not know is accepted only if it holds its zero value
// (gogo-protobuf writes every non-pointer field), so nothing a client sends is silently lost.
import { unsupportedMediaType } from './errors.js';
import type { JsonObject } from './types.js';

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export type ScalarKind = 'string' | 'int32' | 'int64' | 'bool';

export interface FieldSchema {
  json: string;
  kind: ScalarKind | 'intOrString' | 'quantity' | 'ignore' | MessageSchema | { map: ScalarKind | 'quantity' };
  repeated?: boolean;
  /** A Go pointer field: present means set, even to its zero value. */
  pointer?: boolean;
}

export interface MessageSchema {
  name: string;
  fields: Record<number, FieldSchema>;
}

interface WireField {
  field: number;
  wireType: number;
  varint?: bigint;
  bytes?: Buffer;
}

class ProtobufError extends Error {}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new ProtobufError('truncated varint');
    const byte = buf[pos++];
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new ProtobufError('varint too long');
  }
}

function readFields(buf: Buffer): WireField[] {
  const fields: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    let key: bigint;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (wireType === 0) {
      let value: bigint;
      [value, pos] = readVarint(buf, pos);
      fields.push({ field, wireType, varint: value });
    } else if (wireType === 2) {
      let length: bigint;
      [length, pos] = readVarint(buf, pos);
      const end = pos + Number(length);
      if (end > buf.length) throw new ProtobufError('truncated field');
      fields.push({ field, wireType, bytes: buf.subarray(pos, end) });
      pos = end;
    } else if (wireType === 1 || wireType === 5) {
      const size = wireType === 1 ? 8 : 4;
      fields.push({ field, wireType, bytes: buf.subarray(pos, pos + size) });
      pos += size;
    } else {
      throw new ProtobufError(`unsupported wire type ${wireType}`);
    }
  }
  return fields;
}

/** Whether a field of unknown type carries only zero values (then dropping it loses nothing). */
function isZero(f: WireField): boolean {
  if (f.wireType === 0) return f.varint === 0n;
  const bytes = f.bytes ?? Buffer.alloc(0);
  if (f.wireType !== 2) return bytes.every((b) => b === 0);
  if (bytes.length === 0) return true;
  try {
    return readFields(bytes).every(isZero);
  } catch {
    return false;
  }
}

function scalar(f: WireField, kind: ScalarKind): unknown {
  switch (kind) {
    case 'string':
      return (f.bytes ?? Buffer.alloc(0)).toString('utf8');
    case 'bool':
      return f.varint !== 0n;
    default:
      return Number(BigInt.asIntN(64, f.varint ?? 0n));
  }
}

function isZeroValue(value: unknown): boolean {
  if (value === '' || value === 0 || value === false || value === undefined) return true;
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}

function decodeMap(entries: WireField[], valueKind: ScalarKind | 'quantity'): Record<string, unknown> {
  const map: Record<string, unknown> = {};
  for (const entry of entries) {
    const parts = readFields(entry.bytes ?? Buffer.alloc(0));
    const key = parts.find((p) => p.field === 1);
    const value = parts.find((p) => p.field === 2);
    const k = key ? String(scalar(key, 'string')) : '';
    if (valueKind === 'quantity') map[k] = value ? decodeQuantity(value) : '';
    else map[k] = value ? scalar(value, valueKind) : valueKind === 'string' ? '' : 0;
  }
  return map;
}

function decodeQuantity(f: WireField): string {
  const inner = readFields(f.bytes ?? Buffer.alloc(0)).find((p) => p.field === 1);
  return inner ? String(scalar(inner, 'string')) : '';
}

function decodeIntOrString(f: WireField): number | string {
  const parts = readFields(f.bytes ?? Buffer.alloc(0));
  const type = parts.find((p) => p.field === 1)?.varint ?? 0n;
  if (type === 1n) {
    const str = parts.find((p) => p.field === 3);
    return str ? String(scalar(str, 'string')) : '';
  }
  const int = parts.find((p) => p.field === 2);
  return int ? Number(scalar(int, 'int32')) : 0;
}

function decodeValue(f: WireField, schema: FieldSchema): unknown {
  const kind = schema.kind;
  if (kind === 'intOrString') return decodeIntOrString(f);
  if (kind === 'quantity') return decodeQuantity(f);
  if (typeof kind === 'object' && 'fields' in kind) return decodeMessage(f.bytes ?? Buffer.alloc(0), kind);
  return scalar(f, kind as ScalarKind);
}

export function decodeMessage(buf: Buffer, schema: MessageSchema): JsonObject {
  const out: JsonObject = {};
  const byField = new Map<number, WireField[]>();
  for (const f of readFields(buf)) {
    if (!byField.has(f.field)) byField.set(f.field, []);
    byField.get(f.field)!.push(f);
  }
  for (const [number, occurrences] of byField) {
    const fieldSchema = schema.fields[number];
    if (!fieldSchema) {
      if (occurrences.every(isZero)) continue;
      throw new ProtobufError(`${schema.name} field ${number} is not supported in protobuf`);
    }
    if (fieldSchema.kind === 'ignore') continue;
    if (typeof fieldSchema.kind === 'object' && 'map' in fieldSchema.kind) {
      const map = decodeMap(occurrences, fieldSchema.kind.map);
      if (Object.keys(map).length > 0) out[fieldSchema.json] = map;
      continue;
    }
    if (fieldSchema.repeated) {
      out[fieldSchema.json] = occurrences.map((f) => decodeValue(f, fieldSchema));
      continue;
    }
    const value = decodeValue(occurrences[occurrences.length - 1], fieldSchema);
    if (fieldSchema.pointer || !isZeroValue(value)) out[fieldSchema.json] = value;
  }
  return out;
}

/** Decodes a protobuf request body into the JSON object it stands for (415 if it cannot). */
export function decodeProtobufObject(body: Buffer, schemas: Record<string, MessageSchema>): JsonObject {
  const refuse = (why: string): never => {
    const err = unsupportedMediaType(['application/json']);
    (err as { message: string }).message = `${err.message} (protobuf: ${why})`;
    throw err;
  };
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) refuse('missing the k8s envelope');
  try {
    const envelope = readFields(body.subarray(4));
    const typeMeta = readFields(envelope.find((f) => f.field === 1)?.bytes ?? Buffer.alloc(0));
    const apiVersion = String(scalar(typeMeta.find((f) => f.field === 1) ?? { field: 1, wireType: 2 }, 'string'));
    const kind = String(scalar(typeMeta.find((f) => f.field === 2) ?? { field: 2, wireType: 2 }, 'string'));
    const raw = envelope.find((f) => f.field === 2)?.bytes ?? Buffer.alloc(0);
    const schema = schemas[`${apiVersion}/${kind}`] ?? schemas[`*/${kind}`];
    if (!schema) return refuse(`${apiVersion} ${kind} is not decodable by the lab API server`);
    return { apiVersion, kind, ...decodeMessage(raw, schema) };
  } catch (err) {
    if (err instanceof ProtobufError) return refuse(err.message);
    throw err;
  }
}
