// What kube-apiserver does with a CRD version's structural OpenAPI v3 schema on every write of a
// custom resource: prune unknown fields, apply `default`s, then validate types and constraints.
import type { FieldError } from './errors.js';
import { cloneJson, isJsonObject, type JsonObject } from './types.js';

export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  required?: string[];
  default?: unknown;
  enum?: unknown[];
  nullable?: boolean;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
}

/** Fields every object has whatever its schema says; the schema never prunes or defaults them. */
const ROOT_FIELDS = new Set(['apiVersion', 'kind', 'metadata']);

function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function valueSchema(schema: JsonSchema, key: string): JsonSchema | undefined {
  const prop = schema.properties?.[key];
  if (prop) return prop;
  return isJsonObject(schema.additionalProperties) ? (schema.additionalProperties as JsonSchema) : undefined;
}

/**
 * Drops fields the schema does not declare (unless x-kubernetes-preserve-unknown-fields) and
 * returns their paths, so strict field validation can report them.
 */
export function pruneUnknownFields(obj: JsonObject, schema: JsonSchema): string[] {
  const dropped: string[] = [];
  pruneObject(obj, schema, '', dropped, true);
  return dropped;
}

function pruneValue(value: unknown, schema: JsonSchema | undefined, path: string, dropped: string[]): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((item, i) => pruneValue(item, schema.items, `${path}[${i}]`, dropped));
  } else if (isJsonObject(value)) {
    pruneObject(value, schema, path, dropped, schema['x-kubernetes-embedded-resource'] === true);
  }
}

function pruneObject(obj: JsonObject, schema: JsonSchema, path: string, dropped: string[], keepRootFields: boolean): void {
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true ||
    schema.additionalProperties === true;
  for (const key of Object.keys(obj)) {
    if (keepRootFields && ROOT_FIELDS.has(key)) continue;
    const sub = valueSchema(schema, key);
    if (sub) pruneValue(obj[key], sub, childPath(path, key), dropped);
    else if (!preserve) {
      delete obj[key];
      dropped.push(childPath(path, key));
    }
  }
}

/** Sets missing (or null but not nullable) properties that have a `default`, depth first. */
export function applySchemaDefaults(value: unknown, schema: JsonSchema | undefined, isRoot = true): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    for (const item of value) applySchemaDefaults(item, schema.items, false);
    return;
  }
  if (!isJsonObject(value)) return;
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (isRoot && ROOT_FIELDS.has(key)) continue;
    const missing = value[key] === undefined || (value[key] === null && !prop.nullable);
    if (missing && prop.default !== undefined) value[key] = cloneJson(prop.default);
  }
  for (const key of Object.keys(value)) {
    if (isRoot && ROOT_FIELDS.has(key)) continue;
    applySchemaDefaults(value[key], valueSchema(schema, key), false);
  }
}

function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(value: unknown, schema: JsonSchema): boolean {
  const actual = jsonTypeOf(value);
  if (schema['x-kubernetes-int-or-string']) return actual === 'integer' || actual === 'string';
  if (actual === 'null') return schema.nullable === true;
  switch (schema.type) {
    case undefined:
      return true;
    case 'number':
      return actual === 'number' || actual === 'integer';
    default:
      return actual === schema.type;
  }
}

/** Validates the object against the schema, with kube-openapi's messages. */
export function validateAgainstSchema(obj: JsonObject, schema: JsonSchema): FieldError[] {
  const errs: FieldError[] = [];
  for (const key of schema.required ?? []) {
    if (!ROOT_FIELDS.has(key) && obj[key] === undefined) errs.push({ type: 'FieldValueRequired', field: key });
  }
  for (const [key, value] of Object.entries(obj)) {
    if (ROOT_FIELDS.has(key)) continue;
    const sub = valueSchema(schema, key);
    if (sub) validateValue(value, sub, key, errs);
  }
  return errs;
}

function validateValue(value: unknown, schema: JsonSchema, path: string, errs: FieldError[]): void {
  if (!typeMatches(value, schema)) {
    const actual = jsonTypeOf(value);
    const expected = schema['x-kubernetes-int-or-string'] ? 'integer,string' : schema.type;
    errs.push({ type: 'FieldValueTypeInvalid', field: path, badValue: actual, detail: `${path} in body must be of type ${expected}: "${actual}"` });
    return;
  }
  if (value === null) return;
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errs.push({ type: 'FieldValueNotSupported', field: path, badValue: value, supported: schema.enum });
  }
  if (typeof value === 'string') validateString(value, schema, path, errs);
  else if (typeof value === 'number') validateNumber(value, schema, path, errs);
  else if (Array.isArray(value)) validateArray(value, schema, path, errs);
  else if (isJsonObject(value)) validateObject(value, schema, path, errs);
}

function validateString(value: string, schema: JsonSchema, path: string, errs: FieldError[]): void {
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    errs.push({ type: 'FieldValueTooLong', field: path, badValue: value, detail: `may not be more than ${schema.maxLength} bytes` });
  }
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    errs.push({ type: 'FieldValueInvalid', field: path, badValue: value, detail: `${path} in body should be at least ${schema.minLength} chars long` });
  }
  if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
    errs.push({ type: 'FieldValueInvalid', field: path, badValue: value, detail: `${path} in body should match '${schema.pattern}'` });
  }
}

function validateNumber(value: number, schema: JsonSchema, path: string, errs: FieldError[]): void {
  if (schema.minimum !== undefined) {
    const bad = schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum;
    const rel = schema.exclusiveMinimum ? 'greater than' : 'greater than or equal to';
    if (bad) errs.push({ type: 'FieldValueInvalid', field: path, badValue: value, detail: `${path} in body should be ${rel} ${schema.minimum}` });
  }
  if (schema.maximum !== undefined) {
    const bad = schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum;
    const rel = schema.exclusiveMaximum ? 'less than' : 'less than or equal to';
    if (bad) errs.push({ type: 'FieldValueInvalid', field: path, badValue: value, detail: `${path} in body should be ${rel} ${schema.maximum}` });
  }
}

function validateArray(value: unknown[], schema: JsonSchema, path: string, errs: FieldError[]): void {
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    errs.push({ type: 'FieldValueTooMany', field: path, badValue: value.length, detail: `must have at most ${schema.maxItems} items` });
  }
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    errs.push({ type: 'FieldValueInvalid', field: path, badValue: value.length, detail: `${path} in body should have at least ${schema.minItems} items` });
  }
  if (schema.items) value.forEach((item, i) => validateValue(item, schema.items!, `${path}[${i}]`, errs));
}

function validateObject(value: JsonObject, schema: JsonSchema, path: string, errs: FieldError[]): void {
  for (const key of schema.required ?? []) {
    if (value[key] === undefined) errs.push({ type: 'FieldValueRequired', field: childPath(path, key) });
  }
  const count = Object.keys(value).length;
  if (schema.minProperties !== undefined && count < schema.minProperties) {
    errs.push({ type: 'FieldValueInvalid', field: path, badValue: count, detail: `${path} in body should have at least ${schema.minProperties} properties` });
  }
  if (schema.maxProperties !== undefined && count > schema.maxProperties) {
    errs.push({ type: 'FieldValueTooMany', field: path, badValue: count, detail: `must have at most ${schema.maxProperties} items` });
  }
  if (schema['x-kubernetes-embedded-resource']) return;
  for (const [key, child] of Object.entries(value)) {
    const sub = valueSchema(schema, key);
    if (sub) validateValue(child, sub, childPath(path, key), errs);
  }
}
