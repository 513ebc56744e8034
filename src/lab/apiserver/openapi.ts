// A deliberately small /openapi/v3: one PATCH operation per resource declaring the
// `fieldValidation` query parameter. kubectl create/apply/replace look for exactly that to learn
// that the server validates fields itself; without it they insist on downloading full schemas to
// validate client-side and fail with "failed to download openapi". No schemas are published, so
// kubectl computes strategic merge patches from its compiled-in types (its documented fallback)
// and `kubectl explain` is not supported.
//
// /openapi/v2 is an empty Swagger 2.0 document (no paths, no definitions). kubectl still
// validates a `kind: List` client-side against it (the items are not known to the server as one
// resource, so the fieldValidation check above does not apply) and skips the kinds it finds no
// definition for, which is all of them: the server's own validation decides.
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

/**
 * /openapi/v2 in protobuf (a gnostic openapi_v2.Document): what kubectl's discovery asks for, with
 * `@v1.0` in its Accept header. The answer is labelled `.v1.0` as kube-openapi does: client-go
 * parses the response's Content-Type, where `@` is not allowed.
 */
export function acceptsOpenApiV2Protobuf(accept: string | undefined): boolean {
  return /com\.github\.proto-openapi\.spec\.v2[@.]v1\.0\+protobuf/.test(accept ?? '');
}

export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

const OPENAPI_V2_INFO = { title: 'Kubernetes', version: 'v1.32.0' };

export function openApiV2Json(): JsonObject {
  return { swagger: '2.0', info: OPENAPI_V2_INFO, paths: {}, definitions: {} };
}

/** A length-delimited protobuf field (wire type 2) with a field number below 16. */
function protoField(field: number, payload: Buffer): Buffer {
  if (payload.length > 127) throw new Error('protoField: payload too long for a one-byte length');
  return Buffer.concat([Buffer.from([(field << 3) | 2, payload.length]), payload]);
}

/** openapi_v2.Document{swagger: "2.0", info: {title, version}} in protobuf. */
export function openApiV2Protobuf(): Buffer {
  const info = Buffer.concat([protoField(1, Buffer.from(OPENAPI_V2_INFO.title)), protoField(2, Buffer.from(OPENAPI_V2_INFO.version))]);
  return Buffer.concat([protoField(1, Buffer.from('2.0')), protoField(2, info)]);
}
