// CNI_ARGS: "K=V;K2=V2" extra arguments from the runtime (spec "Parameters"; key meanings
// from CONVENTIONS.md).

import { invalidEnv } from './errors.js';

export interface CniArgs {
  /** Every pair as given; a later duplicate key wins, as in libcni's decoder. */
  values: ReadonlyMap<string, string>;
  ignoreUnknown: boolean;
  podNamespace?: string;
  podName?: string;
  podInfraContainerId?: string;
  podUid?: string;
}

// Keys Fast understands. IP and MAC are the CONVENTIONS.md requests for a static address or
// hardware address; K8S_POD_* are what kubelet-driven runtimes send.
export const KNOWN_CNI_ARGS = [
  'IgnoreUnknown',
  'K8S_POD_NAMESPACE',
  'K8S_POD_NAME',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
  'IP',
  'MAC',
] as const;

const KNOWN = new Set<string>(KNOWN_CNI_ARGS);

// libcni's boolean decoding for IgnoreUnknown: "1"/"true" and "0"/"false", any case.
function parseArgBoolean(key: string, value: string): boolean {
  const lower = value.toLowerCase();
  if (lower === '1' || lower === 'true') return true;
  if (lower === '0' || lower === 'false') return false;
  throw invalidEnv(`CNI_ARGS ${key} must be "1", "true", "0" or "false", got ${JSON.stringify(value)}`);
}

function splitPair(pair: string): [string, string] {
  const parts = pair.split('=');
  if (parts.length !== 2) {
    throw invalidEnv(`CNI_ARGS has an invalid pair ${JSON.stringify(pair)}: expected exactly one "="`);
  }
  const [key, value] = parts as [string, string];
  if (key === '') throw invalidEnv(`CNI_ARGS has a pair with an empty key: ${JSON.stringify(pair)}`);
  return [key, value];
}

// Empty segments (a trailing ";" or ";;") are skipped: they carry no pair and some shell
// wrappers produce them. Unknown keys are refused unless IgnoreUnknown is set, so a typo
// in a runtime's args is noticed; kubelet-driven runtimes always set IgnoreUnknown=1.
// Errors are code 4 because CNI_ARGS is one of the protocol's environment variables.
export function parseCniArgs(raw: string | undefined): CniArgs {
  const values = new Map<string, string>();
  for (const pair of (raw ?? '').split(';')) {
    if (pair === '') continue;
    const [key, value] = splitPair(pair);
    values.set(key, value);
  }
  const ignoreText = values.get('IgnoreUnknown');
  const ignoreUnknown = ignoreText === undefined ? false : parseArgBoolean('IgnoreUnknown', ignoreText);
  if (!ignoreUnknown) rejectUnknownKeys(values);
  return withPodFields({ values, ignoreUnknown }, values);
}

function rejectUnknownKeys(values: ReadonlyMap<string, string>): void {
  for (const key of values.keys()) {
    if (!KNOWN.has(key)) {
      throw invalidEnv(`CNI_ARGS has unknown key ${JSON.stringify(key)} and IgnoreUnknown is not set`);
    }
  }
}

function withPodFields(args: CniArgs, values: ReadonlyMap<string, string>): CniArgs {
  const namespace = values.get('K8S_POD_NAMESPACE');
  const name = values.get('K8S_POD_NAME');
  const infra = values.get('K8S_POD_INFRA_CONTAINER_ID');
  const uid = values.get('K8S_POD_UID');
  if (namespace !== undefined) args.podNamespace = namespace;
  if (name !== undefined) args.podName = name;
  if (infra !== undefined) args.podInfraContainerId = infra;
  if (uid !== undefined) args.podUid = uid;
  return args;
}
