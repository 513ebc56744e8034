// JSON merge patch (RFC 7386) and JSON patch (RFC 6902), the two patch formats every resource
// accepts. Strategic merge patch, which needs per-kind knowledge, lives in strategic-merge.ts.
import { ApiError, badRequest } from './errors.js';
import { cloneJson, isJsonObject, jsonEqual, type JsonObject } from './types.js';

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return cloneJson(patch);
  const result: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/** The error kube-apiserver returns when a JSON patch cannot be applied to the object. */
function patchApplyError(message: string): ApiError {
  return new ApiError(422, 'Invalid', message, { causes: [{ reason: 'FieldValueInvalid', message }] });
}

function decodePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw badRequest(`invalid JSON pointer: "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface Location {
  parent: unknown;
  key: string;
}

/** Walks to the parent of the pointer's last token; the parent must exist. */
function locate(doc: unknown, pointer: string): Location {
  const tokens = decodePointer(pointer);
  if (tokens.length === 0) throw patchApplyError(`cannot operate on the document root at "${pointer}"`);
  let node: unknown = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isJsonObject(node)) node = node[token];
    else node = undefined;
    if (node === undefined) throw patchApplyError(`doc is missing path: "${pointer}": missing value`);
  }
  return { parent: node, key: tokens[tokens.length - 1] };
}

function arrayIndex(arr: unknown[], key: string, pointer: string, forInsert: boolean): number {
  if (forInsert && key === '-') return arr.length;
  const index = Number(key);
  const max = forInsert ? arr.length : arr.length - 1;
  if (!/^\d+$/.test(key) || index > max) {
    throw patchApplyError(`unable to access invalid index: ${key}: invalid index referenced: "${pointer}"`);
  }
  return index;
}

function getAt(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  const { parent, key } = locate(doc, pointer);
  let value: unknown;
  if (Array.isArray(parent)) value = parent[arrayIndex(parent, key, pointer, false)];
  else if (isJsonObject(parent)) value = parent[key];
  if (value === undefined) throw patchApplyError(`doc is missing path: "${pointer}": missing value`);
  return value;
}

function addAt(doc: unknown, pointer: string, value: unknown): unknown {
  if (pointer === '') return cloneJson(value);
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, pointer, true), 0, cloneJson(value));
  else if (isJsonObject(parent)) parent[key] = cloneJson(value);
  else throw patchApplyError(`doc is missing path: "${pointer}": missing value`);
  return doc;
}

function removeAt(doc: unknown, pointer: string): unknown {
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, pointer, false), 1);
  else if (isJsonObject(parent) && key in parent) delete parent[key];
  else throw patchApplyError(`Unable to remove nonexistent key: ${key}: missing value`);
  return doc;
}

export function applyJsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = cloneJson(target);
  for (const op of operations) {
    if (!isJsonObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string') {
      throw badRequest('invalid JSON patch operation: each operation needs "op" and "path"');
    }
    const path = op.path;
    switch (op.op) {
      case 'add':
        doc = addAt(doc, path, op.value);
        break;
      case 'remove':
        doc = removeAt(doc, path);
        break;
      case 'replace':
        getAt(doc, path);
        doc = path === '' ? cloneJson(op.value) : addAt(removeAt(doc, path), path, op.value);
        break;
      case 'move': {
        const value = getAt(doc, String(op.from));
        doc = addAt(removeAt(doc, String(op.from)), path, value);
        break;
      }
      case 'copy':
        doc = addAt(doc, path, getAt(doc, String(op.from)));
        break;
      case 'test':
        if (!jsonEqual(getAt(doc, path), op.value)) {
          throw patchApplyError(`testing value ${path} failed: test failed`);
        }
        break;
      default:
        throw badRequest(`Unexpected kind: ${op.op}`);
    }
  }
  return doc;
}
