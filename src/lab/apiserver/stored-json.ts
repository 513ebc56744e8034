// The JSON text of a stored object, computed once and shared: every watcher of a resource, the
// change log and GET/LIST responses send the same bytes for the same stored object. Stored objects
// are never mutated after their commit (storage.ts hands them out read-only), so the text of an
// object never goes stale; a WeakMap lets it go with the object.
import type { KubeObject } from './types.js';

const cache = new WeakMap<KubeObject, string>();

export function storedJson(obj: KubeObject): string {
  let text = cache.get(obj);
  if (text === undefined) {
    text = JSON.stringify(obj);
    cache.set(obj, text);
  }
  return text;
}

let lastLine: { obj: KubeObject; type: string; line: Buffer } | undefined;

/**
 * The line of a JSON watch stream for a change of a stored object sent as stored. Every watcher
 * of a resource receives a change in turn, synchronously, so remembering the last line is
 * enough for all of them to write the same bytes.
 */
export function sharedWatchLine(type: string, obj: KubeObject): Buffer {
  if (lastLine?.obj !== obj || lastLine.type !== type) {
    lastLine = { obj, type, line: Buffer.from(`{"type":${JSON.stringify(type)},"object":${storedJson(obj)}}\n`) };
  }
  return lastLine.line;
}

/** The line of a JSON watch stream for any event. */
export function watchLine(type: string, object: unknown): Buffer {
  return Buffer.from(`${JSON.stringify({ type, object })}\n`);
}
