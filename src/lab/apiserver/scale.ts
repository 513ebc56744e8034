// The scale subresource: an autoscaling/v1 Scale view of a workload's replica counts.
import { badRequest } from './errors.js';
import { jsonPathValues } from './jsonpath.js';
import type { ScaleSubresource } from './resource-type.js';
import { formatLabelSelector, requirementsFromLabelSelector } from './selectors.js';
import { isJsonObject, type JsonObject, type KubeObject } from './types.js';

function first(obj: KubeObject, path: string): unknown {
  return jsonPathValues(obj, path)[0];
}

function selectorOf(obj: KubeObject, scale: ScaleSubresource): string {
  if (scale.selectorFromSpec) {
    return formatLabelSelector(requirementsFromLabelSelector(isJsonObject(obj.spec) ? obj.spec.selector : undefined));
  }
  if (!scale.labelSelectorPath) return '';
  const value = first(obj, scale.labelSelectorPath);
  return typeof value === 'string' ? value : '';
}

export function scaleOf(obj: KubeObject, scale: ScaleSubresource): KubeObject {
  const specReplicas = first(obj, scale.specReplicasPath);
  const statusReplicas = first(obj, scale.statusReplicasPath);
  const status: JsonObject = { replicas: typeof statusReplicas === 'number' ? statusReplicas : 0 };
  const selector = selectorOf(obj, scale);
  if (selector) status.selector = selector;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
      creationTimestamp: obj.metadata.creationTimestamp,
    },
    spec: { replicas: typeof specReplicas === 'number' ? specReplicas : 0 },
    status,
  };
}

/** Writes a value at a simple dotted path (".spec.replicas"), creating objects on the way. */
export function setAtPath(obj: JsonObject, path: string, value: unknown): void {
  const parts = path.replace(/^\./, '').split('.');
  if (parts.some((p) => p === '' || p.includes('['))) throw badRequest(`unsupported replicas path ${path}`);
  let node = obj;
  for (const part of parts.slice(0, -1)) {
    if (!isJsonObject(node[part])) node[part] = {};
    node = node[part] as JsonObject;
  }
  node[parts[parts.length - 1]] = value;
}
