// Makes a TCP service of this process reachable from inside another network namespace, without
// touching the host's interfaces: the listening socket is created while the main thread is
// switched into that namespace (a socket belongs to the namespace it was created in). The
// connections it accepts are handed to the service in this process as they are (the lab API
// server serves them like its own), not piped through a second connection: piping cost a read
// and a write system call per chunk each way, about half the API server's CPU with 10 nodes.
import * as net from 'node:net';
import { withNetnsSync } from '../dataplane/net/netns.js';

export function listenInNetns(netnsPath: string, port: number, onConnection: (socket: net.Socket) => void): net.Server {
  const server = net.createServer(onConnection);
  // No host argument: with one, Node resolves it asynchronously and would bind after we
  // switched back. Without, the bind happens synchronously inside the namespace.
  withNetnsSync(netnsPath, () => server.listen(port));
  return server;
}
