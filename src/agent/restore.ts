// What a (re)starting agent does before it serves: adopt the pods it already wired,
// drop what no longer exists, and finish DELs that arrived while it was down.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { showLink } from '../dataplane/net/pod-link.js';
import { decodeCniRequest } from './wire.js';
import type { EndpointStore } from './endpoint-store.js';
import type { NodeDatapath } from './datapath.js';
import type { CniHandler } from './cni-handler.js';
import type { IpamBackend } from './ipam/backend.js';
import type { Logger } from './log.js';
import type { TcxMover } from './tcx-mover.js';

export interface RestoreReport {
  adopted: number;
  removed: number;
  prunedMapEntries: number;
  replayedDeletes: number;
  releasedOrphans: number;
}

/**
 * Adoption keeps traffic flowing: pinned maps already hold the entries and the programs
 * are still attached (pinned tcx links, or cls_bpf filters), so we only swap in the current
 * program atomically, moving a device to this agent's attach mode if it differs. Pins of
 * links whose device went while we were away were pruned when the datapath opened.
 */
export async function restoreNode(endpoints: EndpointStore, datapath: NodeDatapath, cni: CniHandler, ipam: IpamBackend, pendingDir: string, log: Logger, tcxMover?: TcxMover): Promise<RestoreReport> {
  const report: RestoreReport = { adopted: 0, removed: 0, prunedMapEntries: 0, replayedDeletes: 0, releasedOrphans: 0 };
  for (const ep of endpoints.list()) {
    const link = await showLink(ep.hostIfName);
    if (link && link.ifindex === ep.hostIfindex) {
      // Left on cls_bpf (its ADD's move had not come yet, or an agent in tc mode made it): move it later.
      if (datapath.adoptEndpoint(ep)) tcxMover?.schedule(ep);
      report.adopted++;
    } else {
      log.info('endpoint vanished while the agent was away; cleaning up', { containerId: ep.containerId, ifName: ep.ifName });
      await cni.removeAttachment(ep.containerId, ep.ifName);
      report.removed++;
    }
  }
  report.prunedMapEntries = datapath.pruneLocalEntries(endpoints.list()).length;
  report.replayedDeletes = await replayPendingDeletes(pendingDir, cni, log);
  report.releasedOrphans = await releaseOrphanAllocations(endpoints, ipam, log);
  return report;
}

/** fast-cni leaves `<id>-<ifname>.del` files when it could not reach us. */
export async function replayPendingDeletes(dir: string, cni: CniHandler, log: Logger): Promise<number> {
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.del') && !f.startsWith('.'));
  } catch {
    return 0;
  }
  let done = 0;
  for (const f of files) {
    const file = path.join(dir, f);
    try {
      const decoded = decodeCniRequest(fs.readFileSync(file));
      if (!decoded) throw new Error('truncated request');
      const res = await cni.handle(decoded.call);
      if (res.exitCode !== 0) log.warn('replayed DEL failed; dropping it (GC will catch leftovers)', { file, output: res.stdout });
      done++;
    } catch (err) {
      log.warn('unreadable pending DEL; dropping it', { file, err });
    }
    fs.rmSync(file, { force: true });
  }
  if (done > 0) log.info('finished DELs recorded while the agent was down', { count: done });
  return done;
}

/** Allocations held for attachments this node has no endpoint for (crash mid-ADD). */
async function releaseOrphanAllocations(endpoints: EndpointStore, ipam: IpamBackend, log: Logger): Promise<number> {
  let n = 0;
  for (const owned of await ipam.owned()) {
    if (!endpoints.get(owned.containerId, owned.ifName)) {
      n += await ipam.release(owned.containerId, owned.ifName);
      log.info('released an address with no endpoint', { ...owned });
    }
  }
  return n;
}
