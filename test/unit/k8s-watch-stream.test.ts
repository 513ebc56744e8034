import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { kubeConfigForUrl } from '../../src/k8s/kubeconfig.js';
import { openWatchStream } from '../../src/k8s/watch-stream.js';

async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

function watchOnce(url: string, timeoutMs = 5000, query: Record<string, string> = {}) {
  const events: Array<[string, unknown]> = [];
  let controller: AbortController | undefined;
  const ended = new Promise<unknown>((resolve) => {
    void openWatchStream(kubeConfigForUrl(url, { token: 'secret' }), '/api/v1/pods', { resourceVersion: '7', labelSelector: undefined, ...query }, timeoutMs,
      (type, obj) => events.push([type, obj]), resolve).then((c) => (controller = c));
  });
  return { events, ended, abort: () => controller?.abort() };
}

test('events split anywhere (mid-line, mid-character) arrive whole and in order; the URL and credentials are the client\'s', async () => {
  let seen: http.IncomingMessage | undefined;
  const lines = ['{"type":"ADDED","object":{"metadata":{"name":"é-1"}}}', 'not json', '', '{"type":"MODIFIED","object":{"metadata":{"name":"ü-2"}}}'];
  const bytes = Buffer.from(lines.join('\n') + '\n{"type":"DELETED","object":{"metadata":{"name":"z"}}}');
  const s = await serve(async (req, res) => {
    seen = req;
    res.writeHead(200, { 'content-type': 'application/json' });
    for (let i = 0; i < bytes.length; i += 7) {
      res.write(bytes.subarray(i, i + 7)); // 7-byte pieces cut through lines and UTF-8 characters
      await new Promise((r) => setImmediate(r));
    }
    res.end();
  });
  try {
    const w = watchOnce(s.url);
    assert.equal(await w.ended, null); // a clean end: ListWatch resumes from the last version
    assert.deepEqual(w.events.map(([t, o]) => [t, (o as { metadata: { name: string } }).metadata.name]), [['ADDED', 'é-1'], ['MODIFIED', 'ü-2'], ['DELETED', 'z']]);
    assert.equal(seen!.url, '/api/v1/pods?watch=true&resourceVersion=7');
    assert.equal(seen!.headers.authorization, 'Bearer secret');
  } finally {
    await s.close();
  }
});

test('an HTTP error status ends the watch with statusCode; a silent connection ends with TimeoutError; abort() ends it too', async () => {
  const s = await serve((req, res) => {
    if (req.url!.includes('gone')) {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end('{"kind":"Status","code":410}');
      return;
    }
    res.writeHead(200);
    res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n'); // then nothing
  });
  try {
    const gone = (await watchOnce(s.url, 5000, { fieldSelector: 'gone' }).ended) as { statusCode?: number };
    assert.equal(gone.statusCode, 410);
    const silent = watchOnce(s.url, 300);
    assert.equal(((await silent.ended) as Error).name, 'TimeoutError');
    assert.equal(silent.events.length, 1);
    const aborted = watchOnce(s.url);
    while (aborted.events.length === 0) await new Promise((r) => setTimeout(r, 10));
    aborted.abort();
    assert.equal(((await aborted.ended) as Error).name, 'AbortError');
  } finally {
    await s.close();
  }
});

test('a refused connection ends the watch with the network error', async () => {
  const s = await serve(() => undefined);
  const url = s.url;
  await s.close();
  const err = (await watchOnce(url).ended) as NodeJS.ErrnoException;
  assert.equal(err.code, 'ECONNREFUSED');
});
