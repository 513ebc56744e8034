// fast-agent: one per node. Owns the node's eBPF datapath, pod interfaces and addresses.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, ConfigError, type AgentConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import { EndpointStore } from './endpoint-store.js';
import { NodeDatapath } from './datapath.js';
import { CniHandler, type CniContext } from './cni-handler.js';
import type { ClusterSync } from './cluster-sync.js';
import { listenUnix } from './server.js';
import { restoreNode } from './restore.js';
import { createIpamBackend } from './ipam/create.js';
import { handleCtlRequest } from './ctl-api.js';
import { TcxMover } from './tcx-mover.js';
import { kernelFeatures } from '../dataplane/bpf/kernel-btf.js';

async function main(): Promise<void> {
  let config: AgentConfig;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`fast-agent: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel, { component: 'fast-agent', node: config.nodeName });
  process.umask(0o077);
  await run(config, log).catch((err: Error) => {
    log.error('fast-agent failed to start', { err: err.message, stack: err.stack });
    process.exit(1);
  });
}

async function run(config: AgentConfig, log: Logger): Promise<void> {
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const readyFile = path.join(config.stateDir, 'ready');
  fs.rmSync(readyFile, { force: true });
  let ready = false;

  const endpoints = new EndpointStore(config.stateDir);
  const datapath = NodeDatapath.open(config.bpfDir, config.bpffsDir, config.attachMode);
  log.info('eBPF programs attach through ' + (datapath.attach.mode === 'tcx' ? 'tcx links' : 'clsact + cls_bpf'), { attachMode: datapath.attach.mode, reason: datapath.attach.reason });
  // What this kernel lacks is said once at start, with what Fast does instead.
  for (const f of kernelFeatures()) log.info(`kernel: ${f.name} ${f.present ? 'present' : 'missing'}`, { feature: f.name, present: f.present, effect: f.effect });
  const ipam = await createIpamBackend(config, endpoints, log);
  const tcxMover = datapath.attach.deferred ? newTcxMover(config, endpoints, datapath, log) : undefined;
  const ctx = { nodeName: config.nodeName, mtu: config.mtu, endpoints, datapath, ipam, log, isReady: () => ready, tcxMover };
  const cni = new CniHandler(ctx);

  const report = await restoreNode(endpoints, datapath, cni, ipam, config.pendingDeleteDir, log, tcxMover);
  log.info('node state restored', { ...report });
  const clusterSync = config.mode === 'kubernetes' && config.datapathMode !== 'local' ? await startClusterSync(config, datapath, ctx, log) : undefined;

  const server = await listenUnix(config.socketPath, {
    cni: (call) => cni.handle(call),
    ctl: (req) => handleCtlRequest(req, { config, endpoints, ipam, datapath, isReady: () => ready, tcxMovesPending: () => tcxMover?.pending ?? 0 }),
  }, log);

  ready = true;
  fs.writeFileSync(readyFile, `${process.pid}\n`);
  log.info('ready', { socket: config.socketPath, bpffs: config.bpffsDir, endpoints: endpoints.list().length });

  const stop = (signal: string) => {
    log.info('stopping; pods keep their datapath', { signal });
    fs.rmSync(readyFile, { force: true });
    server.close();
    tcxMover?.stop();
    fs.rmSync(config.socketPath, { force: true });
    void Promise.all([ipam.close?.(), clusterSync?.stop()]).finally(() => {
      datapath.close();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function newTcxMover(config: AgentConfig, endpoints: EndpointStore, datapath: NodeDatapath, log: Logger): TcxMover {
  return new TcxMover({
    idleMs: config.tcxMoveIdleMs, log,
    lookup: (containerId, ifName) => endpoints.get(containerId, ifName),
    move: (ep) => {
      datapath.moveEndpointToTcx(ep);
      log.info('pod moved from cls_bpf to its tcx link', { containerId: ep.containerId, ifName: ep.ifName, hostIfName: ep.hostIfName });
    },
  });
}

/**
 * Cross-node networking in a cluster: the datapath is configured for the cluster's pod
 * ranges (re-configured when pools change) and the cluster map follows every pod.
 */
async function startClusterSync(config: AgentConfig, datapath: NodeDatapath, ctx: CniContext, log: Logger): Promise<ClusterSync> {
  const { loadKubeConfig } = await import('../k8s/kubeconfig.js');
  const { ClusterSync } = await import('./cluster-sync.js');
  const kc = loadKubeConfig({ path: config.kubeconfig });
  const sync = new ClusterSync(kc, config.nodeName, datapath, log.child({ component: 'cluster-sync' }), async (podRanges) => {
    const state = await datapath.configureCrossNode({
      mode: config.datapathMode as 'overlay' | 'native', uplink: config.uplink, nodeIp: config.nodeIp, vni: config.vni, port: config.vxlanPort, encap: config.overlayEncap, decap: config.overlayDecap, podRanges,
    });
    // Pods must fit the encapsulation: new pods get the cross-node MTU when it is smaller.
    if (state.podMtu) ctx.mtu = Math.min(config.mtu, state.podMtu);
    log.info('cross-node datapath configured', { ...state, podMtu: ctx.mtu });
  });
  await sync.start();
  return sync;
}

void main();
