// The finalizing controllers kube-apiserver relies on elsewhere: the namespace controller
// (empties a terminating namespace, then releases its "kubernetes" finalizer), the CRD finalizer
// (deletes a CRD's custom resources before the CRD) and pod GC for terminating pods whose node
// does not exist (no kubelet will ever confirm their deletion).
import type { ApiStore } from './api-store.js';
import { CRD_CLEANUP_FINALIZER } from './crd.js';
import { attempt, ReconcileLoop } from './reconcile-loop.js';
import type { StoredEvent } from './storage.js';
import { mutate, refOf, storedEntries, type StoredEntry } from './stored-entries.js';
import { isJsonObject } from './types.js';

const NAMESPACE_FINALIZER = 'kubernetes';

/** Terminating objects, deletions, and changes of namespaces, CRDs and nodes. */
function mayFinalize(event: StoredEvent): boolean {
  return event.type === 'DELETED' || event.object.metadata.deletionTimestamp !== undefined ||
    ['/namespaces', '/nodes', 'apiextensions.k8s.io/customresourcedefinitions'].includes(event.storageKey);
}

export class LifecycleControllers {
  private readonly loop: ReconcileLoop;

  constructor(private readonly store: ApiStore, onError?: (err: unknown) => void) {
    this.loop = new ReconcileLoop(store, () => this.pass(), mayFinalize, onError);
  }

  stop(): void {
    this.loop.stop();
  }

  private pass(): void {
    const entries = storedEntries(this.store);
    for (const entry of entries) {
      if (!entry.obj.metadata.deletionTimestamp) continue;
      if (entry.rt.storageKey === '/namespaces') this.finalizeNamespace(entry, entries);
      else if (entry.rt.resource === 'customresourcedefinitions') this.finalizeCrd(entry);
      else if (entry.rt.storageKey === '/pods') this.collectOrphanedPod(entry, entries);
    }
  }

  private deleteAll(victims: StoredEntry[]): void {
    for (const victim of victims) {
      if (victim.obj.metadata.deletionTimestamp) continue;
      attempt(() => {
        this.store.delete(victim.ref, victim.obj.metadata.name ?? '', {
          namespace: victim.obj.metadata.namespace,
          propagationPolicy: 'Background',
        });
      });
    }
  }

  private finalizeNamespace(ns: StoredEntry, entries: StoredEntry[]): void {
    const name = ns.obj.metadata.name;
    const content = entries.filter((e) => e.rt.namespaced && e.obj.metadata.namespace === name);
    this.deleteAll(content);
    const spec = isJsonObject(ns.obj.spec) ? ns.obj.spec : {};
    const finalizers = Array.isArray(spec.finalizers) ? spec.finalizers.map(String) : [];
    if (content.length > 0 || !finalizers.includes(NAMESPACE_FINALIZER)) return;
    attempt(() => {
      const current = this.store.get(ns.ref, name ?? '');
      current.spec = { ...(isJsonObject(current.spec) ? current.spec : {}), finalizers: finalizers.filter((f) => f !== NAMESPACE_FINALIZER) };
      this.store.update(ns.ref, current, { subresource: 'finalize' });
    });
  }

  private finalizeCrd(crd: StoredEntry): void {
    if (!(crd.obj.metadata.finalizers ?? []).includes(CRD_CLEANUP_FINALIZER)) return;
    const types = this.store.registry.customResourcesOf(crd.obj.metadata.name ?? '');
    const storageType = types.find((t) => t.version === t.storageVersion);
    const instances = storageType
      ? this.store.storedObjects(storageType.storageKey).map((obj) => ({ rt: storageType, ref: refOf(storageType), obj }))
      : [];
    this.deleteAll(instances);
    if (instances.length > 0) return;
    attempt(() => mutate(this.store, crd, (obj) => {
      obj.metadata.finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== CRD_CLEANUP_FINALIZER);
    }));
  }

  private collectOrphanedPod(pod: StoredEntry, entries: StoredEntry[]): void {
    const nodeName = isJsonObject(pod.obj.spec) ? pod.obj.spec.nodeName : undefined;
    if (typeof nodeName !== 'string' || nodeName === '') return;
    if (entries.some((e) => e.rt.storageKey === '/nodes' && e.obj.metadata.name === nodeName)) return;
    attempt(() => {
      this.store.delete(pod.ref, pod.obj.metadata.name ?? '', { namespace: pod.obj.metadata.namespace, gracePeriodSeconds: 0 });
    });
  }
}
