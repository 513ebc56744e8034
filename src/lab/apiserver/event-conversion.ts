// core/v1 Event and events.k8s.io/v1 Event are two views of one stored object (as in
// kube-apiserver, where both are served from the same etcd key). Events are stored as core/v1.
import type { KubeObject } from './types.js';

/** core/v1 field name → events.k8s.io/v1 field name. */
const RENAMES: [string, string][] = [
  ['involvedObject', 'regarding'],
  ['message', 'note'],
  ['reportingComponent', 'reportingController'],
  ['source', 'deprecatedSource'],
  ['firstTimestamp', 'deprecatedFirstTimestamp'],
  ['lastTimestamp', 'deprecatedLastTimestamp'],
  ['count', 'deprecatedCount'],
];

function rename(obj: KubeObject, pairs: [string, string][], apiVersion: string): KubeObject {
  const out: KubeObject = { ...obj, apiVersion, kind: 'Event' };
  for (const [from, to] of pairs) {
    delete out[from];
    if (obj[from] !== undefined) out[to] = obj[from];
  }
  return out;
}

export function coreEventToEventsV1(obj: KubeObject): KubeObject {
  return rename(obj, RENAMES, 'events.k8s.io/v1');
}

export function eventsV1ToCoreEvent(obj: KubeObject): KubeObject {
  return rename(obj, RENAMES.map(([a, b]) => [b, a]), 'v1');
}
