// Turns a request path into what it addresses, following k8s.io/apiserver's RequestInfoFactory:
// /api/v1/..., /apis/<group>/<version>/..., namespaced and cluster paths, subresources, and the
// legacy /watch/ prefix.
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export interface ResourceRequest {
  kind: 'resource';
  group: string;
  version: string;
  namespace?: string;
  resource: string;
  name?: string;
  subresource?: string;
  verb: Verb;
}

export type Route =
  | ResourceRequest
  | { kind: 'version' }
  | { kind: 'health' }
  | { kind: 'legacy-versions' }
  | { kind: 'group-list' }
  | { kind: 'group'; group: string }
  | { kind: 'resource-list'; group: string; version: string }
  | { kind: 'openapi-v2' }
  | { kind: 'openapi-v3-index' }
  | { kind: 'openapi-v3-doc'; groupVersionPath: string }
  | { kind: 'not-found' };

/** Subresources of a namespace, which `namespaces/<name>/<x>` means rather than a resource x. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

function verbOf(method: string, hasName: boolean, watch: boolean): Verb | undefined {
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (watch) return 'watch';
      return hasName ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return hasName ? 'delete' : 'deletecollection';
    default:
      return undefined;
  }
}

function resourceRoute(group: string, version: string, rest: string[], method: string, query: URLSearchParams): Route {
  let parts = rest;
  let watch = query.get('watch') === 'true' || query.get('watch') === '1';
  if (parts[0] === 'watch') {
    watch = true;
    parts = parts.slice(1);
  }
  let namespace: string | undefined;
  if (parts[0] === 'namespaces' && parts.length > 2 && !(parts.length === 3 && NAMESPACE_SUBRESOURCES.has(parts[2]))) {
    namespace = parts[1];
    parts = parts.slice(2);
  }
  if (parts.length === 0 || parts.length > 3) return { kind: 'not-found' };
  const [resource, name, subresource] = parts;
  const verb = verbOf(method, name !== undefined, watch);
  if (!verb || (verb === 'create' && name !== undefined && subresource === undefined)) return { kind: 'not-found' };
  return { kind: 'resource', group, version, namespace, resource, name, subresource, verb };
}

export function route(method: string, pathname: string, query: URLSearchParams): Route {
  const parts = pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const [root, a, b] = parts;
  switch (root) {
    case 'version':
      return parts.length === 1 ? { kind: 'version' } : { kind: 'not-found' };
    case 'healthz':
    case 'livez':
    case 'readyz':
      return { kind: 'health' };
    case 'openapi':
      if (a === 'v2' && parts.length === 2) return { kind: 'openapi-v2' };
      if (a === 'v3' && parts.length === 2) return { kind: 'openapi-v3-index' };
      if (a === 'v3') return { kind: 'openapi-v3-doc', groupVersionPath: parts.slice(2).join('/') };
      return { kind: 'not-found' };
    case 'api':
      if (parts.length === 1) return { kind: 'legacy-versions' };
      if (a !== 'v1') return { kind: 'not-found' };
      if (parts.length === 2) return { kind: 'resource-list', group: '', version: 'v1' };
      return resourceRoute('', 'v1', parts.slice(2), method, query);
    case 'apis':
      if (parts.length === 1) return { kind: 'group-list' };
      if (parts.length === 2) return { kind: 'group', group: a };
      if (parts.length === 3) return { kind: 'resource-list', group: a, version: b };
      return resourceRoute(a, b, parts.slice(3), method, query);
    default:
      return { kind: 'not-found' };
  }
}
