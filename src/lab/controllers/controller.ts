// The loop every lab controller runs: informer events put object keys on a work queue, workers
// take keys and reconcile the object toward its spec, failures are retried with back-off, and a
// periodic resync re-queues everything (so a missed event or a time-based condition, such as
// minReadySeconds or a progress deadline, is never stuck).
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from '../../agent/log.js';
import { describeError } from '../../k8s/resilient-informer.js';
import type { EventRecorder } from './events.js';
import type { SharedInformers } from './informers.js';
import { httpStatusOf } from './util.js';
import { WorkQueue } from './workqueue.js';

export interface ControllerContext {
  informers: SharedInformers;
  core: CoreV1Api;
  apps: AppsV1Api;
  log: Logger;
  /** Event recorder for a component name (one per controller: source.component of its events). */
  recorder(component: string): EventRecorder;
  /** Period of the full resync (default 30 s). */
  resyncMs?: number;
}

export interface ReconcileResult {
  /** Reconcile the key again after this many milliseconds (waiting on time, not on an event). */
  requeueAfterMs?: number;
}

export abstract class Controller {
  protected readonly queue = new WorkQueue();
  protected readonly log: Logger;
  private resyncTimer: NodeJS.Timeout | undefined;
  private workers: Promise<void>[] = [];
  private stopped = false;

  constructor(protected readonly ctx: ControllerContext, readonly name: string) {
    this.log = ctx.log.child({ controller: name });
  }

  /** Registers informer handlers; called before the informers start. */
  abstract register(): void;

  /** Brings the object of this key toward its spec. Throwing retries it with back-off. */
  protected abstract reconcile(key: string): Promise<ReconcileResult | void>;

  /** Every key this controller is responsible for (for resyncs). */
  protected abstract allKeys(): string[];

  enqueue(key: string): void {
    this.queue.add(key);
  }

  /** Starts the workers once every informer has synced. */
  async run(workers = 2): Promise<void> {
    try {
      await this.ctx.informers.waitForSync();
    } catch {
      return; // stopped before the caches were ever complete
    }
    if (this.stopped) return;
    this.log.info('caches synced; controller running', { workers });
    for (const key of this.allKeys()) this.queue.add(key);
    this.resyncTimer = setInterval(() => {
      for (const key of this.allKeys()) this.queue.add(key);
    }, this.ctx.resyncMs ?? 30_000);
    for (let i = 0; i < workers; i++) this.workers.push(this.work());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.queue.shutDown();
    await Promise.all(this.workers);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        const result = await this.reconcile(key);
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        // A conflict (stale cache) is routine: the informer catches up and the retry succeeds.
        const level = httpStatusOf(err) === 409 ? 'debug' : 'warn';
        this.log[level]('reconcile failed; retrying', { key, err: describeError(err), retryInMs: delay });
      } finally {
        this.queue.done(key);
      }
    }
  }
}
