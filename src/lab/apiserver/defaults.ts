// The defaulting kube-apiserver applies to built-in kinds (k8s.io/kubernetes pkg/apis/*/v1
// defaults.go plus the admission plugins every cluster runs), so objects read back look like a
// real cluster's and `kubectl describe` has the fields it prints.
import { isJsonObject, type JsonObject, type KubeObject } from './types.js';

function objectAt(parent: JsonObject, key: string): JsonObject {
  const value = parent[key];
  if (isJsonObject(value)) return value;
  const fresh: JsonObject = {};
  parent[key] = fresh;
  return fresh;
}

function objectsIn(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isJsonObject) : [];
}

function defaultPortsProtocol(ports: unknown): void {
  for (const port of objectsIn(ports)) port.protocol ??= 'TCP';
}

/** Images without a tag, or tagged :latest, are pulled Always; others IfNotPresent. */
function defaultPullPolicy(image: unknown): string {
  if (typeof image !== 'string') return 'IfNotPresent';
  if (image.includes('@')) return 'IfNotPresent';
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const tag = lastSegment.includes(':') ? lastSegment.slice(lastSegment.indexOf(':') + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultContainer(container: JsonObject): void {
  container.terminationMessagePath ??= '/dev/termination-log';
  container.terminationMessagePolicy ??= 'File';
  container.imagePullPolicy ??= defaultPullPolicy(container.image);
  container.resources ??= {};
  defaultPortsProtocol(container.ports);
}

export function defaultPodSpec(spec: JsonObject): void {
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  for (const c of objectsIn(spec.containers)) defaultContainer(c);
  for (const c of objectsIn(spec.initContainers)) defaultContainer(c);
}

function defaultPodTemplate(spec: JsonObject): void {
  const template = objectAt(spec, 'template');
  defaultPodSpec(objectAt(template, 'spec'));
}

/** The tolerations the DefaultTolerationSeconds admission plugin adds to every pod. */
const DEFAULT_TOLERATIONS = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'];

export function defaultPod(pod: KubeObject): void {
  const spec = objectAt(pod, 'spec');
  defaultPodSpec(spec);
  spec.serviceAccountName ??= 'default';
  spec.serviceAccount ??= spec.serviceAccountName;
  spec.priority ??= 0;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  const tolerations = objectsIn(spec.tolerations);
  for (const key of DEFAULT_TOLERATIONS) {
    if (!tolerations.some((t) => t.key === key)) {
      tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
    }
  }
  spec.tolerations = tolerations;
}

function hasResources(containers: JsonObject[], field: 'requests' | 'limits'): boolean {
  return containers.some((c) => isJsonObject(c.resources) && isJsonObject(c.resources[field]) &&
    Object.keys(c.resources[field] as JsonObject).length > 0);
}

/** The pod's QoS class (k8s.io/kubernetes pkg/apis/core/helper/qos), simplified to cpu/memory. */
export function podQosClass(pod: KubeObject): string {
  const spec = isJsonObject(pod.spec) ? pod.spec : {};
  const containers = [...objectsIn(spec.containers), ...objectsIn(spec.initContainers)];
  if (!hasResources(containers, 'requests') && !hasResources(containers, 'limits')) return 'BestEffort';
  const guaranteed = containers.every((c) => {
    const res = isJsonObject(c.resources) ? c.resources : {};
    const limits = isJsonObject(res.limits) ? res.limits : {};
    const requests = isJsonObject(res.requests) ? res.requests : limits;
    return ['cpu', 'memory'].every((r) => limits[r] !== undefined && requests[r] === limits[r]);
  });
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

export function defaultDeployment(obj: KubeObject): void {
  const spec = objectAt(obj, 'spec');
  spec.replicas ??= 1;
  const strategy = objectAt(spec, 'strategy');
  strategy.type ??= 'RollingUpdate';
  if (strategy.type === 'RollingUpdate') {
    const rolling = objectAt(strategy, 'rollingUpdate');
    rolling.maxUnavailable ??= '25%';
    rolling.maxSurge ??= '25%';
  }
  spec.revisionHistoryLimit ??= 10;
  spec.progressDeadlineSeconds ??= 600;
  defaultPodTemplate(spec);
}

export function defaultReplicaSet(obj: KubeObject): void {
  const spec = objectAt(obj, 'spec');
  spec.replicas ??= 1;
  defaultPodTemplate(spec);
}

export function defaultStatefulSet(obj: KubeObject): void {
  const spec = objectAt(obj, 'spec');
  spec.replicas ??= 1;
  spec.podManagementPolicy ??= 'OrderedReady';
  const strategy = objectAt(spec, 'updateStrategy');
  strategy.type ??= 'RollingUpdate';
  if (strategy.type === 'RollingUpdate') objectAt(strategy, 'rollingUpdate').partition ??= 0;
  spec.revisionHistoryLimit ??= 10;
  spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
  defaultPodTemplate(spec);
}

export function defaultService(obj: KubeObject): void {
  const spec = objectAt(obj, 'spec');
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  spec.internalTrafficPolicy ??= 'Cluster';
  for (const port of objectsIn(spec.ports)) {
    port.protocol ??= 'TCP';
    port.targetPort ??= port.port;
  }
  if (spec.type !== 'ExternalName') {
    spec.ipFamilies ??= ['IPv4'];
    spec.ipFamilyPolicy ??= 'SingleStack';
  }
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') spec.externalTrafficPolicy ??= 'Cluster';
  obj.status ??= { loadBalancer: {} };
}

export function defaultNamespace(obj: KubeObject): void {
  const name = obj.metadata.name ?? '';
  obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': name };
  const spec = objectAt(obj, 'spec');
  spec.finalizers ??= ['kubernetes'];
  const status = objectAt(obj, 'status');
  status.phase ??= 'Active';
}

export function defaultNetworkPolicy(obj: KubeObject): void {
  const spec = objectAt(obj, 'spec');
  if (spec.policyTypes === undefined) {
    spec.policyTypes = Array.isArray(spec.egress) ? ['Ingress', 'Egress'] : ['Ingress'];
  }
  for (const rule of [...objectsIn(spec.ingress), ...objectsIn(spec.egress)]) defaultPortsProtocol(rule.ports);
}

export function defaultEndpoints(obj: KubeObject): void {
  for (const subset of objectsIn(obj.subsets)) defaultPortsProtocol(subset.ports);
}

export function defaultEndpointSlice(obj: KubeObject): void {
  defaultPortsProtocol(obj.ports);
}
