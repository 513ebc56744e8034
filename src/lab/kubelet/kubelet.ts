// The lab kubelet: for each pod bound to its node it creates the pod's network
// namespace and calls the CNI plugins exactly as kubelet with containerd does, then
// reports the pod's addresses; on deletion it calls DEL and removes the namespace.
// A failed ADD is recorded as an event and retried with back-off, as kubelet does.
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { setHeaderOptions, PatchStrategy } from '@kubernetes/client-node';
import { CniRunner, CniPluginError, loadConfList } from './cni-runner.js';
import { SandboxStore, podNetnsName, newContainerId, type Sandbox } from './sandbox-store.js';
import { runningStatus, pendingStatus, addressesFromResult } from './pod-status.js';
import type { Logger } from '../../agent/log.js';
import { addNamedNetnsSync, deleteNamedNetnsSync, NetnsError, NETNS_RUN_DIR } from '../../dataplane/net/netns.js';

export interface KubeletOptions {
  nodeName: string;
  nodeIp: string;
  cniConfDir: string;
  cniBinDirs: string[];
  stateDir: string;
  /** Pod namespaces are named <prefix><hash of the pod UID>. */
  netnsPrefix: string;
}

const MAX_BACKOFF_MS = 30_000;
const STATUS_RETRY_MS = 1000;

export class LabKubelet {
  private readonly sandboxes: SandboxStore;
  private readonly runner: CniRunner;
  private readonly retries = new Map<string, { attempt: number; timer: NodeJS.Timeout }>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly latest = new Map<string, V1Pod>();
  private readonly statusRetries = new Set<string>();

  constructor(private readonly core: CoreV1Api, private readonly o: KubeletOptions, private readonly log: Logger) {
    this.sandboxes = new SandboxStore(o.stateDir);
    this.runner = new CniRunner(o.cniBinDirs);
  }

  /** Called for every add/update of a pod bound to this node. */
  podChanged(pod: V1Pod): void {
    const uid = pod.metadata!.uid!;
    this.latest.set(uid, pod);
    if (pod.metadata?.deletionTimestamp) this.serialise(uid, () => this.teardown(uid, true));
    // A pod waiting out its back-off is retried by its timer, not by every update (our own
    // status writes are updates too, and would otherwise turn failures into a busy loop).
    else if (!this.retries.has(uid)) this.serialise(uid, () => this.ensureRunning(uid));
  }

  podDeleted(pod: V1Pod): void {
    const uid = pod.metadata!.uid!;
    this.latest.delete(uid);
    this.serialise(uid, () => this.teardown(uid, false));
  }

  /** After a (re)list: tear down sandboxes whose pods no longer exist. */
  resync(existing: V1Pod[]): void {
    const live = new Set(existing.map((p) => p.metadata!.uid!));
    for (const s of this.sandboxes.list()) if (!live.has(s.uid)) this.serialise(s.uid, () => this.teardown(s.uid, false));
  }

  // One operation per pod at a time; later events re-read the latest pod.
  private serialise(uid: string, fn: () => Promise<void>): void {
    const prev = this.inFlight.get(uid) ?? Promise.resolve();
    const next = prev.then(fn, fn).catch((err: Error) => this.log.error('pod sync failed', { uid, err: err.message }));
    this.inFlight.set(uid, next);
    void next.finally(() => { if (this.inFlight.get(uid) === next) this.inFlight.delete(uid); });
  }

  private async ensureRunning(uid: string): Promise<void> {
    const pod = this.latest.get(uid);
    if (!pod || pod.metadata?.deletionTimestamp) return;
    const existing = this.sandboxes.get(uid);
    if (existing) {
      if (pod.status?.podIP !== addressesFromResult(existing.result)[0]) await this.reportRunning(pod, existing);
      return;
    }
    const sandbox: Sandbox = {
      uid, namespace: pod.metadata!.namespace!, name: pod.metadata!.name!, netns: podNetnsName(uid, this.o.netnsPrefix),
      containerId: newContainerId(), createdAt: new Date().toISOString(),
    };
    try {
      createNetns(sandbox.netns);
    } catch (err) {
      await this.failed(pod, err as Error);
      return;
    }
    try {
      sandbox.result = await this.runner.add(loadConfList(this.o.cniConfDir), this.attachment(sandbox, pod));
    } catch (err) {
      await this.runner.del(loadConfList(this.o.cniConfDir), this.attachment(sandbox, pod)).catch(() => undefined);
      deleteNetns(sandbox.netns, this.log);
      await this.failed(pod, err as Error);
      return;
    }
    this.sandboxes.put(sandbox);
    this.clearRetry(uid);
    this.log.info('pod sandbox ready', { pod: `${sandbox.namespace}/${sandbox.name}`, netns: sandbox.netns, ips: addressesFromResult(sandbox.result) });
    await this.reportRunning(pod, sandbox);
  }

  private attachment(s: Sandbox, pod?: V1Pod) {
    const ports = (pod?.spec?.containers ?? []).flatMap((c) => c.ports ?? []).filter((p) => p.hostPort)
      .map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: (p.protocol ?? 'TCP').toLowerCase() }));
    return {
      containerId: s.containerId, netns: `${NETNS_RUN_DIR}/${s.netns}`, ifName: 'eth0',
      args: { K8S_POD_NAMESPACE: s.namespace, K8S_POD_NAME: s.name, K8S_POD_INFRA_CONTAINER_ID: s.containerId, K8S_POD_UID: s.uid },
      capabilityArgs: ports.length ? { portMappings: ports } : undefined,
    };
  }

  private async teardown(uid: string, stillExists: boolean): Promise<void> {
    this.clearRetry(uid);
    const s = this.sandboxes.get(uid);
    if (s) {
      await this.runner.del(loadConfList(this.o.cniConfDir), this.attachment(s), s.result).catch((err: Error) => {
        this.log.warn('CNI DEL failed; removing the sandbox anyway (the agent finishes it later)', { uid, err: err.message });
      });
      deleteNetns(s.netns, this.log);
      this.sandboxes.remove(uid);
      this.log.info('pod sandbox removed', { pod: `${s.namespace}/${s.name}` });
    }
    const pod = this.latest.get(uid);
    if (stillExists && pod) {
      // Like kubelet: once the pod's resources are gone, finish the graceful deletion.
      await this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0 }).catch(() => undefined);
    }
  }

  private async reportRunning(pod: V1Pod, s: Sandbox): Promise<void> {
    const status = runningStatus(pod, addressesFromResult(s.result), this.o.nodeIp);
    if (await this.patchStatus(pod, status)) return;
    // Like kubelet's status manager: a status not written is written again, not dropped (no
    // other event might ever bring this pod back here).
    const uid = pod.metadata!.uid!;
    if (this.statusRetries.has(uid)) return;
    this.statusRetries.add(uid);
    setTimeout(() => {
      this.statusRetries.delete(uid);
      this.serialise(uid, () => this.ensureRunning(uid));
    }, STATUS_RETRY_MS).unref();
  }

  private async failed(pod: V1Pod, err: Error): Promise<void> {
    const uid = pod.metadata!.uid!;
    const attempt = (this.retries.get(uid)?.attempt ?? 0) + 1;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (attempt - 1));
    const message = err instanceof CniPluginError
      ? `Failed to create pod sandbox: plugin type="${err.plugin}" failed (add): ${err.msg}${err.details ? `: ${err.details}` : ''} (CNI error ${err.code})`
      : `Failed to create pod sandbox: ${err.message}`;
    this.log.warn('pod sandbox failed; retrying', { pod: `${pod.metadata!.namespace}/${pod.metadata!.name}`, attempt, retryInMs: delay, message });
    await this.event(pod, 'Warning', 'FailedCreatePodSandBox', message);
    await this.patchStatus(pod, pendingStatus(pod, 'ContainerCreating', message, this.o.nodeIp)).catch(() => undefined);
    const timer = setTimeout(() => this.serialise(uid, () => this.ensureRunning(uid)), delay);
    this.retries.set(uid, { attempt, timer });
  }

  private clearRetry(uid: string): void {
    const r = this.retries.get(uid);
    if (r) clearTimeout(r.timer);
    this.retries.delete(uid);
  }

  /** False if the status could not be written (a pod that is gone counts as written). */
  private async patchStatus(pod: V1Pod, status: object): Promise<boolean> {
    try {
      await this.core.patchNamespacedPodStatus(
        { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return true;
      this.log.warn('status update failed', { pod: pod.metadata!.name, err: (err as Error).message });
      return false;
    }
  }

  private async event(pod: V1Pod, type: string, reason: string, message: string): Promise<void> {
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: pod.metadata!.namespace!,
      body: {
        metadata: { generateName: `${pod.metadata!.name}.`, namespace: pod.metadata!.namespace },
        involvedObject: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata!.name, namespace: pod.metadata!.namespace, uid: pod.metadata!.uid },
        type, reason, message, source: { component: 'kubelet', host: this.o.nodeName },
        firstTimestamp: now, lastTimestamp: now, count: 1, reportingComponent: 'kubelet', reportingInstance: this.o.nodeName,
      },
    }).catch((err: Error) => this.log.warn('event not recorded', { err: err.message }));
  }
}

// Pod namespaces are made in-process (netns.ts: unshare + bind mount, lo up by ioctl), as a
// runtime does, rather than with `ip netns add` + `ip link set lo up` child processes: a kubelet
// wiring hundreds of pods spent half its CPU forking `ip`. Each call is a few system calls
// (about 1 ms, mostly the kernel setting up the namespace), so it runs on the event loop.

/**
 * The pod's namespace, new. One left over with the same name has no sandbox record (a kubelet
 * stopped between making it and recording the sandbox): it is stale, so it is replaced.
 */
function createNetns(name: string): void {
  try {
    addNamedNetnsSync(name);
  } catch (err) {
    if (!(err instanceof NetnsError && err.code === 'EEXIST')) throw err;
    deleteNamedNetnsSync(name);
    addNamedNetnsSync(name);
  }
}

function deleteNetns(name: string, log: Logger): void {
  try {
    deleteNamedNetnsSync(name); // a namespace already gone is not an error
  } catch (err) {
    log.warn('cannot remove the pod network namespace', { netns: name, err: (err as Error).message });
  }
}
