// How the server knows a resource: its discovery facts plus the strategy (the rules kube-apiserver's
// registry applies to it on create, update and delete). Built-in resources are declared in
// builtin-resources.ts; custom resources get theirs from their CRD (crd-resources.ts).
import type { FieldError } from './errors.js';
import type { PatchMeta } from './strategic-merge.js';
import type { TableConvertor } from './table.js';
import type { KubeObject } from './types.js';
import type { NameRule } from './validation.js';

export interface ScaleSubresource {
  specReplicasPath: string;
  statusReplicasPath: string;
  /** Custom resources: where the selector string of Scale.status.selector is found. */
  labelSelectorPath?: string;
  /** Built-in workloads: Scale.status.selector is spec.selector in its string form. */
  selectorFromSpec?: boolean;
}

/** A subresource other than status and scale (pods/binding, namespaces/finalize). */
export interface ExtraSubresource {
  name: string;
  kind: string;
  group?: string;
  version?: string;
  verbs: string[];
}

/** What strategies may look at beyond the object itself. */
export interface StrategyContext {
  /** The stored objects of a resource (by storage key), e.g. all services for IP allocation. */
  storedObjects(storageKey: string): KubeObject[];
  serviceCidr: string;
}

export interface Strategy {
  /** metadata.generation is maintained (bumped when anything but metadata and status changes). */
  generation: boolean;
  /** An update without metadata.resourceVersion is accepted (false for custom resources). */
  allowUnconditionalUpdate: boolean;
  /** PUT of a missing object creates it (endpoints, events). */
  allowCreateOnUpdate: boolean;
  /** DELETE answers with the deleted object rather than a Success Status. */
  returnDeletedObject: boolean;
  nameRule: NameRule;
  /** Strategic merge metadata; undefined refuses strategic merge patches with 415. */
  patchMeta?: PatchMeta;
  /** Field selector names this resource supports besides metadata.name and metadata.namespace. */
  fieldLabelNames: string[];
  /** The values of the supported field labels for an object. */
  fieldLabels(obj: KubeObject): Record<string, string>;
  /** The value of one supported field label (what selectors evaluate per object and watcher). */
  fieldLabel?(obj: KubeObject, name: string): string;
  defaults?(obj: KubeObject): void;
  prepareForCreate?(obj: KubeObject, ctx: StrategyContext): void;
  prepareForUpdate?(obj: KubeObject, old: KubeObject, ctx: StrategyContext): void;
  validate?(obj: KubeObject): FieldError[];
  validateUpdate?(obj: KubeObject, old: KubeObject): FieldError[];
  /** Custom resources: removes fields the schema does not declare and returns their paths. */
  prune?(obj: KubeObject): string[];
  /** Seconds of graceful deletion for the object (pods); 0 or absent deletes at once. */
  gracePeriod?(obj: KubeObject, requested: number | undefined): number;
  /** Something besides metadata.finalizers keeps the object after DELETE (namespace spec.finalizers). */
  blocksDeletion?(obj: KubeObject): boolean;
  /** Marks an object whose deletion has started (namespace phase Terminating). */
  markDeleting?(obj: KubeObject): void;
}

export interface ResourceType {
  group: string;
  version: string;
  /** Plural name, as in URLs. */
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Has a status subresource: main updates keep status, status updates keep everything else. */
  status: boolean;
  scale?: ScaleSubresource;
  extraSubresources: ExtraSubresource[];
  /** The bucket shared by every version of the resource ("apps/deployments"). */
  storageKey: string;
  /** The version objects are stored in; others are converted on the way in and out. */
  storageVersion: string;
  /** Converts a stored object to this version (default: only apiVersion changes). */
  fromStorage?(obj: KubeObject): KubeObject;
  /** Converts an object of this version to the storage version. */
  toStorage?(obj: KubeObject): KubeObject;
  strategy: Strategy;
  table: TableConvertor;
  /** For custom resources: the name of the defining CRD. */
  crdName?: string;
}

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
export const STATUS_VERBS = ['get', 'patch', 'update'];

export function groupResourceOf(rt: ResourceType): { group: string; resource: string } {
  return { group: rt.group, resource: rt.resource };
}
