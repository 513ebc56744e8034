// fast-agent configuration: a JSON file, overridden by environment variables
// (FAST_<FIELD> in upper snake case), overridden by command-line flags (--field=value).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LogLevel } from './log.js';

export interface StandalonePool {
  name: string;
  /** Ips-style entries: ranges `A-B`, single addresses, CIDRs. */
  ips: string[];
  subnet: string;
}

export interface AgentConfig {
  nodeName: string;
  socketPath: string;
  stateDir: string;
  bpffsDir: string;
  pendingDeleteDir: string;
  mtu: number;
  logLevel: LogLevel;
  /** Where the compiled eBPF objects are. */
  bpfDir: string;
  /** standalone: pools from this file; kubernetes: pools from Ips objects. */
  mode: 'standalone' | 'kubernetes';
  pools: StandalonePool[];
  defaultPool: string;
  kubeconfig?: string;
  /** Seconds a released address rests before reuse. */
  releaseCooldownSeconds: number;
  /** Cross-node datapath (kubernetes mode): overlay (VXLAN), native routing, or local only. */
  datapathMode: 'overlay' | 'native' | 'local';
  /** The node's underlay device and address (default: the device holding the default route). */
  uplink?: string;
  nodeIp?: string;
  vni: number;
  vxlanPort: number;
  /** Overlay: encapsulate pod packets in eBPF (default; IPv4 underlays) or always through
   *  the kernel's VXLAN device (fast_vxlan). Same wire format either way. */
  overlayEncap: 'ebpf' | 'kernel';
  /** Overlay: decapsulate in eBPF on the uplink, straight into the pod (default), or leave
   *  every tunnel packet to fast_vxlan. */
  overlayDecap: 'ebpf' | 'kernel';
  /** How programs are attached to devices. auto (the default): tcx links where the kernel has
   *  them, but a pod is attached with clsact + cls_bpf during its CNI ADD and moved to its link
   *  when the node is idle (tcx-mover.ts); tcx: a link during the ADD (fail without tcx); tc:
   *  clsact + cls_bpf only. Why the move is deferred: a tcx attach waits an RCU grace period
   *  while holding RTNL (~15 ms measured, against 0.04 ms for cls_bpf), which would add that to
   *  every ADD and stall every other link operation of the machine meanwhile; tcx saves
   *  ~0.25–0.4 µs per same-node round trip. See docs/benchmarks.md. */
  attachMode: 'auto' | 'tcx' | 'tc';
  /** attachMode auto: how long no CNI call must have run before a pod is moved to tcx (ms). */
  tcxMoveIdleMs: number;
  /** kubernetes mode: upper bound of the per-node block of a pool (addresses a node prefers). */
  ipamBlockSize?: number;
  /** kubernetes mode: seconds to wait at start for the Ips/IpEndpoint caches (CRDs installed?). */
  ipamSyncTimeoutSeconds?: number;
}

export const DEFAULT_CONFIG: AgentConfig = {
  nodeName: os.hostname(),
  socketPath: '/run/fast/agent.sock',
  stateDir: '/var/lib/fast',
  bpffsDir: '/sys/fs/bpf/fast',
  pendingDeleteDir: '/var/lib/fast/pending-del',
  mtu: 1500,
  logLevel: 'info',
  bpfDir: findBpfDir(),
  mode: 'standalone',
  pools: [],
  defaultPool: 'default-ips',
  releaseCooldownSeconds: 30,
  datapathMode: 'overlay',
  vni: 1,
  vxlanPort: 8472,
  overlayEncap: 'ebpf',
  overlayDecap: 'ebpf',
  attachMode: 'auto',
  tcxMoveIdleMs: 1000,
  ipamBlockSize: 64,
  ipamSyncTimeoutSeconds: 120,
};

export class ConfigError extends Error {}

/** The compiled objects ship in the package's bpf/ folder (from src/ or dist/src/). */
function findBpfDir(): string {
  let dir = path.dirname(new URL(import.meta.url).pathname);
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'bpf', 'fast_pod.o'))) return path.join(dir, 'bpf');
    dir = path.dirname(dir);
  }
  return '/usr/lib/fast/bpf';
}

const NUMERIC: Array<keyof AgentConfig> = ['mtu', 'releaseCooldownSeconds', 'vni', 'vxlanPort', 'ipamBlockSize', 'ipamSyncTimeoutSeconds', 'tcxMoveIdleMs'];

/** Settings with no default: still settable from the environment and by flag. */
const OPTIONAL_KEYS = ['kubeconfig', 'uplink', 'nodeIp'] as const;
const KEYS = [...Object.keys(DEFAULT_CONFIG), ...OPTIONAL_KEYS] as Array<keyof AgentConfig>;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const flags = parseFlags(argv);
  const unknown = Object.keys(flags).filter((f) => f !== 'config' && !(KEYS as string[]).includes(f));
  if (unknown.length > 0) throw new ConfigError(`unknown flag${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => `--${f}`).join(', ')}`);
  const file = flags.config ?? env.FAST_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  // KUBECONFIG is the usual fallback of every Kubernetes client: below the file and FAST_KUBECONFIG.
  const merged: Record<string, unknown> = { ...DEFAULT_CONFIG, kubeconfig: env.KUBECONFIG, ...fromFile };
  for (const key of KEYS) {
    const envValue = env[`FAST_${snake(key)}`];
    if (envValue !== undefined) merged[key] = coerce(key, envValue);
    if (flags[key] !== undefined) merged[key] = coerce(key, flags[key]!);
  }
  if (merged.kubeconfig === undefined) delete merged.kubeconfig;
  return validate(merged as unknown as AgentConfig);
}

function parseFlags(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else out[a.slice(2)] = argv[++i] ?? '';
  }
  return out;
}

function readConfigFile(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`cannot read configuration ${file}: ${(err as Error).message}`);
  }
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

function coerce(key: keyof AgentConfig, value: string): unknown {
  if (NUMERIC.includes(key)) return Number(value);
  if (key === 'pools') return JSON.parse(value);
  return value;
}

function validate(c: AgentConfig): AgentConfig {
  if (!Number.isInteger(c.mtu) || c.mtu < 576 || c.mtu > 65535) throw new ConfigError(`mtu must be an integer in 576..65535, got ${c.mtu}`);
  if (!['standalone', 'kubernetes'].includes(c.mode)) throw new ConfigError(`mode must be standalone or kubernetes, got ${c.mode}`);
  if (!['debug', 'info', 'warn', 'error'].includes(c.logLevel)) throw new ConfigError(`logLevel must be debug|info|warn|error`);
  for (const k of ['socketPath', 'stateDir', 'bpffsDir', 'pendingDeleteDir'] as const) {
    if (!c[k].startsWith('/')) throw new ConfigError(`${k} must be an absolute path, got ${c[k]}`);
  }
  if (!Number.isFinite(c.releaseCooldownSeconds) || c.releaseCooldownSeconds < 0) throw new ConfigError('releaseCooldownSeconds must be >= 0');
  if (c.ipamBlockSize !== undefined && (!Number.isInteger(c.ipamBlockSize) || c.ipamBlockSize < 1 || c.ipamBlockSize > 65536)) {
    throw new ConfigError(`ipamBlockSize must be an integer in 1..65536, got ${c.ipamBlockSize}`);
  }
  if (c.ipamSyncTimeoutSeconds !== undefined && (!Number.isFinite(c.ipamSyncTimeoutSeconds) || c.ipamSyncTimeoutSeconds <= 0)) {
    throw new ConfigError('ipamSyncTimeoutSeconds must be > 0');
  }
  if (c.mode === 'standalone' && c.pools.length === 0) throw new ConfigError('standalone mode needs at least one pool in "pools"');
  if (typeof c.nodeName !== 'string' || c.nodeName.length === 0) throw new ConfigError('nodeName must be a non-empty string');
  if (!Number.isInteger(c.vni) || c.vni < 1 || c.vni > 0xffffff) throw new ConfigError(`vni must be an integer in 1..16777215, got ${c.vni}`);
  if (!Number.isInteger(c.vxlanPort) || c.vxlanPort < 1 || c.vxlanPort > 65535) throw new ConfigError(`vxlanPort must be an integer in 1..65535, got ${c.vxlanPort}`);
  if (!Number.isInteger(c.tcxMoveIdleMs) || c.tcxMoveIdleMs < 0) throw new ConfigError(`tcxMoveIdleMs must be an integer >= 0, got ${c.tcxMoveIdleMs}`);
  if (!['auto', 'tcx', 'tc'].includes(c.attachMode)) throw new ConfigError(`attachMode must be auto, tcx or tc, got ${c.attachMode}`);
  if (!['ebpf', 'kernel'].includes(c.overlayEncap)) throw new ConfigError(`overlayEncap must be ebpf or kernel, got ${c.overlayEncap}`);
  if (!['ebpf', 'kernel'].includes(c.overlayDecap)) throw new ConfigError(`overlayDecap must be ebpf or kernel, got ${c.overlayDecap}`);
  if (!['overlay', 'native', 'local'].includes(c.datapathMode)) throw new ConfigError(`datapathMode must be overlay, native or local, got ${c.datapathMode}`);
  return c;
}
