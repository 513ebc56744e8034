// The lab's API server process: serves kubectl on 127.0.0.1 and, on a listening socket made
// inside the lab's underlay namespace, the nodes' agents and kubelets on the underlay
// gateway address (the same HTTP server serves both).
import { startApiServer } from './apiserver/index.js';
import { listenInNetns } from './netns-proxy.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const port = Number(arg('--port') ?? '16443');
  const server = await startApiServer({ host: '127.0.0.1', port, stateFile: arg('--state-file') });
  const labNetns = arg('--lab-netns');
  const proxy = labNetns ? listenInNetns(labNetns, port, (socket) => server.serveConnection(socket)) : undefined;
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'lab API server ready', url: server.url, labNetns }) + '\n');
  const stop = () => {
    proxy?.close();
    void server.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
