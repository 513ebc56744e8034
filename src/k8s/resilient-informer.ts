// An informer (list, then watch from the list's resourceVersion, keeping a cache) that never gives
// up. @kubernetes/client-node's ListWatch reconnects by itself only after a clean end of the
// watch or a client-side timeout, and relists after 410 Gone; after any other failure (connection
// refused or reset, 5xx, a failed list, an authentication error) it emits 'error' and stops for
// good. ResilientInformer restarts it after an exponential back-off with jitter, as client-go's
// reflector does, until stop() is called. A restart resumes the watch from the last
// resourceVersion seen; if the server no longer has it (410), the ListWatch relists and reports
// what changed meanwhile through the usual add/update/delete callbacks (deletions included).
//
// It also closes two gaps of ListWatch.stop(): a list or a watch request in flight at stop() no
// longer opens a watch afterwards, and the AbortError that stop() provokes is not reported.
//
//   const pods = new ResilientInformer<V1Pod>({
//     kubeConfig, path: '/api/v1/pods', list: () => core.listPodForAllNamespaces(), name: 'pods',
//   });
//   pods.on('add', (pod) => ...);
//   await pods.start();          // returns at once; the informer keeps trying in the background
//   await pods.waitForSync();    // the cache holds a complete list
//   ...
//   await pods.stop();
import './node-compat.js';
import {
  ListWatch, Watch,
  type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache, type ObjectCallback,
} from '@kubernetes/client-node';
import { openWatchStream, type WatchDoneCallback, type WatchEventCallback } from './watch-stream.js';

export type InformerEvent = 'add' | 'update' | 'delete' | 'change';

export interface Backoff {
  /** First delay after a failure (default 500 ms). */
  initialMs?: number;
  /** Upper bound of the delay (default 30 s). */
  maxMs?: number;
  /** Growth per consecutive failure (default 2). */
  factor?: number;
  /** Random spread, as a fraction of the delay (default 0.2: ±20 %). */
  jitter?: number;
}

export interface InformerLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface ResilientInformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The collection's URL path, as for makeInformer: '/api/v1/pods', '/apis/apps/v1/namespaces/ns/deployments'. */
  path: string;
  /** Lists the collection: the typed client call, e.g. () => core.listPodForAllNamespaces(). */
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Applied to each object, listed or watched, before it is cached and handed to callbacks.
   * Listed objects come from the typed client (class instances, Date fields) while watched ones are
   * the raw JSON; `plainObject` makes both the same plain JSON (it is applied to listed objects
   * only: watched ones are plain JSON already).
   */
  transform?: (obj: T) => T;
  /** A name for logs. */
  name?: string;
  backoff?: Backoff;
  log?: InformerLogger;
  /**
   * Inactivity limit of a watch connection before it is re-opened (client default 30 s). A watch
   * that was silently cut (no FIN: a crashed host) is detected within this time.
   */
  watchTimeoutMs?: number;
}

/**
 * An informer of plain-JSON objects (the shape Fast's processes work with) for a collection,
 * listed with `list` (the typed client call) and optionally narrowed by a field selector.
 */
export function jsonInformer(
  kubeConfig: KubeConfig,
  name: string,
  path: string,
  list: () => Promise<unknown>,
  log?: InformerLogger,
  fieldSelector?: string,
): ResilientInformer<KubernetesObject> {
  return new ResilientInformer<KubernetesObject>({
    kubeConfig, name, path, transform: plainObject, log,
    list: list as () => Promise<KubernetesListObject<KubernetesObject>>,
    ...(fieldSelector ? { fieldSelector } : {}),
  });
}

/** The same object as plain JSON (Date fields as RFC 3339 strings, class instances as objects). */
export function plainObject<T>(obj: T): T {
  return JSON.parse(JSON.stringify(obj)) as T;
}

class StoppedError extends Error {
  constructor() {
    super('informer stopped');
    this.name = 'StoppedError';
  }
}

type WatchCallback = WatchEventCallback;
type DoneCallback = WatchDoneCallback;

/** The client's Watch, with a stop switch, a transform, and a report of each established watch;
 *  the request itself is made by openWatchStream (node:http instead of fetch, see there). */
class GuardedWatch extends Watch {
  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly hooks: {
      stopped(): boolean;
      transform?: (obj: unknown) => unknown;
      /** Called as a watch is about to be opened: any list before it is in the cache. */
      opening(): void;
      established(): void;
    },
  ) {
    super(kubeConfig);
  }

  /** The inactivity limit (Watch.requestTimeoutMs, private in the typings). */
  private get timeoutMs(): number {
    return (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: DoneCallback,
  ): Promise<AbortController> {
    if (this.hooks.stopped()) {
      done(new StoppedError());
      return new AbortController();
    }
    this.hooks.opening();
    let failed = false;
    const guardedDone: DoneCallback = (err) => {
      if (err) failed = true;
      done(err);
    };
    const transform = this.hooks.transform;
    const guardedCallback: WatchCallback = transform
      ? (phase, obj, raw) => {
          const object = (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') && obj ? transform(obj) : obj;
          callback(phase, object, raw);
        }
      : callback;
    let controller: AbortController;
    try {
      controller = await openWatchStream(this.kubeConfig, path, queryParams, this.timeoutMs, guardedCallback, guardedDone);
    } catch (err) {
      // Thrown before the request was made (credentials plugin, no current cluster): ListWatch
      // would reject its start() promise and never report it; report it as a failed watch.
      guardedDone(err ?? new Error('watch failed'));
      return new AbortController();
    }
    if (this.hooks.stopped()) {
      controller.abort();
    } else if (!failed) {
      this.hooks.established();
    }
    return controller;
  }
}

type Waiter = { resolve: () => void; reject: (err: Error) => void };

export class ResilientInformer<T extends KubernetesObject> implements ObjectCache<T> {
  readonly name: string;
  private readonly lw: ListWatch<T>;
  private readonly opts: ResilientInformerOptions<T>;
  private readonly errorCallbacks: ((err: unknown) => void)[] = [];
  private readonly syncCallbacks: (() => void)[] = [];
  private stopped = true;
  private synced = false;
  private listedSinceWatch = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private syncWaiters: Waiter[] = [];
  private _restarts = 0;
  private _lastError: unknown;

  constructor(opts: ResilientInformerOptions<T>) {
    this.opts = opts;
    this.name = opts.name ?? opts.path;
    const transform = opts.transform;
    // A watched object is JSON.parse output already: making it plain JSON again would copy every
    // event of the collection for nothing (the cluster-wide pod watch of every agent sees
    // thousands), so plainObject applies to listed objects only.
    const watchTransform = transform === plainObject ? undefined : transform;
    const watch = new GuardedWatch(opts.kubeConfig, {
      stopped: () => this.stopped,
      transform: watchTransform as ((obj: unknown) => unknown) | undefined,
      opening: () => this.onListApplied(),
      established: () => this.onEstablished(),
    });
    // Watch.requestTimeoutMs is private in the typings but is the documented inactivity limit.
    if (opts.watchTimeoutMs !== undefined) (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = opts.watchTimeoutMs;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const result = await opts.list();
      if (this.stopped) throw new StoppedError();
      if (transform) result.items = result.items.map((item) => transform(item));
      this.listedSinceWatch = true;
      return result;
    };
    this.lw = new ListWatch<T>(opts.path, watch, list, false, opts.labelSelector, opts.fieldSelector);
    this.lw.on('error', (err?: unknown) => this.onError(err));
  }

  /** How many times the informer was restarted after a failure. */
  get restarts(): number {
    return this._restarts;
  }

  /** The last failure, if any (kept after recovery, for status pages). */
  get lastError(): unknown {
    return this._lastError;
  }

  /** True once a complete list has been loaded into the cache (stays true across restarts). */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves when the cache first holds a complete list; rejects if the informer is stopped first. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
  }

  on(verb: InformerEvent, cb: ObjectCallback<T>): void;
  on(verb: 'error', cb: (err: unknown) => void): void;
  on(verb: 'connect' | 'synced', cb: () => void): void;
  on(verb: string, cb: (arg: any) => void): void { // eslint-disable-line @typescript-eslint/no-explicit-any
    if (verb === 'error') this.errorCallbacks.push(cb);
    else if (verb === 'synced') this.syncCallbacks.push(cb as () => void);
    else if (verb === 'connect') this.lw.on('connect', cb);
    else this.lw.on(verb as InformerEvent, cb);
  }

  off(verb: InformerEvent, cb: ObjectCallback<T>): void;
  off(verb: 'error', cb: (err: unknown) => void): void;
  off(verb: 'connect' | 'synced', cb: () => void): void;
  off(verb: string, cb: (arg: any) => void): void { // eslint-disable-line @typescript-eslint/no-explicit-any
    const remove = (list: unknown[]) => {
      const i = list.indexOf(cb);
      if (i >= 0) list.splice(i, 1);
    };
    if (verb === 'error') remove(this.errorCallbacks);
    else if (verb === 'synced') remove(this.syncCallbacks);
    else if (verb === 'connect') this.lw.off('connect', cb);
    else this.lw.off(verb as InformerEvent, cb);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): ReadonlyArray<T> {
    return this.lw.list(namespace);
  }

  /** The resourceVersion the watch resumes from. */
  latestResourceVersion(): string {
    return this.lw.latestResourceVersion();
  }

  /**
   * Starts listing and watching. Returns after the first attempt (whether it worked or not); from
   * then on failures are retried in the background until stop().
   */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.failures = 0;
    await this.run();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.lw.stop();
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w.reject(new StoppedError());
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.lw.start();
    } catch (err) {
      this.onError(err);
    }
  }

  private onListApplied(): void {
    if (!this.listedSinceWatch) return;
    this.listedSinceWatch = false;
    if (!this.synced) {
      this.synced = true;
      const waiters = this.syncWaiters;
      this.syncWaiters = [];
      for (const w of waiters) w.resolve();
    }
    for (const cb of this.syncCallbacks.slice()) cb();
  }

  private onEstablished(): void {
    if (this.failures > 0) {
      this.opts.log?.info('informer recovered', { informer: this.name, after: this.failures, resourceVersion: this.lw.latestResourceVersion() });
    }
    this.failures = 0;
  }

  private onError(err: unknown): void {
    if (this.stopped || err instanceof StoppedError) return;
    this._lastError = err;
    for (const cb of this.errorCallbacks.slice()) {
      try {
        cb(err);
      } catch {
        // a failing error callback must not stop the restart
      }
    }
    if (this.restartTimer) return; // already scheduled
    const delay = this.nextDelay();
    this.failures++;
    this.opts.log?.warn('informer failed; restarting', {
      informer: this.name, err: describeError(err), retryInMs: delay, failures: this.failures,
    });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this._restarts++;
      void this.run();
    }, delay);
  }

  private nextDelay(): number {
    const b = this.opts.backoff ?? {};
    const initial = b.initialMs ?? 500;
    const max = b.maxMs ?? 30_000;
    const factor = b.factor ?? 2;
    const jitter = b.jitter ?? 0.2;
    const base = Math.min(max, initial * Math.pow(factor, this.failures));
    const spread = base * jitter * (Math.random() * 2 - 1);
    return Math.max(0, Math.round(Math.min(max, base + spread)));
  }
}

/** A short description of a client error: HTTP status and message, or the network error code. */
export function describeError(err: unknown): string {
  if (err === null || err === undefined) return String(err);
  if (typeof err !== 'object') return String(err);
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown; name?: unknown; cause?: unknown; body?: unknown };
  const status = typeof e.statusCode === 'number' ? e.statusCode : typeof e.code === 'number' ? e.code : undefined;
  if (status !== undefined) {
    let body = e.body as { message?: unknown } | string | undefined;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body) as { message?: unknown };
      } catch {
        // not a Status: keep the text
      }
    }
    const message = typeof body === 'object' && body && typeof body.message === 'string'
      ? body.message
      : typeof body === 'string' && body.length < 300 ? body : firstLine(e.message);
    return `HTTP ${status}: ${message}`;
  }
  const cause = e.cause as { code?: unknown; message?: unknown } | undefined;
  if (cause && typeof cause === 'object') {
    const code = typeof cause.code === 'string' ? cause.code : undefined;
    return `${firstLine(e.message)}${code ? ` (${code})` : cause.message ? ` (${String(cause.message)})` : ''}`;
  }
  return `${typeof e.name === 'string' && e.name !== 'Error' ? `${e.name}: ` : ''}${firstLine(e.message)}`;
}

function firstLine(message: unknown): string {
  return String(message ?? '').split('\n')[0] ?? '';
}
