// Makes a loopback TCP service of this process reachable from inside another network
// namespace, without touching the host's interfaces: the listening socket is created
// while the main thread is switched into that namespace (a socket belongs to the
// namespace it was created in), and every accepted connection is piped to the
// service on 127.0.0.1 from the host side.
import * as net from 'node:net';
import { withNetnsSync } from '../dataplane/net/netns.js';

export function listenInNetns(netnsPath: string, port: number, targetPort: number): net.Server {
  const server = net.createServer((inbound) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    inbound.pipe(upstream).pipe(inbound);
    const close = () => { inbound.destroy(); upstream.destroy(); };
    inbound.on('error', close);
    upstream.on('error', close);
  });
  // No host argument: with one, Node resolves it asynchronously and would bind after we
  // switched back. Without, the bind happens synchronously inside the namespace.
  withNetnsSync(netnsPath, () => server.listen(port));
  return server;
}
