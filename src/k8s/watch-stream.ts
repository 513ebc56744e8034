// One Kubernetes watch request over node:http(s), read line by line. It does what
// @kubernetes/client-node's Watch.watch does (same URL, same credentials and TLS settings from
// the kubeconfig, same callbacks, same inactivity timeout, same errors), without its path
// through undici's fetch, a web stream turned back into a Node stream, and readline: on a
// watch of every pod of a cluster, which every agent and every lab kubelet/controller keeps,
// that path cost more CPU per event than the JSON parsing itself.
//
// Written by hand because the client offers no other watch transport; the kubeconfig's own
// applyToHTTPSOptions (which the client uses for its WebSocket calls) supplies headers,
// certificates and the agent (proxies included), so no credential handling is duplicated.
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export type WatchEventCallback = (phase: string, apiObj: any, watchObj?: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
export type WatchDoneCallback = (err: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What the client reports when the inactivity limit ends a watch (ListWatch then reconnects at once). */
function timeoutError(): Error {
  return new DOMException('The operation was aborted due to timeout', 'TimeoutError');
}

/**
 * Opens a watch of `path`; `callback` gets each event, `done` is called once when the watch
 * ends (null: closed by the server; an error otherwise: HTTP status in `statusCode`, network
 * error, TimeoutError after `timeoutMs` without data, AbortError after abort()). As the client's
 * watch, it resolves once the response has started, or once the request has failed.
 */
export async function openWatchStream(
  kc: KubeConfig,
  path: string,
  queryParams: Record<string, string | number | boolean | undefined>,
  timeoutMs: number,
  callback: WatchEventCallback,
  done: WatchDoneCallback,
): Promise<AbortController> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('No currently active cluster');
  const url = new URL(cluster.server + path);
  url.searchParams.set('watch', 'true');
  for (const [key, val] of Object.entries(queryParams)) if (val !== undefined) url.searchParams.set(key, String(val));
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);

  const controller = new AbortController();
  let started!: () => void;
  const startedOrFailed = new Promise<void>((resolve) => (started = resolve));
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  let req: http.ClientRequest | undefined;
  const finish = (err: unknown): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    req?.destroy();
    done(err ?? null);
    started();
  };
  const resetTimer = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => finish(timeoutError()), timeoutMs);
    timer.unref();
  };
  const deliver = (line: string): void => {
    if (line.length === 0) return;
    let data: { type?: string; object?: unknown };
    try {
      data = JSON.parse(line) as { type?: string; object?: unknown };
    } catch {
      return; // as the client: a line that is not JSON is skipped
    }
    try {
      callback(data.type ?? '', data.object, data);
    } catch {
      // as the client: a throwing callback must not end the watch
    }
  };

  const request = url.protocol === 'https:' ? https.request : http.request;
  req = request(url, { ...opts, method: 'GET', signal: controller.signal }, (res) => {
    if (res.statusCode !== 200) {
      const error = new Error(res.statusMessage || http.STATUS_CODES[res.statusCode ?? 500] || 'Internal Server Error') as Error & { statusCode?: number };
      error.statusCode = res.statusCode;
      res.resume();
      finish(error);
      return;
    }
    resetTimer(); // from here on an inactivity limit
    started();
    res.setEncoding('utf8'); // a character split across chunks is decoded whole
    let rest = '';
    res.on('data', (chunk: string) => {
      resetTimer();
      const text = rest.length === 0 ? chunk : rest + chunk;
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        deliver(text.slice(start, nl));
        start = nl + 1;
      }
      rest = start === 0 ? text : text.slice(start);
    });
    res.on('end', () => {
      deliver(rest);
      finish(null);
    });
    res.on('error', finish);
    res.on('close', () => finish(res.complete ? null : new Error('watch connection closed before the end of the response')));
  });
  req.on('error', finish);
  resetTimer(); // until the response starts: a connect timeout
  req.end();
  await startedOrFailed;
  return controller;
}
