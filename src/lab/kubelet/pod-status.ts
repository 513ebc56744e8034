// The status a kubelet reports for a pod whose sandbox is up (pods run no images in
// the lab, so every container is reported running and ready).
import type { V1Pod, V1PodStatus } from '@kubernetes/client-node';

export function runningStatus(pod: V1Pod, podIps: string[], hostIp: string, now = new Date()): V1PodStatus {
  const started = pod.status?.startTime ?? now;
  const cond = (type: string) => ({ type, status: 'True', lastTransitionTime: now, lastProbeTime: undefined as unknown as Date });
  return {
    ...pod.status,
    phase: 'Running',
    hostIP: hostIp,
    hostIPs: [{ ip: hostIp }],
    podIP: podIps[0],
    podIPs: podIps.map((ip) => ({ ip })),
    startTime: started,
    conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map(cond),
    containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
      name: c.name, image: c.image ?? '', imageID: '', ready: true, started: true, restartCount: 0,
      containerID: `lab://${pod.metadata?.uid ?? ''}-${c.name}`,
      state: { running: { startedAt: started } },
    })),
  };
}

export function pendingStatus(pod: V1Pod, reason: string, message: string, hostIp: string, now = new Date()): V1PodStatus {
  return {
    ...pod.status,
    phase: 'Pending',
    hostIP: hostIp,
    hostIPs: [{ ip: hostIp }],
    conditions: [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
      { type: 'Ready', status: 'False', reason, message, lastTransitionTime: now },
    ],
    containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
      name: c.name, image: c.image ?? '', imageID: '', ready: false, restartCount: 0,
      state: { waiting: { reason: 'ContainerCreating', message } },
    })),
  };
}

/** The pod's addresses from a CNI result (any version). */
export function addressesFromResult(result: unknown): string[] {
  const ips = (result as { ips?: Array<{ address: string }> } | undefined)?.ips ?? [];
  return ips.map((i) => i.address.split('/')[0]!);
}
