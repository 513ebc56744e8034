// BPF_PROG_TEST_RUN: runs a loaded program on a crafted packet in the kernel and
// returns its verdict and the packet as the program left it. Used by the eBPF tests.
import koffi from 'koffi';
import { libbpf, check, TestRunOpts } from './libbpf.js';

export interface TestRunResult {
  retval: number;
  data: Buffer;
  /** Mean run time of the program over the repetitions, ns (the kernel's own clock). */
  durationNs: number;
}

/**
 * `ifindex` becomes skb->ifindex (the kernel resolves it in the calling thread's
 * network namespace, so it must name a real device there). With `repeat` > 1 the kernel runs
 * the program that many times on the same skb (changes accumulate) and reports the mean time.
 */
export function testRun(progFd: number, packet: Buffer, ifindex = 0, repeat = 1): TestRunResult {
  const out = Buffer.alloc(packet.length + 256);
  // struct __sk_buff is 192 bytes; ifindex is at offset 40 and must be the only
  // non-zero field the kernel is not willing to take from user space.
  const ctx = Buffer.alloc(192);
  ctx.writeUInt32LE(ifindex, 40);
  const opts = {
    sz: koffi.sizeof(TestRunOpts), data_in: packet, data_out: out, data_size_in: packet.length, data_size_out: out.length,
    ctx_in: ifindex ? ctx : null, ctx_out: null, ctx_size_in: ifindex ? ctx.length : 0, ctx_size_out: 0,
    retval: 0, repeat, duration: 0, flags: 0, cpu: 0, batch_size: 0,
  };
  check('bpf_prog_test_run_opts', libbpf.progTestRun(progFd, opts));
  return { retval: opts.retval, data: out.subarray(0, opts.data_size_out), durationNs: opts.duration };
}
