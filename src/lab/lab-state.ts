// What a lab made, recorded as it is made, so `fast lab down` can remove exactly that,
// also after a crash halfway through `up`.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEFAULT_LAB_DIR = '/run/fast-lab';
/** The default lab name. Every namespace a lab makes is `<name>-…` (nodes, underlay,
 *  external host) or `<name>p-…` (pods), so several labs can coexist (tests) and `down`
 *  never touches another lab's or anyone else's namespaces. */
export const DEFAULT_LAB_NAME = 'flab';

export function podNetnsPrefix(labName: string): string {
  return `${labName}p-`;
}

export interface LabNode {
  name: string;
  netns: string;
  underlayIp: string;
  dir: string;
  socketPath: string;
  bpffsDir: string;
  stateDir: string;
  cniConfDir: string;
  kubeconfig: string;
}

export interface LabProcess {
  role: string;
  pid: number;
  log: string;
  /** How it was started, so it can be restarted (tests kill and restart agents, the API server). */
  start?: { command: string; args: string[]; netns?: string };
}

export interface LabState {
  name: string;
  dir: string;
  createdAt: string;
  underlayNetns: string;
  underlayBridge: string;
  underlayGateway: string;
  externalNetns?: string;
  externalIp?: string;
  apiPort: number;
  hostKubeconfig: string;
  nodes: LabNode[];
  processes: LabProcess[];
  namespaces: string[];
  mode: 'overlay' | 'native';
}

export function statePath(dir: string): string {
  return path.join(dir, 'lab.json');
}

export function readState(dir: string): LabState | undefined {
  try {
    return JSON.parse(fs.readFileSync(statePath(dir), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function writeState(state: LabState): void {
  fs.mkdirSync(state.dir, { recursive: true });
  const tmp = statePath(state.dir) + '.tmp';
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2));
  fs.renameSync(tmp, statePath(state.dir));
}
