// CLI of the lab API server:
//   node --import tsx src/lab/apiserver/main.ts [--host H] [--port N] [--state-file F] [--kubeconfig K] [--verbose]
// Prints one JSON line {"url":...,"port":...} on stdout once it listens; stops on SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { writeKubeconfig } from './kubeconfig.js';
import { startApiServer } from './server.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'state-file': { type: 'string' },
      kubeconfig: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --port ${values.port}`);
  const server = await startApiServer({
    host: values.host,
    port,
    stateFile: values['state-file'],
    log: values.verbose ? (line) => process.stderr.write(`${line}\n`) : undefined,
  });
  if (values.kubeconfig) writeKubeconfig(values.kubeconfig, server.url);
  process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port, kubeconfig: values.kubeconfig })}\n`);
  const stop = (): void => {
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`fast lab apiserver: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
