// The HTTP face of resource requests: query parameters and bodies in, store calls, then the
// response in the representation the client negotiated (object, Table or metadata only).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type {
  ApiStore, DeleteOptions, FieldValidation, ListOptions, PatchType, PropagationPolicy, WatchOptions, WriteResult,
} from './api-store.js';
import { badRequest, PATCH_MEDIA_TYPES, resourceNotFound, unsupportedMediaType } from './errors.js';
import {
  parseJsonBody, queryBool, queryInt, queryString, readBody, sendJson, sendJsonText, successStatus, warningHeader,
} from './http-util.js';
import { negotiateObjectFormat, type ObjectFormat } from './negotiation.js';
import { decodeProtobufObject, PROTOBUF_MEDIA_TYPE } from './protobuf.js';
import { protobufSchemas } from './protobuf-schemas.js';
import type { ResourceType } from './resource-type.js';
import type { ResourceRequest } from './router.js';
import { buildTable, type IncludeObject } from './table.js';
import { isJsonObject, type JsonObject, type KubeList, type KubeObject, type ResourceRef } from './types.js';
import { streamWatch, type ActiveWatch } from './watch-stream.js';

export interface HandlerContext {
  store: ApiStore;
  activeWatches: Set<ActiveWatch>;
}

const PATCH_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? 'application/json').split(';')[0].trim().toLowerCase();
}

function includeObjectOf(query: URLSearchParams): IncludeObject {
  const value = queryString(query, 'includeObject') ?? 'Metadata';
  if (value !== 'None' && value !== 'Metadata' && value !== 'Object') {
    throw badRequest(`includeObject: Unsupported value: "${value}": supported values: "None", "Metadata", "Object"`);
  }
  return value;
}

function fieldValidationOf(query: URLSearchParams): FieldValidation | undefined {
  const value = queryString(query, 'fieldValidation');
  if (value === undefined) return undefined;
  if (value !== 'Strict' && value !== 'Warn' && value !== 'Ignore') {
    throw badRequest(`fieldValidation: Unsupported value: "${value}": supported values: "Ignore", "Strict", "Warn"`);
  }
  return value;
}

function writeOptions(request: ResourceRequest, query: URLSearchParams) {
  return {
    namespace: request.namespace,
    dryRun: query.getAll('dryRun').includes('All'),
    fieldValidation: fieldValidationOf(query),
    fieldManager: queryString(query, 'fieldManager'),
  };
}

function selectionOptions(request: ResourceRequest, query: URLSearchParams) {
  let fieldSelector = queryString(query, 'fieldSelector');
  // GET .../<name>?watch=1 watches one object: a field selector on its name.
  if (request.name !== undefined) {
    const byName = `metadata.name=${request.name}`;
    fieldSelector = fieldSelector ? `${fieldSelector},${byName}` : byName;
  }
  return { namespace: request.namespace, labelSelector: queryString(query, 'labelSelector'), fieldSelector };
}

function resourceVersionMatchOf(query: URLSearchParams): ListOptions['resourceVersionMatch'] {
  const value = queryString(query, 'resourceVersionMatch');
  if (value === undefined) return undefined;
  if (value !== 'Exact' && value !== 'NotOlderThan') {
    throw badRequest(`resourceVersionMatch: Unsupported value: "${value}": supported values: "Exact", "NotOlderThan"`);
  }
  return value;
}

function listOptions(request: ResourceRequest, query: URLSearchParams): ListOptions {
  return {
    ...selectionOptions(request, query),
    limit: queryInt(query, 'limit'),
    continue: queryString(query, 'continue'),
    resourceVersion: queryString(query, 'resourceVersion'),
    resourceVersionMatch: resourceVersionMatchOf(query),
  };
}

function watchOptions(request: ResourceRequest, query: URLSearchParams): WatchOptions {
  return {
    ...selectionOptions(request, query),
    resourceVersion: queryString(query, 'resourceVersion'),
    resourceVersionMatch: resourceVersionMatchOf(query),
    allowWatchBookmarks: queryBool(query, 'allowWatchBookmarks'),
    sendInitialEvents: queryBool(query, 'sendInitialEvents'),
  };
}

/** DeleteOptions come from the body (kubectl) or from query parameters (curl, older clients). */
function deleteOptions(request: ResourceRequest, query: URLSearchParams, body: unknown): DeleteOptions {
  const b = isJsonObject(body) ? body : {};
  const pre = isJsonObject(b.preconditions) ? b.preconditions : {};
  const policy = (b.propagationPolicy ?? queryString(query, 'propagationPolicy')) as PropagationPolicy | undefined;
  if (policy !== undefined && !['Foreground', 'Background', 'Orphan'].includes(policy)) {
    throw badRequest(`propagationPolicy: Unsupported value: "${String(policy)}": supported values: "Foreground", "Background", "Orphan"`);
  }
  const grace = typeof b.gracePeriodSeconds === 'number' ? b.gracePeriodSeconds : queryInt(query, 'gracePeriodSeconds');
  const orphan = typeof b.orphanDependents === 'boolean' ? b.orphanDependents : queryBool(query, 'orphanDependents');
  const dryRun = Array.isArray(b.dryRun) ? b.dryRun.includes('All') : query.getAll('dryRun').includes('All');
  return {
    namespace: request.namespace,
    propagationPolicy: policy,
    gracePeriodSeconds: grace,
    orphanDependents: orphan,
    preconditions: {
      uid: typeof pre.uid === 'string' ? pre.uid : undefined,
      resourceVersion: typeof pre.resourceVersion === 'string' ? pre.resourceVersion : undefined,
    },
    dryRun,
  };
}

function warningHeaders(result: WriteResult): Record<string, string[]> {
  return result.warnings.length > 0 ? { Warning: result.warnings.map(warningHeader) } : {};
}

function partialMetadata(obj: KubeObject): JsonObject {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

function renderObject(rt: ResourceType, obj: KubeObject, format: ObjectFormat, query: URLSearchParams): unknown {
  if (format === 'table') {
    return buildTable(rt.table, [obj], { includeObject: includeObjectOf(query), listMeta: { resourceVersion: obj.metadata.resourceVersion } });
  }
  return format === 'metadata' ? partialMetadata(obj) : obj;
}

function renderList(rt: ResourceType, list: KubeList, format: ObjectFormat, query: URLSearchParams): unknown {
  if (format === 'table') return buildTable(rt.table, list.items, { includeObject: includeObjectOf(query), listMeta: { ...list.metadata } });
  if (format === 'metadata') {
    return { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: list.metadata, items: list.items.map(partialMetadata) };
  }
  return list;
}

function refOf(request: ResourceRequest): ResourceRef {
  return { group: request.group, version: request.version, resource: request.resource };
}

/** Which subresources a resource has; anything else is a 404 as on a real server. */
function checkSubresource(rt: ResourceType, sub: string | undefined): void {
  if (sub === undefined) return;
  const known = (sub === 'status' && rt.status) || (sub === 'scale' && rt.scale !== undefined) ||
    rt.extraSubresources.some((s) => s.name === sub);
  if (!known) throw resourceNotFound();
}

export async function handleResourceRequest(
  ctx: HandlerContext,
  request: ResourceRequest,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { store } = ctx;
  const ref = refOf(request);
  const rt = store.resolve(ref);
  checkSubresource(rt, request.subresource);
  const name = request.name ?? '';
  const sub = request.subresource;

  switch (request.verb) {
    case 'get': {
      const format = negotiateObjectFormat(req.headers.accept);
      if (sub === 'scale') return sendJson(res, 200, store.getScale(ref, name, request));
      if (format === 'json') return sendJsonText(res, 200, store.getJson(ref, name, request));
      return sendJson(res, 200, renderObject(rt, store.get(ref, name, request), format, query));
    }
    case 'list': {
      const format = negotiateObjectFormat(req.headers.accept);
      if (format === 'json') return sendJsonText(res, 200, store.listJson(ref, listOptions(request, query)));
      return sendJson(res, 200, renderList(rt, store.list(ref, listOptions(request, query)), format, query));
    }
    case 'watch': {
      const format = negotiateObjectFormat(req.headers.accept);
      streamWatch(req, res, store, ref, rt, {
        watch: watchOptions(request, query),
        timeoutSeconds: queryInt(query, 'timeoutSeconds'),
        table: format === 'table' ? { includeObject: includeObjectOf(query) } : undefined,
      }, ctx.activeWatches);
      return;
    }
    case 'create':
      return handleCreate(ctx, rt, request, query, req, res);
    case 'update':
      return handleUpdate(ctx, request, query, req, res);
    case 'patch':
      return handlePatch(ctx, request, query, req, res);
    case 'delete': {
      const body = await readObjectBody(req);
      const result = store.delete(ref, name, deleteOptions(request, query, body));
      if (result.deleted && !rt.strategy.returnDeletedObject) {
        const details: JsonObject = { name, kind: rt.resource, uid: result.object.metadata.uid };
        if (rt.group) details.group = rt.group;
        return sendJson(res, 200, successStatus(200, details));
      }
      return sendJson(res, 200, result.object);
    }
    case 'deletecollection': {
      const body = await readObjectBody(req);
      return sendJson(res, 200, store.deleteCollection(ref, listOptions(request, query), deleteOptions(request, query, body)));
    }
  }
}

/** An object body: JSON, or protobuf for the kinds kubectl's generators send that way. */
async function readObjectBody(req: IncomingMessage): Promise<unknown> {
  const type = mediaType(req);
  const body = await readBody(req);
  if (type === PROTOBUF_MEDIA_TYPE) return decodeProtobufObject(body, protobufSchemas);
  if (type !== 'application/json' && type !== '*/*') throw unsupportedMediaType(['application/json', PROTOBUF_MEDIA_TYPE]);
  return parseJsonBody(body);
}

async function handleCreate(
  ctx: HandlerContext,
  rt: ResourceType,
  request: ResourceRequest,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = await readObjectBody(req);
  if (request.subresource === 'binding' && rt.resource === 'pods') {
    ctx.store.bindPod(request.namespace ?? '', request.name ?? '', body);
    return sendJson(res, 201, successStatus(201));
  }
  if (request.subresource !== undefined) throw resourceNotFound();
  const result = ctx.store.createWithWarnings(refOf(request), body, writeOptions(request, query));
  sendJsonText(res, 201, result.json(), warningHeaders(result));
}

async function handleUpdate(
  ctx: HandlerContext,
  request: ResourceRequest,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = await readObjectBody(req);
  const ref = refOf(request);
  const options = writeOptions(request, query);
  if (request.subresource === 'scale') {
    return sendJson(res, 200, ctx.store.updateScale(ref, request.name ?? '', body, options));
  }
  const subresource = request.subresource as 'status' | 'finalize' | undefined;
  const result = ctx.store.updateWithWarnings(ref, body, { ...options, name: request.name, subresource });
  sendJsonText(res, result.created ? 201 : 200, result.json(), warningHeaders(result));
}

function parsePatchBody(type: PatchType, body: Buffer): unknown {
  if (type !== 'apply') return parseJsonBody(body);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw badRequest('the lab API server accepts apply patches in JSON form only (as kubectl sends them)');
  }
}

async function handlePatch(
  ctx: HandlerContext,
  request: ResourceRequest,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const type = PATCH_TYPES[mediaType(req)];
  if (!type) throw unsupportedMediaType([...PATCH_MEDIA_TYPES, 'application/strategic-merge-patch+json']);
  const patch = parsePatchBody(type, await readBody(req));
  const ref = refOf(request);
  const options = { ...writeOptions(request, query), force: queryBool(query, 'force') };
  const name = request.name ?? '';
  if (request.subresource === 'scale') return sendJson(res, 200, ctx.store.patchScale(ref, name, type, patch, options));
  const subresource = request.subresource as 'status' | undefined;
  const result = ctx.store.patchWithWarnings(ref, name, type, patch, { ...options, subresource });
  sendJsonText(res, result.created ? 201 : 200, result.json(), warningHeaders(result));
}
