// Picks the address source for the agent's mode.
import type { AgentConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { EndpointStore } from '../endpoint-store.js';
import type { IpamBackend } from './backend.js';
import { StandaloneIpam } from './standalone.js';

export async function createIpamBackend(config: AgentConfig, _endpoints: EndpointStore, log: Logger): Promise<IpamBackend> {
  if (config.mode === 'standalone') return new StandaloneIpam(config, log);
  throw new Error('kubernetes mode needs the Ips pool backend (not built into this agent yet)');
}
