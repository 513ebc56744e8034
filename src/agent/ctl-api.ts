// The agent's answers to fast-ctl (everything fast-ctl cannot read from the maps).
import type { AgentConfig } from './config.js';
import type { EndpointStore } from './endpoint-store.js';
import type { IpamBackend } from './ipam/backend.js';

export interface CtlContext {
  config: AgentConfig;
  endpoints: EndpointStore;
  ipam: IpamBackend;
  isReady(): boolean;
}

export async function handleCtlRequest(req: unknown, ctx: CtlContext): Promise<unknown> {
  const op = (req as { op?: string }).op;
  switch (op) {
    case 'status':
      return {
        node: ctx.config.nodeName, ready: ctx.isReady(), mode: ctx.config.mode, pid: process.pid,
        uptimeSeconds: Math.round(process.uptime()), endpoints: ctx.endpoints.list().length, pools: await ctx.ipam.usage(),
      };
    case 'endpoints':
      return ctx.endpoints.list();
    case 'ipam':
      return { pools: await ctx.ipam.usage(), allocations: await ctx.ipam.owned() };
    default:
      throw new Error(`unknown request ${JSON.stringify(op)}`);
  }
}
