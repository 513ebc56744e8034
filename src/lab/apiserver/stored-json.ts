// The JSON text of a stored object, computed once and shared: every watcher of a resource, the
// change log and GET/LIST responses send the same bytes for the same stored object. Stored objects
// are never mutated after their commit (storage.ts hands them out read-only), so the text of an
// object never goes stale; a WeakMap lets it go with the object.
import type { KubeObject } from './types.js';

const cache = new WeakMap<KubeObject, string>();

export function storedJson(obj: KubeObject): string {
  let text = cache.get(obj);
  if (text === undefined) {
    text = JSON.stringify(obj);
    cache.set(obj, text);
  }
  return text;
}
