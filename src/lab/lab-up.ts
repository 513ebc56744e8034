// `fast lab up`: builds the lab step by step, recording each step in the lab state so
// that `fast lab down` can undo a half-built lab.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as http from 'node:http';
import { execFileSync } from 'node:child_process';
import { type LabState, type LabNode, writeState, readState, podNetnsPrefix } from './lab-state.js';
import { createUnderlay, attachHost, enableForwarding, nodeUnderlayIp, UNDERLAY_GATEWAY, EXTERNAL_IP } from './topology.js';
import { startDetached } from './processes.js';
import { writeKubeconfig } from './apiserver/kubeconfig.js';

/** The repository (or installed package) root, from src/lab or dist/src/lab alike. */
export const REPO = findPackageRoot(path.dirname(new URL(import.meta.url).pathname));

function findPackageRoot(dir: string): string {
  for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'bin', 'fast'))) return d;
  }
  throw new Error(`cannot find Fast's package root above ${dir}`);
}
const DIST = path.join(REPO, 'dist', 'src');

export interface UpOptions {
  name: string;
  dir: string;
  nodes: number;
  apiPort: number;
  mode: 'overlay' | 'native';
  progress: (msg: string) => void;
}

export async function labUp(o: UpOptions): Promise<LabState> {
  if (readState(o.dir)) throw new Error(`a lab is already up in ${o.dir}; run \`fast lab down\` first`);
  fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  const state: LabState = {
    name: o.name, dir: o.dir, createdAt: new Date().toISOString(), underlayNetns: `${o.name}-underlay`, underlayBridge: 'br0', underlayGateway: UNDERLAY_GATEWAY,
    apiPort: o.apiPort, hostKubeconfig: path.join(o.dir, 'kubeconfig'), nodes: [], processes: [], namespaces: [], mode: o.mode,
  };
  const record = () => writeState(state);
  record();

  o.progress(`underlay: namespace ${state.underlayNetns} with bridge br0 (${UNDERLAY_GATEWAY}/24)`);
  state.namespaces.push(state.underlayNetns);
  record();
  createUnderlay(state.underlayNetns);

  state.externalNetns = `${o.name}-external`;
  state.externalIp = EXTERNAL_IP;
  state.namespaces.push(state.externalNetns);
  record();
  attachHost(state.underlayNetns, state.externalNetns, 'ext', EXTERNAL_IP);
  o.progress(`external host (not a node): ${state.externalNetns} ${EXTERNAL_IP}`);

  o.progress(`API server on 127.0.0.1:${o.apiPort} (and ${UNDERLAY_GATEWAY}:${o.apiPort} inside the lab)`);
  state.processes.push(startDetached({
    role: 'apiserver', command: process.execPath,
    args: [path.join(DIST, 'lab', 'api-host.js'), '--port', String(o.apiPort), '--lab-netns', `/var/run/netns/${state.underlayNetns}`, '--state-file', path.join(o.dir, 'apiserver-state.json')],
    log: path.join(o.dir, 'apiserver.log'),
  }));
  record();
  writeKubeconfig(state.hostKubeconfig, `http://127.0.0.1:${o.apiPort}`);
  await waitFor(`API server`, () => httpOk(`http://127.0.0.1:${o.apiPort}/version`), 20000);

  o.progress('applying Fast CRDs (deploy/crds/ips.yaml)');
  kubectl(state.hostKubeconfig, ['apply', '-f', path.join(REPO, 'deploy', 'crds', 'ips.yaml')]);

  state.processes.push(startDetached({ role: 'lab-controllers', command: process.execPath, args: [path.join(DIST, 'lab', 'controllers', 'main.js'), '--kubeconfig', state.hostKubeconfig], log: path.join(o.dir, 'lab-controllers.log') }));
  state.processes.push(startDetached({ role: 'fast-controller-manager', command: process.execPath, args: [path.join(DIST, 'controller-manager', 'main.js'), '--kubeconfig', state.hostKubeconfig], log: path.join(o.dir, 'controller-manager.log') }));
  record();

  for (let i = 1; i <= o.nodes; i++) {
    const node = createNode(state, i);
    o.progress(`node ${node.name}: namespace ${node.netns}, uplink ${node.underlayIp}, agent, kubelet`);
    startNodeProcesses(state, node);
    record();
  }
  for (const node of state.nodes) {
    await waitFor(`agent on ${node.name}`, async () => fs.existsSync(path.join(node.stateDir, 'ready')), 30000, () => tail(path.join(node.dir, 'agent.log')));
  }
  await waitFor('all nodes Ready', async () => readyNodes(state.hostKubeconfig) === o.nodes, 30000);
  o.progress(`all ${o.nodes} nodes Ready`);
  return state;
}

function createNode(state: LabState, i: number): LabNode {
  const name = `node${i}`;
  const dir = path.join(state.dir, name);
  const node: LabNode = {
    name, netns: `${state.name}-${name}`, underlayIp: nodeUnderlayIp(i), dir, socketPath: path.join(dir, 'agent.sock'),
    bpffsDir: path.join(dir, 'bpffs'), stateDir: path.join(dir, 'state'), cniConfDir: path.join(dir, 'cni', 'net.d'), kubeconfig: path.join(dir, 'kubeconfig'),
  };
  state.namespaces.push(node.netns);
  state.nodes.push(node);
  writeState(state);
  fs.mkdirSync(node.cniConfDir, { recursive: true });
  // The plugin type names the executable, as on any CNI host: /opt/cni/bin/fast.
  fs.mkdirSync(path.join(dir, 'cni', 'bin'), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'cni', 'fast-cni'), path.join(dir, 'cni', 'bin', 'fast'));
  attachHost(state.underlayNetns, node.netns, `p-${name}`, node.underlayIp);
  enableForwarding(node.netns);
  writeKubeconfig(node.kubeconfig, `http://${UNDERLAY_GATEWAY}:${state.apiPort}`);
  fs.writeFileSync(path.join(dir, 'agent.json'), JSON.stringify({
    nodeName: name, mode: 'kubernetes', kubeconfig: node.kubeconfig, socketPath: node.socketPath, stateDir: node.stateDir, bpffsDir: node.bpffsDir,
    pendingDeleteDir: path.join(node.stateDir, 'pending-del'), uplink: 'eth0', nodeIp: node.underlayIp, datapathMode: state.mode, logLevel: 'info',
  }, null, 2));
  fs.writeFileSync(path.join(node.cniConfDir, '10-fast.conflist'), JSON.stringify({
    // 1.0.0: Debian's reference plugins (portmap) stop there.
    cniVersion: '1.0.0', name: 'fast',
    plugins: [
      { type: 'fast', agentSocket: node.socketPath, pendingDeleteDir: path.join(node.stateDir, 'pending-del') },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  }, null, 2));
  return node;
}

function startNodeProcesses(state: LabState, node: LabNode): void {
  state.processes.push(startDetached({ role: `agent/${node.name}`, netns: node.netns, command: process.execPath, args: [path.join(DIST, 'agent', 'main.js'), '--config', path.join(node.dir, 'agent.json')], log: path.join(node.dir, 'agent.log') }));
  state.processes.push(startDetached({
    role: `kubelet/${node.name}`, netns: node.netns, command: process.execPath,
    args: [path.join(DIST, 'lab', 'kubelet', 'main.js'), '--node', node.name, '--node-ip', node.underlayIp, '--kubeconfig', node.kubeconfig,
      '--cni-conf-dir', node.cniConfDir, '--netns-prefix', podNetnsPrefix(state.name), '--cni-bin-dir', `${path.join(node.dir, 'cni', 'bin')}:/usr/lib/cni`, '--state-dir', path.join(node.dir, 'kubelet')],
    log: path.join(node.dir, 'kubelet.log'),
  }));
}

export function kubectl(kubeconfig: string, args: string[]): string {
  return execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function readyNodes(kubeconfig: string): number {
  try {
    const nodes = JSON.parse(kubectl(kubeconfig, ['get', 'nodes', '-o', 'json'])) as { items: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }> };
    return nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  } catch {
    return 0;
  }
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    http.get(url, (res) => { res.resume(); resolve(res.statusCode === 200); }).on('error', () => resolve(false));
  });
}

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, explain?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${explain ? `\n${explain()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
