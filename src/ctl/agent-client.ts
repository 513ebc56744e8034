// fast-ctl's client for the agent socket (FCTL frames).
import * as net from 'node:net';
import { encodeCtlRequest } from '../agent/wire.js';

export function askAgent<T>(socketPath: string, request: object, timeoutMs = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socketPath);
    let buf = Buffer.alloc(0);
    conn.setTimeout(timeoutMs, () => conn.destroy(new Error(`agent at ${socketPath} did not answer within ${timeoutMs} ms`)));
    conn.on('connect', () => conn.write(encodeCtlRequest(request)));
    conn.on('data', (d) => (buf = Buffer.concat([buf, d])));
    conn.on('error', reject);
    conn.on('end', () => {
      try {
        const len = buf.readUInt32BE(0);
        const reply = JSON.parse(buf.subarray(4, 4 + len).toString('utf8')) as { ok: boolean; result?: T; error?: string };
        if (reply.ok) resolve(reply.result as T);
        else reject(new Error(reply.error));
      } catch (err) {
        reject(new Error(`malformed answer from agent: ${(err as Error).message}`));
      }
    });
  });
}
