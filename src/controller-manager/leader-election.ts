// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the
// leader renews the lease every retry period; a candidate takes the lease over when it has not
// seen it change for a whole lease duration (time measured on the candidate's own clock from the
// moment it observed the record, so clock skew between hosts does not matter), or at once when
// the holder gave it up (empty holderIdentity, written by a leader that stops cleanly). Every
// write is conditional on the resourceVersion read, so two candidates never both win.
import '../k8s/node-compat.js';
import { CoordinationV1Api, CoreV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { describeError } from '../k8s/resilient-informer.js';
import type { Logger } from '../agent/log.js';
import { httpStatus } from '../agent/ipam/kubernetes.js';
import { makeApiClient } from '../k8s/api-client.js';

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  /** Namespace of the Lease (default kube-system). */
  namespace?: string;
  /** Name of the Lease (default fast-controller-manager). */
  name?: string;
  identity: string;
  /** How long a lease is valid without renewal (default 15 s). */
  leaseDurationMs?: number;
  /** The leader steps down when it could not renew for this long (default 10 s). */
  renewDeadlineMs?: number;
  /** Period of acquire/renew attempts (default 2 s). */
  retryPeriodMs?: number;
  log: Logger;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
  now?: () => number;
}

export class LeaderElector {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly coordination: CoordinationV1Api;
  private readonly core: CoreV1Api;
  private readonly log: Logger;
  private readonly now: () => number;
  private leading = false;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  /** The record as last observed, and when (our clock). */
  private observed: { holder: string; renewTime: string; rv: string } | undefined;
  private observedAt = 0;
  private lastRenew = 0;
  private transitions: Promise<void> = Promise.resolve();

  constructor(private readonly opts: LeaderElectionOptions) {
    this.namespace = opts.namespace ?? 'kube-system';
    this.name = opts.name ?? 'fast-controller-manager';
    this.identity = opts.identity;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? Math.round((this.leaseDurationMs * 2) / 3);
    this.retryPeriodMs = opts.retryPeriodMs ?? Math.max(100, Math.round(this.leaseDurationMs / 7.5));
    if (this.renewDeadlineMs >= this.leaseDurationMs) throw new Error('renewDeadline must be shorter than the lease duration');
    this.coordination = makeApiClient(opts.kubeConfig, CoordinationV1Api);
    this.core = makeApiClient(opts.kubeConfig, CoreV1Api);
    this.log = opts.log.child({ lease: `${this.namespace}/${this.name}`, identity: this.identity });
    this.now = opts.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning; returns after the first attempt. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.tick();
  }

  /** Stops campaigning; a leader steps down and hands the lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.loop;
    if (this.leading) {
      await this.setLeading(false);
      await this.giveUp().catch((err: unknown) => this.log.warn('could not hand the lease back', { err: describeError(err) }));
    }
    await this.transitions;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, this.retryPeriodMs);
  }

  private async tick(): Promise<void> {
    const run = (async () => {
      try {
        const ok = await this.tryAcquireOrRenew();
        if (ok) {
          this.lastRenew = this.now();
          if (!this.leading && !this.stopped) {
            this.log.info('became the leader');
            await this.setLeading(true);
          }
        } else if (this.leading) {
          this.log.warn('lost the lease to another candidate');
          await this.setLeading(false);
        }
      } catch (err) {
        this.log.warn('lease update failed', { err: describeError(err) });
        if (this.leading && this.now() - this.lastRenew > this.renewDeadlineMs) {
          this.log.error('could not renew the lease in time; stepping down');
          await this.setLeading(false);
        }
      }
    })();
    this.loop = run;
    await run;
    this.schedule();
  }

  private setLeading(v: boolean): Promise<void> {
    if (this.leading === v) return this.transitions;
    this.leading = v;
    this.transitions = this.transitions.then(async () => {
      try {
        await (v ? this.opts.onStartedLeading() : this.opts.onStoppedLeading());
      } catch (err) {
        this.log.error(v ? 'starting the controllers failed' : 'stopping the controllers failed', { err: describeError(err) });
      }
    });
    return this.transitions;
  }

  private leaseDurationSeconds(): number {
    return Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    let lease: V1Lease;
    try {
      lease = await this.coordination.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
      return this.create(now);
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = spec.renewTime ? new Date(spec.renewTime).toISOString() : '';
    const rv = lease.metadata?.resourceVersion ?? '';
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, rv };
      this.observedAt = now;
    }
    const duration = (spec.leaseDurationSeconds ?? this.leaseDurationSeconds()) * 1000;
    if (holder !== '' && holder !== this.identity && this.observedAt + duration > now) return false;

    const mine = holder === this.identity;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...lease.metadata, name: this.name, namespace: this.namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds(),
        acquireTime: mine && spec.acquireTime ? micro(new Date(spec.acquireTime)) : micro(new Date(now)),
        renewTime: micro(new Date(now)),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      await this.coordination.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body });
    } catch (err) {
      if (httpStatus(err) === 409) return false;
      throw err;
    }
    if (!mine) this.log.info('took the lease over', { previous: holder || '(released)' });
    return true;
  }

  private async create(now: number, retried = false): Promise<boolean> {
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds(),
        acquireTime: micro(new Date(now)),
        renewTime: micro(new Date(now)),
        leaseTransitions: 0,
      },
    };
    try {
      await this.coordination.createNamespacedLease({ namespace: this.namespace, body });
      return true;
    } catch (err) {
      const status = httpStatus(err);
      if (status === 409) return false;
      if (status === 404 && !retried) {
        // The namespace of the lease does not exist (a bare lab cluster): create it.
        await this.core.createNamespace({ body: { metadata: { name: this.namespace } } }).catch(() => undefined);
        return this.create(now, true);
      }
      throw err;
    }
  }

  /** Writes an empty holder so that standbys take over without waiting for the lease to expire. */
  private async giveUp(): Promise<void> {
    const lease = await this.coordination.readNamespacedLease({ name: this.name, namespace: this.namespace });
    if (lease.spec?.holderIdentity !== this.identity) return;
    const body: V1Lease = {
      ...lease,
      spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: micro(new Date(this.now())) },
    };
    if (lease.spec.acquireTime) body.spec!.acquireTime = micro(new Date(lease.spec.acquireTime));
    await this.coordination.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body });
    this.log.info('handed the lease back');
  }
}

function micro(d: Date): V1MicroTime {
  return new V1MicroTime(d.getTime());
}
