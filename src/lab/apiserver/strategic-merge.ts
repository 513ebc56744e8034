// Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch): a JSON merge patch in which
// lists tagged `patchStrategy:"merge"` are merged element by element (by their merge key, e.g.
// containers by name), plus the directives kubectl emits: $patch (replace/delete),
// $setElementOrder/<list>, $deleteFromPrimitiveList/<list> and $retainKeys.
import { badRequest } from './errors.js';
import { cloneJson, isJsonObject, type JsonObject } from './types.js';

/** What the Go struct tags say about a field: how its lists merge and what its children are. */
export interface PatchMeta {
  /** Metadata of named fields of an object (for a list field: of its elements' fields). */
  fields?: Record<string, PatchMeta>;
  /** Metadata of the values of a map with arbitrary keys. */
  values?: PatchMeta;
  /** 'merge' merges list elements; 'retainKeys' applies the $retainKeys directive. */
  strategy?: 'merge' | 'retainKeys' | 'merge,retainKeys';
  /** The element field that identifies elements of a merged list of objects. */
  mergeKey?: string;
}

const SET_ELEMENT_ORDER = '$setElementOrder/';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList/';

function isDirectiveKey(key: string): boolean {
  return key === '$patch' || key === '$retainKeys' || key.startsWith(SET_ELEMENT_ORDER) ||
    key.startsWith(DELETE_FROM_PRIMITIVE_LIST);
}

function mergesList(meta: PatchMeta | undefined): boolean {
  return meta?.strategy === 'merge' || meta?.strategy === 'merge,retainKeys';
}

/** Removes directives from a value that is taken verbatim (no original to merge with). */
function stripDirectives(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.filter((v) => !(isJsonObject(v) && v.$patch !== undefined && Object.keys(v).length === 1))
      .map(stripDirectives);
  }
  if (!isJsonObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    if (!isDirectiveKey(k)) out[k] = stripDirectives(v);
  }
  return out;
}

export function applyStrategicMergePatch(original: JsonObject, patch: unknown, meta: PatchMeta): JsonObject {
  if (!isJsonObject(patch)) throw badRequest('strategic merge patch must be a JSON object');
  return mergeMap(cloneJson(original), patch, meta) ?? {};
}

/** Merges a patch map into an original map; undefined means "$patch: delete" removed the map. */
function mergeMap(original: JsonObject, patch: JsonObject, meta: PatchMeta | undefined): JsonObject | undefined {
  const directive = patch.$patch;
  if (directive === 'replace') return stripDirectives(patch) as JsonObject;
  if (directive === 'delete') return undefined;
  if (directive !== undefined && directive !== 'merge') {
    throw badRequest(`Unknown patch type: ${String(directive)} in map: ${JSON.stringify(patch)}`);
  }
  const result = original;
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) deleteFromPrimitiveList(result, key, value);
  }
  for (const [key, value] of Object.entries(patch)) {
    if (isDirectiveKey(key)) continue;
    if (value === null) {
      delete result[key];
      continue;
    }
    const fieldMeta = meta?.fields?.[key] ?? meta?.values;
    if (isJsonObject(value)) {
      const current = result[key];
      const merged = mergeMap(isJsonObject(current) ? current : {}, value, fieldMeta);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    } else if (Array.isArray(value) && mergesList(fieldMeta)) {
      const current = result[key];
      result[key] = mergeList(Array.isArray(current) ? current : [], value, fieldMeta as PatchMeta);
    } else {
      result[key] = stripDirectives(value);
    }
  }
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith(SET_ELEMENT_ORDER)) applyElementOrder(result, key, value, meta);
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys.map(String));
    for (const key of Object.keys(result)) if (!keep.has(key)) delete result[key];
  }
  return result;
}

function mergeList(original: unknown[], patch: unknown[], meta: PatchMeta): unknown[] {
  const replace = patch.some((item) => isJsonObject(item) && item.$patch === 'replace');
  if (replace) return stripDirectives(patch) as unknown[];
  if (!meta.mergeKey) {
    const result = [...original];
    for (const item of patch) if (!result.some((v) => v === item)) result.push(item);
    return result;
  }
  const mergeKey = meta.mergeKey;
  let result = [...original];
  for (const item of patch) {
    if (!isJsonObject(item)) throw badRequest(`unable to find api field in struct for list element ${JSON.stringify(item)}`);
    if (!(mergeKey in item)) {
      throw badRequest(`map: ${JSON.stringify(item)} does not contain declared merge key: ${mergeKey}`);
    }
    const key = item[mergeKey];
    const index = result.findIndex((o) => isJsonObject(o) && o[mergeKey] === key);
    if (item.$patch === 'delete') {
      result = result.filter((o) => !(isJsonObject(o) && o[mergeKey] === key));
      continue;
    }
    if (index >= 0) {
      const merged = mergeMap(result[index] as JsonObject, item, meta);
      if (merged === undefined) result.splice(index, 1);
      else result[index] = merged;
    } else {
      const fresh = mergeMap({}, item, meta);
      if (fresh !== undefined) result.push(fresh);
    }
  }
  return result;
}

function deleteFromPrimitiveList(result: JsonObject, directiveKey: string, values: unknown): void {
  const field = directiveKey.slice(DELETE_FROM_PRIMITIVE_LIST.length);
  const current = result[field];
  if (!Array.isArray(current) || !Array.isArray(values)) return;
  result[field] = current.filter((v) => !values.includes(v));
}

/** Orders a merged list as $setElementOrder asks; elements it does not name keep their order, last. */
function applyElementOrder(result: JsonObject, directiveKey: string, order: unknown, meta: PatchMeta | undefined): void {
  const field = directiveKey.slice(SET_ELEMENT_ORDER.length);
  const list = result[field];
  if (!Array.isArray(list) || !Array.isArray(order)) return;
  const mergeKey = meta?.fields?.[field]?.mergeKey;
  const keyOf = (item: unknown): unknown => (mergeKey && isJsonObject(item) ? item[mergeKey] : item);
  const orderKeys = order.map(keyOf);
  const ordered = orderKeys
    .map((k) => list.find((item) => keyOf(item) === k))
    .filter((item) => item !== undefined);
  const rest = list.filter((item) => !orderKeys.includes(keyOf(item)));
  result[field] = [...ordered, ...rest];
}
