// What the running kernel's eBPF interface offers, read from its own type information
// (/sys/kernel/btf/vmlinux): an enum value such as a new bpf_skb_adjust_room flag is there
// by name exactly when the kernel implements it.
import * as fs from 'node:fs';

const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';
/** Answers, not the ~5 MB file: the agent asks a handful of names and lives long. */
const answers = new Map<string, boolean>();

/** Whether `name` (a type or enum value name) is in the kernel's BTF. False without BTF. */
export function kernelBtfHas(name: string): boolean {
  lookUp([name]);
  return answers.get(name)!;
}

/** Answers every name not yet answered with one read of the BTF. */
function lookUp(names: string[]): void {
  const missing = names.filter((n) => !answers.has(n));
  if (missing.length === 0) return;
  const btf = readBtf();
  // BTF keeps names NUL-terminated in one string section.
  for (const n of missing) answers.set(n, btf.includes(Buffer.from(`\0${n}\0`)));
}

function readBtf(): Buffer {
  try {
    return fs.readFileSync(VMLINUX_BTF);
  } catch {
    return Buffer.alloc(0);
  }
}

/** bpf_skb_adjust_room can clear a decapsulated GSO skb's UDP-tunnel state (bpf-next,
 *  2026); without it fast_from_uplink leaves GSO VXLAN packets to fast_vxlan. */
export function canDecapGsoInEbpf(): boolean {
  return kernelBtfHas('BPF_F_ADJ_ROOM_DECAP_L4_UDP');
}

/** A kernel capability Fast uses, or would use, and what its absence means. */
export interface KernelFeature {
  name: string;
  present: boolean;
  /** What Fast does with it, or without it. */
  effect: string;
}

/**
 * The kernel features behind Fast's datapath choices, as the running kernel's BTF names
 * them (a function is in BTF only when its code is built in). Read, never attached: fast-ctl
 * can report them without privileges beyond reading BTF, and the agent logs them at start.
 */
export function kernelFeatures(): KernelFeature[] {
  lookUp(['tcx_link_attach', 'vxlan_xmit', 'BPF_F_ADJ_ROOM_DECAP_L4_UDP', 'netkit_xmit']);
  const f = (name: string, btfName: string, yes: string, no: string): KernelFeature => {
    const present = kernelBtfHas(btfName);
    return { name, present, effect: present ? yes : no };
  };
  return [
    f('tcx links', 'tcx_link_attach', 'available to attachMode auto|tcx', 'clsact + cls_bpf only'),
    f('VXLAN device', 'vxlan_xmit', 'overlay mode available', 'overlay mode unavailable (CONFIG_VXLAN): use native routing'),
    f('eBPF GSO decapsulation', 'BPF_F_ADJ_ROOM_DECAP_L4_UDP', 'the uplink decapsulates large (GSO) VXLAN packets too',
      'large (GSO) VXLAN packets are decapsulated by fast_vxlan (BPF_F_ADJ_ROOM_DECAP_L4_UDP is newer than this kernel)'),
    f('netkit devices', 'netkit_xmit', 'present (Fast wires pods with veth)', 'absent (CONFIG_NETKIT): pods use veth, whose host side costs a second receive pass'),
  ];
}
