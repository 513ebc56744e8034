// Everything a benchmark creates (namespaces, agents, servers, workers) is registered
// here and removed in reverse order: at the end, on an error, and on Ctrl-C/SIGTERM.
import { log } from './report.js';

type Cleanup = () => void | Promise<void>;

const stack: Array<{ what: string; fn: Cleanup }> = [];
let running: Promise<void> | undefined;

export function onCleanup(what: string, fn: Cleanup): () => void {
  const entry = { what, fn };
  stack.push(entry);
  return () => {
    const i = stack.indexOf(entry);
    if (i >= 0) stack.splice(i, 1);
  };
}

export function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (stack.length) {
      const { what, fn } = stack.pop()!;
      try {
        await fn();
      } catch (err) {
        log(`cleanup of ${what} failed: ${(err as Error).message}`);
      }
    }
  })();
  return running;
}

/** Runs main(), then cleans up whatever happened; signals clean up and exit too. */
export function runBenchmark(main: () => Promise<void>): void {
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${sig}: cleaning up`);
    void cleanupAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  main()
    .then(
      () => cleanupAll(),
      async (err) => {
        log(`benchmark failed: ${(err as Error).stack ?? err}`);
        process.exitCode = 1;
        await cleanupAll();
      },
    )
    .finally(() => {
      if (!interrupted) process.exit();
    });
}
