// fast-ctl: the operator's tool on a node.
//   fast-ctl [--config FILE] [--bpffs-dir D] [--state-dir D] [--socket S] COMMAND [-o json]
//   status | endpoint list | map list | map dump NAME | ipam
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderTable, parseOutputFlag, type OutputFormat } from '../cli/table.js';
import { DEFAULT_CONFIG } from '../agent/config.js';
import { listPinnedMaps, dumpMap, crossNodeSummary, describeCrossNode } from './pinned-maps.js';
import { kernelFeatures } from '../dataplane/bpf/kernel-btf.js';
import { askAgent } from './agent-client.js';
import { attachStatus, describeAttach } from './attach-status.js';
import type { AttachReport } from '../agent/ctl-api.js';
import { queryAttachment } from '../dataplane/bpf/tc.js';
import { MAP_NAMES } from '../dataplane/bpf/map-layouts.js';
import type { Endpoint } from '../agent/endpoint-store.js';

interface CtlOptions { bpffsDir: string; stateDir: string; socketPath: string }

const USAGE = `usage: fast-ctl [--config FILE] [--bpffs-dir DIR] [--state-dir DIR] [--socket PATH] COMMAND [-o json]
commands:
  status              agent health, maps and pools
  endpoint list       pods on this node (from the pinned maps and the agent's records)
  map list            Fast's pinned eBPF maps
  map dump NAME       entries of one map (${Object.values(MAP_NAMES).join(', ')})
  ipam                pools and allocations seen by this node's agent
`;

function parseGlobal(argv: string[]): { opts: CtlOptions; rest: string[] } {
  const opts: CtlOptions = { bpffsDir: DEFAULT_CONFIG.bpffsDir, stateDir: DEFAULT_CONFIG.stateDir, socketPath: DEFAULT_CONFIG.socketPath };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config') Object.assign(opts, pickPaths(JSON.parse(fs.readFileSync(argv[++i]!, 'utf8')) as Partial<CtlOptions>));
    else if (a === '--bpffs-dir') opts.bpffsDir = argv[++i]!;
    else if (a === '--state-dir') opts.stateDir = argv[++i]!;
    else if (a === '--socket') opts.socketPath = argv[++i]!;
    else rest.push(a);
  }
  return { opts, rest };
}

function pickPaths(c: Partial<CtlOptions>): Partial<CtlOptions> {
  const out: Partial<CtlOptions> = {};
  if (c.bpffsDir) out.bpffsDir = c.bpffsDir;
  if (c.stateDir) out.stateDir = c.stateDir;
  if (c.socketPath) out.socketPath = c.socketPath;
  return out;
}

function print(format: OutputFormat, data: unknown, table: () => string): void {
  process.stdout.write(format === 'json' ? JSON.stringify(data, null, 2) + '\n' : table());
}

function readEndpointRecords(stateDir: string): Endpoint[] {
  const dir = path.join(stateDir, 'endpoints');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Endpoint);
}

async function status(o: CtlOptions, format: OutputFormat): Promise<void> {
  const agent = await askAgent<Record<string, unknown>>(o.socketPath, { op: 'status' }).then((r) => ({ reachable: true, ...r }), (e: Error) => ({ reachable: false, error: e.message }));
  const maps = listPinnedMaps(o.bpffsDir);
  const attach = attachStatus(o.bpffsDir, (agent as { attach?: AttachReport }).attach);
  const crossNode = crossNodeSummary(o.bpffsDir);
  const kernel = kernelFeatures();
  print(format, { agent, maps, attach, crossNode, kernel }, () => {
    const a = agent as Record<string, unknown>;
    const lines = [`Agent:      ${a.reachable ? `${a.ready ? 'ready' : 'starting'} (node ${a.node}, mode ${a.mode}, pid ${a.pid}, up ${a.uptimeSeconds}s)` : `unreachable: ${a.error}`}`,
      `Attach:     ${describeAttach(attach)}`,
      `Endpoints:  ${a.reachable ? a.endpoints : readEndpointRecords(o.stateDir).length}`,
      `Cross-node: ${describeCrossNode(crossNode)}`,
      `Kernel:     ${kernel.map((k) => `${k.name} ${k.present ? 'yes' : 'NO'}`).join(', ')}`,
      ...kernel.filter((k) => !k.present).map((k) => `            ${k.name}: ${k.effect}`),
      `Maps:       ${maps.length} pinned under ${o.bpffsDir}`];
    let out = lines.join('\n') + '\n\n' + renderTable(['MAP', 'TYPE', 'ENTRIES', 'MAX'], maps.map((m) => [m.name, m.type, m.entries, m.maxEntries]));
    const pools = (a.pools ?? []) as Array<{ name: string; total: number; allocated: number; cooling: number; ready: boolean; message?: string }>;
    if (pools.length) out += '\n' + renderTable(['POOL', 'READY', 'TOTAL', 'ALLOCATED', 'COOLING', 'MESSAGE'], pools.map((p) => [p.name, p.ready, p.total, p.allocated, p.cooling, p.message]));
    return out;
  });
}

function endpointList(o: CtlOptions, format: OutputFormat): void {
  const entries = dumpMap(o.bpffsDir, MAP_NAMES.localPods);
  const records = readEndpointRecords(o.stateDir);
  const byIp = new Map(records.flatMap((r) => r.addresses.map((a) => [a.address, r] as const)));
  const rows: Array<Record<string, unknown>> = entries.map((e) => {
    const r = byIp.get(e.ip as string);
    // How the program sits on the pod's host veth (tcx link or cls_bpf filter); 'none' is a broken pod.
    const attach = queryAttachment(e.hostIfindex as number, 'ingress', path.join(o.bpffsDir, 'links'))?.via ?? 'none';
    return { ...e, pod: r?.pod?.name ? `${r.pod.namespace}/${r.pod.name}` : undefined, containerId: r?.containerId, ifName: r?.ifName, pool: r?.addresses.find((a) => a.address === e.ip)?.pool, attach };
  });
  print(format, rows, () => renderTable(['IP', 'POD', 'POOL', 'HOST-IF', 'IFINDEX', 'ATTACH', 'HOST-MAC', 'POD-MAC', 'CONTAINER'],
    rows.map((r) => [r.ip as string, (r.pod as string) ?? '-', (r.pool as string) ?? '-', r.hostIfName as string, r.hostIfindex as number, r.attach as string, r.hostMac as string, r.podMac as string, (r.containerId as string | undefined)?.slice(0, 12) ?? '-'])));
}

async function ipam(o: CtlOptions, format: OutputFormat): Promise<void> {
  const r = await askAgent<{ pools: Array<Record<string, unknown>>; allocations: Array<Record<string, unknown>> }>(o.socketPath, { op: 'ipam' });
  print(format, r, () => renderTable(['POOL', 'READY', 'TOTAL', 'ALLOCATED', 'COOLING'], r.pools.map((p) => [p.name as string, p.ready as boolean, p.total as number, p.allocated as number, p.cooling as number]))
    + '\n' + renderTable(['ADDRESS', 'POOL', 'CONTAINER', 'IFNAME'], r.allocations.map((a) => [a.address as string, a.pool as string, (a.containerId as string).slice(0, 12), a.ifName as string])));
}

async function main(): Promise<number> {
  const { format, rest: args } = parseOutputFlag(process.argv.slice(2));
  const { opts, rest } = parseGlobal(args);
  const cmd = rest.join(' ');
  if (cmd === 'status') await status(opts, format);
  else if (cmd === 'endpoint list' || cmd === 'endpoints') endpointList(opts, format);
  else if (cmd === 'map list') print(format, listPinnedMaps(opts.bpffsDir), () => renderTable(['NAME', 'TYPE', 'KEY', 'VALUE', 'MAX', 'ENTRIES', 'PATH'], listPinnedMaps(opts.bpffsDir).map((m) => [m.name, m.type, m.keySize, m.valueSize, m.maxEntries, m.entries, m.path])));
  else if (rest[0] === 'map' && rest[1] === 'dump' && rest[2]) {
    const rows = dumpMap(opts.bpffsDir, rest[2]);
    print(format, rows, () => rows.length === 0 ? '(empty)\n' : renderTable(Object.keys(rows[0]!).map((k) => k.toUpperCase()), rows.map((r) => Object.values(r) as string[])));
  } else if (cmd === 'ipam') await ipam(opts, format);
  else {
    process.stderr.write(USAGE);
    return 2;
  }
  return 0;
}

// exitCode, not exit(): exit() would cut a large answer short on a pipe.
main().then((code) => (process.exitCode = code), (err: Error) => {
  process.stderr.write(`fast-ctl: ${err.message}\n`);
  process.exitCode = 1;
});
