// Runs the lab's workload controllers in one process, sharing one informer per resource: the
// Deployment and ReplicaSet controllers, the StatefulSet controller and the scheduler.
import '../../k8s/node-compat.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../agent/log.js';
import type { Backoff } from '../../k8s/resilient-informer.js';
import type { Controller, ControllerContext } from './controller.js';
import { DeploymentController } from './deployment.js';
import { EventRecorder } from './events.js';
import { SharedInformers } from './informers.js';
import { ReplicaSetController } from './replicaset.js';
import { Scheduler } from './scheduler.js';
import { StatefulSetController } from './statefulset.js';

export const CONTROLLER_NAMES = ['deployment', 'replicaset', 'statefulset', 'scheduler'] as const;
export type ControllerName = (typeof CONTROLLER_NAMES)[number];

export interface StartControllersOptions {
  kubeConfig: KubeConfig;
  /** Defaults to JSON lines on stderr at level info. */
  log?: Logger;
  /** Which controllers to run (default: all). */
  controllers?: readonly ControllerName[];
  /** Workers per controller (default 2; the scheduler always has 1, so its spreading is exact). */
  workers?: number;
  /** Full resync period (default 30 s). */
  resyncMs?: number;
  /** Back-off of informer restarts (default 0.5 s doubling to 30 s). */
  backoff?: Backoff;
  /** Inactivity limit of watch connections (default 30 s). */
  watchTimeoutMs?: number;
}

export interface RunningControllers {
  informers: SharedInformers;
  controllers: Controller[];
  /** Resolves once every informer has listed (controllers then start working). */
  synced: Promise<void>;
  /** Stops the controllers and informers and waits for in-flight work. */
  stop(): Promise<void>;
}

export async function startControllers(opts: StartControllersOptions): Promise<RunningControllers> {
  const log = opts.log ?? createLogger('info', { component: 'fast-lab-controllers' });
  const informers = new SharedInformers(opts.kubeConfig, { log, backoff: opts.backoff, watchTimeoutMs: opts.watchTimeoutMs });
  const recorders = new Map<string, EventRecorder>();
  const ctx: ControllerContext = {
    informers,
    core: informers.core,
    apps: informers.apps,
    log,
    resyncMs: opts.resyncMs,
    recorder(component) {
      let r = recorders.get(component);
      if (!r) recorders.set(component, (r = new EventRecorder(informers.core, component, log)));
      return r;
    },
  };
  const wanted = new Set(opts.controllers ?? CONTROLLER_NAMES);
  const controllers: Controller[] = [];
  if (wanted.has('deployment')) controllers.push(new DeploymentController(ctx));
  if (wanted.has('replicaset')) controllers.push(new ReplicaSetController(ctx));
  if (wanted.has('statefulset')) controllers.push(new StatefulSetController(ctx));
  if (wanted.has('scheduler')) controllers.push(new Scheduler(ctx));
  for (const c of controllers) c.register();

  await informers.start();
  const synced = informers.waitForSync();
  synced.catch(() => {});
  const workers = opts.workers ?? 2;
  const running = controllers.map((c) => c.run(c instanceof Scheduler ? 1 : workers));
  log.info('controllers started', { controllers: controllers.map((c) => c.name) });

  let stopping: Promise<void> | undefined;
  return {
    informers,
    controllers,
    synced,
    stop() {
      stopping ??= (async () => {
        await informers.stop();
        await Promise.all(controllers.map((c) => c.stop()));
        await Promise.allSettled(running);
        await Promise.all([...recorders.values()].map((r) => r.flush()));
      })();
      return stopping;
    },
  };
}
