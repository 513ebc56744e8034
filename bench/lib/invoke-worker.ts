// Runs inside a node namespace, where a container runtime would run: reads one JSON
// request per line on stdin, executes the plugin directly (fork+exec, stdin, wait for
// exit) and answers with the wall time of exactly that, in nanoseconds.
// Started by Invoker (invoker.ts); not a benchmark by itself.
import { spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';

interface Request { id: number; file: string; args?: string[]; env: Record<string, string>; input: string }

const rl = createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  const req = JSON.parse(line) as Request;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(req.file, req.args ?? [], { input: req.input, env: req.env, encoding: 'utf8' });
  const ns = Number(process.hrtime.bigint() - t0);
  process.stdout.write(JSON.stringify({ id: req.id, ns, status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error?.message }) + '\n');
});
rl.on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
