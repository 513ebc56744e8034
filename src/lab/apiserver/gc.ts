// The garbage collector of kube-controller-manager, reduced to what the API semantics need:
// dependents whose owners are all gone are deleted; an owner deleted in the foreground waits for
// its blocking dependents; an owner deleted with "orphan" releases its dependents first.
import { FOREGROUND_FINALIZER, ORPHAN_FINALIZER, type ApiStore } from './api-store.js';
import { attempt, ReconcileLoop } from './reconcile-loop.js';
import type { StoredEvent } from './storage.js';
import { mutate, storedEntries, type StoredEntry } from './stored-entries.js';
import { jsonEqual, type KubeObject } from './types.js';

function hasFinalizer(entry: StoredEntry, finalizer: string): boolean {
  return (entry.obj.metadata.finalizers ?? []).includes(finalizer);
}

function removeFinalizer(store: ApiStore, entry: StoredEntry, finalizer: string): void {
  attempt(() => mutate(store, entry, (obj) => {
    obj.metadata.finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  }));
}

/**
 * The namespace of every stored object by uid ('' for cluster-scoped ones): enough to tell, as a
 * change is committed, whether each owner it references resolves (the rule of `ownerOf` below).
 */
class OwnerIndex {
  private readonly namespaces = new Map<string, string>();

  constructor(store: ApiStore) {
    for (const entry of storedEntries(store)) this.add(entry.obj, entry.rt.namespaced);
  }

  private add(obj: KubeObject, namespaced: boolean): void {
    if (obj.metadata.uid) this.namespaces.set(obj.metadata.uid, namespaced ? obj.metadata.namespace ?? '' : '');
  }

  update(event: StoredEvent, namespaced: boolean): void {
    if (!event.object.metadata.uid) return;
    if (event.type === 'DELETED') this.namespaces.delete(event.object.metadata.uid);
    else this.add(event.object, namespaced);
  }

  resolves(dependent: KubeObject, uid: string): boolean {
    const namespace = this.namespaces.get(uid);
    return namespace !== undefined && (namespace === '' || namespace === dependent.metadata.namespace);
  }
}

/**
 * Deletions, owner references and the start of a deletion are what the collector acts on. A new
 * object whose owners all exist gives a pass nothing to do (the common case: a pod created by
 * its ReplicaSet), so it does not cost one.
 */
function ownershipChanged(event: StoredEvent, owners: OwnerIndex): boolean {
  if (event.type === 'DELETED') return true;
  const meta = event.object.metadata;
  if (event.type === 'ADDED') return (meta.ownerReferences ?? []).some((r) => !owners.resolves(event.object, r.uid));
  const prev = event.prev?.metadata ?? {};
  return !jsonEqual(meta.ownerReferences, prev.ownerReferences) ||
    meta.deletionTimestamp !== prev.deletionTimestamp || !jsonEqual(meta.finalizers, prev.finalizers);
}

export class GarbageCollector {
  private readonly loop: ReconcileLoop;

  constructor(private readonly store: ApiStore, onError?: (err: unknown) => void) {
    const owners = new OwnerIndex(store);
    this.loop = new ReconcileLoop(store, () => this.pass(), (event) => {
      owners.update(event, store.registry.storageType(event.storageKey)?.namespaced ?? false);
      return ownershipChanged(event, owners);
    }, onError);
  }

  stop(): void {
    this.loop.stop();
  }

  private pass(): void {
    const entries = storedEntries(this.store);
    const byUid = new Map(entries.map((e) => [e.obj.metadata.uid ?? '', e]));
    /** An owner reference resolves when its uid exists in a scope the dependent can see. */
    const ownerOf = (dependent: StoredEntry, uid: string): StoredEntry | undefined => {
      const owner = byUid.get(uid);
      if (!owner) return undefined;
      if (owner.rt.namespaced && owner.obj.metadata.namespace !== dependent.obj.metadata.namespace) return undefined;
      return owner;
    };
    const dependentsOf = (owner: StoredEntry): StoredEntry[] =>
      entries.filter((e) => (e.obj.metadata.ownerReferences ?? []).some((r) => r.uid === owner.obj.metadata.uid && ownerOf(e, r.uid)));

    for (const entry of entries) {
      const refs = entry.obj.metadata.ownerReferences ?? [];
      if (refs.length === 0 || entry.obj.metadata.deletionTimestamp) continue;
      const present = refs.filter((r) => ownerOf(entry, r.uid));
      if (present.length === 0) this.deleteEntry(entry, 'Background');
      else if (present.length < refs.length) {
        // Dangling references to owners that are gone are removed, as the real GC does.
        attempt(() => mutate(this.store, entry, (obj) => { obj.metadata.ownerReferences = present; }));
      }
    }
    for (const owner of entries) {
      if (!owner.obj.metadata.deletionTimestamp) continue;
      if (hasFinalizer(owner, ORPHAN_FINALIZER)) this.orphanDependents(owner, dependentsOf(owner));
      else if (hasFinalizer(owner, FOREGROUND_FINALIZER)) this.deleteDependentsFirst(owner, dependentsOf(owner));
    }
  }

  private deleteEntry(entry: StoredEntry, propagationPolicy: 'Background' | 'Foreground'): void {
    attempt(() => {
      this.store.delete(entry.ref, entry.obj.metadata.name ?? '', {
        namespace: entry.obj.metadata.namespace,
        propagationPolicy,
        preconditions: { uid: entry.obj.metadata.uid },
      });
    });
  }

  private orphanDependents(owner: StoredEntry, dependents: StoredEntry[]): void {
    const uid = owner.obj.metadata.uid;
    for (const dependent of dependents) {
      attempt(() => mutate(this.store, dependent, (obj) => {
        obj.metadata.ownerReferences = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
        if (obj.metadata.ownerReferences.length === 0) delete obj.metadata.ownerReferences;
      }));
    }
    removeFinalizer(this.store, owner, ORPHAN_FINALIZER);
  }

  /** Foreground deletion: dependents go first; the owner waits for those that block it. */
  private deleteDependentsFirst(owner: StoredEntry, dependents: StoredEntry[]): void {
    const uid = owner.obj.metadata.uid;
    for (const dependent of dependents) {
      if (!dependent.obj.metadata.deletionTimestamp) this.deleteEntry(dependent, 'Foreground');
    }
    const blocking = dependents.filter((d) =>
      (d.obj.metadata.ownerReferences ?? []).some((r) => r.uid === uid && r.blockOwnerDeletion === true));
    if (blocking.length === 0) removeFinalizer(this.store, owner, FOREGROUND_FINALIZER);
  }
}
