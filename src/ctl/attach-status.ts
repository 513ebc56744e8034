// How the node's programs are attached (tcx links or clsact + cls_bpf), for `fast-ctl
// status`: the agent says which mode it chose and why; the pinned links are read from
// bpffs, so something is shown while the agent is down too.
import * as path from 'node:path';
import { listTcxPins } from '../dataplane/bpf/tcx.js';
import type { AttachReport } from '../agent/ctl-api.js';

/** The agent's report (mode, reason, deferred move), or, with the agent unreachable, a guess
 *  from the pinned links: tcx if there are any, else unknown. */
export interface AttachStatus extends Partial<AttachReport> {
  mode: string;
  reason: string;
  linkDir: string;
  links: Array<{ pin: string; ifindex: number; direction: string | undefined; linkId: number; progId: number; defunct: boolean }>;
}

export function attachStatus(bpffsDir: string, agent: AttachReport | undefined): AttachStatus {
  const linkDir = path.join(bpffsDir, 'links');
  const links = listTcxPins(linkDir).map((l) => ({
    pin: l.pin, ifindex: l.pinnedIfindex, direction: l.direction ?? l.pinnedDirection, linkId: l.linkId, progId: l.progId, defunct: l.ifindex === 0,
  }));
  if (agent) return { ...agent, linkDir, links };
  return { mode: links.length > 0 ? 'tcx' : 'unknown', reason: 'not reported by the agent (unreachable or older): guessed from the pinned links', linkDir, links };
}

export function describeAttach(a: AttachStatus): string {
  const how = a.mode === 'tcx' ? `tcx links (${a.links.length} pinned under ${a.linkDir})` : a.mode === 'tc' ? 'clsact + cls_bpf filters' : 'unknown';
  const waiting = a.deferred ? `; ${a.waitingForTcx ?? 0} pod(s) on cls_bpf waiting to move` : '';
  return `${how}; ${a.reason}${waiting}`;
}
