// CustomResourceDefinitions: the CRD resource itself (defaulting, validation, the status the
// establishing controllers write) and the resource types a CRD makes the server serve.
import { customResourceTable, printerColumnsOf } from './crd-table.js';
import type { FieldError } from './errors.js';
import { patchMetaFor } from './patch-meta.js';
import { tablesByKind } from './printers.js';
import { ALL_VERBS, type ResourceType, type Strategy } from './resource-type.js';
import { applySchemaDefaults, pruneUnknownFields, validateAgainstSchema, type JsonSchema } from './structural-schema.js';
import { isJsonObject, type JsonObject, type KubeObject } from './types.js';
import { validateObjectMeta } from './validation.js';

export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

function specOf(crd: KubeObject): JsonObject {
  return isJsonObject(crd.spec) ? crd.spec : {};
}

function namesOf(crd: KubeObject): JsonObject {
  const names = specOf(crd).names;
  return isJsonObject(names) ? names : {};
}

function versionsOf(crd: KubeObject): JsonObject[] {
  const versions = specOf(crd).versions;
  return Array.isArray(versions) ? versions.filter(isJsonObject) : [];
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function storageVersionOf(crd: KubeObject): string | undefined {
  return versionsOf(crd).find((v) => v.storage === true)?.name as string | undefined;
}

function schemaOf(version: JsonObject): JsonSchema | undefined {
  const schema = isJsonObject(version.schema) ? version.schema.openAPIV3Schema : undefined;
  return isJsonObject(schema) ? (schema as JsonSchema) : undefined;
}

function defaultCrd(crd: KubeObject): void {
  const spec = specOf(crd);
  const names = namesOf(crd);
  if (typeof names.kind === 'string') {
    names.singular ??= names.kind.toLowerCase();
    names.listKind ??= `${names.kind}List`;
  }
  spec.conversion ??= { strategy: 'None' };
}

function condition(type: string, status: string, reason: string, message: string): JsonObject {
  return { type, status, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), reason, message };
}

/**
 * The status the naming and establishing controllers give a CRD, written at once (so a custom
 * resource applied right after its CRD is served). Conditions keep their transition times.
 */
function establishedStatus(crd: KubeObject, old?: KubeObject): JsonObject {
  const storage = storageVersionOf(crd);
  const oldStatus = old && isJsonObject(old.status) ? old.status : {};
  const stored = new Set([...strings(oldStatus.storedVersions), ...(storage ? [storage] : [])]);
  const oldConditions = Array.isArray(oldStatus.conditions) ? oldStatus.conditions.filter(isJsonObject) : [];
  const keep = (fresh: JsonObject): JsonObject =>
    oldConditions.find((c) => c.type === fresh.type && c.status === fresh.status) ?? fresh;
  return {
    conditions: [
      keep(condition('NamesAccepted', 'True', 'NoConflicts', 'no conflicts found')),
      keep(condition('Established', 'True', 'InitialNamesAccepted', 'the initial names have been accepted')),
    ],
    acceptedNames: { ...namesOf(crd) },
    storedVersions: [...stored],
  };
}

function validateCrd(crd: KubeObject): FieldError[] {
  const errs: FieldError[] = [...validateObjectMeta(crd)];
  const spec = specOf(crd);
  const names = namesOf(crd);
  const group = spec.group;
  if (typeof group !== 'string' || group === '') errs.push({ type: 'FieldValueRequired', field: 'spec.group' });
  else if (!group.includes('.')) {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.group', badValue: group, detail: 'should be a domain with at least one dot' });
  }
  if (typeof names.plural !== 'string' || names.plural === '') errs.push({ type: 'FieldValueRequired', field: 'spec.names.plural' });
  if (typeof names.kind !== 'string' || names.kind === '') errs.push({ type: 'FieldValueRequired', field: 'spec.names.kind' });
  if (crd.metadata.name !== `${String(names.plural)}.${String(group)}`) {
    errs.push({ type: 'FieldValueInvalid', field: 'metadata.name', badValue: crd.metadata.name, detail: 'must be spec.names.plural+"."+spec.group' });
  }
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
    errs.push({ type: 'FieldValueNotSupported', field: 'spec.scope', badValue: spec.scope, supported: ['Cluster', 'Namespaced'] });
  }
  const versions = versionsOf(crd);
  if (versions.length === 0) errs.push({ type: 'FieldValueInvalid', field: 'spec.versions', badValue: [], detail: 'must have exactly one version marked as storage version' });
  else if (versions.filter((v) => v.storage === true).length !== 1) {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.versions', badValue: versions.map((v) => v.name), detail: 'must have exactly one version marked as storage version' });
  }
  versions.forEach((v, i) => {
    const schema = schemaOf(v);
    if (!schema) errs.push({ type: 'FieldValueRequired', field: `spec.versions[${i}].schema.openAPIV3Schema`, detail: 'schemas are required' });
    else if (schema.type !== 'object') {
      errs.push({ type: 'FieldValueRequired', field: `spec.versions[${i}].schema.openAPIV3Schema.type`, detail: 'must not be empty at the root' });
    }
  });
  return errs;
}

function validateCrdUpdate(crd: KubeObject, old: KubeObject): FieldError[] {
  if (specOf(crd).scope === specOf(old).scope) return [];
  return [{ type: 'FieldValueInvalid', field: 'spec.scope', badValue: specOf(crd).scope, detail: 'field is immutable' }];
}

const crdStrategy: Strategy = {
  generation: true,
  allowUnconditionalUpdate: false,
  allowCreateOnUpdate: false,
  returnDeletedObject: false,
  nameRule: 'subdomain',
  patchMeta: patchMetaFor('CustomResourceDefinition'),
  fieldLabelNames: [],
  fieldLabels: () => ({}),
  defaults: defaultCrd,
  prepareForCreate: (crd) => { crd.status = establishedStatus(crd); },
  prepareForUpdate: (crd, old) => { crd.status = establishedStatus(crd, old); },
  validate: validateCrd,
  validateUpdate: validateCrdUpdate,
  markDeleting(crd) {
    // The CRD finalizer controller removes every custom resource before the CRD goes.
    const finalizers = crd.metadata.finalizers ?? [];
    if (!finalizers.includes(CRD_CLEANUP_FINALIZER)) crd.metadata.finalizers = [...finalizers, CRD_CLEANUP_FINALIZER];
    const status = isJsonObject(crd.status) ? crd.status : {};
    const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isJsonObject) : [];
    crd.status = {
      ...status,
      conditions: [...conditions.filter((c) => c.type !== 'Terminating'), condition('Terminating', 'True', 'InstanceDeletionPending', 'CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon')],
    };
  },
};

export function crdResourceType(): ResourceType {
  return {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    resource: 'customresourcedefinitions',
    singular: 'customresourcedefinition',
    kind: 'CustomResourceDefinition',
    listKind: 'CustomResourceDefinitionList',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    verbs: ALL_VERBS,
    status: true,
    extraSubresources: [],
    storageKey: 'apiextensions.k8s.io/customresourcedefinitions',
    storageVersion: 'v1',
    strategy: crdStrategy,
    table: tablesByKind.CustomResourceDefinition,
  };
}

function selectableFieldPaths(version: JsonObject): string[] {
  const fields = Array.isArray(version.selectableFields) ? version.selectableFields.filter(isJsonObject) : [];
  return fields.map((f) => String(f.jsonPath ?? '').replace(/^\./, ''));
}

function valueAt(obj: KubeObject, path: string): string {
  let node: unknown = obj;
  for (const part of path.split('.')) node = isJsonObject(node) ? node[part] : undefined;
  return node === undefined || node === null ? '' : String(node);
}

function customResourceStrategy(version: JsonObject, hasStatus: boolean): Strategy {
  const schema = schemaOf(version) ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const selectable = selectableFieldPaths(version);
  return {
    generation: true,
    allowUnconditionalUpdate: false,
    allowCreateOnUpdate: false,
    returnDeletedObject: true,
    nameRule: 'subdomain',
    // Custom resources have no Go struct tags: strategic merge is refused (415).
    patchMeta: undefined,
    fieldLabelNames: selectable,
    fieldLabels: (obj) => Object.fromEntries(selectable.map((p) => [p, valueAt(obj, p)])),
    defaults: (obj) => applySchemaDefaults(obj, schema),
    prune: (obj) => pruneUnknownFields(obj, schema),
    prepareForCreate: (obj) => { if (hasStatus) delete obj.status; },
    validate: (obj) => [...validateObjectMeta(obj), ...validateAgainstSchema(obj, schema)],
  };
}

function scaleOf(version: JsonObject): ResourceType['scale'] {
  const subresources = isJsonObject(version.subresources) ? version.subresources : {};
  const scale = subresources.scale;
  if (!isJsonObject(scale)) return undefined;
  return {
    specReplicasPath: String(scale.specReplicasPath ?? '.spec.replicas'),
    statusReplicasPath: String(scale.statusReplicasPath ?? '.status.replicas'),
    labelSelectorPath: typeof scale.labelSelectorPath === 'string' ? scale.labelSelectorPath : undefined,
  };
}

/** The resource types a CRD serves: one per served version. */
export function customResourceTypes(crd: KubeObject): ResourceType[] {
  const spec = specOf(crd);
  const names = namesOf(crd);
  const group = String(spec.group ?? '');
  const storageVersion = storageVersionOf(crd);
  if (!storageVersion) return [];
  return versionsOf(crd)
    .filter((v) => v.served !== false)
    .map((v) => {
      const version = String(v.name);
      const subresources = isJsonObject(v.subresources) ? v.subresources : {};
      const hasStatus = isJsonObject(subresources.status);
      return {
        group,
        version,
        resource: String(names.plural),
        singular: String(names.singular ?? String(names.kind).toLowerCase()),
        kind: String(names.kind),
        listKind: String(names.listKind ?? `${String(names.kind)}List`),
        namespaced: spec.scope === 'Namespaced',
        shortNames: strings(names.shortNames),
        categories: strings(names.categories),
        verbs: ALL_VERBS,
        status: hasStatus,
        scale: scaleOf(v),
        extraSubresources: [],
        storageKey: `${group}/${String(names.plural)}`,
        storageVersion,
        strategy: customResourceStrategy(v, hasStatus),
        table: customResourceTable(printerColumnsOf(v)),
        crdName: crd.metadata.name,
      };
    });
}
