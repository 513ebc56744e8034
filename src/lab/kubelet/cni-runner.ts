// Executes a CNI network configuration list the way libcni does for kubelet and
// containerd: each plugin in order for ADD (prevResult passed on), in reverse for DEL
// (with the cached ADD result as prevResult), runtimeConfig for declared capabilities.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runExecutable, type PluginExit } from './spawn.js';

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown> & { type: string; capabilities?: Record<string, boolean> }>;
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifName: string;
  args: Record<string, string>;
  /** Values for capabilities (portMappings, bandwidth, …), as the runtime would pass. */
  capabilityArgs?: Record<string, unknown>;
}

export class CniPluginError extends Error {
  constructor(readonly plugin: string, readonly code: number, readonly msg: string, readonly details?: string) {
    super(`plugin type="${plugin}" failed (code ${code}): ${msg}${details ? `: ${details}` : ''}`);
    this.name = 'CniPluginError';
  }
}

/** The first *.conflist (or *.conf) in the directory, by name, as libcni picks it. */
export function loadConfList(dir: string): ConfList {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.conflist') || f.endsWith('.conf')).sort();
  if (files.length === 0) throw new Error(`no CNI configuration in ${dir}`);
  const raw = JSON.parse(fs.readFileSync(path.join(dir, files[0]!), 'utf8')) as ConfList & { type?: string };
  if (!raw.plugins) return { cniVersion: raw.cniVersion, name: raw.name, plugins: [raw as unknown as ConfList['plugins'][number]] };
  return raw;
}

export class CniRunner {
  /** `netnsPath`: run the plugins in that network namespace (a runtime runs them in the host's). */
  constructor(private readonly binDirs: string[], private readonly env: NodeJS.ProcessEnv = {}, private readonly netnsPath?: string) {}

  async add(list: ConfList, att: Attachment): Promise<unknown> {
    let prev: unknown;
    for (const plugin of list.plugins) prev = await this.exec('ADD', list, plugin, att, prev);
    return prev;
  }

  /** DEL runs every plugin even if one fails, and reports the first failure. */
  async del(list: ConfList, att: Attachment, cachedResult?: unknown): Promise<void> {
    let firstError: unknown;
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.exec('DEL', list, plugin, att, cachedResult);
      } catch (err) {
        firstError ??= err;
      }
    }
    if (firstError) throw firstError;
  }

  async check(list: ConfList, att: Attachment, cachedResult: unknown): Promise<void> {
    for (const plugin of list.plugins) await this.exec('CHECK', list, plugin, att, cachedResult);
  }

  private pluginPath(type: string): string {
    for (const d of this.binDirs) {
      const p = path.join(d, type);
      if (fs.existsSync(p)) return p;
    }
    throw new CniPluginError(type, 8, `failed to find plugin "${type}" in path [${this.binDirs.join(' ')}]`);
  }

  private exec(command: string, list: ConfList, plugin: ConfList['plugins'][number], att: Attachment, prevResult: unknown): Promise<unknown> {
    const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    if (prevResult !== undefined) conf.prevResult = prevResult;
    const rc = runtimeConfigFor(plugin.capabilities, att.capabilityArgs);
    if (rc) conf.runtimeConfig = rc;
    const env = {
      ...this.env, PATH: process.env.PATH,
      CNI_COMMAND: command, CNI_CONTAINERID: att.containerId, CNI_NETNS: att.netns, CNI_IFNAME: att.ifName,
      CNI_PATH: this.binDirs.join(':'),
      CNI_ARGS: ['IgnoreUnknown=1', ...Object.entries(att.args).map(([k, v]) => `${k}=${v}`)].join(';'),
    };
    const file = this.pluginPath(plugin.type);
    const input = JSON.stringify(conf);
    const exited = this.netnsPath ? spawnWithNode('nsenter', [`--net=${this.netnsPath}`, '--', file], env, input) : runExecutable(file, env, input);
    return exited.then(({ code, stdout, stderr }) => {
      if (code === 0) return stdout.trim() ? JSON.parse(stdout) : prevResult;
      let e: { code: number; msg: string; details?: string };
      try {
        e = JSON.parse(stdout) as { code: number; msg: string; details?: string };
      } catch {
        throw new CniPluginError(plugin.type, 999, `exit ${code}: ${(stdout + stderr).trim()}`);
      }
      throw new CniPluginError(plugin.type, e.code, e.msg, e.details);
    });
  }
}

/** child_process.spawn, for plugins run through nsenter (tests); the kubelet uses runExecutable. */
function spawnWithNode(cmd: string, args: string[], env: NodeJS.ProcessEnv, input: string): Promise<PluginExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 128, stdout, stderr }));
    child.stdin.end(input);
  });
}

function runtimeConfigFor(caps: Record<string, boolean> | undefined, values: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!caps || !values) return undefined;
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(caps)) if (on && values[cap] !== undefined) rc[cap] = values[cap];
  return Object.keys(rc).length ? rc : undefined;
}
