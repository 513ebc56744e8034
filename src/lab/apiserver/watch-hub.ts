// Watches over the storage: initial state or a replay of history from a resourceVersion, then
// live changes, each delivered exactly once and in resourceVersion order; periodic bookmarks.
import { badRequest } from './errors.js';
import type { Storage, StoredEvent } from './storage.js';
import type { KubeObject } from './types.js';

/**
 * A change as one watcher sees it, still in stored form: whoever delivers it converts it (to an
 * object of the requested version, or to the bytes of a JSON watch line shared by every watcher).
 */
export interface StoredChange {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  stored: KubeObject;
  /** Set when the object is shown in an earlier state at this later resourceVersion. */
  resourceVersion?: string;
}

export type HubEvent = StoredChange | { type: 'BOOKMARK'; object: KubeObject };

export interface WatchRequest {
  storageKey: string;
  /** Whether a stored object is selected (namespace, label and field selectors). */
  matches(stored: KubeObject): boolean;
  /** The object of a BOOKMARK event at a resourceVersion. */
  bookmark(rv: number, initialEventsEnd: boolean): KubeObject;
  /** Unset or "0": start with ADDED events for the current state. Else resume after it. */
  resourceVersion?: string;
  sendInitialEvents?: boolean;
  allowWatchBookmarks?: boolean;
  bookmarkIntervalMs: number;
}

export interface WatchSubscription {
  stop(): void;
}

export class WatchHub {
  constructor(private readonly storage: Storage) {}

  /** Starts a watch; throws (410 Expired, 400) before delivering anything if it cannot start. */
  watch(req: WatchRequest, onEvent: (event: HubEvent) => void): WatchSubscription {
    let lastRv = 0;
    let stopped = false;
    const emit = (event: HubEvent): void => {
      if (!stopped) onEvent(event);
    };
    const onStored = (event: StoredEvent): void => {
      // Events already covered by the initial state or the replay are skipped, so an event
      // committed while this watch started (from inside a listener) is not seen twice.
      if (event.rv <= lastRv) return;
      lastRv = event.rv;
      if (event.storageKey !== req.storageKey) return;
      const translated = this.translate(event, req);
      if (translated) emit(translated);
    };

    const initial = req.sendInitialEvents === true ||
      req.resourceVersion === undefined || req.resourceVersion === '' || req.resourceVersion === '0';
    if (initial) {
      for (const obj of this.storage.list(req.storageKey)) {
        if (req.matches(obj)) emit({ type: 'ADDED', stored: obj });
      }
      lastRv = this.storage.resourceVersion;
      if (req.sendInitialEvents && req.allowWatchBookmarks) {
        emit({ type: 'BOOKMARK', object: req.bookmark(lastRv, true) });
      }
    } else {
      const from = parseResourceVersion(req.resourceVersion!);
      const history = this.storage.eventsSince(req.storageKey, from);
      lastRv = from;
      for (const event of history) onStored(event);
      lastRv = Math.max(from, this.storage.resourceVersion);
    }
    const unsubscribe = this.storage.subscribe(onStored);
    const timer = req.allowWatchBookmarks
      ? setInterval(() => emit({ type: 'BOOKMARK', object: req.bookmark(this.storage.resourceVersion, false) }), req.bookmarkIntervalMs)
      : undefined;
    timer?.unref();
    return {
      stop() {
        stopped = true;
        unsubscribe();
        if (timer) clearInterval(timer);
      },
    };
  }

  /**
   * What a selective watcher sees of a change (the watch cache's rules): an object that starts
   * matching is ADDED, one that stops matching is DELETED (in its previous state).
   */
  private translate(event: StoredEvent, req: WatchRequest): StoredChange | undefined {
    const now = req.matches(event.object);
    if (event.type === 'ADDED') return now ? { type: 'ADDED', stored: event.object } : undefined;
    if (event.type === 'DELETED') {
      const before = event.prev ? req.matches(event.prev) : now;
      return before || now ? { type: 'DELETED', stored: event.object } : undefined;
    }
    const before = event.prev ? req.matches(event.prev) : false;
    if (now && before) return { type: 'MODIFIED', stored: event.object };
    if (now) return { type: 'ADDED', stored: event.object };
    if (before && event.prev) return { type: 'DELETED', stored: event.prev, resourceVersion: String(event.rv) };
    return undefined;
  }
}

export function parseResourceVersion(text: string): number {
  if (!/^\d+$/.test(text)) throw badRequest(`invalid resource version: ${text}`);
  return Number(text);
}
