// The CNI verbs, served inside the agent. fast-cni forwards the runtime's call here
// verbatim; this file turns it into a CNI result or a CNI error.
import * as net from 'node:net';
import { parseCniRequest, requestedVersionOrLatest, type CniRequest, type NetworkRequest } from '../model/cni/request.js';
import { CniError, CniErrorCode, FastErrorCode, toCniError } from '../model/cni/errors.js';
import { formatResult, type CniResult } from '../model/cni/result.js';
import { versionInfo } from '../model/cni/versions.js';
import { validAttachmentSet, isValidAttachment } from '../model/cni/gc.js';
import { createPodLink, deleteHostLink, hostIfNameFor, randomMac, inspectPodSide, showLink, GATEWAY_V4, GATEWAY_V6 } from '../dataplane/net/pod-link.js';
import { netnsExists } from '../dataplane/net/netns.js';
import { queryTc } from '../dataplane/bpf/tc.js';
import type { ForwardedCall, CallResponse } from './wire.js';
import type { EndpointStore, Endpoint } from './endpoint-store.js';
import type { NodeDatapath } from './datapath.js';
import type { IpamBackend } from './ipam/backend.js';
import type { Logger } from './log.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { TcxMover } from './tcx-mover.js';

export interface CniContext {
  nodeName: string;
  mtu: number;
  endpoints: EndpointStore;
  datapath: NodeDatapath;
  ipam: IpamBackend;
  log: Logger;
  isReady(): boolean;
  /** attachMode auto: moves new pods from cls_bpf to tcx links when the node is idle. */
  tcxMover?: TcxMover;
}

export class CniHandler {
  // Calls for one attachment are serialised: a runtime retrying ADD while the first
  // ADD still runs must not wire the pod twice.
  private readonly locks = new KeyedMutex();

  constructor(private readonly ctx: CniContext) {}

  async handle(call: ForwardedCall): Promise<CallResponse> {
    this.ctx.tcxMover?.callStarted();
    try {
      return await this.serve(call);
    } finally {
      this.ctx.tcxMover?.callEnded();
    }
  }

  private async serve(call: ForwardedCall): Promise<CallResponse> {
    let cniVersion: string = requestedVersionOrLatest(call.stdin);
    try {
      const req = parseCniRequest(call.env, call.stdin);
      cniVersion = req.cniVersion;
      const output = await this.dispatch(req);
      return { exitCode: 0, stdout: output === undefined ? '' : JSON.stringify(output), stderr: '' };
    } catch (err) {
      const cniErr = toCniError(err);
      if (!(err instanceof CniError)) this.ctx.log.error('internal error serving CNI call', { err, env: call.env });
      return { exitCode: 1, stdout: JSON.stringify(cniErr.toJSON(cniVersion)), stderr: '' };
    }
  }

  private async dispatch(req: CniRequest): Promise<unknown> {
    switch (req.command) {
      case 'ADD': return this.locks.run(attachment(req), () => this.cmdAdd(req));
      case 'DEL': return this.locks.run(attachment(req), () => this.cmdDel(req));
      case 'CHECK': return this.locks.run(attachment(req), () => this.cmdCheck(req));
      case 'GC': return this.cmdGc(req);
      case 'STATUS': return this.cmdStatus();
      case 'VERSION': return versionInfo(req.cniVersion);
    }
  }

  async cmdAdd(req: NetworkRequest): Promise<unknown> {
    this.requireReady();
    const existing = this.ctx.endpoints.get(req.containerId, req.ifName);
    if (existing) return formatResult(resultFor(existing), req.cniVersion); // a retried ADD
    if (!netnsExists(req.netns)) {
      throw new CniError(CniErrorCode.InvalidEnvironmentVariables, 'network namespace does not exist', `CNI_NETNS=${req.netns}`);
    }
    const mtu = req.config.mtu ?? this.ctx.mtu;
    const pod = { namespace: req.args.podNamespace, name: req.args.podName, uid: req.args.podUid };
    const pools = req.config.ipam?.pool === undefined ? undefined : ([] as string[]).concat(req.config.ipam.pool);
    const granted = await this.ctx.ipam.allocate({ containerId: req.containerId, ifName: req.ifName, node: this.ctx.nodeName, pod, pools });
    try {
      const ep = await this.wire(req, granted, mtu, pod);
      this.ctx.log.info('pod attached', { containerId: req.containerId, ifName: req.ifName, pod, addresses: granted.map((g) => g.address) });
      return formatResult(resultFor(ep), req.cniVersion);
    } catch (err) {
      await this.ctx.ipam.release(req.containerId, req.ifName); // lose nothing, leak nothing
      throw datapathError(err);
    }
  }

  private async wire(req: NetworkRequest, granted: Array<{ address: string; pool: string; gateway: string }>, mtu: number, pod: Endpoint['pod']): Promise<Endpoint> {
    const hostIfName = hostIfNameFor(req.containerId, req.ifName);
    const link = await createPodLink({ netnsPath: req.netns, ifName: req.ifName, hostIfName, addresses: granted.map((g) => g.address), mtu, podMac: randomMac(), hostMac: randomMac() });
    const ep: Endpoint = {
      containerId: req.containerId, ifName: req.ifName, netns: req.netns, hostIfName, hostIfindex: link.hostIfindex, hostMac: link.hostMac,
      podIfindex: link.podIfindex, podMac: link.podMac, addresses: granted, mtu, pod, createdAt: new Date().toISOString(),
    };
    try {
      this.ctx.datapath.addEndpoint(ep);
      this.ctx.endpoints.put(ep);
      this.ctx.tcxMover?.schedule(ep); // attachMode auto: on cls_bpf until the node is idle
      return ep;
    } catch (err) {
      this.ctx.datapath.removeEndpoint(ep);
      await deleteHostLink(hostIfName);
      throw err;
    }
  }

  /** Idempotent: an unknown attachment, a gone netns or a second DEL all succeed. */
  async cmdDel(req: NetworkRequest): Promise<undefined> {
    await this.removeAttachment(req.containerId, req.ifName);
    return undefined;
  }

  async removeAttachment(containerId: string, ifName: string): Promise<void> {
    const ep = this.ctx.endpoints.get(containerId, ifName);
    if (ep) this.ctx.datapath.removeEndpoint(ep);
    // Derived from the attachment, so even without a record we find the veth.
    await deleteHostLink(ep?.hostIfName ?? hostIfNameFor(containerId, ifName));
    const released = await this.ctx.ipam.release(containerId, ifName);
    this.ctx.endpoints.remove(containerId, ifName);
    if (ep || released) this.ctx.log.info('pod detached', { containerId, ifName, released });
  }

  async cmdCheck(req: NetworkRequest): Promise<undefined> {
    const ep = this.ctx.endpoints.get(req.containerId, req.ifName);
    if (!ep) throw new CniError(CniErrorCode.UnknownContainer, `no attachment ${req.containerId}/${req.ifName} on node ${this.ctx.nodeName}`);
    const problems = await this.checkEndpoint(ep, req.netns);
    for (const ip of req.config.prevResult?.ips ?? []) {
      const bare = ip.address.split('/')[0]!;
      if (!ep.addresses.some((a) => a.address === bare)) problems.push(`prevResult address ${ip.address} is not this attachment's`);
    }
    if (problems.length > 0) throw new CniError(FastErrorCode.DatapathFailure, `attachment ${req.containerId}/${req.ifName} is broken`, problems.join('; '));
    return undefined;
  }

  async checkEndpoint(ep: Endpoint, netns: string): Promise<string[]> {
    const problems: string[] = [];
    const host = await showLink(ep.hostIfName);
    if (!host) problems.push(`host interface ${ep.hostIfName} is missing`);
    else if (host.ifindex !== ep.hostIfindex) problems.push(`host interface ${ep.hostIfName} was recreated (ifindex ${host.ifindex}, expected ${ep.hostIfindex})`);
    if (!netnsExists(netns)) return [...problems, `network namespace ${netns} is gone`];
    const pod = await inspectPodSide(netns, ep.ifName);
    if (!pod.link) problems.push(`interface ${ep.ifName} is missing in ${netns}`);
    else if (pod.link.address !== ep.podMac) problems.push(`interface ${ep.ifName} has MAC ${pod.link.address}, expected ${ep.podMac}`);
    for (const a of ep.addresses) {
      if (!pod.addresses.includes(a.address)) problems.push(`address ${a.address} is missing on ${ep.ifName}`);
      if (!this.ctx.datapath.hasEndpointEntry(a.address, ep.hostIfindex)) problems.push(`endpoint map has no entry for ${a.address}`);
    }
    if (ep.addresses.some((a) => net.isIPv4(a.address)) && !pod.defaultRoutes.includes(GATEWAY_V4)) problems.push(`default route via ${GATEWAY_V4} is missing`);
    if (host && queryTc(ep.hostIfindex, 'ingress') === undefined) problems.push(`eBPF program is not attached to ${ep.hostIfName}`);
    return problems;
  }

  /** Removes every attachment the runtime no longer lists. */
  async cmdGc(req: NetworkRequest): Promise<undefined> {
    const valid = req.config.validAttachments;
    if (!valid) return undefined; // nothing listed: the spec says do nothing
    const keep = validAttachmentSet(valid);
    for (const ep of this.ctx.endpoints.list()) {
      if (!isValidAttachment(keep, ep.containerId, ep.ifName)) await this.locks.run(`${ep.containerId}/${ep.ifName}`, () => this.removeAttachment(ep.containerId, ep.ifName));
    }
    for (const owned of await this.ctx.ipam.owned()) {
      if (!isValidAttachment(keep, owned.containerId, owned.ifName)) await this.ctx.ipam.release(owned.containerId, owned.ifName);
    }
    return undefined;
  }

  async cmdStatus(): Promise<undefined> {
    if (!this.ctx.isReady()) throw new CniError(CniErrorCode.PluginNotAvailable, 'fast-agent is starting', `node ${this.ctx.nodeName}`);
    const usage = await this.ctx.ipam.usage();
    const usable = usage.filter((p) => p.ready && p.allocated + p.cooling < p.total);
    if (usage.length > 0 && usable.length === 0) {
      throw new CniError(CniErrorCode.PluginNotAvailable, 'no pool has a free address', usage.map((p) => `${p.name}: ${p.allocated}/${p.total} allocated${p.ready ? '' : ` (not ready: ${p.message})`}`).join('; '));
    }
    return undefined;
  }

  private requireReady(): void {
    if (!this.ctx.isReady()) throw new CniError(CniErrorCode.TryAgainLater, 'fast-agent is starting', 'retry shortly');
  }
}

function attachment(req: NetworkRequest): string {
  return `${req.containerId}/${req.ifName}`;
}

function datapathError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  return new CniError(FastErrorCode.DatapathFailure, 'failed to wire the pod', (err as Error).message);
}

/** The CNI result for an endpoint: host veth, pod interface, /32 and /128 addresses. */
export function resultFor(ep: Endpoint): CniResult {
  return {
    interfaces: [
      { name: ep.hostIfName, mac: ep.hostMac },
      { name: ep.ifName, mac: ep.podMac, sandbox: ep.netns, mtu: ep.mtu },
    ],
    ips: ep.addresses.map((a) => ({
      address: `${a.address}/${net.isIPv6(a.address) ? 128 : 32}`,
      gateway: net.isIPv6(a.address) ? GATEWAY_V6 : GATEWAY_V4,
      interface: 1,
    })),
    routes: [
      ...(ep.addresses.some((a) => net.isIPv4(a.address)) ? [{ dst: '0.0.0.0/0', gw: GATEWAY_V4 }] : []),
      ...(ep.addresses.some((a) => net.isIPv6(a.address)) ? [{ dst: '::/0', gw: GATEWAY_V6 }] : []),
    ],
  };
}
