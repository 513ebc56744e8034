// Runs a reconcile pass soon after store changes, coalescing bursts of changes into one pass.
// The lab's server-side controllers (garbage collector, namespace and CRD finalizers) use it.
import type { ApiStore } from './api-store.js';
import { ApiError } from './errors.js';
import type { StoredEvent } from './storage.js';

export class ReconcileLoop {
  private pending: NodeJS.Immediate | undefined;
  private readonly unsubscribe: () => void;
  private stopped = false;

  constructor(
    store: ApiStore,
    private readonly pass: () => void,
    /** Which changes can give the pass work (a pass scans everything, so most changes should not). */
    relevant: (event: StoredEvent) => boolean,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.unsubscribe = store.onChange((event) => {
      if (relevant(event)) this.schedule();
    });
    this.schedule();
  }

  schedule(): void {
    if (this.pending || this.stopped) return;
    this.pending = setImmediate(() => {
      this.pending = undefined;
      try {
        this.pass();
      } catch (err) {
        this.onError(err);
      }
    });
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    if (this.pending) clearImmediate(this.pending);
    this.pending = undefined;
  }
}

/** Runs one controller action; an API error (a race with another writer) is left for the next pass. */
export function attempt(action: () => void): void {
  try {
    action();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
  }
}
