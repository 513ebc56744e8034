// Fast's network configuration: the JSON a runtime writes to the plugin's stdin.

import { CniError, CniErrorCode, invalidConfig } from './errors.js';
import {
  describeJsonType,
  isJsonObject,
  optionalBoolean,
  optionalInteger,
  optionalObject,
  optionalString,
  ownField,
  wrongType,
  type JsonObject,
} from './fields.js';
import { parseValidAttachments, type GcAttachment } from './gc.js';
import { networkNameProblem } from './identifiers.js';
import { parseDns, parsePrevResult } from './prev-result.js';
import type { CniResult, ResultDns } from './result.js';
import { requireSupportedVersion } from './version-check.js';
import type { CniVersion } from './versions.js';

export const PLUGIN_TYPE = 'fast';
export const DEFAULT_AGENT_SOCKET = '/run/fast/agent.sock';
export const DEFAULT_PENDING_DELETE_DIR = '/var/lib/fast/pending-del';
export const AGENT_SOCKET_ENV = 'FAST_AGENT_SOCKET';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

// 68 is IPv4's minimum datagram size every link must carry (RFC 791); 65535 is the largest
// MTU the kernel's u16 device field and IP's length field allow.
export const MIN_MTU = 68;
export const MAX_MTU = 65535;

// sun_path is 108 bytes including the terminating NUL; a longer path cannot be connected to.
export const MAX_SOCKET_PATH_BYTES = 107;
// PATH_MAX minus the NUL.
const MAX_PATH_BYTES = 4095;

export interface FastIpamConf {
  type?: 'fast';
  /** Pool name(s) to allocate from; absent means the agent's default selection. */
  pool?: string | string[];
  /** Other ipam keys are kept as given for the agent to interpret. */
  [key: string]: unknown;
}

export interface FastNetConf {
  cniVersion: CniVersion;
  name: string;
  type: 'fast';
  mtu?: number;
  agentSocket?: string;
  pendingDeleteDir?: string;
  ipam?: FastIpamConf;
  dns?: ResultDns;
  /** Canonical form of the previous result (CHECK, DEL, or chained ADD). */
  prevResult?: CniResult;
  /** Capability arguments injected by the runtime (portMappings, bandwidth, ...), as given. */
  runtimeConfig?: JsonObject;
  /** Free-form runtime arguments (CONVENTIONS.md "args"), as given. */
  args?: JsonObject;
  capabilities?: JsonObject;
  /** GC's still-valid attachments, from either spelling of the key. */
  validAttachments?: GcAttachment[];
  disableCheck?: boolean;
  disableGC?: boolean;
  logLevel?: LogLevel;
}

// Text → JSON value. Bytes that are not UTF-8 are refused rather than replaced with U+FFFD, so a
// corrupted config cannot decode into a different but valid-looking one.
export function decodeJson(stdin: Buffer | string | Uint8Array): unknown {
  let text: string;
  try {
    text = typeof stdin === 'string' ? stdin : new TextDecoder('utf-8', { fatal: true }).decode(stdin);
  } catch {
    throw new CniError(CniErrorCode.DecodingFailure, 'network configuration is not valid UTF-8');
  }
  if (text.trim() === '') throw new CniError(CniErrorCode.DecodingFailure, 'network configuration is empty');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CniError(
      CniErrorCode.DecodingFailure,
      'network configuration is not valid JSON',
      e instanceof Error ? e.message : undefined,
    );
  }
}

export function decodeNetConf(stdin: Buffer | string | Uint8Array): FastNetConf {
  return parseNetConf(decodeJson(stdin));
}

// A missing cniVersion means 0.1.0 to the spec and libcni, which Fast does not speak: code 1.
// A present but non-string one is a malformed field: code 7.
export function readCniVersion(conf: JsonObject): CniVersion {
  const version = ownField(conf, 'cniVersion');
  if (version !== undefined && typeof version !== 'string') wrongType('cniVersion', 'a string', version);
  return requireSupportedVersion(version);
}

function readName(conf: JsonObject): string {
  const name = ownField(conf, 'name');
  if (name === undefined) throw invalidConfig('name is required');
  if (typeof name !== 'string') wrongType('name', 'a string', name);
  const problem = networkNameProblem(name);
  if (problem !== undefined) throw invalidConfig(`name ${JSON.stringify(name)} ${problem}`);
  return name;
}

function readType(conf: JsonObject): 'fast' {
  const type = ownField(conf, 'type');
  if (type === undefined) throw invalidConfig('type is required');
  if (typeof type !== 'string') wrongType('type', 'a string', type);
  if (type !== PLUGIN_TYPE) throw invalidConfig(`type must be "${PLUGIN_TYPE}", got ${JSON.stringify(type)}`);
  return PLUGIN_TYPE;
}

function readAbsolutePath(conf: JsonObject, key: string, maxBytes: number): string | undefined {
  const path = optionalString(conf, key, key);
  if (path === undefined) return undefined;
  if (!path.startsWith('/')) throw invalidConfig(`${key} must be an absolute path, got ${JSON.stringify(path)}`);
  if (path.includes('\0')) throw invalidConfig(`${key} must not contain NUL`);
  if (Buffer.byteLength(path, 'utf8') > maxBytes) throw invalidConfig(`${key} must be at most ${maxBytes} bytes long`);
  return path;
}

function readPoolName(value: unknown, path: string): string {
  if (typeof value !== 'string') wrongType(path, 'a pool name string', value);
  if (value.trim() === '') throw invalidConfig(`${path} must not be empty`);
  return value;
}

function readPools(ipam: JsonObject): string | string[] | undefined {
  const pool = ownField(ipam, 'pool');
  if (pool === undefined) return undefined;
  if (typeof pool === 'string') return readPoolName(pool, 'ipam.pool');
  if (!Array.isArray(pool)) wrongType('ipam.pool', 'a pool name or an array of pool names', pool);
  // An empty list would mean "allocate from nowhere", which can only be a mistake.
  if (pool.length === 0) throw invalidConfig('ipam.pool must not be an empty array');
  return pool.map((item, i) => readPoolName(item, `ipam.pool[${i}]`));
}

// Fast allocates addresses itself; delegating to another IPAM plugin is not supported, so a
// foreign ipam.type is a configuration error rather than something to silently ignore.
function readIpam(conf: JsonObject): FastIpamConf | undefined {
  const ipam = optionalObject(conf, 'ipam', 'ipam');
  if (ipam === undefined) return undefined;
  const type = optionalString(ipam, 'type', 'ipam.type');
  if (type !== undefined && type !== PLUGIN_TYPE) {
    throw invalidConfig(`ipam.type must be absent or "${PLUGIN_TYPE}", got ${JSON.stringify(type)}`);
  }
  const out = { ...ipam } as FastIpamConf;
  const pool = readPools(ipam);
  if (pool !== undefined) out.pool = pool;
  return out;
}

function readLogLevel(conf: JsonObject): LogLevel | undefined {
  const level = ownField(conf, 'logLevel');
  if (level === undefined) return undefined;
  if (typeof level !== 'string' || !(LOG_LEVELS as readonly string[]).includes(level)) {
    const shown = typeof level === 'string' ? JSON.stringify(level) : describeJsonType(level);
    throw invalidConfig(`logLevel must be one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}, got ${shown}`);
  }
  return level as LogLevel;
}

// Validates a decoded configuration. cniVersion is checked first: under a version we do not
// speak the other fields may follow a different schema, so their errors would mislead.
// A JSON value that is not an object is a decoding failure (6), as in libcni, where it
// cannot be unmarshalled into the config struct at all.
export function parseNetConf(value: unknown): FastNetConf {
  if (!isJsonObject(value)) {
    throw new CniError(CniErrorCode.DecodingFailure, 'network configuration must be a JSON object');
  }
  const cniVersion = readCniVersion(value);
  const conf: FastNetConf = { cniVersion, name: readName(value), type: readType(value) };
  const mtu = optionalInteger(value, 'mtu', 'mtu', MIN_MTU, MAX_MTU);
  if (mtu !== undefined) conf.mtu = mtu;
  const agentSocket = readAbsolutePath(value, 'agentSocket', MAX_SOCKET_PATH_BYTES);
  if (agentSocket !== undefined) conf.agentSocket = agentSocket;
  const pendingDeleteDir = readAbsolutePath(value, 'pendingDeleteDir', MAX_PATH_BYTES);
  if (pendingDeleteDir !== undefined) conf.pendingDeleteDir = pendingDeleteDir;
  const ipam = readIpam(value);
  if (ipam !== undefined) conf.ipam = ipam;
  const dns = optionalObject(value, 'dns', 'dns');
  if (dns !== undefined) conf.dns = parseDns(dns, 'dns');
  const prevResult = ownField(value, 'prevResult');
  if (prevResult !== undefined) conf.prevResult = parsePrevResult(prevResult, cniVersion);
  readPassThroughFields(value, conf);
  const validAttachments = parseValidAttachments(value);
  if (validAttachments !== undefined) conf.validAttachments = validAttachments;
  const disableCheck = optionalBoolean(value, 'disableCheck', 'disableCheck');
  if (disableCheck !== undefined) conf.disableCheck = disableCheck;
  const disableGC = optionalBoolean(value, 'disableGC', 'disableGC');
  if (disableGC !== undefined) conf.disableGC = disableGC;
  const logLevel = readLogLevel(value);
  if (logLevel !== undefined) conf.logLevel = logLevel;
  return conf;
}

// Objects whose content belongs to the runtime or to conventions Fast reads elsewhere; only
// their being objects is checked here.
function readPassThroughFields(value: JsonObject, conf: FastNetConf): void {
  const runtimeConfig = optionalObject(value, 'runtimeConfig', 'runtimeConfig');
  if (runtimeConfig !== undefined) conf.runtimeConfig = runtimeConfig;
  const args = optionalObject(value, 'args', 'args');
  if (args !== undefined) conf.args = args;
  const capabilities = optionalObject(value, 'capabilities', 'capabilities');
  if (capabilities !== undefined) conf.capabilities = capabilities;
}

// Pool names as a list whichever form the config used; empty means "agent's choice".
export function ipamPoolNames(conf: Pick<FastNetConf, 'ipam'>): string[] {
  const pool = conf.ipam?.pool;
  if (pool === undefined) return [];
  return typeof pool === 'string' ? [pool] : [...pool];
}

// Socket precedence from docs/architecture.md: config key, then environment, then default.
export function resolveAgentSocket(
  conf: Pick<FastNetConf, 'agentSocket'> | undefined,
  env: Record<string, string | undefined>,
): string {
  return conf?.agentSocket ?? nonEmpty(env[AGENT_SOCKET_ENV]) ?? DEFAULT_AGENT_SOCKET;
}

export function resolvePendingDeleteDir(conf: Pick<FastNetConf, 'pendingDeleteDir'> | undefined): string {
  return conf?.pendingDeleteDir ?? DEFAULT_PENDING_DELETE_DIR;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
