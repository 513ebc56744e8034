// fast-controller-manager: one leader (Lease coordination.k8s.io/v1 fast-controller-manager in
// kube-system) runs the pool controller (Ips validation and status) and the IP garbage collector;
// standbys wait to take over. JSON logs on stderr; SIGTERM/SIGINT stop cleanly and hand the lease
// back so that a standby takes over at once.
//
//   fast-controller-manager [--kubeconfig PATH] [--cooldown-seconds N] [--sweep-seconds N]
//       [--identity ID] [--lease-namespace NS] [--lease-name NAME] [--lease-duration-seconds N]
//       [--log-level debug|info|warn|error]
import '../k8s/node-compat.js';
import { loadKubeConfig } from '../k8s/kubeconfig.js';
import { createLogger } from '../agent/log.js';
import { parseArgs, type CliOptions } from './cli.js';
import { ControllerManager } from './manager.js';

async function main(): Promise<void> {
  let opts: CliOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fast-controller-manager: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(opts.logLevel, { component: 'fast-controller-manager' });
  let manager: ControllerManager;
  try {
    const kubeConfig = loadKubeConfig(opts.kubeconfig ? { path: opts.kubeconfig } : {});
    manager = new ControllerManager({
      kubeConfig,
      log,
      ...(opts.identity ? { identity: opts.identity } : {}),
      cooldownMs: opts.cooldownSeconds * 1000,
      sweepMs: opts.sweepSeconds * 1000,
      leaseNamespace: opts.leaseNamespace,
      leaseName: opts.leaseName,
      leaseDurationMs: opts.leaseDurationSeconds * 1000,
    });
  } catch (err) {
    log.error('cannot start', { err: (err as Error).message });
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    manager.stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error('stop failed', { err: err.message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await manager.start();
}

void main();
