// Attaching Fast's programs to a device's ingress/egress hook, in one of two ways:
//
//  - tcx (kernel >= 6.6, preferred): a BPF link per hook, pinned under the node's bpffs
//    link directory (see tcx.ts). No qdisc and no classifier walk in front of the program.
//  - clsact + cls_bpf (the fallback where tcx is missing): a filter in direct-action mode
//    at a fixed handle/priority, through libbpf's bpf_tc_* API (netlink, in the calling
//    thread's network namespace).
//
// Either way the attachment lives in the kernel, not in our process: an agent restart
// leaves the datapath running, and a re-attach swaps programs atomically (bpf_link_update,
// or BPF_TC_F_REPLACE). The mode is chosen once per process (setAttachMode, done by the
// agent's NodeDatapath after probing) and applies to every caller of attachTc/detachTc/
// queryTc, so callers do not change with the mode. Switching mode on a device (an agent
// upgraded onto a tcx kernel, or told to use tc) attaches the new way first, then removes
// the old attachment. A caller may ask for the other way for one call (`via`): the agent
// attaches new pods with cls_bpf during the CNI ADD and moves them to tcx later (tcx-mover.ts).
import { libbpf, check } from './libbpf.js';
import { attachTcx, readTcxPin, removeTcxPin, tcxPinPath } from './tcx.js';
import { ERRNO } from '../../sys/libc.js';

export type TcDirection = 'ingress' | 'egress';
export type AttachMode = 'tcx' | 'tc';

const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const BPF_TC_F_REPLACE = 1;

/** Fast's filters always sit at this handle and priority, so they can be found again. */
export const FAST_TC_HANDLE = 0xfa57;
export const FAST_TC_PRIORITY = 1;

interface AttachSettings {
  mode: AttachMode;
  /** bpffs directory of the tcx link pins (also looked at in tc mode, to clean up). */
  linkDir?: string;
}

let settings: AttachSettings = { mode: 'tc' };

/** How attachTc attaches from now on in this process. tcx needs a bpffs `linkDir`. */
export function setAttachMode(mode: AttachMode, linkDir?: string): void {
  if (mode === 'tcx' && !linkDir) throw new Error('tcx attachment needs a bpffs directory for its link pins');
  settings = { mode, linkDir };
}

export function attachMode(): { mode: AttachMode; linkDir?: string } {
  return { ...settings };
}

export interface AttachOptions {
  /** The device was just created: nothing of an older mode can be on it, skip the cleanup. */
  newDevice?: boolean;
  /** This way instead of the process's mode, for this call (tc works without a linkDir). */
  via?: AttachMode;
}

/** Puts Fast's program on the hook (replacing the one there), the current mode's way. */
export function attachTc(ifindex: number, direction: TcDirection, progFd: number, opts: AttachOptions = {}): void {
  const { linkDir } = settings;
  const mode = opts.via ?? settings.mode;
  if (mode === 'tcx') {
    if (!linkDir) throw new Error('tcx attachment needs a bpffs directory for its link pins');
    attachTcx(ifindex, direction, progFd, tcxPinPath(linkDir, ifindex, direction));
    if (!opts.newDevice) detachClsact(ifindex, direction); // tcx runs first; the filter is now dead weight
    return;
  }
  attachClsact(ifindex, direction, progFd);
  if (linkDir && !opts.newDevice) removeTcxPin(tcxPinPath(linkDir, ifindex, direction));
}

/** Program id attached by Fast on the hook (either mode), or undefined when nothing is there. */
export function queryTc(ifindex: number, direction: TcDirection): number | undefined {
  return queryAttachment(ifindex, direction)?.progId;
}

/** How Fast's program is attached on the hook (a live tcx link wins: it runs first). */
export function queryAttachment(ifindex: number, direction: TcDirection, linkDir = settings.linkDir): { via: AttachMode; progId: number } | undefined {
  if (linkDir) {
    const link = readTcxPin(tcxPinPath(linkDir, ifindex, direction));
    if (link && link.ifindex === ifindex) return { via: 'tcx', progId: link.progId };
  }
  const progId = queryClsact(ifindex, direction);
  return progId === undefined ? undefined : { via: 'tc', progId };
}

export interface DetachOptions {
  /** The device is deleted right after: only what outlives it (a link pin) is removed. */
  deviceGoing?: boolean;
}

/** Removes Fast's attachment, both ways; a missing one or device is not an error (idempotent). */
export function detachTc(ifindex: number, direction: TcDirection, opts: DetachOptions = {}): void {
  if (settings.linkDir) removeTcxPin(tcxPinPath(settings.linkDir, ifindex, direction));
  // A filter goes with its device; on a device that stays, one left by an agent in tc mode
  // (not yet moved over by an attach) must go too.
  if (!opts.deviceGoing) detachClsact(ifindex, direction);
}

// ---- clsact + cls_bpf ----

// struct bpf_tc_hook { size_t sz; int ifindex; enum attach_point; __u32 parent; }
function tcHook(ifindex: number, direction: TcDirection): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(24n, 0);
  b.writeInt32LE(ifindex, 8);
  b.writeUInt32LE(direction === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS, 12);
  return b;
}

// struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags, prog_id, handle, priority; }
function tcOpts(progFd: number, flags: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(32n, 0);
  b.writeInt32LE(progFd, 8);
  b.writeUInt32LE(flags, 12);
  b.writeUInt32LE(FAST_TC_HANDLE, 20);
  b.writeUInt32LE(FAST_TC_PRIORITY, 24);
  return b;
}

/** Creates the clsact qdisc if needed and (re)places Fast's filter on the hook. */
export function attachClsact(ifindex: number, direction: TcDirection, progFd: number): void {
  const hook = tcHook(ifindex, direction);
  const rc = libbpf.tcHookCreate(hook);
  if (rc < 0 && rc !== -ERRNO.EEXIST) check('bpf_tc_hook_create', rc, `ifindex ${ifindex}`);
  check('bpf_tc_attach', libbpf.tcAttach(hook, tcOpts(progFd, BPF_TC_F_REPLACE)), `ifindex ${ifindex} ${direction}`);
}

export function queryClsact(ifindex: number, direction: TcDirection): number | undefined {
  const opts = tcOpts(0, 0);
  const rc = libbpf.tcQuery(tcHook(ifindex, direction), opts);
  if (rc === -ERRNO.ENOENT || rc === -ERRNO.EINVAL || rc === -ERRNO.ENODEV) return undefined;
  check('bpf_tc_query', rc, `ifindex ${ifindex}`);
  return opts.readUInt32LE(16);
}

/** Removes Fast's filter only (other filters and the qdisc stay). */
export function detachClsact(ifindex: number, direction: TcDirection): void {
  const rc = libbpf.tcDetach(tcHook(ifindex, direction), tcOpts(0, 0));
  if (rc < 0 && rc !== -ERRNO.ENOENT && rc !== -ERRNO.EINVAL && rc !== -ERRNO.ENODEV) check('bpf_tc_detach', rc);
}
