// Table columns of the built-in kinds, after k8s.io/kubernetes pkg/printers/internalversion, so
// `kubectl get` (and `-o wide`, whose columns have priority 1) prints what it prints on a cluster.
import { formatLabelSelector, requirementsFromLabelSelector } from './selectors.js';
import { ageOf, column, NAME_COLUMN, type TableConvertor } from './table.js';
import { isJsonObject, type JsonObject, type KubeObject } from './types.js';

const wide = { priority: 1 };
const AGE = column('Age', 'string', { description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' });

function obj(value: unknown): JsonObject {
  return isJsonObject(value) ? value : {};
}

function list(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isJsonObject) : [];
}

function num(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

function orNone(value: unknown): string {
  return typeof value === 'string' && value !== '' ? value : '<none>';
}

function age(o: KubeObject, now: number): string {
  return ageOf(o.metadata.creationTimestamp, now);
}

function selectorString(selector: unknown): string {
  const text = formatLabelSelector(requirementsFromLabelSelector(selector));
  return text === '' ? '<none>' : text;
}

function templateContainers(o: KubeObject): JsonObject[] {
  return list(obj(obj(obj(o.spec).template).spec).containers);
}

const containersAndImages = (o: KubeObject): string[] => {
  const containers = templateContainers(o);
  return [containers.map((c) => String(c.name ?? '')).join(','), containers.map((c) => String(c.image ?? '')).join(',')];
};

// ---- pods -------------------------------------------------------------------------------------

function conditionTrue(status: JsonObject, type: string): boolean {
  return list(status.conditions).some((c) => c.type === type && c.status === 'True');
}

function terminatedReason(state: JsonObject, prefix = ''): string {
  if (typeof state.reason === 'string' && state.reason !== '') return `${prefix}${state.reason}`;
  if (num(state.signal) !== 0) return `${prefix}Signal:${num(state.signal)}`;
  return `${prefix}ExitCode:${num(state.exitCode)}`;
}

/** The STATUS column of a pod (printPod): the most telling container state, or the phase. */
function podStatus(pod: KubeObject): { reason: string; ready: number; restarts: number } {
  const spec = obj(pod.spec);
  const status = obj(pod.status);
  let reason = typeof status.reason === 'string' && status.reason !== '' ? status.reason : String(status.phase ?? 'Pending');
  let restarts = 0;
  let ready = 0;
  let initializing = false;
  const inits = list(status.initContainerStatuses);
  for (let i = 0; i < inits.length; i++) {
    const cs = inits[i];
    const state = obj(cs.state);
    restarts += num(cs.restartCount);
    const terminated = obj(state.terminated);
    const waiting = obj(state.waiting);
    if (isJsonObject(state.terminated) && num(terminated.exitCode) === 0) continue;
    initializing = true;
    if (isJsonObject(state.terminated)) reason = terminatedReason(terminated, 'Init:');
    else if (typeof waiting.reason === 'string' && waiting.reason !== '' && waiting.reason !== 'PodInitializing') reason = `Init:${waiting.reason}`;
    else reason = `Init:${i}/${list(spec.initContainers).length}`;
    break;
  }
  if (!initializing || conditionTrue(status, 'Initialized')) {
    restarts = 0;
    let hasRunning = false;
    for (const cs of [...list(status.containerStatuses)].reverse()) {
      const state = obj(cs.state);
      restarts += num(cs.restartCount);
      const waiting = obj(state.waiting);
      if (typeof waiting.reason === 'string' && waiting.reason !== '') reason = waiting.reason;
      else if (isJsonObject(state.terminated)) reason = terminatedReason(obj(state.terminated));
      else if (cs.ready === true && isJsonObject(state.running)) {
        hasRunning = true;
        ready++;
      }
    }
    if (reason === 'Completed' && hasRunning) reason = conditionTrue(status, 'Ready') ? 'Running' : 'NotReady';
  }
  if (pod.metadata.deletionTimestamp) reason = status.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  return { reason, ready, restarts };
}

const podTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    column('Ready', 'string', { description: 'The aggregate readiness state of this pod for accepting traffic.' }),
    column('Status', 'string', { description: 'The aggregate status of the containers in this pod.' }),
    column('Restarts', 'string', { description: 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.' }),
    AGE,
    column('IP', 'string', { ...wide, description: 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.' }),
    column('Node', 'string', { ...wide, description: 'NodeName is a request to schedule this pod onto a specific node.' }),
    column('Nominated Node', 'string', { ...wide, description: 'nominatedNodeName is set only when this pod preempts other pods on the node.' }),
    column('Readiness Gates', 'string', { ...wide, description: 'If specified, all readiness gates will be evaluated for pod readiness.' }),
  ],
  cells(pod, now) {
    const spec = obj(pod.spec);
    const status = obj(pod.status);
    const { reason, ready, restarts } = podStatus(pod);
    const gates = list(spec.readinessGates);
    const gatesCell = gates.length === 0
      ? '<none>'
      : `${gates.filter((g) => conditionTrue(status, String(g.conditionType))).length}/${gates.length}`;
    return [
      pod.metadata.name ?? '',
      `${ready}/${list(spec.containers).length}`,
      reason,
      String(restarts),
      age(pod, now),
      orNone(status.podIP),
      orNone(spec.nodeName),
      orNone(status.nominatedNodeName),
      gatesCell,
    ];
  },
};

// ---- nodes and namespaces ---------------------------------------------------------------------

function nodeStatus(node: KubeObject): string {
  const ready = list(obj(node.status).conditions).find((c) => c.type === 'Ready');
  const states = [ready?.status === 'True' ? 'Ready' : ready?.status === 'False' ? 'NotReady' : 'Unknown'];
  if (obj(node.spec).unschedulable === true) states.push('SchedulingDisabled');
  return states.join(',');
}

function nodeRoles(node: KubeObject): string {
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(node.metadata.labels ?? {})) {
    if (key.startsWith('node-role.kubernetes.io/')) roles.add(key.slice('node-role.kubernetes.io/'.length));
    else if (key === 'kubernetes.io/role' && value) roles.add(value);
  }
  return roles.size === 0 ? '<none>' : [...roles].sort().join(',');
}

function nodeAddress(node: KubeObject, type: string): string {
  return orNone(list(obj(node.status).addresses).find((a) => a.type === type)?.address);
}

const nodeTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    column('Status', 'string', { description: 'The status of the node' }),
    column('Roles', 'string', { description: 'The roles of the node' }),
    AGE,
    column('Version', 'string', { description: 'Kubelet Version reported by the node.' }),
    column('Internal-IP', 'string', { ...wide, description: 'List of addresses reachable to the node.' }),
    column('External-IP', 'string', { ...wide, description: 'List of addresses reachable to the node.' }),
    column('OS-Image', 'string', { ...wide, description: 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).' }),
    column('Kernel-Version', 'string', { ...wide, description: "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)." }),
    column('Container-Runtime', 'string', { ...wide, description: 'Container runtime version reported by the node.' }),
  ],
  cells(node, now) {
    const info = obj(obj(node.status).nodeInfo);
    return [
      node.metadata.name ?? '',
      nodeStatus(node),
      nodeRoles(node),
      age(node, now),
      String(info.kubeletVersion ?? ''),
      nodeAddress(node, 'InternalIP'),
      nodeAddress(node, 'ExternalIP'),
      orNone(info.osImage),
      orNone(info.kernelVersion),
      orNone(info.containerRuntimeVersion),
    ];
  },
};

const namespaceTable: TableConvertor = {
  columns: [NAME_COLUMN, column('Status', 'string', { description: 'The status of the namespace' }), AGE],
  cells: (ns, now) => [ns.metadata.name ?? '', String(obj(ns.status).phase ?? ''), age(ns, now)],
};

// ---- workloads ----------------------------------------------------------------------------------

const CONTAINERS = column('Containers', 'string', { ...wide, description: 'Names of each container in the template.' });
const IMAGES = column('Images', 'string', { ...wide, description: 'Images referenced by each container in the template.' });
const SELECTOR = column('Selector', 'string', { ...wide, description: 'Label selector for pods.' });

const deploymentTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    column('Ready', 'string', { description: 'Number of the pod with ready state' }),
    column('Up-to-date', 'string', { description: 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.' }),
    column('Available', 'string', { description: 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.' }),
    AGE, CONTAINERS, IMAGES, SELECTOR,
  ],
  cells(d, now) {
    const spec = obj(d.spec);
    const status = obj(d.status);
    return [
      d.metadata.name ?? '',
      `${num(status.readyReplicas)}/${num(spec.replicas)}`,
      num(status.updatedReplicas),
      num(status.availableReplicas),
      age(d, now),
      ...containersAndImages(d),
      selectorString(spec.selector),
    ];
  },
};

const replicaSetTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    column('Desired', 'integer', { description: 'Replicas is the number of desired replicas.' }),
    column('Current', 'integer', { description: 'Replicas is the most recently observed number of replicas.' }),
    column('Ready', 'integer', { description: 'The number of ready replicas for this replica set.' }),
    AGE, CONTAINERS, IMAGES, SELECTOR,
  ],
  cells(rs, now) {
    const status = obj(rs.status);
    return [
      rs.metadata.name ?? '',
      num(obj(rs.spec).replicas),
      num(status.replicas),
      num(status.readyReplicas),
      age(rs, now),
      ...containersAndImages(rs),
      selectorString(obj(rs.spec).selector),
    ];
  },
};

const statefulSetTable: TableConvertor = {
  columns: [NAME_COLUMN, column('Ready', 'string', { description: 'Number of the pod with ready state' }), AGE, CONTAINERS, IMAGES],
  cells: (s, now) => [
    s.metadata.name ?? '',
    `${num(obj(s.status).readyReplicas)}/${num(obj(s.spec).replicas)}`,
    age(s, now),
    ...containersAndImages(s),
  ],
};

// ---- networking -------------------------------------------------------------------------------

function servicePorts(spec: JsonObject): string {
  const ports = list(spec.ports).map((p) => {
    const nodePort = p.nodePort ? `:${String(p.nodePort)}` : '';
    return `${String(p.port)}${nodePort}/${String(p.protocol ?? 'TCP')}`;
  });
  return ports.length === 0 ? '<none>' : ports.join(',');
}

function serviceExternalIp(spec: JsonObject, status: JsonObject): string {
  const external = Array.isArray(spec.externalIPs) ? spec.externalIPs.map(String) : [];
  switch (spec.type) {
    case 'LoadBalancer': {
      const ingress = list(obj(status.loadBalancer).ingress).map((i) => String(i.ip ?? i.hostname ?? ''));
      const all = [...ingress, ...external];
      return all.length > 0 ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return String(spec.externalName ?? '<none>');
    default:
      return external.length > 0 ? external.join(',') : '<none>';
  }
}

function mapSelector(selector: unknown): string {
  const entries = Object.entries(obj(selector)).sort(([a], [b]) => (a < b ? -1 : 1));
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${String(v)}`).join(',');
}

const serviceTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    column('Type', 'string', { description: 'type determines how the Service is exposed.' }),
    column('Cluster-IP', 'string', { description: 'clusterIP is the IP address of the service.' }),
    column('External-IP', 'string', { description: 'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.' }),
    column('Port(s)', 'string', { description: 'The list of ports that are exposed by this service.' }),
    AGE,
    column('Selector', 'string', { ...wide, description: 'Route service traffic to pods with label keys and values matching this selector.' }),
  ],
  cells(svc, now) {
    const spec = obj(svc.spec);
    return [
      svc.metadata.name ?? '',
      String(spec.type ?? 'ClusterIP'),
      orNone(spec.clusterIP),
      serviceExternalIp(spec, obj(svc.status)),
      servicePorts(spec),
      age(svc, now),
      mapSelector(spec.selector),
    ];
  },
};

/** "a, b, c + 2 more..." as kubectl abbreviates endpoint lists. */
function abbreviate(items: string[]): string {
  if (items.length === 0) return '<none>';
  const shown = items.slice(0, 3).join(',');
  return items.length > 3 ? `${shown} + ${items.length - 3} more...` : shown;
}

const endpointsTable: TableConvertor = {
  columns: [NAME_COLUMN, column('Endpoints', 'string', { description: 'Endpoints of the service' }), AGE],
  cells(ep, now) {
    const items: string[] = [];
    for (const subset of list(ep.subsets)) {
      const ports = list(subset.ports);
      for (const address of list(subset.addresses)) {
        if (ports.length === 0) items.push(String(address.ip));
        for (const port of ports) items.push(`${String(address.ip)}:${String(port.port)}`);
      }
    }
    return [ep.metadata.name ?? '', abbreviate(items), age(ep, now)];
  },
};

const endpointSliceTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    column('AddressType', 'string', { description: 'The IP protocol for this slice' }),
    column('Ports', 'string', { description: 'The ports contained in this slice' }),
    column('Endpoints', 'string', { description: 'The addresses contained in this slice' }),
    AGE,
  ],
  cells(slice, now) {
    const ports = list(slice.ports).map((p) => String(p.port ?? ''));
    const addresses = list(slice.endpoints).flatMap((e) => (Array.isArray(e.addresses) ? e.addresses.map(String) : []));
    return [
      slice.metadata.name ?? '',
      String(slice.addressType ?? ''),
      ports.length === 0 ? '<unset>' : ports.join(','),
      abbreviate(addresses),
      age(slice, now),
    ];
  },
};

const networkPolicyTable: TableConvertor = {
  columns: [NAME_COLUMN, column('Pod-Selector', 'string', { description: 'Selects the pods to which this NetworkPolicy object applies.' }), AGE],
  cells: (np, now) => [np.metadata.name ?? '', selectorString(obj(np.spec).podSelector), age(np, now)],
};

// ---- events and leases ----------------------------------------------------------------------

/** Reads an event in either representation (core/v1 or events.k8s.io/v1). */
function eventView(e: KubeObject): { regarding: JsonObject; note: string; count: number; first: unknown; last: unknown; source: string } {
  const regarding = obj(e.involvedObject ?? e.regarding);
  const series = obj(e.series);
  const source = obj(e.source ?? e.deprecatedSource);
  const component = String(source.component ?? e.reportingComponent ?? e.reportingController ?? '');
  const host = typeof source.host === 'string' && source.host !== '' ? `, ${source.host}` : '';
  const last = series.lastObservedTime ?? e.lastTimestamp ?? e.deprecatedLastTimestamp ?? e.eventTime;
  return {
    regarding,
    note: String(e.message ?? e.note ?? ''),
    count: num(series.count) || num(e.count ?? e.deprecatedCount),
    first: e.firstTimestamp ?? e.deprecatedFirstTimestamp ?? e.eventTime,
    last,
    source: `${component}${host}`,
  };
}

const eventTable: TableConvertor = {
  columns: [
    column('Last Seen', 'string', { description: 'The time at which the most recent occurrence of this event was recorded.' }),
    column('Type', 'string', { description: 'Type of this event (Normal, Warning), new types could be added in the future.' }),
    column('Reason', 'string', { description: 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.' }),
    column('Object', 'string', { description: 'The object this Event is about.' }),
    column('Subobject', 'string', { ...wide, description: 'The field of the object this event is about.' }),
    column('Source', 'string', { ...wide, description: 'The component reporting this event.' }),
    column('Message', 'string', { description: 'A human-readable description of the status of this operation.' }),
    column('First Seen', 'string', { ...wide, description: 'The time at which the event was first recorded.' }),
    column('Count', 'string', { ...wide, description: 'The number of times this event has occurred.' }),
    column('Name', 'string', { ...wide, format: 'name', description: 'Name of the event.' }),
  ],
  cells(e, now) {
    const v = eventView(e);
    const kind = String(v.regarding.kind ?? '').toLowerCase();
    return [
      ageOf(v.last, now),
      String(e.type ?? ''),
      String(e.reason ?? ''),
      `${kind}/${String(v.regarding.name ?? '')}`,
      String(v.regarding.fieldPath ?? ''),
      v.source,
      v.note.trim(),
      ageOf(v.first, now),
      String(v.count),
      e.metadata.name ?? '',
    ];
  },
};

const leaseTable: TableConvertor = {
  columns: [NAME_COLUMN, column('Holder', 'string', { description: 'The holder of the lease' }), AGE],
  cells: (l, now) => [l.metadata.name ?? '', String(obj(l.spec).holderIdentity ?? ''), age(l, now)],
};

const crdTable: TableConvertor = {
  columns: [NAME_COLUMN, column('Created At', 'date', { description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' })],
  cells: (crd) => [crd.metadata.name ?? '', crd.metadata.creationTimestamp ?? null],
};

export const tablesByKind: Record<string, TableConvertor> = {
  Pod: podTable,
  Node: nodeTable,
  Namespace: namespaceTable,
  Deployment: deploymentTable,
  ReplicaSet: replicaSetTable,
  StatefulSet: statefulSetTable,
  Service: serviceTable,
  Endpoints: endpointsTable,
  EndpointSlice: endpointSliceTable,
  NetworkPolicy: networkPolicyTable,
  Event: eventTable,
  Lease: leaseTable,
  CustomResourceDefinition: crdTable,
};
