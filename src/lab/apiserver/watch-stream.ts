// A watch over HTTP: a chunked stream of {"type":..., "object":...} lines that ends at the
// watch's timeout, after an ERROR event, or when the client goes away.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiStore, WatchOptions } from './api-store.js';
import type { ResourceType } from './resource-type.js';
import { buildTable, type IncludeObject } from './table.js';
import { watchLine } from './stored-json.js';
import type { KubeObject, ResourceRef, WatchEvent, WatchEventType } from './types.js';

export interface WatchStreamOptions {
  watch: WatchOptions;
  /** Seconds until the server ends the watch; kube-apiserver picks 30-60 min when unset. */
  timeoutSeconds?: number;
  table?: { includeObject: IncludeObject };
}

export interface ActiveWatch {
  end(): void;
}

function defaultTimeoutSeconds(): number {
  return 1800 + Math.floor(Math.random() * 1800);
}

/** Starts streaming; throws (before any byte is written) if the watch cannot start. */
export function streamWatch(
  req: IncomingMessage,
  res: ServerResponse,
  store: ApiStore,
  ref: ResourceRef,
  rt: ResourceType,
  options: WatchStreamOptions,
  active: Set<ActiveWatch>,
): void {
  let headersWritten = false;
  let ended = false;
  let firstTable = true;
  let timer: NodeJS.Timeout | undefined;
  let handle: { stop(): void } | undefined;
  const early: Buffer[] = [];

  const tableLine = (event: WatchEvent): Buffer => {
    let object: unknown = event.object;
    if (options.table && (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED')) {
      object = buildTable(rt.table, [event.object as KubeObject], {
        includeObject: options.table.includeObject,
        noHeaders: !firstTable,
        listMeta: { resourceVersion: event.object.metadata.resourceVersion },
      });
      firstTable = false;
    }
    return watchLine(event.type, object);
  };

  // Lines are gathered and written once per turn of the event loop: one chunk (one system call)
  // for all the changes the requests of that turn made, rather than one per change.
  let queued: Buffer[] = [];
  let flushing: NodeJS.Immediate | undefined;
  const flush = (): void => {
    clearImmediate(flushing);
    flushing = undefined;
    if (queued.length === 0) return;
    res.write(queued.length === 1 ? queued[0]! : Buffer.concat(queued));
    queued = [];
  };

  const watcher: ActiveWatch = {
    end() {
      if (ended) return;
      ended = true;
      handle?.stop();
      clearTimeout(timer);
      active.delete(watcher);
      if (headersWritten) {
        flush();
        res.end();
      }
    },
  };

  const onLine = (line: Buffer, type: WatchEventType): void => {
    if (ended) return;
    if (headersWritten) {
      queued.push(line);
      flushing ??= setImmediate(flush);
    } else {
      early.push(line);
    }
    if (type === 'ERROR') watcher.end();
  };

  // Plain JSON watches get lines shared with every other watcher of the change (watchJson).
  handle = options.table
    ? store.watch(ref, options.watch, (event) => onLine(tableLine(event), event.type))
    : store.watchJson(ref, options.watch, onLine);
  if (ended) handle.stop();

  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-cache, private',
    'Transfer-Encoding': 'chunked',
  });
  headersWritten = true;
  if (early.length > 0) res.write(Buffer.concat(early));
  if (ended) {
    res.end();
    return;
  }
  res.flushHeaders();
  active.add(watcher);
  timer = setTimeout(() => watcher.end(), (options.timeoutSeconds ?? defaultTimeoutSeconds()) * 1000);
  timer.unref();
  req.on('close', () => watcher.end());
  res.on('error', () => watcher.end());
}
