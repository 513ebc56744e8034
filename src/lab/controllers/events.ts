// Records core/v1 Events about objects, as client-go's EventRecorder does: the same event repeated
// (same object, reason and message) within ten minutes increments the count of one Event instead
// of creating another, so `kubectl describe` shows "x5 over 2m". Recording never blocks or fails
// the caller: errors are logged.
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from '../../agent/log.js';
import { describeError } from '../../k8s/resilient-informer.js';
import { apiTime, isNotFound, type Obj } from './util.js';

const AGGREGATE_MS = 10 * 60_000;
const MAX_REMEMBERED = 4096;

export interface EventTarget extends Obj {
  apiVersion: string;
  kind: string;
}

export class EventRecorder {
  private readonly seen = new Map<string, { event: CoreV1Event; at: number }>();
  private chain = Promise.resolve();
  private seq = 0;

  constructor(
    private readonly core: CoreV1Api,
    private readonly component: string,
    private readonly log: Logger,
    private readonly instance: string = component,
  ) {}

  normal(obj: EventTarget, reason: string, message: string): void {
    this.record(obj, 'Normal', reason, message);
  }

  warning(obj: EventTarget, reason: string, message: string): void {
    this.record(obj, 'Warning', reason, message);
  }

  record(obj: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): void {
    // Serialised so that a repeated event finds the Event its predecessor created.
    this.chain = this.chain.then(() => this.write(obj, type, reason, message)).catch(() => {});
  }

  /** Resolves when every event recorded so far has been written (or has failed). */
  flush(): Promise<void> {
    return this.chain;
  }

  private async write(obj: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const meta = obj.metadata ?? {};
    const namespace = meta.namespace || 'default';
    const dedupe = `${meta.uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const now = Date.now();
    const prior = this.seen.get(dedupe);
    try {
      if (prior && now - prior.at < AGGREGATE_MS) {
        const body: CoreV1Event = { ...prior.event, count: (prior.event.count ?? 1) + 1, lastTimestamp: apiTime(now) };
        body.metadata = { ...body.metadata, resourceVersion: undefined };
        try {
          const updated = await this.core.replaceNamespacedEvent({ name: body.metadata.name!, namespace, body });
          this.remember(dedupe, updated, now);
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      const event: CoreV1Event = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${meta.name}.${(BigInt(now) * 1_000_000n + BigInt(this.seq++ % 1_000_000)).toString(16)}`, namespace },
        involvedObject: {
          apiVersion: obj.apiVersion, kind: obj.kind, name: meta.name, namespace: meta.namespace,
          uid: meta.uid, resourceVersion: meta.resourceVersion,
        },
        reason,
        message,
        type,
        count: 1,
        firstTimestamp: apiTime(now),
        lastTimestamp: apiTime(now),
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.instance,
      };
      const created = await this.core.createNamespacedEvent({ namespace, body: event });
      this.remember(dedupe, created, now);
    } catch (err) {
      this.log.debug('event not recorded', { reason, object: `${namespace}/${meta.name}`, err: describeError(err) });
    }
  }

  private remember(key: string, event: CoreV1Event, at: number): void {
    this.seen.delete(key);
    this.seen.set(key, { event: JSON.parse(JSON.stringify(event)) as CoreV1Event, at });
    while (this.seen.size > MAX_REMEMBERED) {
      const oldest = this.seen.keys().next().value;
      if (oldest === undefined) break;
      this.seen.delete(oldest);
    }
  }
}
