// Small HTTP helpers: reading JSON bodies, writing JSON and Status responses, query parameters.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest, internalError } from './errors.js';
import type { JsonObject } from './types.js';

/** kube-apiserver refuses request bodies over 3 MiB. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** The request body (with events rather than an async iterator: cheaper, and every write has one). */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.off('data', onData);
        req.resume();
        reject(new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw badRequest(`the object provided is unrecognized: json parse error: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  sendJsonText(res, code, JSON.stringify(body), headers);
}

/** A response whose JSON text is already made (a stored object's shared text, see stored-json.ts). */
export function sendJsonText(res: ServerResponse, code: number, text: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-cache, private',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return internalError(err instanceof Error ? err.message : String(err));
}

export function sendError(res: ServerResponse, err: unknown): void {
  const apiError = toApiError(err);
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, apiError.code, apiError.toStatus());
}

/** The Success Status kube-apiserver answers some writes with. */
export function successStatus(code: number, details?: JsonObject): JsonObject {
  const status: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
  if (details) status.details = details;
  if (code !== 200) status.code = code;
  return status;
}

export function queryString(query: URLSearchParams, name: string): string | undefined {
  const value = query.get(name);
  return value === null || value === '' ? undefined : value;
}

export function queryBool(query: URLSearchParams, name: string): boolean | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  return value === '' || value === 'true' || value === '1';
}

export function queryInt(query: URLSearchParams, name: string): number | undefined {
  const value = queryString(query, name);
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value)) throw badRequest(`invalid value for ${name}: ${value}`);
  return Number(value);
}

/** A Warning header value (RFC 7234 code 299), as kube-apiserver sends them. */
export function warningHeader(message: string): string {
  return `299 - ${JSON.stringify(message)}`;
}
