// The API semantics of kube-apiserver's generic registry over the lab storage: create, get, list,
// watch, update, patch and delete with their defaulting, validation, optimistic concurrency,
// status subresources, finalizers and graceful deletion. The HTTP layer is a thin shell around
// this class, and lab components running in the same process may use it directly.
import { crdResourceType, customResourceTypes } from './crd.js';
import { builtinResourceTypes } from './builtin-resources.js';
import {
  ApiError, alreadyExists, badRequest, conflict, CONTINUE_TOO_OLD, expired, forbidden, invalid,
  methodNotSupported, notFound, OBJECT_MODIFIED, PATCH_MEDIA_TYPES, resourceNotFound, tooLargeResourceVersion,
  unsupportedMediaType, type FieldError,
} from './errors.js';
import { generateNameSuffix, keepServerOwnedMeta, stampNewObject, timestamp } from './object-meta.js';
import { applyJsonPatch, applyMergePatch } from './patch.js';
import { ResourceRegistry } from './resource-registry.js';
import { groupResourceOf, type ResourceType, type StrategyContext } from './resource-type.js';
import { scaleOf, setAtPath } from './scale.js';
import {
  matchesLabels, parseFieldSelector, parseLabelSelector,
  type FieldRequirement, type LabelRequirement,
} from './selectors.js';
import { ServiceAllocationError } from './service-allocation.js';
import { objectKeyOf, Storage, type StorageSnapshot, type StoredEvent } from './storage.js';
import { applyStrategicMergePatch } from './strategic-merge.js';
import {
  apiVersionOf, cloneJson, isJsonObject, jsonEqual, type JsonObject, type KubeList, type KubeObject,
  type ResourceRef, type WatchEvent, type WatchEventType,
} from './types.js';
import { validateName } from './validation.js';
import { storedJson, sharedWatchLine, watchLine } from './stored-json.js';
import { parseResourceVersion, WatchHub, type HubEvent, type StoredChange } from './watch-hub.js';

export interface ApiStoreOptions {
  /** How many changes are kept for watches resuming from a resourceVersion (default 10000). */
  historyWindow?: number;
  /** Interval of BOOKMARK events on watches that allow them (default 30 s). */
  bookmarkIntervalMs?: number;
  /** Pods bound to a node are deleted gracefully and wait for their kubelet (default true). */
  podGracefulDeletion?: boolean;
  /** Where Service cluster IPs come from (default 10.96.0.0/12). */
  serviceCidr?: string;
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface WriteOptions {
  namespace?: string;
  dryRun?: boolean;
  fieldValidation?: FieldValidation;
  fieldManager?: string;
}

export interface UpdateOptions extends WriteOptions {
  /** The name in the URL, which must match the object's. */
  name?: string;
  subresource?: 'status' | 'finalize';
}

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

export interface PatchOptions extends WriteOptions {
  subresource?: 'status';
  /** Server-side apply: take ownership of conflicting fields (accepted, not tracked). */
  force?: boolean;
}

export interface WriteResult {
  object: KubeObject;
  /** The JSON text of `object` (for a stored object sent as stored: shared, not produced again). */
  json(): string;
  /** Warning headers (unknown fields under fieldValidation=Warn). */
  warnings: string[];
  /** An update or apply created the object. */
  created: boolean;
}

export type PropagationPolicy = 'Foreground' | 'Background' | 'Orphan';

export interface DeleteOptions {
  namespace?: string;
  propagationPolicy?: PropagationPolicy;
  orphanDependents?: boolean;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

export interface DeleteResult {
  object: KubeObject;
  /** The object is gone (false: it waits for finalizers or a graceful deletion). */
  deleted: boolean;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: 'Exact' | 'NotOlderThan';
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  resourceVersionMatch?: 'Exact' | 'NotOlderThan';
  allowWatchBookmarks?: boolean;
  sendInitialEvents?: boolean;
}

export interface WatchHandle {
  stop(): void;
}

export const ORPHAN_FINALIZER = 'orphan';
export const FOREGROUND_FINALIZER = 'foregroundDeletion';
const NAMESPACES = { group: '', version: 'v1', resource: 'namespaces' };
const INITIAL_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
const CRD_STORAGE_KEY = 'apiextensions.k8s.io/customresourcedefinitions';

/** Builds a ResourceRef from an apiVersion and a plural resource name. */
export function resourceRef(apiVersion: string, resource: string): ResourceRef {
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion, resource }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1), resource };
}

interface ContinueToken {
  rv: number;
  start: string;
}

function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: token.rv, start: token.start })).toString('base64');
}

function decodeContinue(text: string): ContinueToken {
  try {
    const parsed = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as { rv?: unknown; start?: unknown };
    if (typeof parsed.rv === 'number' && typeof parsed.start === 'string') return { rv: parsed.rv, start: parsed.start };
  } catch {
    // fall through
  }
  throw badRequest(`continue key is not valid: ${text}`);
}

/** Everything but metadata (and status, when it is a subresource) — what bumps generation. */
function specPart(obj: KubeObject, statusIsSubresource: boolean): JsonObject {
  const { metadata: _metadata, status, ...rest } = obj;
  return statusIsSubresource ? rest : { ...rest, status };
}

/** The object with apiVersion and kind set and listed first, as kube-apiserver serialises. */
function typeMetaFirst(obj: KubeObject, apiVersion: string, kind: string): KubeObject {
  const { apiVersion: _apiVersion, kind: _kind, ...rest } = obj;
  return { apiVersion, kind, ...rest } as KubeObject;
}

function plainResult(object: KubeObject, warnings: string[], created: boolean): WriteResult {
  return { object, warnings, created, json: () => JSON.stringify(object) };
}

function withoutVolatileMeta(obj: KubeObject): KubeObject {
  const { resourceVersion: _rv, managedFields: _mf, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

export class ApiStore {
  readonly registry: ResourceRegistry;
  private readonly storage: Storage;
  private readonly hub: WatchHub;
  private readonly bookmarkIntervalMs: number;
  private readonly podGracefulDeletion: boolean;
  private readonly strategyContext: StrategyContext;

  constructor(options: ApiStoreOptions = {}) {
    this.registry = new ResourceRegistry([...builtinResourceTypes(), crdResourceType()]);
    this.storage = new Storage(options.historyWindow ?? 10000);
    this.hub = new WatchHub(this.storage);
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 30_000;
    this.podGracefulDeletion = options.podGracefulDeletion ?? true;
    this.strategyContext = {
      storedObjects: (key) => this.storage.list(key),
      serviceCidr: options.serviceCidr ?? '10.96.0.0/12',
    };
    // First listener: a CRD's resources are served as soon as the CRD is written.
    this.storage.subscribe((event) => this.syncCustomResources(event));
    this.ensureInitialNamespaces();
  }

  /** default, kube-system, kube-public and kube-node-lease exist in every cluster. */
  private ensureInitialNamespaces(): void {
    for (const name of INITIAL_NAMESPACES) {
      if (!this.storage.get('/namespaces', name)) this.create(NAMESPACES, { metadata: { name } });
    }
  }

  /** The current (latest) resourceVersion of the whole store. */
  get resourceVersion(): string {
    return String(this.storage.resourceVersion);
  }

  // ---- resolution and conversion --------------------------------------------------------------

  /** The served resource a ref names; 404 like an unknown URL when there is none. */
  resolve(ref: ResourceRef): ResourceType {
    const rt = this.registry.lookup(ref.group, ref.version, ref.resource);
    if (!rt) throw resourceNotFound();
    return rt;
  }

  private requireVerb(rt: ResourceType, verb: string): void {
    if (!rt.verbs.includes(verb)) throw methodNotSupported(groupResourceOf(rt), verb);
  }

  /** A stored object as the requested version presents it (always a copy). */
  private present(rt: ResourceType, stored: KubeObject): KubeObject {
    const copy = cloneJson(stored);
    const converted = rt.fromStorage ? rt.fromStorage(copy) : copy;
    return typeMetaFirst(converted, apiVersionOf(rt.group, rt.version), rt.kind);
  }

  /** Whether a stored object reads the same in the requested version (no conversion at all). */
  private sentAsStored(rt: ResourceType, stored: KubeObject): boolean {
    return !rt.fromStorage && stored.kind === rt.kind && stored.apiVersion === apiVersionOf(rt.group, rt.version);
  }

  /** The JSON text of `present(rt, stored)`, shared when the object is sent as stored. */
  private presentJson(rt: ResourceType, stored: KubeObject): string {
    return this.sentAsStored(rt, stored) ? storedJson(stored) : JSON.stringify(this.present(rt, stored));
  }

  /** The result of a write that stored an object: its copy is only made if someone asks. */
  private storedResult(rt: ResourceType, stored: KubeObject, warnings: string[], created: boolean): WriteResult {
    let object: KubeObject | undefined;
    const presentObject = (): KubeObject => (object ??= this.present(rt, stored));
    return {
      get object() { return presentObject(); },
      warnings,
      created,
      json: () => (object ? JSON.stringify(object) : this.presentJson(rt, stored)),
    };
  }

  private toStorage(rt: ResourceType, obj: KubeObject): KubeObject {
    const converted = rt.toStorage ? rt.toStorage(obj) : obj;
    return typeMetaFirst(converted, apiVersionOf(rt.group, rt.storageVersion), rt.kind);
  }

  private namespaceOf(rt: ResourceType, namespace: string | undefined): string | undefined {
    if (!rt.namespaced) return undefined;
    if (!namespace) throw badRequest('the server could not find the requested resource: a namespace is required');
    return namespace;
  }

  private stored(rt: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.storage.get(rt.storageKey, objectKeyOf(this.namespaceOf(rt, namespace), name));
    if (!obj) throw notFound(groupResourceOf(rt), name);
    return obj;
  }

  /** The stored-form type of a bucket (field labels are evaluated on stored objects). */
  private storageTypeOf(rt: ResourceType): ResourceType {
    return this.registry.storageType(rt.storageKey) ?? rt;
  }

  // ---- read -------------------------------------------------------------------------------------

  get(ref: ResourceRef, name: string, options: { namespace?: string } = {}): KubeObject {
    const rt = this.resolve(ref);
    this.requireVerb(rt, 'get');
    return this.present(rt, this.stored(rt, options.namespace, name));
  }

  /** `get` as JSON text (shared with watchers and the change log when sent as stored). */
  getJson(ref: ResourceRef, name: string, options: { namespace?: string } = {}): string {
    const rt = this.resolve(ref);
    this.requireVerb(rt, 'get');
    return this.presentJson(rt, this.stored(rt, options.namespace, name));
  }

  /** The predicate of namespace, label and field selectors over stored objects. */
  private selection(rt: ResourceType, options: { namespace?: string; labelSelector?: string; fieldSelector?: string }) {
    const labels: LabelRequirement[] = parseLabelSelector(options.labelSelector);
    const fields: FieldRequirement[] = parseFieldSelector(options.fieldSelector);
    const storageRt = this.storageTypeOf(rt);
    const supported = new Set(['metadata.name', ...(rt.namespaced ? ['metadata.namespace'] : []), ...storageRt.strategy.fieldLabelNames]);
    for (const f of fields) {
      if (!supported.has(f.field)) throw badRequest(`field label not supported: ${f.field}`);
    }
    const namespace = rt.namespaced ? options.namespace : undefined;
    const strategy = storageRt.strategy;
    const own = new Set(strategy.fieldLabelNames);
    /** One field label of an object: the strategy's, else metadata's. */
    const fieldValue = (obj: KubeObject, name: string): string => {
      if (own.has(name)) return strategy.fieldLabel ? strategy.fieldLabel(obj, name) : strategy.fieldLabels(obj)[name] ?? '';
      return (name === 'metadata.name' ? obj.metadata.name : obj.metadata.namespace) ?? '';
    };
    const matches = (obj: KubeObject): boolean => {
      if (namespace && obj.metadata.namespace !== namespace) return false;
      if (labels.length > 0 && !matchesLabels(labels, obj.metadata.labels)) return false;
      for (const f of fields) {
        if ((fieldValue(obj, f.field) === f.value) !== (f.operator === '=')) return false;
      }
      return true;
    };
    return { matches, selective: labels.length > 0 || fields.length > 0 };
  }

  /** The bucket's objects at the resourceVersion a list asks for, and that resourceVersion. */
  private listState(rt: ResourceType, options: ListOptions, token?: ContinueToken): { objects: KubeObject[]; rv: number } {
    const current = this.storage.resourceVersion;
    if (token) {
      if (token.rv < this.storage.compactedResourceVersion) throw expired(CONTINUE_TOO_OLD);
      return { objects: [...this.storage.snapshotAt(rt.storageKey, token.rv).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o), rv: token.rv };
    }
    const requested = options.resourceVersion;
    if (options.resourceVersionMatch && !requested) {
      throw invalid('ListOptions', 'meta.k8s.io', '', [{ type: 'FieldValueForbidden', field: 'resourceVersionMatch', detail: 'resourceVersionMatch is forbidden unless resourceVersion is provided' }]);
    }
    if (requested && requested !== '0') {
      const rv = parseResourceVersion(requested);
      if (rv > current) throw tooLargeResourceVersion(rv, current);
      if (options.resourceVersionMatch === 'Exact') {
        const snapshot = this.storage.snapshotAt(rt.storageKey, rv);
        return { objects: [...snapshot.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o), rv };
      }
    }
    return { objects: this.storage.list(rt.storageKey), rv: current };
  }

  list(ref: ResourceRef, options: ListOptions = {}): KubeList {
    const { rt, metadata, page } = this.listStored(ref, options);
    return { apiVersion: apiVersionOf(rt.group, rt.version), kind: rt.listKind, metadata, items: page.map((o) => this.present(rt, o)) };
  }

  /** `list` as JSON text: the items' text is shared with watchers and the change log. */
  listJson(ref: ResourceRef, options: ListOptions = {}): string {
    const { rt, metadata, page } = this.listStored(ref, options);
    const head = JSON.stringify({ apiVersion: apiVersionOf(rt.group, rt.version), kind: rt.listKind, metadata });
    return `${head.slice(0, -1)},"items":[${page.map((o) => this.presentJson(rt, o)).join(',')}]}`;
  }

  /** The stored objects of a list's page and the list's metadata. */
  private listStored(ref: ResourceRef, options: ListOptions): { rt: ResourceType; metadata: KubeList['metadata']; page: KubeObject[] } {
    const rt = this.resolve(ref);
    this.requireVerb(rt, 'list');
    const { matches, selective } = this.selection(rt, options);
    const token = options.continue ? decodeContinue(options.continue) : undefined;
    const { objects, rv } = this.listState(rt, options, token);
    let candidates = objects.filter(matches);
    if (token) candidates = candidates.filter((o) => objectKeyOf(o.metadata.namespace, o.metadata.name ?? '') > token.start);
    const limit = options.limit && options.limit > 0 ? options.limit : undefined;
    const page = limit ? candidates.slice(0, limit) : candidates;
    const metadata: KubeList['metadata'] = { resourceVersion: String(rv) };
    if (limit && candidates.length > limit) {
      const last = page[page.length - 1];
      metadata.continue = encodeContinue({ rv, start: objectKeyOf(last.metadata.namespace, last.metadata.name ?? '') });
      if (!selective) metadata.remainingItemCount = candidates.length - limit;
    }
    return { rt, metadata, page };
  }

  /**
   * Watches a resource. Events arrive synchronously, in resourceVersion order; a resourceVersion
   * older than the retained history yields one ERROR event (410 Expired) and nothing more.
   */
  watch(ref: ResourceRef, options: WatchOptions, onEvent: (event: WatchEvent) => void): WatchHandle {
    const rt = this.resolve(ref);
    return this.openWatch(rt, options, (event) => {
      onEvent(event.type === 'BOOKMARK' ? event : { type: event.type, object: this.presentChange(rt, event) });
    }, (status) => onEvent({ type: 'ERROR', object: status }));
  }

  /**
   * The same watch, each event as its line of a JSON watch stream. A change sent in its stored
   * form (the usual case: the watched version is the storage version) is encoded once, and the
   * same bytes go to every watcher.
   */
  watchJson(ref: ResourceRef, options: WatchOptions, onLine: (line: Buffer, type: WatchEventType) => void): WatchHandle {
    const rt = this.resolve(ref);
    return this.openWatch(rt, options, (event) => {
      if (event.type === 'BOOKMARK') onLine(watchLine(event.type, event.object), event.type);
      else if (!event.resourceVersion && this.sentAsStored(rt, event.stored)) onLine(sharedWatchLine(event.type, event.stored), event.type);
      else onLine(watchLine(event.type, this.presentChange(rt, event)), event.type);
    }, (status) => onLine(watchLine('ERROR', status), 'ERROR'));
  }

  private presentChange(rt: ResourceType, change: StoredChange): KubeObject {
    const object = this.present(rt, change.stored);
    if (change.resourceVersion) object.metadata.resourceVersion = change.resourceVersion;
    return object;
  }

  private openWatch(rt: ResourceType, options: WatchOptions, onEvent: (event: HubEvent) => void, onExpired: (status: KubeObject) => void): WatchHandle {
    this.requireVerb(rt, 'watch');
    const { matches } = this.selection(rt, options);
    if (options.resourceVersionMatch && !options.sendInitialEvents) {
      throw badRequest('resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided');
    }
    try {
      return this.hub.watch({
        storageKey: rt.storageKey,
        matches,
        bookmark: (rv, initialEventsEnd) => ({
          kind: rt.kind,
          apiVersion: apiVersionOf(rt.group, rt.version),
          metadata: initialEventsEnd
            ? { resourceVersion: String(rv), annotations: { 'k8s.io/initial-events-end': 'true' } }
            : { resourceVersion: String(rv) },
        }),
        resourceVersion: options.resourceVersion,
        sendInitialEvents: options.sendInitialEvents,
        allowWatchBookmarks: options.allowWatchBookmarks,
        bookmarkIntervalMs: this.bookmarkIntervalMs,
      }, onEvent);
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 410) throw err;
      onExpired(err.toStatus() as unknown as KubeObject);
      return { stop() {} };
    }
  }

  // ---- create -------------------------------------------------------------------------------------

  /** Checks the body's apiVersion/kind against the URL's resource and fills them in. */
  private acceptBody(rt: ResourceType, body: unknown): KubeObject {
    if (!isJsonObject(body)) throw badRequest('the body of the request must be a JSON object');
    const obj = cloneJson(body) as KubeObject;
    const expected = apiVersionOf(rt.group, rt.version);
    if (obj.apiVersion !== undefined && obj.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${expected})`);
    }
    if (obj.kind !== undefined && obj.kind !== rt.kind) {
      throw badRequest(`${String(obj.kind)} in version "${rt.version}" cannot be handled as a ${rt.kind}: the object kind does not match`);
    }
    obj.apiVersion = expected;
    obj.kind = rt.kind;
    if (!isJsonObject(obj.metadata)) obj.metadata = {};
    return obj;
  }

  private checkNamespaceWritable(rt: ResourceType, namespace: string, name: string): void {
    const ns = this.storage.get('/namespaces', namespace);
    if (!ns) throw notFound({ group: '', resource: 'namespaces' }, namespace);
    if (ns.metadata.deletionTimestamp) {
      const why = `unable to create new content in namespace ${namespace} because it is being terminated`;
      throw forbidden(groupResourceOf(rt), name, why, [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }]);
    }
  }

  /** Refuses new custom resources of a CRD that is being deleted. */
  private checkCrdNotTerminating(rt: ResourceType): void {
    if (!rt.crdName) return;
    const crd = this.storage.get(CRD_STORAGE_KEY, rt.crdName);
    if (crd?.metadata.deletionTimestamp) {
      throw new ApiError(405, 'MethodNotAllowed', 'create not allowed while custom resource definition is terminating', {});
    }
  }

  /** Prunes unknown fields of custom resources as fieldValidation asks (400 when Strict). */
  private pruneFields(rt: ResourceType, obj: KubeObject, mode: FieldValidation | undefined): string[] {
    const dropped = rt.strategy.prune?.(obj) ?? [];
    if (dropped.length === 0 || mode === 'Ignore') return [];
    const messages = dropped.map((path) => `unknown field "${path}"`);
    if (mode === 'Strict') {
      throw badRequest(`strict decoding error: ${messages.join(', ')}`);
    }
    return messages;
  }

  private throwIfInvalid(rt: ResourceType, obj: KubeObject, errs: FieldError[]): void {
    if (errs.length > 0) throw invalid(rt.kind, rt.group, obj.metadata.name ?? '', errs);
  }

  private runPrepare(rt: ResourceType, obj: KubeObject, prepare: () => void): void {
    try {
      prepare();
    } catch (err) {
      if (err instanceof ServiceAllocationError) this.throwIfInvalid(rt, obj, [err.fieldError]);
      throw err;
    }
  }

  create(ref: ResourceRef, body: unknown, options: WriteOptions = {}): KubeObject {
    return this.createWithWarnings(ref, body, options).object;
  }

  createWithWarnings(ref: ResourceRef, body: unknown, options: WriteOptions = {}): WriteResult {
    const rt = this.resolve(ref);
    this.requireVerb(rt, 'create');
    const obj = this.acceptBody(rt, body);
    const meta = obj.metadata;
    if (rt.namespaced) {
      const namespace = options.namespace ?? meta.namespace;
      if (options.namespace && meta.namespace && meta.namespace !== options.namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      if (!namespace) throw badRequest('the server could not find the requested resource: a namespace is required');
      meta.namespace = namespace;
    } else {
      delete meta.namespace;
    }
    if (meta.resourceVersion) throw badRequest('resourceVersion should not be set on objects to be created');
    this.checkCrdNotTerminating(rt);
    if (!meta.name && meta.generateName) meta.name = this.freeGeneratedName(rt, meta.namespace, meta.generateName);
    if (!meta.name) {
      this.throwIfInvalid(rt, obj, [{ type: 'FieldValueRequired', field: 'metadata.name', detail: 'name or generateName is required' }]);
    }
    if (rt.namespaced) this.checkNamespaceWritable(rt, meta.namespace!, meta.name!);

    stampNewObject(meta, rt.strategy.generation);
    const warnings = this.pruneFields(rt, obj, options.fieldValidation);
    rt.strategy.defaults?.(obj);
    this.runPrepare(rt, obj, () => rt.strategy.prepareForCreate?.(obj, this.strategyContext));
    this.throwIfInvalid(rt, obj, [...validateName(meta.name!, rt.strategy.nameRule), ...(rt.strategy.validate?.(obj) ?? [])]);

    const key = objectKeyOf(meta.namespace, meta.name!);
    if (this.storage.get(rt.storageKey, key)) throw alreadyExists(groupResourceOf(rt), meta.name!);
    if (options.dryRun) return plainResult(obj, warnings, true);
    const event = this.storage.commit('ADDED', rt.storageKey, key, this.toStorage(rt, obj));
    return this.storedResult(rt, event.object, warnings, true);
  }

  private freeGeneratedName(rt: ResourceType, namespace: string | undefined, prefix: string): string {
    for (;;) {
      const name = `${prefix}${generateNameSuffix()}`;
      if (!this.storage.get(rt.storageKey, objectKeyOf(namespace, name))) return name;
    }
  }

  // ---- update -------------------------------------------------------------------------------------

  update(ref: ResourceRef, body: unknown, options: UpdateOptions = {}): KubeObject {
    return this.updateWithWarnings(ref, body, options).object;
  }

  updateWithWarnings(ref: ResourceRef, body: unknown, options: UpdateOptions = {}): WriteResult {
    const rt = this.resolve(ref);
    this.requireVerb(rt, 'update');
    const obj = this.acceptBody(rt, body);
    const name = obj.metadata.name ?? '';
    if (options.name !== undefined && name !== options.name) {
      throw badRequest(`the name of the object (${name}) does not match the name on the URL (${options.name})`);
    }
    if (rt.namespaced && options.namespace && obj.metadata.namespace && obj.metadata.namespace !== options.namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const namespace = rt.namespaced ? options.namespace ?? obj.metadata.namespace : undefined;
    const stored = this.storage.get(rt.storageKey, objectKeyOf(this.namespaceOf(rt, namespace), name));
    if (!stored) {
      if (rt.strategy.allowCreateOnUpdate && !options.subresource) {
        delete obj.metadata.resourceVersion;
        return this.createWithWarnings(ref, obj, { ...options, namespace });
      }
      throw notFound(groupResourceOf(rt), name);
    }
    const old = this.present(rt, stored);
    this.checkPrecondition(rt, old, obj.metadata.resourceVersion);
    return this.applyUpdate(rt, old, obj, options);
  }

  private checkPrecondition(rt: ResourceType, old: KubeObject, resourceVersion: string | undefined): void {
    if (resourceVersion) {
      if (resourceVersion !== old.metadata.resourceVersion) throw conflict(groupResourceOf(rt), old.metadata.name ?? '', OBJECT_MODIFIED);
    } else if (!rt.strategy.allowUnconditionalUpdate) {
      this.throwIfInvalid(rt, old, [{ type: 'FieldValueInvalid', field: 'metadata.resourceVersion', badValue: '0x0', detail: 'must be specified for an update' }]);
    }
  }

  /** The part of an update every write path shares: old and next are in the request's version. */
  private applyUpdate(rt: ResourceType, old: KubeObject, requested: KubeObject, options: UpdateOptions | PatchOptions): WriteResult {
    let next = requested;
    if (!isJsonObject(next.metadata)) next.metadata = {};
    keepServerOwnedMeta(next, old);
    if (options.subresource === 'status') {
      // A status update changes status only (the status strategies' PrepareForUpdate).
      next = { ...cloneJson(old), status: next.status };
    } else if (options.subresource === 'finalize') {
      const spec = isJsonObject(old.spec) ? old.spec : {};
      const finalizers = isJsonObject(next.spec) ? next.spec.finalizers : undefined;
      next = { ...cloneJson(old), spec: { ...spec, finalizers } };
    } else if (rt.status) {
      // With a status subresource, the main resource cannot change status.
      if (old.status === undefined) delete next.status;
      else next.status = cloneJson(old.status);
    }
    const warnings = this.pruneFields(rt, next, options.fieldValidation);
    rt.strategy.defaults?.(next);
    if (options.subresource !== 'finalize') {
      this.runPrepare(rt, next, () => rt.strategy.prepareForUpdate?.(next, old, this.strategyContext));
    }
    const errs: FieldError[] = [...(rt.strategy.validate?.(next) ?? []), ...(rt.strategy.validateUpdate?.(next, old) ?? [])];
    const added = (next.metadata.finalizers ?? []).filter((f) => !(old.metadata.finalizers ?? []).includes(f));
    if (old.metadata.deletionTimestamp && added.length > 0) {
      errs.push({ type: 'FieldValueForbidden', field: 'metadata.finalizers', detail: `no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` });
    }
    this.throwIfInvalid(rt, next, errs);
    if (rt.strategy.generation && !jsonEqual(specPart(next, rt.status), specPart(old, rt.status))) {
      next.metadata.generation = (old.metadata.generation ?? 0) + 1;
    }
    if (jsonEqual(withoutVolatileMeta(next), withoutVolatileMeta(old))) return plainResult(old, warnings, false);
    if (options.dryRun) return plainResult(next, warnings, false);
    const key = objectKeyOf(old.metadata.namespace, old.metadata.name ?? '');
    const deletionComplete = next.metadata.deletionTimestamp !== undefined &&
      (next.metadata.finalizers ?? []).length === 0 && !rt.strategy.blocksDeletion?.(next) &&
      (next.metadata.deletionGracePeriodSeconds ?? 0) === 0;
    const event = this.storage.commit(deletionComplete ? 'DELETED' : 'MODIFIED', rt.storageKey, key, this.toStorage(rt, next));
    return this.storedResult(rt, event.object, warnings, false);
  }

  // ---- patch ------------------------------------------------------------------------------------

  patch(ref: ResourceRef, name: string, type: PatchType, patch: unknown, options: PatchOptions = {}): KubeObject {
    return this.patchWithWarnings(ref, name, type, patch, options).object;
  }

  patchWithWarnings(ref: ResourceRef, name: string, type: PatchType, patch: unknown, options: PatchOptions = {}): WriteResult {
    const rt = this.resolve(ref);
    this.requireVerb(rt, 'patch');
    const namespace = rt.namespaced ? options.namespace : undefined;
    const stored = this.storage.get(rt.storageKey, objectKeyOf(this.namespaceOf(rt, namespace), name));
    if (!stored) {
      if (type === 'apply' && !options.subresource) return this.applyCreate(ref, rt, name, patch, options);
      throw notFound(groupResourceOf(rt), name);
    }
    const old = this.present(rt, stored);
    const patched = this.applyPatchDocument(rt, old, type, patch, options);
    if (!isJsonObject(patched) || !isJsonObject(patched.metadata)) throw badRequest('the patched object must be a JSON object with metadata');
    const next = patched as KubeObject;
    if (next.metadata.resourceVersion !== undefined && next.metadata.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(groupResourceOf(rt), name, OBJECT_MODIFIED);
    }
    if (next.metadata.uid !== undefined && next.metadata.uid !== old.metadata.uid) {
      throw conflict(groupResourceOf(rt), name, `Precondition failed: UID in precondition: ${String(next.metadata.uid)}, UID in object meta: ${String(old.metadata.uid)}`);
    }
    return this.applyUpdate(rt, old, next, options);
  }

  private applyPatchDocument(rt: ResourceType, old: KubeObject, type: PatchType, patch: unknown, options: PatchOptions): unknown {
    switch (type) {
      case 'json':
        return applyJsonPatch(old, patch);
      case 'merge':
        return applyMergePatch(old, patch);
      case 'strategic':
        if (!rt.strategy.patchMeta) throw unsupportedMediaType(PATCH_MEDIA_TYPES);
        return applyStrategicMergePatch(old, patch, rt.strategy.patchMeta);
      case 'apply':
        this.requireFieldManager(options);
        // Server-side apply without managed fields: the applied configuration is merged in.
        return applyMergePatch(old, this.acceptBody(rt, patch));
    }
  }

  private requireFieldManager(options: PatchOptions): void {
    if (!options.fieldManager) {
      throw invalid('PatchOptions', 'meta.k8s.io', '', [{ type: 'FieldValueRequired', field: 'fieldManager', detail: 'is required for apply patch' }]);
    }
  }

  private applyCreate(ref: ResourceRef, rt: ResourceType, name: string, patch: unknown, options: PatchOptions): WriteResult {
    this.requireFieldManager(options);
    const obj = this.acceptBody(rt, patch);
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${String(obj.metadata.name)}) does not match the name on the URL (${name})`);
    }
    obj.metadata.name = name;
    return this.createWithWarnings(ref, obj, options);
  }

  // ---- subresources -------------------------------------------------------------------------------

  getScale(ref: ResourceRef, name: string, options: { namespace?: string } = {}): KubeObject {
    const rt = this.resolve(ref);
    if (!rt.scale) throw resourceNotFound();
    return scaleOf(this.present(rt, this.stored(rt, options.namespace, name)), rt.scale);
  }

  /** Writes Scale.spec.replicas to the workload (PUT or PATCH of the scale subresource). */
  updateScale(ref: ResourceRef, name: string, scale: unknown, options: WriteOptions = {}): KubeObject {
    const rt = this.resolve(ref);
    if (!rt.scale) throw resourceNotFound();
    const old = this.present(rt, this.stored(rt, options.namespace, name));
    const body = isJsonObject(scale) ? scale : {};
    const meta = isJsonObject(body.metadata) ? body.metadata : {};
    const replicas = isJsonObject(body.spec) ? body.spec.replicas : undefined;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw invalid('Scale', 'autoscaling', name, [{ type: 'FieldValueInvalid', field: 'spec.replicas', badValue: replicas ?? null, detail: 'must be greater than or equal to 0' }]);
    }
    if (typeof meta.resourceVersion === 'string' && meta.resourceVersion !== '' && meta.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(groupResourceOf(rt), name, OBJECT_MODIFIED);
    }
    const next = cloneJson(old);
    setAtPath(next, rt.scale.specReplicasPath, replicas);
    return scaleOf(this.applyUpdate(rt, old, next, options).object, rt.scale);
  }

  patchScale(ref: ResourceRef, name: string, type: PatchType, patch: unknown, options: WriteOptions = {}): KubeObject {
    const current = this.getScale(ref, name, options);
    let patched: unknown;
    if (type === 'json') patched = applyJsonPatch(current, patch);
    else if (type === 'merge' || type === 'apply') patched = applyMergePatch(current, patch);
    else patched = applyStrategicMergePatch(current, patch, {});
    return this.updateScale(ref, name, patched, options);
  }

  /** pods/binding: assigns a pod to a node, as the scheduler does. */
  bindPod(namespace: string, podName: string, binding: unknown): void {
    const rt = this.resolve({ group: '', version: 'v1', resource: 'pods' });
    const pod = this.present(rt, this.stored(rt, namespace, podName));
    const body = isJsonObject(binding) ? binding : {};
    const target = isJsonObject(body.target) ? body.target : {};
    const node = typeof target.name === 'string' ? target.name : '';
    const bindingGr = { group: '', resource: 'pods/binding' };
    if (!node) {
      throw invalid('Binding', '', podName, [{ type: 'FieldValueRequired', field: 'target.name' }]);
    }
    if (pod.metadata.deletionTimestamp) {
      throw conflict(bindingGr, podName, `pod ${podName} is being deleted, cannot be assigned to a host`);
    }
    const spec = isJsonObject(pod.spec) ? pod.spec : {};
    if (spec.nodeName) throw conflict(bindingGr, podName, `pod ${podName} is already assigned to node "${String(spec.nodeName)}"`);
    const next = cloneJson(pod);
    (next.spec as JsonObject).nodeName = node;
    const bindingMeta = isJsonObject(body.metadata) ? body.metadata : {};
    if (isJsonObject(bindingMeta.annotations)) {
      next.metadata.annotations = { ...(next.metadata.annotations ?? {}), ...(bindingMeta.annotations as Record<string, string>) };
    }
    const status = isJsonObject(next.status) ? next.status : (next.status = {});
    const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isJsonObject) : [];
    status.conditions = [
      ...conditions.filter((c) => c.type !== 'PodScheduled'),
      { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: timestamp() },
    ];
    this.storage.commit('MODIFIED', rt.storageKey, objectKeyOf(namespace, podName), this.toStorage(rt, next));
  }

  // ---- delete -----------------------------------------------------------------------------------

  delete(ref: ResourceRef, name: string, options: DeleteOptions = {}): DeleteResult {
    const rt = this.resolve(ref);
    this.requireVerb(rt, 'delete');
    const old = this.present(rt, this.stored(rt, options.namespace, name));
    this.checkDeletePreconditions(rt, old, options);
    if (options.dryRun) return { object: old, deleted: false };
    const key = objectKeyOf(old.metadata.namespace, name);
    const grace = this.podGracefulDeletion && rt.strategy.gracePeriod ? rt.strategy.gracePeriod(old, options.gracePeriodSeconds) : 0;

    if (old.metadata.deletionTimestamp) return this.deleteAgain(rt, old, key, grace);

    const next = cloneJson(old);
    const policy = options.propagationPolicy ??
      (options.orphanDependents === true ? 'Orphan' : 'Background');
    const finalizers = next.metadata.finalizers ?? [];
    if (policy === 'Orphan' && !finalizers.includes(ORPHAN_FINALIZER)) finalizers.push(ORPHAN_FINALIZER);
    if (policy === 'Foreground' && !finalizers.includes(FOREGROUND_FINALIZER)) finalizers.push(FOREGROUND_FINALIZER);
    if (finalizers.length > 0) next.metadata.finalizers = finalizers;
    rt.strategy.markDeleting?.(next);
    const waits = (next.metadata.finalizers ?? []).length > 0 || rt.strategy.blocksDeletion?.(next) === true;
    if (grace > 0 || waits) {
      next.metadata.deletionTimestamp = timestamp(new Date(Date.now() + grace * 1000));
      next.metadata.deletionGracePeriodSeconds = grace;
      const event = this.storage.commit('MODIFIED', rt.storageKey, key, this.toStorage(rt, next));
      return { object: this.present(rt, event.object), deleted: false };
    }
    const event = this.storage.commit('DELETED', rt.storageKey, key, this.toStorage(rt, old));
    return { object: this.present(rt, event.object), deleted: true };
  }

  private checkDeletePreconditions(rt: ResourceType, old: KubeObject, options: DeleteOptions): void {
    const pre = options.preconditions ?? {};
    const name = old.metadata.name ?? '';
    if (pre.uid && pre.uid !== old.metadata.uid) {
      throw conflict(groupResourceOf(rt), name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(old.metadata.uid)}`);
    }
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(groupResourceOf(rt), name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(old.metadata.resourceVersion)}`);
    }
  }

  /** DELETE of an object already being deleted: only a shorter grace period changes anything. */
  private deleteAgain(rt: ResourceType, old: KubeObject, key: string, grace: number): DeleteResult {
    const current = old.metadata.deletionGracePeriodSeconds ?? 0;
    if (grace >= current) return { object: old, deleted: false };
    const next = cloneJson(old);
    next.metadata.deletionGracePeriodSeconds = grace;
    next.metadata.deletionTimestamp = timestamp(new Date(Date.now() + grace * 1000));
    const gone = grace === 0 && (next.metadata.finalizers ?? []).length === 0 && !rt.strategy.blocksDeletion?.(next);
    const event = this.storage.commit(gone ? 'DELETED' : 'MODIFIED', rt.storageKey, key, this.toStorage(rt, next));
    return { object: this.present(rt, event.object), deleted: gone };
  }

  deleteCollection(ref: ResourceRef, listOptions: ListOptions = {}, deleteOptions: DeleteOptions = {}): KubeList {
    const rt = this.resolve(ref);
    this.requireVerb(rt, 'deletecollection');
    const items = this.list(ref, { ...listOptions, limit: undefined, continue: undefined }).items;
    const deleted: KubeObject[] = [];
    for (const item of items) {
      try {
        deleted.push(this.delete(ref, item.metadata.name ?? '', { ...deleteOptions, namespace: item.metadata.namespace }).object);
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== 404) throw err;
      }
    }
    return { apiVersion: apiVersionOf(rt.group, rt.version), kind: rt.listKind, metadata: { resourceVersion: this.resourceVersion }, items: deleted };
  }

  // ---- CRDs, controllers and persistence --------------------------------------------------------

  private syncCustomResources(event: StoredEvent): void {
    if (event.storageKey !== CRD_STORAGE_KEY) return;
    const name = event.object.metadata.name ?? '';
    this.registry.setCustomResources(name, event.type === 'DELETED' ? [] : customResourceTypes(event.object));
  }

  /** Listens to every committed change, in order (controllers, persistence). */
  onChange(listener: (event: StoredEvent) => void): () => void {
    return this.storage.subscribe(listener);
  }

  /** Every stored object of a bucket, in its stored form (for controllers; do not mutate). */
  storedObjects(storageKey: string): KubeObject[] {
    return this.storage.list(storageKey);
  }

  storageKeys(): string[] {
    return this.storage.storageKeys();
  }

  /** Forgets all history, so every watch resuming from an older resourceVersion gets 410. */
  compact(): void {
    this.storage.compact();
  }

  snapshot(): StorageSnapshot {
    return this.storage.snapshot();
  }

  restore(snapshot: StorageSnapshot): void {
    this.storage.restore(snapshot);
    for (const crd of this.storage.list(CRD_STORAGE_KEY)) {
      this.registry.setCustomResources(crd.metadata.name ?? '', customResourceTypes(crd));
    }
    this.ensureInitialNamespaces();
  }
}
