// Picks the address source for the agent's mode: standalone pools from the configuration file,
// or Ips pools and IpEndpoint allocations in Kubernetes.
import type { AgentConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { EndpointStore } from '../endpoint-store.js';
import type { IpamBackend } from './backend.js';
import { StandaloneIpam } from './standalone.js';

export async function createIpamBackend(config: AgentConfig, _endpoints: EndpointStore, log: Logger): Promise<IpamBackend> {
  if (config.mode === 'standalone') return new StandaloneIpam(config, log);
  // Loaded only in kubernetes mode: the Kubernetes client is not needed on a single host.
  const { loadKubeConfig } = await import('../../k8s/kubeconfig.js');
  const { KubernetesIpam } = await import('./kubernetes.js');
  // A kubeconfig file when configured (config file, --kubeconfig, $KUBECONFIG), else the
  // pod's service account (in-cluster).
  const kubeConfig = loadKubeConfig(config.kubeconfig ? { path: config.kubeconfig } : {});
  return KubernetesIpam.create({
    kubeConfig,
    nodeName: config.nodeName,
    log,
    cooldownMs: config.releaseCooldownSeconds * 1000,
    ...(config.ipamBlockSize !== undefined ? { blockSize: config.ipamBlockSize } : {}),
    ...(config.ipamSyncTimeoutSeconds !== undefined ? { syncTimeoutMs: config.ipamSyncTimeoutSeconds * 1000 } : {}),
  });
}
