// A kubelet registers its Node and keeps it alive: Ready condition with heartbeats and
// a Lease in kube-node-lease, as the node lifecycle controller expects.
import type { CoreV1Api, CoordinationV1Api, V1Node } from '@kubernetes/client-node';
import { setHeaderOptions, PatchStrategy } from '@kubernetes/client-node';

export interface NodeIdentity {
  name: string;
  ip: string;
  labels?: Record<string, string>;
}

function readyCondition(now: Date) {
  return { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'lab kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now };
}

export async function registerNode(core: CoreV1Api, id: NodeIdentity): Promise<void> {
  const now = new Date();
  const body: V1Node = {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: id.name, labels: { 'kubernetes.io/hostname': id.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', ...id.labels } },
    spec: {},
  };
  try {
    await core.createNode({ body });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  await postStatus(core, id, now);
}

export async function postStatus(core: CoreV1Api, id: NodeIdentity, now = new Date()): Promise<void> {
  const status = {
    addresses: [{ type: 'InternalIP', address: id.ip }, { type: 'Hostname', address: id.name }],
    conditions: [readyCondition(now)],
    nodeInfo: {
      machineID: id.name, systemUUID: id.name, bootID: id.name, kernelVersion: process.platform, osImage: 'fast lab', containerRuntimeVersion: 'lab://1',
      kubeletVersion: 'v1.32.0-fastlab', kubeProxyVersion: '', operatingSystem: 'linux', architecture: 'amd64',
    },
    capacity: { cpu: '2', memory: '4Gi', pods: '1000' },
    allocatable: { cpu: '2', memory: '4Gi', pods: '1000' },
  };
  await core.patchNodeStatus({ name: id.name, body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

export async function renewLease(coord: CoordinationV1Api, nodeName: string): Promise<void> {
  const now = new Date();
  const spec = { holderIdentity: nodeName, leaseDurationSeconds: 40, renewTime: now as unknown as Date };
  try {
    await coord.patchNamespacedLease({ name: nodeName, namespace: 'kube-node-lease', body: { spec } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    await coord.createNamespacedLease({ namespace: 'kube-node-lease', body: { metadata: { name: nodeName, namespace: 'kube-node-lease' }, spec } });
  }
}
