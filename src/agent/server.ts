// The agent's unix socket: fast-cni calls (FCNI frames) and fast-ctl queries (FCTL).
// The socket's directory is 0700 and the socket 0600: only root may ask for networking.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CNI_MAGIC, CTL_MAGIC, decodeCniRequest, decodeCtlRequest, encodeCniResponse, encodeLengthPrefixedJson, type ForwardedCall, type CallResponse } from './wire.js';
import type { Logger } from './log.js';

export interface ServerHandlers {
  cni(call: ForwardedCall): Promise<CallResponse>;
  ctl(request: unknown): Promise<unknown>;
}

export async function listenUnix(socketPath: string, handlers: ServerHandlers, log: Logger): Promise<net.Server> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  fs.rmSync(socketPath, { force: true }); // a stale socket from a previous run
  const server = net.createServer((conn) => serveConnection(conn, handlers, log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  return server;
}

function serveConnection(conn: net.Socket, handlers: ServerHandlers, log: Logger): void {
  let buf = Buffer.alloc(0);
  let done = false;
  conn.on('error', () => undefined);
  conn.on('data', (chunk) => {
    if (done) return;
    buf = Buffer.concat([buf, chunk]);
    try {
      const magic = buf.length >= 4 ? buf.subarray(0, 4).toString('latin1') : '';
      if (magic === CNI_MAGIC) {
        const req = decodeCniRequest(buf);
        if (!req) return;
        done = true;
        void handlers.cni(req.call).then((r) => conn.end(encodeCniResponse(r)));
      } else if (magic === CTL_MAGIC) {
        const req = decodeCtlRequest(buf);
        if (!req) return;
        done = true;
        void handlers.ctl(req.request).then(
          (r) => conn.end(encodeLengthPrefixedJson({ ok: true, result: r })),
          (e: Error) => conn.end(encodeLengthPrefixedJson({ ok: false, error: e.message })),
        );
      } else if (buf.length >= 4) {
        throw new Error(`unknown request magic ${JSON.stringify(magic)}`);
      }
    } catch (err) {
      done = true;
      log.warn('bad request on agent socket', { err });
      conn.destroy();
    }
  });
}
