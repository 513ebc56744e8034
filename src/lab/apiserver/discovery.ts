// Discovery documents: /version, /api, /apis, group and group/version resource lists, and the
// aggregated (apidiscovery.k8s.io/v2) forms kubectl asks for first. All of them are computed from
// the resource registry, so CRD-defined resources appear as soon as their CRD is stored.
import type { ResourceRegistry } from './resource-registry.js';
import { STATUS_VERBS, type ResourceType } from './resource-type.js';
import { apiVersionOf, type JsonObject } from './types.js';

export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-fast-lab',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};

export function legacyApiVersions(serverAddress: string): JsonObject {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupDocument(name: string, versions: string[]): JsonObject {
  const entries = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: entries, preferredVersion: entries[0] };
}

export function apiGroupList(registry: ResourceRegistry): JsonObject {
  const groups = registry.groups().filter((g) => g.name !== '');
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map((g) => groupDocument(g.name, g.versions)) };
}

export function apiGroup(registry: ResourceRegistry, name: string): JsonObject | undefined {
  const group = registry.groups().find((g) => g.name === name && name !== '');
  return group ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDocument(group.name, group.versions) } : undefined;
}

function optionalLists(rt: ResourceType): JsonObject {
  const out: JsonObject = {};
  if (rt.shortNames.length > 0) out.shortNames = rt.shortNames;
  if (rt.categories.length > 0) out.categories = rt.categories;
  return out;
}

interface SubresourceFacts {
  name: string;
  kind: string;
  group?: string;
  version?: string;
  verbs: string[];
}

function subresourcesOf(rt: ResourceType): SubresourceFacts[] {
  const subs: SubresourceFacts[] = [];
  if (rt.status) subs.push({ name: 'status', kind: rt.kind, verbs: STATUS_VERBS });
  if (rt.scale) subs.push({ name: 'scale', kind: 'Scale', group: 'autoscaling', version: 'v1', verbs: STATUS_VERBS });
  for (const extra of rt.extraSubresources) subs.push(extra);
  return subs;
}

export function apiResourceList(registry: ResourceRegistry, group: string, version: string): JsonObject | undefined {
  const types = registry.all().filter((rt) => rt.group === group && rt.version === version);
  if (types.length === 0) return undefined;
  const resources: JsonObject[] = [];
  for (const rt of types) {
    resources.push({
      name: rt.resource,
      singularName: rt.singular,
      namespaced: rt.namespaced,
      kind: rt.kind,
      verbs: rt.verbs,
      ...optionalLists(rt),
    });
    for (const sub of subresourcesOf(rt)) {
      const entry: JsonObject = { name: `${rt.resource}/${sub.name}`, singularName: '', namespaced: rt.namespaced };
      if (sub.group !== undefined) entry.group = sub.group;
      if (sub.version !== undefined) entry.version = sub.version;
      resources.push({ ...entry, kind: sub.kind, verbs: sub.verbs });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(group, version), resources };
}

function aggregatedResource(rt: ResourceType): JsonObject {
  return {
    resource: rt.resource,
    responseKind: { group: rt.group, version: rt.version, kind: rt.kind },
    scope: rt.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: rt.singular,
    verbs: rt.verbs,
    ...optionalLists(rt),
    subresources: subresourcesOf(rt).map((sub) => ({
      subresource: sub.name,
      responseKind: { group: sub.group ?? rt.group, version: sub.version ?? rt.version, kind: sub.kind },
      verbs: sub.verbs,
    })),
  };
}

/** The APIGroupDiscoveryList of /api (legacy: true) or /apis. */
export function aggregatedDiscovery(registry: ResourceRegistry, legacy: boolean, version: 'v2' | 'v2beta1'): JsonObject {
  const groups = registry.groups().filter((g) => (g.name === '') === legacy);
  const all = registry.all();
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items: groups.map((g) => ({
      metadata: legacy ? { creationTimestamp: null } : { name: g.name, creationTimestamp: null },
      versions: g.versions.map((v) => ({
        version: v,
        resources: all.filter((rt) => rt.group === g.name && rt.version === v).map(aggregatedResource),
        freshness: 'Current',
      })),
    })),
  };
}
