// A watch over HTTP: a chunked stream of {"type":..., "object":...} lines that ends at the
// watch's timeout, after an ERROR event, or when the client goes away.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiStore, WatchOptions } from './api-store.js';
import type { ResourceType } from './resource-type.js';
import { buildTable, type IncludeObject } from './table.js';
import type { KubeObject, ResourceRef, WatchEvent } from './types.js';

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
  const early: string[] = [];

  const encode = (event: WatchEvent): string => {
    let object: unknown = event.object;
    if (options.table && (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED')) {
      object = buildTable(rt.table, [event.object as KubeObject], {
        includeObject: options.table.includeObject,
        noHeaders: !firstTable,
        listMeta: { resourceVersion: event.object.metadata.resourceVersion },
      });
      firstTable = false;
    }
    return `${JSON.stringify({ type: event.type, object })}\n`;
  };

  const watcher: ActiveWatch = {
    end() {
      if (ended) return;
      ended = true;
      handle?.stop();
      clearTimeout(timer);
      active.delete(watcher);
      if (headersWritten) res.end();
    },
  };

  const onEvent = (event: WatchEvent): void => {
    if (ended) return;
    const line = encode(event);
    if (headersWritten) res.write(line);
    else early.push(line);
    if (event.type === 'ERROR') watcher.end();
  };

  handle = store.watch(ref, options.watch, onEvent);
  if (ended) handle.stop();

  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-cache, private',
    'Transfer-Encoding': 'chunked',
  });
  headersWritten = true;
  for (const line of early) res.write(line);
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
