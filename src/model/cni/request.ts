// One plugin invocation (environment + stdin) turned into a validated request.
//
// Check order follows libcni's skel, so Fast fails the way the reference plugins do:
// environment first (code 4), then stdin decoding (6), then the version (1), then the
// configuration's fields (7).

import { parseCniArgs, type CniArgs } from './args.js';
import { CniError, CniErrorCode, invalidConfig, invalidEnv } from './errors.js';
import { isJsonObject, ownField } from './fields.js';
import { containerIdProblem, interfaceNameProblem } from './identifiers.js';
import { decodeJson, parseNetConf, readCniVersion, type FastNetConf } from './netconf.js';
import {
  CNI_COMMANDS,
  commandIntroducedIn,
  isCniCommand,
  isSupportedVersion,
  LATEST,
  supportsCommand,
  type CniCommand,
  type CniVersion,
} from './versions.js';
import { VALID_ATTACHMENTS_KEY } from './gc.js';

export type CniEnv = Record<string, string | undefined>;

export type NetworkCommand = Exclude<CniCommand, 'VERSION'>;

interface RequestBase {
  /** '' when the command does not take one (GC, STATUS, VERSION). */
  containerId: string;
  /** '' when not given: DEL may omit it, GC, STATUS and VERSION do not take it. */
  netns: string;
  /** '' when the command does not take one (GC, STATUS, VERSION). */
  ifName: string;
  args: CniArgs;
  /** CNI_PATH as given ('' when absent); Fast delegates to no other plugin, so it is unused. */
  path: string;
  cniVersion: CniVersion;
}

export interface VersionRequest extends RequestBase {
  command: 'VERSION';
  config?: undefined;
}

export interface NetworkRequest extends RequestBase {
  command: NetworkCommand;
  config: FastNetConf;
}

export type CniRequest = VersionRequest | NetworkRequest;

// Which attachment variables each command needs (spec 1.1.0 "CNI operations"). DEL may omit
// CNI_NETNS: the namespace can be gone already and DEL must still release resources.
// CNI_PATH is not required even where the spec lists it: Fast never executes other plugins.
interface EnvNeeds {
  containerId: boolean;
  ifName: boolean;
  netns: boolean;
}

const ENV_NEEDS: Readonly<Record<NetworkCommand, EnvNeeds>> = {
  ADD: { containerId: true, ifName: true, netns: true },
  CHECK: { containerId: true, ifName: true, netns: true },
  DEL: { containerId: true, ifName: true, netns: false },
  GC: { containerId: false, ifName: false, netns: false },
  STATUS: { containerId: false, ifName: false, netns: false },
};

// An empty value counts as missing, as in libcni: runtimes unset a variable by blanking it.
function envValue(env: CniEnv, name: string): string | undefined {
  const value = Object.hasOwn(env, name) ? env[name] : undefined;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function readCommand(env: CniEnv): CniCommand {
  const command = envValue(env, 'CNI_COMMAND');
  if (command === undefined) throw invalidEnv('required environment variable CNI_COMMAND is missing');
  if (!isCniCommand(command)) {
    throw invalidEnv(`CNI_COMMAND ${JSON.stringify(command)} is unknown; expected one of ${CNI_COMMANDS.join(', ')}`);
  }
  return command;
}

function requireEnv(env: CniEnv, needs: EnvNeeds): void {
  const missing: string[] = [];
  if (needs.containerId && envValue(env, 'CNI_CONTAINERID') === undefined) missing.push('CNI_CONTAINERID');
  if (needs.netns && envValue(env, 'CNI_NETNS') === undefined) missing.push('CNI_NETNS');
  if (needs.ifName && envValue(env, 'CNI_IFNAME') === undefined) missing.push('CNI_IFNAME');
  if (missing.length > 0) {
    throw invalidEnv(`required environment variables missing: ${missing.join(', ')}`);
  }
}

// Spec error 4 is "invalid necessary environment variables", and its message must name them.
function readContainerId(env: CniEnv): string {
  const value = envValue(env, 'CNI_CONTAINERID') ?? '';
  const problem = containerIdProblem(value);
  if (problem !== undefined) throw invalidEnv(`CNI_CONTAINERID ${problem}`, JSON.stringify(value));
  return value;
}

function readIfName(env: CniEnv): string {
  const value = envValue(env, 'CNI_IFNAME') ?? '';
  const problem = interfaceNameProblem(value);
  if (problem !== undefined) throw invalidEnv(`CNI_IFNAME ${problem}`, JSON.stringify(value));
  return value;
}

// Fast only runs on Linux network namespaces, which are always named by an absolute path.
function readNetns(env: CniEnv): string {
  const value = envValue(env, 'CNI_NETNS');
  if (value === undefined) return '';
  if (!value.startsWith('/')) throw invalidEnv('CNI_NETNS must be an absolute path', JSON.stringify(value));
  if (value.includes('\0')) throw invalidEnv('CNI_NETNS must not contain NUL');
  return value;
}

function emptyArgs(): CniArgs {
  return { values: new Map(), ignoreUnknown: false };
}

// Spec (libcni skel does the same): a command the config's version predates is error 1,
// "incompatible CNI version" — e.g. CHECK under 0.3.1 or GC under 1.0.0.
function requireCommandInVersion(command: NetworkCommand, version: CniVersion): void {
  if (!supportsCommand(version, command)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `config version ${version} does not allow ${command}; ${command} needs CNI version ${commandIntroducedIn(command)} or later`,
    );
  }
}

// Spec: for CHECK the runtime "must include a prevResult field", and the plugin must consult it.
// GC without a valid-attachments list is refused rather than read as "nothing is valid",
// which would tear down every pod on the node.
function requireCommandFields(command: NetworkCommand, config: FastNetConf): void {
  if (command === 'CHECK' && config.prevResult === undefined) {
    throw invalidConfig('CHECK requires prevResult in the network configuration');
  }
  if (command === 'GC' && config.validAttachments === undefined) {
    throw invalidConfig(`GC requires ${VALID_ATTACHMENTS_KEY} in the network configuration`);
  }
}

// VERSION needs nothing but CNI_COMMAND; stdin is read only for the version to answer in,
// and never fails the request (libcni ignores stdin entirely here).
function versionRequest(env: CniEnv, stdin: Buffer | string | Uint8Array): VersionRequest {
  return {
    command: 'VERSION',
    containerId: '',
    netns: '',
    ifName: '',
    args: emptyArgs(),
    path: envValue(env, 'CNI_PATH') ?? '',
    cniVersion: requestedVersionOrLatest(stdin),
  };
}

/** The version to answer errors in: the request's own when supported, else the latest. */
export function requestedVersionOrLatest(stdin: Buffer | string | Uint8Array): CniVersion {
  try {
    const value = decodeJson(stdin);
    const version = isJsonObject(value) ? ownField(value, 'cniVersion') : undefined;
    return isSupportedVersion(version) ? version : LATEST;
  } catch {
    return LATEST;
  }
}

function readConfig(command: NetworkCommand, stdin: Buffer | string | Uint8Array): FastNetConf {
  const value = decodeJson(stdin);
  if (isJsonObject(value)) requireCommandInVersion(command, readCniVersion(value));
  const config = parseNetConf(value);
  requireCommandFields(command, config);
  return config;
}

export function parseCniRequest(env: CniEnv, stdin: Buffer | string | Uint8Array): CniRequest {
  const command = readCommand(env);
  if (command === 'VERSION') return versionRequest(env, stdin);
  const needs = ENV_NEEDS[command];
  requireEnv(env, needs);
  const containerId = needs.containerId ? readContainerId(env) : '';
  const ifName = needs.ifName ? readIfName(env) : '';
  const netns = command === 'GC' || command === 'STATUS' ? '' : readNetns(env);
  // CNI_ARGS belongs to attachment commands; GC and STATUS ignore it so stray args can
  // never block cleanup or readiness reporting.
  const args = needs.containerId ? parseCniArgs(envValue(env, 'CNI_ARGS')) : emptyArgs();
  const config = readConfig(command, stdin);
  return {
    command,
    containerId,
    netns,
    ifName,
    args,
    path: envValue(env, 'CNI_PATH') ?? '',
    cniVersion: config.cniVersion,
    config,
  };
}
