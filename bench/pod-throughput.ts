// Same-node pod-to-pod TCP throughput (iperf3) and request/response latency (sockperf
// ping-pong, TCP and UDP, 64-byte messages, round-trip times) for three set-ups in one run:
//   - Fast: two pods on a Fast node (real agent, real fast-cni, eBPF redirect_peer);
//   - veth: a plain veth pair between two namespaces (the limit);
//   - bridge: two pods on the reference bridge plugin.
//
//   node --import tsx bench/pod-throughput.ts [--duration 10] [--reps 5] [--latency-duration 5] [--latency-reps 5] [--pin same|split|none]
//
// `--reps 0` skips the throughput part (latency-only runs, to repeat them more often).
// The Fast agent takes its settings from the environment as usual, e.g.
// FAST_ATTACH_MODE=tc for clsact + cls_bpf instead of tcx links; the run reports the mode and
// how each Fast pod's program is attached when the measurement starts.
//
// Repetitions are interleaved (one run of each set-up, then the next repetition, the order
// rotating), and the median of the repetitions is reported. CPU placement (taskset):
// `same` (default) runs client and server on CPU 1, `split` the client on CPU 0 and the
// server on CPU 1, `none` leaves it to the scheduler. On this 2-CPU VM a ping-pong round
// trip across the two CPUs takes ~42 µs against ~14 µs on one CPU, so unpinned runs can
// flip between the two and their ratios then say more about placement than datapath.
// Progress on stderr, markdown tables on stdout.
import * as fs from 'node:fs';
import { FAST_CNI, AGENT, ping } from '../test/helpers/node-harness.js';
import { runBenchmark } from './lib/cleanup.js';
import { BRIDGE, BridgeNode, VethPair, startFastNode, settledAttachments, type Pod } from './lib/nodes.js';
import { commandLine, debVersion, environmentLine, fmt, loadAverage, log, median, parseFlags, progress, table } from './lib/report.js';
import { latencyTable } from './lib/report.js';
import { iperf, iperfServer, sockperfPingPong, sockperfServers, type IperfResult, type PingPong } from './lib/traffic.js';

const opts = parseFlags({ duration: 10, reps: 5, latencyDuration: 5, latencyReps: 5, pin: 'same' }, { pin: ['same', 'split', 'none'] });
const CLIENT_CPU = { same: 1, split: 0, none: undefined }[opts.pin as 'same' | 'split' | 'none'];
const SERVER_CPU = opts.pin === 'none' ? undefined : 1;
const PLACEMENT = { same: 'client and server pinned to CPU 1', split: 'client on CPU 0, server on CPU 1', none: 'no CPU pinning' }[opts.pin as 'same' | 'split' | 'none'];

type Setup = 'Fast' | 'veth' | 'bridge';
const SETUPS: Setup[] = ['Fast', 'veth', 'bridge'];
const rotate = (r: number): Setup[] => SETUPS.map((_, i) => SETUPS[(i + r) % SETUPS.length]!);

function redirectCount(ctl: () => string): number {
  const stats = JSON.parse(ctl()) as Array<{ counter: string; packets: string }>;
  return Number(stats.find((s) => s.counter === 'redirect_local')?.packets ?? 0);
}

runBenchmark(async () => {
  for (const f of [FAST_CNI, AGENT, BRIDGE]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.json; make -C cni) / install containernetworking-plugins`);
  const command = commandLine();
  const loadAtStart = loadAverage();
  const total = (opts.duration + 1) * opts.reps * 3 + opts.latencyDuration * 2 * opts.latencyReps * 3;
  log(`pod-throughput: ${opts.reps}×${opts.duration} s iperf3 and ${opts.latencyReps}×${opts.latencyDuration} s sockperf (TCP, UDP) per set-up, about ${Math.round(total / 60)} min`);

  const node = await startFastNode(10);
  const fastPods = [node.addPod('1.0.0'), node.addPod('1.0.0')] as const;
  const veth = new VethPair();
  const bridge = new BridgeNode();
  const bridgePods = [bridge.addPod(), bridge.addPod()] as const;
  const pairs: Record<Setup, readonly [Pod, Pod]> = { Fast: fastPods, veth: [veth.a, veth.b], bridge: bridgePods };
  for (const s of SETUPS) if (!ping(pairs[s][0].pod, pairs[s][1].ip, 2)) throw new Error(`${s}: ${pairs[s][0].ip} cannot reach ${pairs[s][1].ip}`);
  const podAttach = await settledAttachments(node, fastPods.map((p) => p.ip));

  for (const s of SETUPS) {
    const [, b] = pairs[s];
    await iperfServer(b.pod, SERVER_CPU);
    await sockperfServers(b.pod, b.ip, SERVER_CPU);
  }
  const ctl = () => node.ctl('map', 'dump', 'fast_stats_v1', '-o', 'json');
  const redirectsBefore = redirectCount(ctl);

  const tput: Record<Setup, IperfResult[]> = { Fast: [], veth: [], bridge: [] };
  for (let r = 0; r < opts.reps; r++) {
    for (const s of rotate(r)) {
      progress(`iperf3 rep ${r + 1}/${opts.reps} ${s}`);
      const res = iperf(pairs[s][0].pod, pairs[s][1].ip, opts.duration, CLIENT_CPU);
      tput[s].push(res);
      log(`  iperf3 rep ${r + 1} ${s.padEnd(6)} ${fmt(res.gbps)} Gbit/s (retransmits ${res.retransmits}, cpu sender ${fmt(res.senderCpu, 0)}% receiver ${fmt(res.receiverCpu, 0)}%)`);
    }
  }
  const lat: Record<'tcp' | 'udp', Record<Setup, PingPong[]>> = { tcp: { Fast: [], veth: [], bridge: [] }, udp: { Fast: [], veth: [], bridge: [] } };
  for (let r = 0; r < opts.latencyReps; r++) {
    for (const proto of ['tcp', 'udp'] as const) {
      for (const s of rotate(r)) {
        progress(`sockperf ${proto} rep ${r + 1}/${opts.latencyReps} ${s}`);
        const res = sockperfPingPong(pairs[s][0].pod, pairs[s][1].ip, proto, opts.latencyDuration, CLIENT_CPU);
        lat[proto][s].push(res);
        log(`  sockperf ${proto} rep ${r + 1} ${s.padEnd(6)} rtt p50 ${fmt(res.p50Us)} µs, avg ${fmt(res.avgUs)} µs, p99 ${fmt(res.p99Us)} µs`);
      }
    }
  }
  const redirects = redirectCount(ctl) - redirectsBefore;
  progress('done', true);

  const gbps = (s: Setup) => median(tput[s].map((x) => x.gbps));
  // Gbit per CPU-second of the two iperf3 processes (their own user+sys accounting, which
  // includes the softirq work done in their context): steady when other work on the
  // machine takes CPU away, where the raw rate is not.
  const eff = (s: Setup) => median(tput[s].map((x) => x.gbps / ((x.senderCpu + x.receiverCpu) / 100)));
  const l = (proto: 'tcp' | 'udp', s: Setup, k: keyof PingPong) => median(lat[proto][s].map((x) => x[k]));
  const out: string[] = [];
  out.push(`Command: \`${command}\``);
  out.push('');
  out.push(`Environment: load average ${loadAtStart} at the start, then ${environmentLine([`iperf3 ${debVersion('iperf3')}`, `sockperf ${debVersion('sockperf')}`, PLACEMENT])}`);
  out.push('');
  const attach = (JSON.parse(node.ctl('status', '-o', 'json')) as { attach?: { mode: string; deferred?: boolean } }).attach;
  const how = attach?.mode === 'tcx' ? (attach.deferred ? 'tcx links (attachMode auto: cls_bpf at ADD, moved to tcx before the measurement)' : 'tcx links (attached during the ADD)') : attach?.mode === 'tc' ? 'clsact + cls_bpf' : 'unknown';
  out.push(`Fast attaches its program through: ${how}; the two pods' attachments as measured: ${podAttach.join(', ')}`);
  out.push('');
  if (opts.reps > 0) {
    out.push(`Throughput: one TCP stream, ${opts.duration} s (+1 s omitted) × ${opts.reps}, median of the receiver-side rate; per CPU-second: rate ÷ (sender + receiver CPU share as iperf3 reports it), median.`);
    out.push('');
    out.push(table(['set-up', 'Gbit/s (median)', 'min', 'max', 'ratio to veth', 'Gbit per CPU-s', 'ratio to veth ', 'retransmits', 'sender CPU %', 'receiver CPU %'], SETUPS.map((s) => [
      s, fmt(gbps(s)), fmt(Math.min(...tput[s].map((x) => x.gbps))), fmt(Math.max(...tput[s].map((x) => x.gbps))), fmt(gbps(s) / gbps('veth'), 3),
      fmt(eff(s)), fmt(eff(s) / eff('veth'), 3),
      fmt(median(tput[s].map((x) => x.retransmits)), 0), fmt(median(tput[s].map((x) => x.senderCpu)), 0), fmt(median(tput[s].map((x) => x.receiverCpu)), 0),
    ])));
    out.push('');
  }
  out.push(`Latency: sockperf ping-pong, 64-byte messages, ${opts.latencyDuration} s × ${opts.latencyReps} per protocol, round-trip times in µs, median over repetitions.`);
  out.push('');
  out.push(latencyTable(l, SETUPS, [
    { title: 'p50 ratio to veth', stat: 'p50Us', baseline: 'veth' },
    { title: 'avg ratio to veth', stat: 'avgUs', baseline: 'veth' },
  ]));
  out.push('');
  const tr = gbps('Fast') / gbps('veth');
  const lr = l('tcp', 'Fast', 'p50Us') / l('tcp', 'veth', 'p50Us');
  const lru = l('udp', 'Fast', 'p50Us') / l('udp', 'veth', 'p50Us');
  const er = eff('Fast') / eff('veth');
  if (opts.reps > 0) out.push(`Floor throughput (Fast ≥ 0.95 × veth): ${tr >= 0.95 ? 'met' : 'NOT met'} on the rate (${fmt(tr, 3)}), ${er >= 0.95 ? 'met' : 'NOT met'} per CPU-second (${fmt(er, 3)})`);
  out.push(`Floor latency (Fast RTT p50 ≤ 1.05 × veth): TCP ${lr <= 1.05 ? 'met' : 'NOT met'} (${fmt(lr, 3)}), UDP ${lru <= 1.05 ? 'met' : 'NOT met'} (${fmt(lru, 3)})`);
  out.push(`Fast packets redirected pod-to-pod by eBPF during the run: ${redirects}`);
  process.stdout.write(out.join('\n') + '\n');
});

