// The strategic-merge metadata of the built-in kinds, transcribed from the `patchStrategy` and
// `patchMergeKey` struct tags of k8s.io/api. Fields not listed here are replaced, not merged.
import type { PatchMeta } from './strategic-merge.js';

const merge = (mergeKey: string, fields?: Record<string, PatchMeta>): PatchMeta =>
  ({ strategy: 'merge', mergeKey, fields });
const mergeRetainKeys = (mergeKey: string): PatchMeta => ({ strategy: 'merge,retainKeys', mergeKey });
const primitiveSet: PatchMeta = { strategy: 'merge' };
const conditions = merge('type');

export const objectMetaPatch: PatchMeta = {
  fields: {
    finalizers: primitiveSet,
    ownerReferences: merge('uid'),
  },
};

const containerPatch: Record<string, PatchMeta> = {
  ports: merge('containerPort'),
  env: merge('name'),
  volumeMounts: merge('mountPath'),
  volumeDevices: merge('devicePath'),
};

export const podSpecPatch: PatchMeta = {
  fields: {
    containers: merge('name', containerPatch),
    initContainers: merge('name', containerPatch),
    ephemeralContainers: merge('name', containerPatch),
    volumes: mergeRetainKeys('name'),
    imagePullSecrets: merge('name'),
    hostAliases: merge('ip'),
    schedulingGates: merge('name'),
    resourceClaims: mergeRetainKeys('name'),
    topologySpreadConstraints: merge('topologyKey'),
  },
};

const podStatusPatch: PatchMeta = {
  fields: {
    conditions,
    podIPs: merge('ip'),
    hostIPs: merge('ip'),
    resourceClaimStatuses: merge('name'),
  },
};

const podTemplatePatch: PatchMeta = { fields: { metadata: objectMetaPatch, spec: podSpecPatch } };
const workloadStatusPatch: PatchMeta = { fields: { conditions } };

function kindPatch(spec?: PatchMeta, status?: PatchMeta): PatchMeta {
  const fields: Record<string, PatchMeta> = { metadata: objectMetaPatch };
  if (spec) fields.spec = spec;
  if (status) fields.status = status;
  return { fields };
}

export const patchMetaByKind: Record<string, PatchMeta> = {
  Pod: kindPatch(podSpecPatch, podStatusPatch),
  Deployment: kindPatch({ fields: { template: podTemplatePatch, strategy: { strategy: 'retainKeys' } } }, workloadStatusPatch),
  ReplicaSet: kindPatch({ fields: { template: podTemplatePatch } }, workloadStatusPatch),
  StatefulSet: kindPatch({ fields: { template: podTemplatePatch } }, workloadStatusPatch),
  Service: kindPatch({ fields: { ports: merge('port') } }, { fields: { conditions } }),
  Node: kindPatch({ fields: { podCIDRs: primitiveSet } }, { fields: { conditions, addresses: merge('type') } }),
  Namespace: kindPatch(undefined, { fields: { conditions } }),
  CustomResourceDefinition: kindPatch(undefined, { fields: { conditions } }),
};

/** Kinds without tagged lists still accept strategic merge (it then behaves like a merge patch). */
export function patchMetaFor(kind: string): PatchMeta {
  return patchMetaByKind[kind] ?? kindPatch();
}
