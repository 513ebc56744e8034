// fast-controller-manager in-process: leader election, and while leading, the shared caches, the
// pool controller and the IP garbage collector. main.ts wraps it in a process; tests run several
// of them against one API server.
import * as os from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../agent/log.js';
import { reuseConnections } from '../agent/ipam/kubernetes.js';
import { Caches, makeClients, type Clients } from './caches.js';
import { IpGarbageCollector } from './ip-gc.js';
import { LeaderElector } from './leader-election.js';
import { PoolController } from './pool-controller.js';

export interface ControllerManagerOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** Identity in the Lease (default hostname_pid). */
  identity?: string;
  /** Rest of a released address before its IpEndpoint is deleted (default 30 s). */
  cooldownMs?: number;
  /** Period of the garbage collector's full sweep (default 60 s). */
  sweepMs?: number;
  leaseNamespace?: string;
  leaseName?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  now?: () => number;
}

export class ControllerManager {
  readonly identity: string;
  readonly elector: LeaderElector;
  private readonly clients: Clients;
  private readonly log: Logger;
  private active: { caches: Caches; pools: PoolController; gc: IpGarbageCollector; ready: Promise<void> } | undefined;
  /** Sequence of leadership transitions, so that start and stop never overlap. */
  private transitions: Promise<void> = Promise.resolve();
  private readyWaiters: (() => void)[] = [];

  constructor(private readonly o: ControllerManagerOptions) {
    this.identity = o.identity ?? `${os.hostname()}_${process.pid}`;
    this.log = o.log.child({ identity: this.identity });
    reuseConnections(o.kubeConfig);
    this.clients = makeClients(o.kubeConfig);
    this.elector = new LeaderElector({
      kubeConfig: o.kubeConfig,
      identity: this.identity,
      log: this.log,
      ...(o.leaseNamespace ? { namespace: o.leaseNamespace } : {}),
      ...(o.leaseName ? { name: o.leaseName } : {}),
      ...(o.leaseDurationMs !== undefined ? { leaseDurationMs: o.leaseDurationMs } : {}),
      ...(o.renewDeadlineMs !== undefined ? { renewDeadlineMs: o.renewDeadlineMs } : {}),
      ...(o.retryPeriodMs !== undefined ? { retryPeriodMs: o.retryPeriodMs } : {}),
      ...(o.now ? { now: o.now } : {}),
      onStartedLeading: () => this.startControllers(),
      onStoppedLeading: () => this.stopControllers(),
    });
  }

  get isLeader(): boolean {
    return this.elector.isLeader;
  }

  /** The running garbage collector (while leading). */
  get gc(): IpGarbageCollector | undefined {
    return this.active?.gc;
  }

  get pools(): PoolController | undefined {
    return this.active?.pools;
  }

  async start(): Promise<void> {
    this.log.info('fast-controller-manager starting');
    await this.elector.start();
  }

  async stop(): Promise<void> {
    await this.elector.stop();
    await this.transitions;
  }

  /** Resolves once this instance leads and its caches are synced. */
  whenActive(): Promise<void> {
    if (this.active) return this.active.ready;
    return new Promise<void>((resolve) => this.readyWaiters.push(resolve)).then(() => this.active?.ready);
  }

  private startControllers(): Promise<void> {
    this.transitions = this.transitions.then(async () => {
      const caches = new Caches(this.o.kubeConfig, this.clients, this.log);
      const pools = new PoolController({ caches, clients: this.clients, log: this.log, ...(this.o.now ? { now: this.o.now } : {}) });
      const gc = new IpGarbageCollector({
        caches,
        clients: this.clients,
        log: this.log,
        ...(this.o.cooldownMs !== undefined ? { cooldownMs: this.o.cooldownMs } : {}),
        ...(this.o.sweepMs !== undefined ? { sweepMs: this.o.sweepMs } : {}),
        ...(this.o.now ? { now: this.o.now } : {}),
      });
      const ready = (async () => {
        await caches.start(this.log);
        pools.start();
        gc.start();
        this.log.info('controllers running', { pools: caches.pools.list().length, ipendpoints: caches.endpoints.list().length });
      })();
      this.active = { caches, pools, gc, ready: ready.catch(() => undefined) };
      const w = this.readyWaiters;
      this.readyWaiters = [];
      for (const f of w) f();
    });
    return this.transitions;
  }

  private stopControllers(): Promise<void> {
    this.transitions = this.transitions.then(async () => {
      const a = this.active;
      this.active = undefined;
      if (!a) return;
      await a.caches.stop(); // a sync in progress is abandoned
      await a.ready;
      await a.pools.stop();
      await a.gc.stop();
      this.log.info('controllers stopped');
    });
    return this.transitions;
  }
}
