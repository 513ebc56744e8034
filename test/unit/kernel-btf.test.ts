// Kernel features read from the running kernel's BTF (/sys/kernel/btf/vmlinux).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { kernelBtfHas, kernelFeatures, canDecapGsoInEbpf } from '../../src/dataplane/bpf/kernel-btf.js';

const HAS_BTF = fs.existsSync('/sys/kernel/btf/vmlinux');

test('names are matched whole, not as prefixes or substrings', { skip: !HAS_BTF && 'kernel without BTF' }, () => {
  assert.equal(kernelBtfHas('veth_xmit'), true, 'veth is built in (every test here uses it)');
  assert.equal(kernelBtfHas('veth_xmi'), false, 'a prefix of a name is not a name');
  assert.equal(kernelBtfHas('eth_xmit'), false, 'nor is a suffix');
  assert.equal(kernelBtfHas('fast_no_such_kernel_symbol'), false);
  assert.equal(kernelBtfHas('BPF_F_ADJ_ROOM_DECAP_L3_IPV4'), true, 'enum values are names too (kernel >= 6.3)');
});

test('the features report what the kernel has and what Fast does without them', { skip: !HAS_BTF && 'kernel without BTF' }, () => {
  const features = kernelFeatures();
  assert.deepEqual(features.map((f) => f.name), ['tcx links', 'VXLAN device', 'eBPF GSO decapsulation', 'netkit devices']);
  const byName = new Map(features.map((f) => [f.name, f]));
  assert.equal(byName.get('VXLAN device')!.present, true, 'the overlay tests need it');
  assert.equal(byName.get('eBPF GSO decapsulation')!.present, canDecapGsoInEbpf());
  for (const f of features) assert.ok(f.effect.length > 10, `${f.name} says what it means`);
  const gso = byName.get('eBPF GSO decapsulation')!;
  if (!gso.present) assert.match(gso.effect, /fast_vxlan/);
});
