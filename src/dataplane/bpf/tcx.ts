// tcx links (kernel >= 6.6): a program on a device's ingress or egress hook as a BPF link,
// without a qdisc or a classifier in front of it.
//
// Debian's libbpf 1.1 has no bpf_program__attach_tcx, so the link is made with the raw
// bpf_link_create(prog_fd, ifindex, BPF_TCX_INGRESS|BPF_TCX_EGRESS). A link lives as long
// as something holds it: we pin it on bpffs and close our fd, so the program stays
// attached while the agent is down, and bpf_link_update swaps its program atomically (no
// packet meets an empty hook). When the device goes, the kernel detaches the link but the
// pin stays (a "defunct" link, ifindex 0): its owner removes the pin.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { libbpf, check, closeFd, BpfError } from './libbpf.js';
import { ERRNO } from '../../sys/libc.js';

export type TcxDirection = 'ingress' | 'egress';

export const BPF_TCX_INGRESS = 46;
export const BPF_TCX_EGRESS = 47;
const BPF_LINK_TYPE_TCX = 11;

export interface TcxLinkInfo {
  linkId: number;
  progId: number;
  /** 0 once the device is gone (the link is defunct). */
  ifindex: number;
  direction: TcxDirection | undefined;
}

export function tcxAttachType(direction: TcxDirection): number {
  return direction === 'ingress' ? BPF_TCX_INGRESS : BPF_TCX_EGRESS;
}

/**
 * Whether this kernel has tcx: a link on ifindex 0 fails with ENODEV where tcx exists (the
 * device lookup comes after the attach type is accepted) and with EINVAL where it does
 * not. Nothing is attached either way. `progFd` must be a loaded tc (sched_cls) program.
 */
export function probeTcx(progFd: number): { supported: boolean; detail: string } {
  const rc = libbpf.linkCreate(progFd, 0, BPF_TCX_INGRESS, null);
  if (rc >= 0) {
    closeFd(rc); // cannot happen (no device 0), but never keep a link we did not mean to make
    return { supported: true, detail: 'bpf_link_create accepted BPF_TCX_INGRESS' };
  }
  if (rc === -ERRNO.ENODEV) return { supported: true, detail: 'bpf_link_create knows BPF_TCX_INGRESS' };
  return { supported: false, detail: new BpfError('bpf_link_create(BPF_TCX_INGRESS)', -rc).message };
}

/** The pin of Fast's link on one hook of one device, under the node's link directory. */
export function tcxPinPath(linkDir: string, ifindex: number, direction: TcxDirection): string {
  return path.join(linkDir, `tcx_${ifindex}_${direction}`);
}

function parsePinName(name: string): { ifindex: number; direction: TcxDirection } | undefined {
  const m = /^tcx_(\d+)_(ingress|egress)$/.exec(name);
  return m ? { ifindex: Number(m[1]), direction: m[2] as TcxDirection } : undefined;
}

// struct bpf_link_info { u32 type, id, prog_id; union (8-aligned) { ... struct { u32 ifindex,
// attach_type; } tcx; } }: the tcx fields are at offsets 16 and 20.
function linkInfo(fd: number): TcxLinkInfo | undefined {
  const info = Buffer.alloc(24);
  const len = [info.length];
  check('bpf_obj_get_info_by_fd', libbpf.objGetInfoByFd(fd, info, len));
  if (info.readUInt32LE(0) !== BPF_LINK_TYPE_TCX) return undefined;
  const type = info.readUInt32LE(20);
  return {
    linkId: info.readUInt32LE(4), progId: info.readUInt32LE(8), ifindex: info.readUInt32LE(16),
    direction: type === BPF_TCX_INGRESS ? 'ingress' : type === BPF_TCX_EGRESS ? 'egress' : undefined,
  };
}

/** Opens a pinned object; undefined when there is no pin. */
function openPin(pin: string): number | undefined {
  const fd = libbpf.objGet(pin);
  if (fd === -ERRNO.ENOENT) return undefined;
  return check('bpf_obj_get', fd, pin);
}

/** What the pin holds, or undefined when there is no pin (or it is not a tcx link). */
export function readTcxPin(pin: string): TcxLinkInfo | undefined {
  const fd = openPin(pin);
  if (fd === undefined) return undefined;
  try {
    return linkInfo(fd);
  } finally {
    closeFd(fd);
  }
}

/**
 * Puts `progFd` on the hook through the pinned link: an existing link on this device and
 * hook gets the new program atomically (bpf_link_update), otherwise a new link is made and
 * pinned. A pin left by a device that is gone (same ifindex, reused) is replaced.
 */
export function attachTcx(ifindex: number, direction: TcxDirection, progFd: number, pin: string): void {
  const fd = openPin(pin);
  if (fd !== undefined) {
    try {
      const info = linkInfo(fd);
      if (info && info.ifindex === ifindex && info.direction === direction) {
        check('bpf_link_update', libbpf.linkUpdate(fd, progFd, null), `tcx ${direction} on ifindex ${ifindex}`);
        return;
      }
    } finally {
      closeFd(fd);
    }
    removeTcxPin(pin);
  }
  fs.mkdirSync(path.dirname(pin), { recursive: true, mode: 0o700 });
  const link = check('bpf_link_create', libbpf.linkCreate(progFd, ifindex, tcxAttachType(direction), null), `tcx ${direction} on ifindex ${ifindex}`);
  try {
    check('bpf_obj_pin', libbpf.objPin(link, pin), pin);
  } finally {
    closeFd(link); // the pin holds the link now; on a failed pin this detaches it again
  }
}

/**
 * Detaches the link now (not when the kernel gets round to releasing it) and removes its
 * pin. No pin, or a defunct link, is not an error (idempotent).
 */
export function removeTcxPin(pin: string): void {
  const fd = openPin(pin);
  if (fd === undefined) return;
  try {
    const rc = libbpf.linkDetach(fd);
    // A defunct link (device gone) and a pin that is not a link have nothing to detach.
    if (rc < 0 && rc !== -ERRNO.ENOENT && rc !== -ERRNO.EINVAL && rc !== -ERRNO.EOPNOTSUPP) check('bpf_link_detach', rc, pin);
  } finally {
    closeFd(fd);
  }
  fs.rmSync(pin, { force: true });
}

export interface PinnedTcxLink extends TcxLinkInfo {
  pin: string;
  /** The device and hook the pin's name says (the link's own ifindex is 0 when defunct). */
  pinnedIfindex: number;
  pinnedDirection: TcxDirection;
}

/** Every link pinned under `linkDir` (fast-ctl, pruning at start). */
export function listTcxPins(linkDir: string): PinnedTcxLink[] {
  if (!fs.existsSync(linkDir)) return [];
  const out: PinnedTcxLink[] = [];
  for (const name of fs.readdirSync(linkDir).sort()) {
    const parsed = parsePinName(name);
    if (!parsed) continue;
    const pin = path.join(linkDir, name);
    const info = readTcxPin(pin);
    if (info) out.push({ ...info, pin, pinnedIfindex: parsed.ifindex, pinnedDirection: parsed.direction });
  }
  return out;
}

/** Removes the pins of links whose device is gone; returns their paths. */
export function pruneDefunctTcxPins(linkDir: string): string[] {
  const gone = listTcxPins(linkDir).filter((l) => l.ifindex === 0 || l.ifindex !== l.pinnedIfindex);
  for (const l of gone) removeTcxPin(l.pin);
  return gone.map((l) => l.pin);
}
