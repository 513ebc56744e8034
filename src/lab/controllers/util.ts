// Helpers shared by the lab's workload controllers: object keys, owner references, label
// selectors, pod readiness, template hashing and the errors of the API client.
import type {
  V1Condition, V1LabelSelector, V1ObjectMeta, V1OwnerReference, V1Pod, V1PodTemplateSpec,
} from '@kubernetes/client-node';

export interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
}

/** "namespace/name", or "name" for cluster-scoped objects (client-go's MetaNamespaceKeyFunc). */
export function keyOf(obj: Obj): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name ?? ''}` : obj.metadata?.name ?? '';
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Milliseconds since the epoch of a timestamp that is a Date (typed list) or a string (watch). */
export function timeOf(t: Date | string | undefined | null): number {
  if (t === undefined || t === null) return 0;
  const ms = t instanceof Date ? t.getTime() : Date.parse(String(t));
  return Number.isNaN(ms) ? 0 : ms;
}

/** An RFC 3339 timestamp with second precision, as the API server writes them. */
export function rfc3339(ms: number = Date.now()): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Timestamps are typed Date in the client models; strings serialize the same way. */
export function apiTime(ms: number = Date.now()): Date {
  return rfc3339(ms) as unknown as Date;
}

export function isBeingDeleted(obj: Obj): boolean {
  return obj.metadata?.deletionTimestamp !== undefined && obj.metadata?.deletionTimestamp !== null;
}

export function controllerRefOf(obj: Obj): V1OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}

export function ownerReferenceTo(owner: Obj, apiVersion: string, kind: string): V1OwnerReference {
  return {
    apiVersion,
    kind,
    name: owner.metadata?.name ?? '',
    uid: owner.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Whether labels match a LabelSelector (matchLabels and matchExpressions). An empty selector matches everything. */
export function selectorMatches(selector: V1LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return false;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (l[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || !values.includes(l[req.key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(l[req.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** A selector that selects nothing (no matchLabels, no matchExpressions) is refused by controllers. */
export function selectorIsEmpty(selector: V1LabelSelector | undefined): boolean {
  return !selector || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0);
}

// ---- pods -------------------------------------------------------------------------------------

export function podCondition(pod: V1Pod, type: string) {
  return pod.status?.conditions?.find((c) => c.type === type);
}

/** Ready=True: decided by the kubelet. */
export function isPodReady(pod: V1Pod): boolean {
  return podCondition(pod, 'Ready')?.status === 'True';
}

/** Ready for at least minReadySeconds (the Ready condition's lastTransitionTime says since when). */
export function isPodAvailable(pod: V1Pod, minReadySeconds: number, now: number): boolean {
  if (!isPodReady(pod)) return false;
  if (minReadySeconds <= 0) return true;
  const since = timeOf(podCondition(pod, 'Ready')?.lastTransitionTime);
  return since > 0 && since + minReadySeconds * 1000 <= now;
}

/** Milliseconds until a ready pod becomes available, or undefined if it is not ready or already available. */
export function msUntilAvailable(pod: V1Pod, minReadySeconds: number, now: number): number | undefined {
  if (!isPodReady(pod) || minReadySeconds <= 0) return undefined;
  const since = timeOf(podCondition(pod, 'Ready')?.lastTransitionTime);
  const left = since + minReadySeconds * 1000 - now;
  return left > 0 ? left : undefined;
}

export function isPodTerminal(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** Counted by a ReplicaSet: not finished and not being deleted (controller.IsPodActive). */
export function isPodActive(pod: V1Pod): boolean {
  return !isPodTerminal(pod) && !isBeingDeleted(pod);
}

export function isPodRunningAndReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && isPodReady(pod);
}

// ---- templates --------------------------------------------------------------------------------

/** JSON with object keys sorted and undefined/null members dropped, so equal objects print equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}

function canonical(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined || v === null) continue;
      out[key] = canonical(v);
    }
    return out;
  }
  return value;
}

/** 32-bit FNV-1a, the hash kube-controller-manager uses for pod-template-hash. */
export function fnv32a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const SAFE_ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

/** k8s.io/apimachinery rand.SafeEncodeString: no vowels, no 0/1/3, so hashes never spell words. */
export function safeEncodeString(s: string): string {
  let out = '';
  for (const ch of Buffer.from(s, 'utf8')) out += SAFE_ALPHANUMS[ch % SAFE_ALPHANUMS.length];
  return out;
}

export const POD_TEMPLATE_HASH = 'pod-template-hash';

/** The template without the pod-template-hash label (what templates are compared on). */
export function templateWithoutHash(template: V1PodTemplateSpec | undefined): V1PodTemplateSpec {
  const copy: V1PodTemplateSpec = JSON.parse(JSON.stringify(template ?? {}));
  if (copy.metadata?.labels) {
    delete copy.metadata.labels[POD_TEMPLATE_HASH];
    if (Object.keys(copy.metadata.labels).length === 0) delete copy.metadata.labels;
  }
  if (copy.metadata && Object.keys(copy.metadata).length === 0) delete copy.metadata;
  return copy;
}

/** controller.ComputeHash: the template's hash (plus the collision count, when there was a collision). */
export function computeTemplateHash(template: V1PodTemplateSpec | undefined, collisionCount?: number): string {
  let text = canonicalJson(templateWithoutHash(template));
  if (collisionCount) text += `#${collisionCount}`;
  return safeEncodeString(String(fnv32a(text)));
}

export function templatesEqualIgnoringHash(a: V1PodTemplateSpec | undefined, b: V1PodTemplateSpec | undefined): boolean {
  return canonicalJson(templateWithoutHash(a)) === canonicalJson(templateWithoutHash(b));
}

/** An intstr (number or "N%") resolved against a total; percentages round up or down. */
export function resolveIntOrPercent(value: number | string | undefined, total: number, roundUp: boolean, fallback: number | string): number {
  const v = value ?? fallback;
  if (typeof v === 'number') return v;
  const s = String(v).trim();
  if (s.endsWith('%')) {
    const pct = Number(s.slice(0, -1));
    if (!Number.isFinite(pct)) return 0;
    const exact = (pct * total) / 100;
    return roundUp ? Math.ceil(exact) : Math.floor(exact);
  }
  const n = Number(s);
  return Number.isFinite(n) ? n : 0;
}

// ---- conditions -------------------------------------------------------------------------------

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: Date | string;
  lastUpdateTime?: Date | string;
}

export function findCondition<C extends { type: string }>(conditions: C[] | undefined, type: string): C | undefined {
  return conditions?.find((c) => c.type === type);
}

export type { V1Condition };

// ---- API errors -------------------------------------------------------------------------------

/** The HTTP status of a failed client call (ApiException.code), or undefined for network errors. */
export function httpStatusOf(err: unknown): number | undefined {
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    const statusCode = (err as { statusCode?: unknown }).statusCode;
    if (typeof statusCode === 'number') return statusCode;
  }
  return undefined;
}

export const isNotFound = (err: unknown) => httpStatusOf(err) === 404;
export const isConflict = (err: unknown) => httpStatusOf(err) === 409;

/** 409 with reason AlreadyExists (a create), as opposed to a Conflict (a stale update). */
export function isAlreadyExists(err: unknown): boolean {
  if (httpStatusOf(err) !== 409) return false;
  const body = (err as { body?: unknown }).body;
  const parsed = typeof body === 'string' ? safeParse(body) : body;
  const reason = parsed && typeof parsed === 'object' ? (parsed as { reason?: unknown }).reason : undefined;
  return reason === undefined || reason === 'AlreadyExists';
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
