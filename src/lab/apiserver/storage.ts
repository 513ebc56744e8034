// The lab's etcd: objects by storage key, one global resourceVersion counter, and a bounded
// history of changes. The history serves watches that resume from a resourceVersion and lists at
// an exact one (paging); what falls out of it is "compacted" and answered with 410 Expired.
import { expired } from './errors.js';
import type { KubeObject } from './types.js';

export type StoredEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  rv: number;
  type: StoredEventType;
  storageKey: string;
  objectKey: string;
  /** The object after the change (for DELETED: its last state, carrying the deletion's rv). */
  object: KubeObject;
  /** The object before the change, absent for ADDED. */
  prev?: KubeObject;
}

export type StorageListener = (event: StoredEvent) => void;

export interface StorageSnapshot {
  resourceVersion: number;
  objects: Record<string, KubeObject[]>;
}

/** "namespace/name" for namespaced objects, "name" for cluster-scoped ones (etcd key order). */
export function objectKeyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

export class Storage {
  private readonly buckets = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoredEvent[] = [];
  private readonly listeners = new Set<StorageListener>();
  private readonly undispatched: StoredEvent[] = [];
  private dispatching = false;
  private revision = 0;
  /** Events with rv <= compactedRv are no longer in the history. */
  private compacted = 0;

  constructor(
    private readonly historyWindow: number,
    /** Where an exception thrown by a listener goes; it must not fail the write that was committed. */
    private readonly onListenerError: (err: unknown) => void = (err) => console.error('storage listener failed:', err),
  ) {}

  get resourceVersion(): number {
    return this.revision;
  }

  get compactedResourceVersion(): number {
    return this.compacted;
  }

  private bucket(storageKey: string): Map<string, KubeObject> {
    let bucket = this.buckets.get(storageKey);
    if (!bucket) {
      bucket = new Map();
      this.buckets.set(storageKey, bucket);
    }
    return bucket;
  }

  /** The stored object; callers must not mutate it (it is shared with the history). */
  get(storageKey: string, objectKey: string): KubeObject | undefined {
    return this.buckets.get(storageKey)?.get(objectKey);
  }

  /** Every stored object of a bucket, in key order. */
  list(storageKey: string): KubeObject[] {
    const bucket = this.buckets.get(storageKey);
    if (!bucket) return [];
    return [...bucket.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o);
  }

  storageKeys(): string[] {
    return [...this.buckets.keys()];
  }

  /**
   * Writes a change under the next resourceVersion. The object becomes the storage's (it is
   * stamped with the new resourceVersion); listeners hear of it in commit order.
   */
  commit(type: StoredEventType, storageKey: string, objectKey: string, object: KubeObject): StoredEvent {
    const bucket = this.bucket(storageKey);
    const prev = bucket.get(objectKey);
    this.revision++;
    object.metadata.resourceVersion = String(this.revision);
    if (type === 'DELETED') bucket.delete(objectKey);
    else bucket.set(objectKey, object);
    const event: StoredEvent = { rv: this.revision, type, storageKey, objectKey, object, prev };
    this.remember(event);
    this.undispatched.push(event);
    this.dispatch();
    return event;
  }

  private remember(event: StoredEvent): void {
    this.history.push(event);
    const excess = this.history.length - this.historyWindow;
    if (excess > 0) {
      const dropped = this.history.splice(0, excess);
      this.compacted = dropped[dropped.length - 1].rv;
    }
  }

  /**
   * Delivers events to listeners strictly in commit order, even when a listener writes (that
   * write is queued and delivered after every listener has seen the current event).
   */
  private dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.undispatched.length > 0) {
        const event = this.undispatched.shift()!;
        for (const listener of [...this.listeners]) {
          try {
            listener(event);
          } catch (err) {
            this.onListenerError(err);
          }
        }
      }
    } finally {
      this.dispatching = false;
    }
  }

  subscribe(listener: StorageListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private assertRetained(rv: number): void {
    if (rv < this.compacted) {
      throw expired(`too old resource version: ${rv} (${this.compacted + 1})`);
    }
  }

  /** The changes of a bucket after `rv`, oldest first; 410 Expired if they were compacted. */
  eventsSince(storageKey: string, rv: number): StoredEvent[] {
    this.assertRetained(rv);
    return this.history.filter((e) => e.rv > rv && e.storageKey === storageKey);
  }

  /** The bucket as it was at `rv`, rebuilt by undoing later changes; 410 Expired if compacted. */
  snapshotAt(storageKey: string, rv: number): Map<string, KubeObject> {
    this.assertRetained(rv);
    const state = new Map(this.buckets.get(storageKey) ?? []);
    for (let i = this.history.length - 1; i >= 0 && this.history[i].rv > rv; i--) {
      const event = this.history[i];
      if (event.storageKey !== storageKey) continue;
      if (event.prev) state.set(event.objectKey, event.prev);
      else state.delete(event.objectKey);
    }
    return state;
  }

  /** Drops the whole history, as an etcd compaction at the current revision would. */
  compact(): void {
    this.history.length = 0;
    this.compacted = this.revision;
  }

  snapshot(): StorageSnapshot {
    const objects: Record<string, KubeObject[]> = {};
    for (const key of this.buckets.keys()) objects[key] = this.list(key);
    return { resourceVersion: this.revision, objects };
  }

  /** Replaces all state with a snapshot; history starts empty, so older watches get 410. */
  restore(snapshot: StorageSnapshot): void {
    this.buckets.clear();
    for (const [storageKey, objects] of Object.entries(snapshot.objects)) {
      const bucket = this.bucket(storageKey);
      for (const obj of objects) bucket.set(objectKeyOf(obj.metadata.namespace, obj.metadata.name ?? ''), obj);
    }
    this.revision = snapshot.resourceVersion;
    this.history.length = 0;
    this.compacted = this.revision;
  }
}
