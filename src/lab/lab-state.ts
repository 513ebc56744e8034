// What a lab made, recorded as it is made, so `fast lab down` can remove exactly that,
// also after a crash halfway through `up`.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEFAULT_LAB_DIR = '/run/fast-lab';
/** Every namespace the lab makes starts with this, and nothing else does. */
export const LAB_PREFIX = 'flab';

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
}

export interface LabState {
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
