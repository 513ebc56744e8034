// What the running kernel's eBPF interface offers, read from its own type information
// (/sys/kernel/btf/vmlinux): an enum value such as a new bpf_skb_adjust_room flag is there
// by name exactly when the kernel implements it.
import * as fs from 'node:fs';

const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';
let names: Buffer | undefined;

/** Whether `name` (a type or enum value name) is in the kernel's BTF. False without BTF. */
export function kernelBtfHas(name: string): boolean {
  names ??= readBtf();
  // BTF keeps names NUL-terminated in one string section.
  return names.includes(Buffer.from(`\0${name}\0`));
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
