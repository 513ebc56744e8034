// All stored objects with the resource they belong to, for the server-side controllers.
import type { ApiStore } from './api-store.js';
import type { ResourceType } from './resource-type.js';
import type { KubeObject, ResourceRef } from './types.js';

export interface StoredEntry {
  rt: ResourceType;
  ref: ResourceRef;
  obj: KubeObject;
}

export function refOf(rt: ResourceType): ResourceRef {
  return { group: rt.group, version: rt.version, resource: rt.resource };
}

export function storedEntries(store: ApiStore): StoredEntry[] {
  const entries: StoredEntry[] = [];
  for (const key of store.storageKeys()) {
    const rt = store.registry.storageType(key);
    if (!rt) continue;
    const ref = refOf(rt);
    for (const obj of store.storedObjects(key)) entries.push({ rt, ref, obj });
  }
  return entries;
}

/** Re-reads an object and writes back what `change` makes of it (a no-op if it is gone). */
export function mutate(store: ApiStore, entry: StoredEntry, change: (obj: KubeObject) => void): void {
  const current = store.get(entry.ref, entry.obj.metadata.name ?? '', { namespace: entry.obj.metadata.namespace });
  change(current);
  store.update(entry.ref, current, { namespace: current.metadata.namespace });
}
