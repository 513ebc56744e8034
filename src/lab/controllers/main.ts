// fast-lab-controllers: the lab's workload controllers (Deployments, ReplicaSets, StatefulSets)
// and scheduler, against any Kubernetes API server:
//
//   node dist/src/lab/controllers/main.js --kubeconfig PATH [--controllers deployment,replicaset,statefulset,scheduler]
//                                         [--workers N] [--log-level debug|info|warn|error]
//
// Logs JSON lines on stderr. SIGTERM or SIGINT stops it cleanly (exit 0).
import '../../k8s/node-compat.js';
import { createLogger } from '../../agent/log.js';
import { describeError } from '../../k8s/resilient-informer.js';
import { loadKubeConfig } from '../../k8s/kubeconfig.js';
import { USAGE, parseArgs, type Args } from './args.js';
import { startControllers } from './manager.js';

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fast-lab-controllers: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const log = createLogger(args.logLevel, { component: 'fast-lab-controllers' });
  let kubeConfig;
  try {
    kubeConfig = loadKubeConfig({ path: args.kubeconfig });
  } catch (err) {
    log.error('cannot load kubeconfig', { err: describeError(err) });
    process.exit(2);
  }
  log.info('starting', { server: kubeConfig.getCurrentCluster()?.server, controllers: args.controllers });
  const running = await startControllers({ kubeConfig, log, controllers: args.controllers, workers: args.workers });
  void running.synced.then(() => log.info('caches synced'), () => {});

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    const force = setTimeout(() => {
      log.warn('stop took too long; exiting');
      process.exit(0);
    }, 10_000);
    force.unref();
    void running.stop().then(() => {
      log.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main().catch((err) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'fatal', component: 'fast-lab-controllers', err: describeError(err) })}\n`);
  process.exit(1);
});
