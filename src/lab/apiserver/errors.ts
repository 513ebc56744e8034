// API errors shaped exactly like kube-apiserver's metav1.Status responses (k8s.io/apimachinery
// pkg/api/errors), because clients branch on `reason` and `code`, and kubectl prints `message`.
import type { JsonObject } from './types.js';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A group and a plural resource name, as errors name them ("deployments.apps"). */
export interface GroupResource {
  group: string;
  resource: string;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  /** The metav1.Status body sent to clients (and used as a watch ERROR event's object). */
  toStatus(): JsonObject {
    const status: JsonObject = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
    };
    if (this.details) status.details = this.details;
    status.code = this.code;
    return status;
  }
}

export function qualifiedResource(gr: GroupResource): string {
  return gr.group ? `${gr.resource}.${gr.group}` : gr.resource;
}

function detailsFor(gr: GroupResource, name: string): StatusDetails {
  const details: StatusDetails = { name };
  if (gr.group) details.group = gr.group;
  details.kind = gr.resource;
  return details;
}

export function notFound(gr: GroupResource, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualifiedResource(gr)} "${name}" not found`, detailsFor(gr, name));
}

/** The 404 for a URL that names no served resource at all. */
export function resourceNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function alreadyExists(gr: GroupResource, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualifiedResource(gr)} "${name}" already exists`, detailsFor(gr, name));
}

export const OBJECT_MODIFIED =
  'the object has been modified; please apply your changes to the latest version and try again';

export function conflict(gr: GroupResource, name: string, why: string): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(gr)} "${name}": ${why}`,
    detailsFor(gr, name),
  );
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

export function forbidden(gr: GroupResource, name: string, why: string, causes?: StatusCause[]): ApiError {
  const details = detailsFor(gr, name);
  if (causes) details.causes = causes;
  return new ApiError(403, 'Forbidden', `${qualifiedResource(gr)} "${name}" is forbidden: ${why}`, details);
}

export function methodNotSupported(gr: GroupResource, action: string): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    `${action} is not supported on resources of kind "${qualifiedResource(gr)}"`,
    { group: gr.group || undefined, kind: gr.resource },
  );
}

export const PATCH_MEDIA_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/apply-patch+yaml',
];

export function unsupportedMediaType(accepted: string[]): ApiError {
  return new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
  );
}

export function notAcceptable(accepted: string[]): ApiError {
  return new ApiError(406, 'NotAcceptable', `only the following media types are accepted: ${accepted.join(', ')}`);
}

/** A watch or list from a resourceVersion older than the retained history (etcd compaction). */
export function expired(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

export const CONTINUE_TOO_OLD =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list ' +
  'without the continue parameter, or use the continue token in this response to retrieve the remainder of the ' +
  'results. Continuing with the provided token results in an inconsistent list - objects that were created, ' +
  'modified, or deleted between the time the first chunk was returned and now may show up in the list.';

export function tooLargeResourceVersion(requested: number, current: number): ApiError {
  return new ApiError(504, 'Timeout', `Too large resource version: ${requested}, current: ${current}`, {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
    retryAfterSeconds: 1,
  });
}

export function internalError(message: string): ApiError {
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, {
    causes: [{ message }],
  });
}

// ---- field errors (k8s.io/apimachinery/pkg/util/validation/field) -------------------------------

export type FieldErrorType =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueTypeInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueForbidden'
  | 'FieldValueTooLong'
  | 'FieldValueTooMany'
  | 'FieldValueDuplicate';

export interface FieldError {
  type: FieldErrorType;
  field: string;
  badValue?: unknown;
  detail?: string;
  /** For NotSupported: the accepted values. */
  supported?: unknown[];
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return 'null';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** The message of one field error without its field prefix, as in a StatusCause. */
export function fieldErrorBody(err: FieldError): string {
  const detail = err.detail ? `: ${err.detail}` : '';
  switch (err.type) {
    case 'FieldValueRequired':
      return `Required value${detail}`;
    case 'FieldValueForbidden':
      return `Forbidden${detail}`;
    case 'FieldValueTooLong':
      return `Too long${detail}`;
    case 'FieldValueTooMany':
      return `Too many${detail}`;
    case 'FieldValueDuplicate':
      return `Duplicate value: ${formatValue(err.badValue)}`;
    case 'FieldValueNotSupported': {
      const values = (err.supported ?? []).map(formatValue).join(', ');
      return `Unsupported value: ${formatValue(err.badValue)}${values ? `: supported values: ${values}` : ''}`;
    }
    default:
      return `Invalid value: ${formatValue(err.badValue)}${detail}`;
  }
}

export function fieldErrorMessage(err: FieldError): string {
  return `${err.field}: ${fieldErrorBody(err)}`;
}

/** 422 Invalid: `Kind.group "name" is invalid: <errors>`, one StatusCause per field error. */
export function invalid(kind: string, group: string, name: string, errs: FieldError[]): ApiError {
  const qualifiedKind = group ? `${kind}.${group}` : kind;
  const messages = errs.map(fieldErrorMessage);
  const aggregate = messages.length === 1 ? messages[0] : `[${messages.join(', ')}]`;
  const details: StatusDetails = { name };
  if (group) details.group = group;
  details.kind = kind;
  details.causes = errs.map((e) => ({ reason: e.type, message: fieldErrorBody(e), field: e.field }));
  return new ApiError(422, 'Invalid', `${qualifiedKind} "${name}" is invalid: ${aggregate}`, details);
}
