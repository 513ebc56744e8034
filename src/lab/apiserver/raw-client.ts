// A minimal HTTP client for the lab API server (tests, debugging): raw requests and watch
// streams, without the typed layers of @kubernetes/client-node, so exact wire behaviour shows.
import type { WatchEvent } from './types.js';

export interface RawResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON (any shape: tests look into it freely), or the text when not JSON. */
  body: any;
}

export interface RawRequestOptions {
  body?: unknown;
  contentType?: string;
  accept?: string;
}

export class RawClient {
  constructor(readonly baseUrl: string) {}

  async request(method: string, path: string, options: RawRequestOptions = {}): Promise<RawResponse> {
    const headers: Record<string, string> = { Accept: options.accept ?? 'application/json' };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/json';
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    }
    const res = await fetch(`${this.baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  get(path: string, accept?: string): Promise<RawResponse> {
    return this.request('GET', path, { accept });
  }

  post(path: string, body: unknown): Promise<RawResponse> {
    return this.request('POST', path, { body });
  }

  put(path: string, body: unknown): Promise<RawResponse> {
    return this.request('PUT', path, { body });
  }

  patch(path: string, body: unknown, type: 'merge' | 'json' | 'strategic' = 'merge'): Promise<RawResponse> {
    const contentType = {
      merge: 'application/merge-patch+json',
      json: 'application/json-patch+json',
      strategic: 'application/strategic-merge-patch+json',
    }[type];
    return this.request('PATCH', path, { body, contentType });
  }

  delete(path: string, body?: unknown): Promise<RawResponse> {
    return this.request('DELETE', path, { body });
  }

  /** Opens a watch stream (path without ?watch=1; the query string is extended). */
  watch(path: string, accept?: string): RawWatch {
    return new RawWatch(`${this.baseUrl}${path}${path.includes('?') ? '&' : '?'}watch=1`, accept);
  }
}

/** The events of one watch request, as they arrive; `done` settles when the server ends it. */
export class RawWatch {
  readonly events: WatchEvent[] = [];
  readonly done: Promise<void>;
  status = 0;
  private readonly controller = new AbortController();
  private waiters: (() => void)[] = [];

  constructor(url: string, accept = 'application/json') {
    this.done = this.run(url, accept);
  }

  private async run(url: string, accept: string): Promise<void> {
    try {
      const res = await fetch(url, { headers: { Accept: accept }, signal: this.controller.signal });
      this.status = res.status;
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of res.body) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) this.push(JSON.parse(line) as WatchEvent);
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    } finally {
      this.wake();
    }
  }

  private push(event: WatchEvent): void {
    this.events.push(event);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once `predicate` holds for the events so far (rejects after timeoutMs). */
  async until(predicate: (events: WatchEvent[]) => boolean, timeoutMs = 5000): Promise<WatchEvent[]> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.done.finally(() => { ended = true; }).catch(() => {});
    while (!predicate(this.events)) {
      if (ended) throw new Error(`watch ended before the condition held (${this.events.length} events)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`watch condition not met in ${timeoutMs} ms (${this.events.length} events)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    return this.events;
  }

  close(): void {
    this.controller.abort();
  }
}
