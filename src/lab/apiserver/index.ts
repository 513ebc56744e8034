// The lab Kubernetes API server: public entry points for the rest of `fast lab`.
export { startApiServer, type ApiServer, type ApiServerOptions } from './server.js';
export {
  ApiStore, resourceRef, FOREGROUND_FINALIZER, ORPHAN_FINALIZER,
  type ApiStoreOptions, type DeleteOptions, type DeleteResult, type FieldValidation, type ListOptions,
  type PatchOptions, type PatchType, type PropagationPolicy, type UpdateOptions, type WatchHandle,
  type WatchOptions, type WriteOptions, type WriteResult,
} from './api-store.js';
export { ApiError } from './errors.js';
export { kubeconfigFor, writeKubeconfig, type KubeconfigOptions } from './kubeconfig.js';
export type { StoredEvent } from './storage.js';
export type { KubeList, KubeObject, ObjectMeta, OwnerReference, ResourceRef, WatchEvent } from './types.js';
