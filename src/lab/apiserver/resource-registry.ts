// Which resources are served: the built-ins plus whatever the stored CRDs define. Discovery,
// routing and the store all ask this registry, so a CRD's resources appear everywhere at once.
import type { ResourceType } from './resource-type.js';

export interface ServedGroup {
  name: string;
  /** Versions, preferred first. */
  versions: string[];
}

/**
 * Kubernetes version priority: GA before beta before alpha, higher numbers first, then
 * non-Kubernetes-looking versions alphabetically (apimachinery's CompareKubeAwareVersionStrings).
 */
export function compareKubeVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number] | undefined => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return undefined;
    const stability = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
    return [stability, Number(m[1]), m[3] === undefined ? 0 : Number(m[3])];
  };
  const pa = parse(a);
  const pb = parse(b);
  if (pa && !pb) return -1;
  if (!pa && pb) return 1;
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pb[i] - pa[i];
  return 0;
}

export class ResourceRegistry {
  private readonly builtins: ResourceType[];
  private readonly custom = new Map<string, ResourceType[]>();
  private readonly listeners = new Set<() => void>();

  constructor(builtins: ResourceType[]) {
    this.builtins = builtins;
  }

  all(): ResourceType[] {
    return [...this.served()];
  }

  /** Every served type, computed once per change of the custom resources (every request looks here). */
  private served(): ResourceType[] {
    return (this.cache ??= [...this.builtins, ...[...this.custom.values()].flat()]);
  }

  private cache: ResourceType[] | undefined;
  private readonly byRef = new Map<string, ResourceType>();
  private readonly byStorageKey = new Map<string, ResourceType | undefined>();

  lookup(group: string, version: string, resource: string): ResourceType | undefined {
    // Only hits are remembered: any URL may ask for a resource that does not exist.
    const key = `${group}/${version}/${resource}`;
    let found = this.byRef.get(key);
    if (!found) {
      found = this.served().find((rt) => rt.group === group && rt.version === version && rt.resource === resource);
      if (found) this.byRef.set(key, found);
    }
    return found;
  }

  /** The type objects of a storage bucket are stored as. */
  storageType(storageKey: string): ResourceType | undefined {
    if (!this.byStorageKey.has(storageKey)) {
      // The storage key starts with the owning group: events.k8s.io/v1 events live in "/events".
      const group = storageKey.slice(0, storageKey.indexOf('/'));
      this.byStorageKey.set(storageKey, this.served().find((rt) => rt.storageKey === storageKey && rt.group === group && rt.version === rt.storageVersion));
    }
    return this.byStorageKey.get(storageKey);
  }

  isBuiltinGroup(group: string): boolean {
    return this.builtins.some((rt) => rt.group === group);
  }

  /** Groups in discovery order: the core group, built-in groups, then custom groups by name. */
  groups(): ServedGroup[] {
    const byGroup = new Map<string, Set<string>>();
    for (const rt of this.all()) {
      if (!byGroup.has(rt.group)) byGroup.set(rt.group, new Set());
      byGroup.get(rt.group)!.add(rt.version);
    }
    const builtinOrder = [...new Set(this.builtins.map((rt) => rt.group))];
    const names = [...byGroup.keys()].sort((a, b) => {
      const ia = builtinOrder.indexOf(a);
      const ib = builtinOrder.indexOf(b);
      if (ia >= 0 || ib >= 0) return (ia < 0 ? Infinity : ia) - (ib < 0 ? Infinity : ib);
      return a < b ? -1 : 1;
    });
    return names.map((name) => ({ name, versions: [...byGroup.get(name)!].sort(compareKubeVersions) }));
  }

  /** Replaces the resources served for one CRD (none: the CRD is gone or not established). */
  setCustomResources(crdName: string, types: ResourceType[]): void {
    if (types.length === 0) this.custom.delete(crdName);
    else this.custom.set(crdName, types);
    this.cache = undefined;
    this.byRef.clear();
    this.byStorageKey.clear();
    for (const listener of this.listeners) listener();
  }

  customResourcesOf(crdName: string): ResourceType[] {
    return this.custom.get(crdName) ?? [];
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
