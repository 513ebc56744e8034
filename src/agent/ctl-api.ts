// The agent's answers to fast-ctl (everything fast-ctl cannot read from the maps), and
// the cross-node requests: the same NodeDatapath calls the cluster watch makes, so that
// tests and operators can drive a standalone node the way the informer will.
import type { AgentConfig } from './config.js';
import type { EndpointStore } from './endpoint-store.js';
import type { IpamBackend } from './ipam/backend.js';
import { NodeDatapath, type CrossNodeOptions, type RemoteTarget, type RemoteKind } from './datapath.js';

export interface CtlContext {
  config: AgentConfig;
  endpoints: EndpointStore;
  ipam: IpamBackend;
  isReady(): boolean;
  /** The node's datapath (falls back to the one this process opened). */
  datapath?: NodeDatapath;
  /** Pods still on cls_bpf, waiting for their move to a tcx link (attachMode auto). */
  tcxMovesPending?(): number;
}

/** How the node's programs are attached, as the agent reports it to fast-ctl. */
export interface AttachReport {
  mode: string;
  reason: string;
  /** attachMode auto: pods start on cls_bpf and move to tcx when the node is idle. */
  deferred: boolean;
  /** Pods on cls_bpf waiting for that move. */
  waitingForTcx: number;
}

interface RemoteRequest { ip?: unknown; nodeIp?: unknown; kind?: unknown }

function datapathOf(ctx: CtlContext): NodeDatapath {
  const dp = ctx.datapath ?? NodeDatapath.current();
  if (!dp) throw new Error('the datapath is not open');
  return dp;
}

function attachOf(ctx: CtlContext): AttachReport | undefined {
  const dp = ctx.datapath ?? NodeDatapath.current();
  return dp && { mode: dp.attach.mode, reason: dp.attach.reason, deferred: dp.attach.deferred, waitingForTcx: ctx.tcxMovesPending?.() ?? 0 };
}

function remoteTarget(r: RemoteRequest): { ip: string; target: RemoteTarget } {
  if (typeof r.ip !== 'string' || typeof r.nodeIp !== 'string') throw new Error('a remote needs "ip" and "nodeIp" strings');
  const kind = (r.kind ?? 'pod') as RemoteKind;
  return { ip: r.ip, target: { nodeIp: r.nodeIp, kind } };
}

export async function handleCtlRequest(req: unknown, ctx: CtlContext): Promise<unknown> {
  const op = (req as { op?: string }).op;
  switch (op) {
    case 'status':
      return {
        node: ctx.config.nodeName, ready: ctx.isReady(), mode: ctx.config.mode, pid: process.pid,
        uptimeSeconds: Math.round(process.uptime()), endpoints: ctx.endpoints.list().length, pools: await ctx.ipam.usage(),
        attach: attachOf(ctx),
      };
    case 'endpoints':
      return ctx.endpoints.list();
    case 'ipam':
      return { pools: await ctx.ipam.usage(), allocations: await ctx.ipam.owned() };
    // {op, mode, uplink, nodeIp, vni?, port?, mtu?, podRanges?}
    case 'cross-node-configure': {
      const { op: _op, ...opts } = req as CrossNodeOptions & { op: string };
      return datapathOf(ctx).configureCrossNode(opts);
    }
    case 'cross-node-status':
      return datapathOf(ctx).crossNodeState();
    // {op, ip, nodeIp, kind?: 'pod'|'node'}
    case 'remote-upsert': {
      const { ip, target } = remoteTarget(req as RemoteRequest);
      return { written: await datapathOf(ctx).upsertRemote(ip, target.nodeIp, target.kind) };
    }
    // {op, ip}
    case 'remote-delete': {
      const ip = (req as { ip?: unknown }).ip;
      if (typeof ip !== 'string') throw new Error('remote-delete needs "ip"');
      return { deleted: await datapathOf(ctx).deleteRemote(ip) };
    }
    // {op, remotes: [{ip, nodeIp, kind?}]}: the full desired set
    case 'remote-sync': {
      const list = (req as { remotes?: unknown }).remotes;
      if (!Array.isArray(list)) throw new Error('remote-sync needs "remotes": [{ip, nodeIp, kind}]');
      const desired = new Map<string, RemoteTarget>();
      for (const r of list as RemoteRequest[]) {
        const { ip, target } = remoteTarget(r);
        desired.set(ip, target);
      }
      return datapathOf(ctx).syncRemotes(desired);
    }
    case 'remote-list':
      return datapathOf(ctx).listRemotes();
    default:
      throw new Error(`unknown request ${JSON.stringify(op)}`);
  }
}
