// The built-in resources the lab serves, with the discovery facts and registry strategies of
// kube-apiserver 1.32 (pkg/registry/*): what is defaulted, reset, validated and selectable.
import {
  defaultDeployment, defaultEndpointSlice, defaultEndpoints, defaultNamespace, defaultNetworkPolicy,
  defaultPod, defaultReplicaSet, defaultService, defaultStatefulSet, podQosClass,
} from './defaults.js';
import { coreEventToEventsV1, eventsV1ToCoreEvent } from './event-conversion.js';
import { patchMetaFor } from './patch-meta.js';
import { tablesByKind } from './printers.js';
import { ALL_VERBS, type ResourceType, type Strategy } from './resource-type.js';
import { allocateServiceAddresses } from './service-allocation.js';
import { defaultTableConvertor } from './table.js';
import { isJsonObject, type JsonObject, type KubeObject } from './types.js';
import {
  validateObjectMeta, validatePod, validatePodUpdate, validateWorkload, validateWorkloadUpdate,
} from './validation.js';

function field(obj: KubeObject, parts: string[]): string {
  let node: unknown = obj;
  for (const part of parts) node = isJsonObject(node) ? node[part] : undefined;
  if (node === undefined || node === null) return '';
  return typeof node === 'object' ? JSON.stringify(node) : String(node);
}

/** A strategy whose field labels are the given object paths. */
function fieldsFrom(paths: string[], extra: (obj: KubeObject) => Record<string, string> = () => ({})) {
  const parts = new Map(paths.map((p) => [p, p.split('.')]));
  return {
    fieldLabelNames: [...paths, ...Object.keys(extra({ metadata: {} }))],
    fieldLabels: (obj: KubeObject) => ({ ...Object.fromEntries(paths.map((p) => [p, field(obj, parts.get(p)!)])), ...extra(obj) }),
    fieldLabel: (obj: KubeObject, name: string) => {
      const path = parts.get(name);
      return path ? field(obj, path) : extra(obj)[name] ?? '';
    },
  };
}

function baseStrategy(kind: string, overrides: Partial<Strategy> = {}): Strategy {
  return {
    generation: false,
    allowUnconditionalUpdate: true,
    allowCreateOnUpdate: false,
    returnDeletedObject: false,
    nameRule: 'subdomain',
    patchMeta: patchMetaFor(kind),
    ...fieldsFrom([]),
    validate: validateObjectMeta,
    ...overrides,
  };
}

interface Declaration {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  verbs?: string[];
  status?: boolean;
  scale?: boolean;
  singular?: string;
  strategy: Strategy;
}

function declare(d: Declaration): ResourceType {
  return {
    group: d.group,
    version: d.version,
    resource: d.resource,
    singular: d.singular ?? d.kind.toLowerCase(),
    kind: d.kind,
    listKind: `${d.kind}List`,
    namespaced: d.namespaced,
    shortNames: d.shortNames ?? [],
    categories: d.categories ?? [],
    verbs: d.verbs ?? ALL_VERBS,
    status: d.status ?? false,
    scale: d.scale ? { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', selectorFromSpec: true } : undefined,
    extraSubresources: [],
    storageKey: `${d.group}/${d.resource}`,
    storageVersion: d.version,
    strategy: d.strategy,
    table: tablesByKind[d.kind] ?? defaultTableConvertor,
  };
}

const withMeta = (check: (obj: KubeObject) => ReturnType<typeof validateObjectMeta>) =>
  (obj: KubeObject) => [...validateObjectMeta(obj), ...check(obj)];

const workloadStrategy = (kind: string, defaults: (o: KubeObject) => void, labels: string[] = []): Strategy =>
  baseStrategy(kind, {
    generation: true,
    defaults,
    ...fieldsFrom(labels),
    prepareForCreate: (obj) => { obj.status = {}; },
    validate: withMeta(validateWorkload),
    validateUpdate: validateWorkloadUpdate,
  });

const podStrategy = baseStrategy('Pod', {
  returnDeletedObject: true,
  defaults: defaultPod,
  ...fieldsFrom(
    ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
    (pod) => ({ 'spec.hostNetwork': String(isJsonObject(pod.spec) && pod.spec.hostNetwork === true) }),
  ),
  prepareForCreate: (pod) => { pod.status = { phase: 'Pending', qosClass: podQosClass(pod) }; },
  validate: withMeta(validatePod),
  validateUpdate: validatePodUpdate,
  gracePeriod(pod, requested) {
    const spec = isJsonObject(pod.spec) ? pod.spec : {};
    const phase = isJsonObject(pod.status) ? pod.status.phase : undefined;
    // An unscheduled or finished pod has no kubelet to wait for (pod strategy CheckGracefulDelete).
    if (!spec.nodeName || phase === 'Succeeded' || phase === 'Failed') return 0;
    if (requested !== undefined) return requested;
    return typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30;
  },
});

const serviceStrategy = baseStrategy('Service', {
  returnDeletedObject: true,
  nameRule: 'dns1035',
  defaults: defaultService,
  ...fieldsFrom(['spec.clusterIP', 'spec.type']),
  prepareForCreate: (svc, ctx) => allocateServiceAddresses(svc, ctx.storedObjects('/services'), ctx.serviceCidr),
  prepareForUpdate(svc, old) {
    // Allocated addresses are kept when an update leaves them out (they are immutable).
    const spec = isJsonObject(svc.spec) ? svc.spec : {};
    const oldSpec = isJsonObject(old.spec) ? old.spec : {};
    if (!spec.clusterIP && oldSpec.clusterIP) {
      spec.clusterIP = oldSpec.clusterIP;
      spec.clusterIPs = oldSpec.clusterIPs;
    }
  },
});

const namespaceStrategy = baseStrategy('Namespace', {
  returnDeletedObject: true,
  nameRule: 'label',
  defaults: defaultNamespace,
  ...fieldsFrom(['status.phase']),
  prepareForCreate: (ns) => { ns.status = { phase: 'Active' }; },
  prepareForUpdate(ns, old) {
    // spec.finalizers change only through the finalize subresource.
    const spec = isJsonObject(ns.spec) ? ns.spec : (ns.spec = {});
    (spec as JsonObject).finalizers = isJsonObject(old.spec) ? old.spec.finalizers : undefined;
  },
  blocksDeletion: (ns) => isJsonObject(ns.spec) && Array.isArray(ns.spec.finalizers) && ns.spec.finalizers.length > 0,
  markDeleting: (ns) => { ns.status = { ...(isJsonObject(ns.status) ? ns.status : {}), phase: 'Terminating' }; },
});

const eventFieldLabels = fieldsFrom(
  ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid',
    'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath',
    'reason', 'reportingComponent', 'type'],
  (e) => ({ source: field(e, ['source', 'component']) }),
);

const eventStrategy = baseStrategy('Event', { allowCreateOnUpdate: true, ...eventFieldLabels });

export function builtinResourceTypes(): ResourceType[] {
  const pods = declare({ group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true, shortNames: ['po'], categories: ['all'], status: true, strategy: podStrategy });
  pods.extraSubresources.push({ name: 'binding', kind: 'Binding', verbs: ['create'] });
  const namespaces = declare({ group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'], status: true, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], strategy: namespaceStrategy });
  namespaces.extraSubresources.push({ name: 'finalize', kind: 'Namespace', verbs: ['update'] });
  const eventsV1 = declare({ group: 'events.k8s.io', version: 'v1', resource: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'], strategy: eventStrategy });
  eventsV1.storageKey = '/events';
  eventsV1.storageVersion = 'v1';
  eventsV1.fromStorage = coreEventToEventsV1;
  eventsV1.toStorage = eventsV1ToCoreEvent;

  return [
    namespaces,
    declare({ group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no'], status: true, strategy: baseStrategy('Node', { ...fieldsFrom(['spec.unschedulable']) }) }),
    pods,
    declare({ group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true, shortNames: ['svc'], categories: ['all'], status: true, strategy: serviceStrategy }),
    declare({ group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints', singular: 'endpoints', namespaced: true, shortNames: ['ep'], strategy: baseStrategy('Endpoints', { allowCreateOnUpdate: true, defaults: defaultEndpoints }) }),
    declare({ group: '', version: 'v1', resource: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'], strategy: eventStrategy }),
    declare({ group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true, shortNames: ['deploy'], categories: ['all'], status: true, scale: true, strategy: workloadStrategy('Deployment', defaultDeployment) }),
    declare({ group: 'apps', version: 'v1', resource: 'replicasets', kind: 'ReplicaSet', namespaced: true, shortNames: ['rs'], categories: ['all'], status: true, scale: true, strategy: workloadStrategy('ReplicaSet', defaultReplicaSet, ['status.replicas']) }),
    declare({ group: 'apps', version: 'v1', resource: 'statefulsets', kind: 'StatefulSet', namespaced: true, shortNames: ['sts'], categories: ['all'], status: true, scale: true, strategy: workloadStrategy('StatefulSet', defaultStatefulSet) }),
    declare({ group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice', namespaced: true, strategy: baseStrategy('EndpointSlice', { generation: true, defaults: defaultEndpointSlice }) }),
    declare({ group: 'networking.k8s.io', version: 'v1', resource: 'networkpolicies', kind: 'NetworkPolicy', namespaced: true, shortNames: ['netpol'], strategy: baseStrategy('NetworkPolicy', { generation: true, defaults: defaultNetworkPolicy }) }),
    eventsV1,
    declare({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true, strategy: baseStrategy('Lease') }),
  ];
}
