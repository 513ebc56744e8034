// Typed reads of decoded JSON. Every failure is a CniError 7 naming the field's path, so a
// runtime operator sees exactly which key of which file is wrong.

import { invalidConfig } from './errors.js';

export type JsonObject = Record<string, unknown>;

// A JSON object, as opposed to an array or null (both typeof "object").
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Own properties only: a config key named "constructor" or "toString" must not resolve to
// Object.prototype's member.
export function ownField(obj: JsonObject, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

export function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return typeof value;
}

export function wrongType(path: string, expected: string, value: unknown): never {
  throw invalidConfig(`${path} must be ${expected}, got ${describeJsonType(value)}`);
}

export function optionalString(obj: JsonObject, key: string, path: string): string | undefined {
  const value = ownField(obj, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') wrongType(path, 'a string', value);
  return value;
}

export function requiredString(obj: JsonObject, key: string, path: string): string {
  const value = ownField(obj, key);
  if (value === undefined) throw invalidConfig(`${path} is required`);
  if (typeof value !== 'string') wrongType(path, 'a string', value);
  return value;
}

export function optionalBoolean(obj: JsonObject, key: string, path: string): boolean | undefined {
  const value = ownField(obj, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') wrongType(path, 'a boolean', value);
  return value;
}

export function optionalObject(obj: JsonObject, key: string, path: string): JsonObject | undefined {
  const value = ownField(obj, key);
  if (value === undefined) return undefined;
  if (!isJsonObject(value)) wrongType(path, 'an object', value);
  return value;
}

export function optionalArray(obj: JsonObject, key: string, path: string): unknown[] | undefined {
  const value = ownField(obj, key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) wrongType(path, 'an array', value);
  return value;
}

// Integers within [min, max]; JSON has no integer type, so 1.5 or 1e400 must be caught here.
export function optionalInteger(
  obj: JsonObject,
  key: string,
  path: string,
  min: number,
  max: number,
): number | undefined {
  const value = ownField(obj, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const shown = typeof value === 'number' ? String(value) : describeJsonType(value);
    throw invalidConfig(`${path} must be an integer from ${min} to ${max}, got ${shown}`);
  }
  return value;
}

export function optionalStringArray(obj: JsonObject, key: string, path: string): string[] | undefined {
  const list = optionalArray(obj, key, path);
  if (list === undefined) return undefined;
  return list.map((item, i) => {
    if (typeof item !== 'string') wrongType(`${path}[${i}]`, 'a string', item);
    return item;
  });
}

export function objectAt(list: unknown[], index: number, path: string): JsonObject {
  const item = list[index];
  if (!isJsonObject(item)) wrongType(`${path}[${index}]`, 'an object', item);
  return item;
}
