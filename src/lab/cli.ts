// fast lab: a whole multi-node Fast cluster in network namespaces on one Linux machine.
//   fast lab up [--nodes N] [--mode overlay|native] [--dir D] [--port P]
//   fast lab status [-o json]      fast lab down
//   fast lab exec [-n NAMESPACE] POD -- CMD...
//   fast lab quickstart            (the seed's quick start against a running lab)
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { DEFAULT_LAB_DIR, DEFAULT_LAB_NAME, readState, podNetnsPrefix } from './lab-state.js';
import { labUp, kubectl, REPO } from './lab-up.js';
import { labDown } from './lab-down.js';
import { isAlive } from './processes.js';
import { podNetnsName } from './kubelet/sandbox-store.js';
import { renderTable, parseOutputFlag } from '../cli/table.js';
import { runQuickstart } from './quickstart.js';

const USAGE = `usage: fast lab up [--nodes N] [--mode overlay|native] [--port P] [--dir D] [--name NAME] [--keep-on-failure]
       fast lab status [-o json]
       fast lab exec [-n NAMESPACE] POD -- CMD [ARGS...]
       fast lab quickstart
       fast lab down
`;

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
}

function progress(msg: string): void {
  process.stderr.write(`\x1b[1m==>\x1b[0m ${msg}\n`);
}

async function up(args: string[]): Promise<number> {
  const dir = flag(args, '--dir', DEFAULT_LAB_DIR);
  const nodes = Number(flag(args, '--nodes', '2'));
  const mode = flag(args, '--mode', 'overlay') as 'overlay' | 'native';
  const started = Date.now();
  try {
    const state = await labUp({ name: flag(args, '--name', DEFAULT_LAB_NAME), dir, nodes, apiPort: Number(flag(args, '--port', '16443')), mode, progress });
    progress(`lab up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.stdout.write(`
The lab is up: ${nodes} nodes, ${mode} mode.
  export KUBECONFIG=${state.hostKubeconfig}
  kubectl get nodes
  kubectl apply -f ${path.join(REPO, 'examples')}/      # the quick start (or: fast lab quickstart)
  kubectl get pods -o wide; kubectl get ips; kubectl get ipendpoints
  fast lab exec POD -- ping -c1 OTHER_POD_IP
  fast lab status
  fast lab down
`);
    return 0;
  } catch (err) {
    progress(`lab up failed: ${(err as Error).message}`);
    if (args.includes('--keep-on-failure')) {
      progress(`left as it is for inspection (logs in ${dir}); \`fast lab down\` removes it`);
      return 1;
    }
    progress('removing the half-built lab');
    await labDown(dir, progress, flag(args, '--name', DEFAULT_LAB_NAME));
    return 1;
  }
}

function status(args: string[]): number {
  const { format } = parseOutputFlag(args);
  const state = readState(flag(args, '--dir', DEFAULT_LAB_DIR));
  if (!state) {
    process.stdout.write(format === 'json' ? '{"up":false}\n' : 'no lab is up\n');
    return 1;
  }
  const procs = state.processes.map((p) => ({ ...p, alive: isAlive(p.pid) }));
  let nodesReady: Record<string, string> = {};
  try {
    const nodes = JSON.parse(kubectl(state.hostKubeconfig, ['get', 'nodes', '-o', 'json'])) as { items: Array<{ metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } }> };
    nodesReady = Object.fromEntries(nodes.items.map((n) => [n.metadata.name, n.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown']));
  } catch { /* API server down: shown as Unknown */ }
  const nodes = state.nodes.map((n) => ({
    name: n.name, netns: n.netns, underlayIp: n.underlayIp, ready: nodesReady[n.name] ?? 'Unknown',
    agent: procs.find((p) => p.role === `agent/${n.name}`)?.alive ?? false, kubelet: procs.find((p) => p.role === `kubelet/${n.name}`)?.alive ?? false,
  }));
  if (format === 'json') {
    process.stdout.write(JSON.stringify({ up: true, dir: state.dir, mode: state.mode, kubeconfig: state.hostKubeconfig, nodes, processes: procs }, null, 2) + '\n');
  } else {
    process.stdout.write(`Lab in ${state.dir} (${state.mode} mode), KUBECONFIG=${state.hostKubeconfig}\n\n`);
    process.stdout.write(renderTable(['NODE', 'NETNS', 'UPLINK', 'READY', 'AGENT', 'KUBELET'], nodes.map((n) => [n.name, n.netns, n.underlayIp, n.ready, n.agent ? 'running' : 'DOWN', n.kubelet ? 'running' : 'DOWN'])));
    process.stdout.write('\n' + renderTable(['PROCESS', 'PID', 'STATE', 'LOG'], procs.map((p) => [p.role, p.pid, p.alive ? 'running' : 'DOWN', p.log])));
  }
  return procs.every((p) => p.alive) ? 0 : 1;
}

function exec(args: string[]): number {
  const sep = args.indexOf('--');
  if (sep < 0 || sep === args.length - 1) {
    process.stderr.write(USAGE);
    return 2;
  }
  const before = args.slice(0, sep);
  const command = args.slice(sep + 1);
  const ns = flag(before, '-n', 'default');
  const pod = before.filter((a, i) => a !== '-n' && before[i - 1] !== '-n' && a !== '--dir' && before[i - 1] !== '--dir')[0];
  const state = readState(flag(before, '--dir', DEFAULT_LAB_DIR));
  if (!state || !pod) {
    process.stderr.write(state ? USAGE : 'no lab is up\n');
    return 2;
  }
  const uid = kubectl(state.hostKubeconfig, ['get', 'pod', '-n', ns, pod, '-o', 'jsonpath={.metadata.uid}']).trim();
  const netns = podNetnsName(uid, podNetnsPrefix(state.name));
  if (command[0] === 'net-probe') command.splice(0, 1, process.execPath, path.join(REPO, 'dist', 'src', 'tools', 'net-probe.js'));
  const r = spawnSync('ip', ['netns', 'exec', netns, ...command], { stdio: 'inherit', env: { ...process.env, FAST_POD_NAME: pod } });
  return r.status ?? 1;
}

async function main(): Promise<number> {
  const [group, cmd, ...rest] = process.argv.slice(2);
  if (group !== 'lab') {
    process.stderr.write(USAGE);
    return 2;
  }
  switch (cmd) {
    case 'up': return up(rest);
    case 'down': {
      await labDown(flag(rest, '--dir', DEFAULT_LAB_DIR), progress);
      return 0;
    }
    case 'status': return status(rest);
    case 'exec': return exec(rest);
    case 'quickstart': return runQuickstart(flag(rest, '--dir', DEFAULT_LAB_DIR), progress);
    default:
      process.stderr.write(USAGE);
      return 2;
  }
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`fast lab: ${err.message}\n`);
  process.exit(1);
});
