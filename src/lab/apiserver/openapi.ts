// A deliberately small /openapi/v3: one PATCH operation per resource declaring the
// `fieldValidation` query parameter. kubectl create/apply/replace look for exactly that to learn
// that the server validates fields itself; without it they insist on downloading full schemas to
// validate client-side and fail with "failed to download openapi". No schemas are published, so
// kubectl computes strategic merge patches from its compiled-in types (its documented fallback)
// and `kubectl explain` is not supported.
import { createHash } from 'node:crypto';
import type { ResourceRegistry } from './resource-registry.js';
import type { ResourceType } from './resource-type.js';
import type { JsonObject } from './types.js';

function groupVersionPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

function itemPath(rt: ResourceType): string {
  const ns = rt.namespaced ? 'namespaces/{namespace}/' : '';
  return `/${groupVersionPath(rt.group, rt.version)}/${ns}${rt.resource}/{name}`;
}

function patchOperation(rt: ResourceType): JsonObject {
  return {
    patch: {
      operationId: `patch${rt.kind}`,
      'x-kubernetes-action': 'patch',
      'x-kubernetes-group-version-kind': { group: rt.group, version: rt.version, kind: rt.kind },
      parameters: [
        { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
        { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
        { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
      ],
      responses: { '200': { description: 'OK' } },
    },
  };
}

export function openApiV3Document(registry: ResourceRegistry, path: string): JsonObject | undefined {
  const types = registry.all().filter((rt) => groupVersionPath(rt.group, rt.version) === path);
  if (types.length === 0) return undefined;
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.0' },
    paths: Object.fromEntries(types.map((rt) => [itemPath(rt), patchOperation(rt)])),
    components: { schemas: {} },
  };
}

export function openApiV3Index(registry: ResourceRegistry): JsonObject {
  const paths: JsonObject = {};
  for (const g of registry.groups()) {
    for (const v of g.versions) {
      const path = groupVersionPath(g.name, v);
      const hash = createHash('sha256').update(JSON.stringify(openApiV3Document(registry, path))).digest('hex').toUpperCase();
      paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
    }
  }
  return { paths };
}
