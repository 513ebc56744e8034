// What `fast_from_pod` itself costs per packet, path by path, measured by the kernel
// (BPF_PROG_TEST_RUN with repeat: the program's own run time, without the tc hook around it).
//
//   node --import tsx bench/prog-cost.ts [--calls 2000] [--repeat 200] [--obj bpf/fast_pod.o] [--live-seconds 3]
//
// `--obj` takes another build of the program (a variant under study) to compare with the
// committed one in the same run: both are loaded, and calls alternate between them.
//
// The kernel runs the program `repeat` times on one skb, so what the program writes stays:
// the local-delivery packet starts with TTL 255 (so 200 runs all take that path) and the
// sending pod's MAC in the map is the one the rewrite leaves as source, so the anti-spoofing
// check passes on every run. Each call reports the mean over its runs; the table gives the
// median over calls.
//
// Then, live (`--live-seconds 0` skips it): a Fast node with two pods (real agent, programs
// on tcx after the agent's move), sockperf ping-pong TCP then UDP between them, three rounds,
// with the kernel's per-program statistics on (kernel.bpf_stats_enabled, off again after):
// run time per packet as the hook runs it, for TCP and UDP packets (TCP's skbs are clones with
// their payload in page fragments, UDP's are linear; docs/benchmarks.md compares them).
// The statistics slow every packet a little, so the round trips of this part are not the
// latency benchmark's (bench/pod-throughput.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoadedBpfObject } from '../src/dataplane/bpf/bpf-object.js';
import { testRun } from '../src/dataplane/bpf/test-run.js';
import { ensureBpffs, removeBpffs } from '../src/dataplane/net/bpffs.js';
import { withNetnsSync } from '../src/dataplane/net/netns.js';
import { MAP_NAMES, encodeIp, encodeLocalPod } from '../src/dataplane/bpf/map-layouts.js';
import { TestNetns, uniqueName } from '../test/helpers/netns.js';
import { ethernet, ipv4Udp } from '../test/helpers/packets.js';
import { execFileSync } from 'node:child_process';
import { onCleanup, runBenchmark } from './lib/cleanup.js';
import { startFastNode, settledAttachments } from './lib/nodes.js';
import { sockperfPingPong, sockperfServers } from './lib/traffic.js';
import { environmentLine, fmt, log, percentile, parseFlags, table } from './lib/report.js';

const flags = parseFlags({ calls: 2000, repeat: 200, obj: '', liveSeconds: 3 });
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const A = { ip: '10.1.0.2', hostMac: '02:bb:00:00:00:02', ifindex: 0 };
const B = { ip: '10.1.0.3', podMac: '02:aa:00:00:00:03', hostMac: '02:bb:00:00:00:03', ifindex: 0 };
// After one local delivery the source MAC is B's gateway MAC; A is registered with it.
const A_POD_MAC = B.hostMac;

interface Path { name: string; packet: Buffer; verdict: number; repeat: number }

const PATHS: Path[] = [
  { name: 'IPv4 to a pod on this node (redirect_peer)', packet: ethernet(A.hostMac, A_POD_MAC, 0x0800, ipv4Udp(A.ip, B.ip, 255)), verdict: TC_ACT_REDIRECT, repeat: flags.repeat },
  { name: 'IPv4 to elsewhere (host stack)', packet: ethernet(A.hostMac, A_POD_MAC, 0x0800, ipv4Udp(A.ip, '192.0.2.1', 64)), verdict: TC_ACT_OK, repeat: flags.repeat },
  { name: 'IPv4 with a spoofed source (dropped)', packet: ethernet(A.hostMac, A_POD_MAC, 0x0800, ipv4Udp('10.1.0.99', B.ip, 64)), verdict: TC_ACT_SHOT, repeat: flags.repeat },
];

runBenchmark(async () => {
  if (flags.repeat > 250) throw new Error('--repeat must stay under 255: the TTL of the local-delivery packet counts the runs');
  const ns = new TestNetns(uniqueName('fcost'));
  onCleanup('namespace', () => ns.remove());
  ns.ip('link', 'add', 'hA', 'type', 'veth', 'peer', 'name', 'pA');
  ns.ip('link', 'add', 'hB', 'type', 'veth', 'peer', 'name', 'pB');
  A.ifindex = ns.ifindex('hA');
  B.ifindex = ns.ifindex('hB');

  const objects: Record<string, string> = { committed: path.resolve('bpf/fast_pod.o') };
  if (flags.obj) objects.variant = path.resolve(flags.obj);
  const progs: Record<string, number> = {};
  for (const [label, file] of Object.entries(objects)) {
    const pinDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-cost-'));
    ensureBpffs(pinDir);
    onCleanup(`bpffs ${label}`, () => removeBpffs(pinDir));
    const obj = LoadedBpfObject.load(file, pinDir);
    onCleanup(`program ${label}`, () => obj.close());
    obj.map(MAP_NAMES.localPods).update(encodeIp(A.ip), encodeLocalPod({ hostIfindex: A.ifindex, podIfindex: 2, podMac: A_POD_MAC, hostMac: A.hostMac, flags: 0 }));
    obj.map(MAP_NAMES.localPods).update(encodeIp(B.ip), encodeLocalPod({ hostIfindex: B.ifindex, podIfindex: 2, podMac: B.podMac, hostMac: B.hostMac, flags: 0 }));
    progs[label] = obj.programFd('fast_from_pod');
  }

  const samples: Record<string, number[]> = {};
  withNetnsSync(ns.path, () => {
    for (let c = 0; c < flags.calls; c++) {
      for (const label of c % 2 === 0 ? Object.keys(progs) : Object.keys(progs).reverse()) {
        for (const p of PATHS) {
          const r = testRun(progs[label]!, p.packet, A.ifindex, p.repeat);
          if (r.retval !== p.verdict) throw new Error(`${label}, ${p.name}: verdict ${r.retval}, expected ${p.verdict}`);
          (samples[`${label}\t${p.name}`] ??= []).push(r.durationNs);
        }
      }
      if (c % 500 === 0) log(`call ${c + 1}/${flags.calls}`);
    }
  });

  const rows = PATHS.flatMap((p) => Object.keys(progs).map((label) => {
    const xs = samples[`${label}\t${p.name}`]!;
    const base = samples[`committed\t${p.name}`]!;
    return [p.name, label, fmt(percentile(xs, 50), 1), fmt(percentile(xs, 10), 1), fmt(percentile(xs, 90), 1), fmt(percentile(xs, 50) / percentile(base, 50), 3)];
  }));
  console.log(`Command: \`node --import tsx bench/prog-cost.ts --calls ${flags.calls} --repeat ${flags.repeat}${flags.obj ? ` --obj ${flags.obj}` : ''}\`\n`);
  console.log(`Environment: ${environmentLine()}\n`);
  console.log(table(['path', 'object', 'ns/run p50', 'p10', 'p90', 'ratio to committed'], rows));
  if (flags.liveSeconds > 0) console.log('\n' + await liveCost());
});

/** Kernel statistics of every loaded fast_from_pod: total run time (ns) and runs. */
function podProgramStats(): { ns: number; runs: number } {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as Array<{ name: string; run_time_ns?: number; run_cnt?: number }>;
  return progs.filter((p) => p.name === 'fast_from_pod').reduce((a, p) => ({ ns: a.ns + (p.run_time_ns ?? 0), runs: a.runs + (p.run_cnt ?? 0) }), { ns: 0, runs: 0 });
}

async function liveCost(): Promise<string> {
  const node = await startFastNode(10);
  const [a, b] = [node.addPod('1.0.0'), node.addPod('1.0.0')];
  const attach = await settledAttachments(node, [a.ip, b.ip]);
  await sockperfServers(b.pod, b.ip, 1);
  const rows: string[][] = [];
  execFileSync('sysctl', ['-qw', 'kernel.bpf_stats_enabled=1']);
  onCleanup('bpf_stats', () => { execFileSync('sysctl', ['-qw', 'kernel.bpf_stats_enabled=0']); });
  const per: Record<'tcp' | 'udp', number[]> = { tcp: [], udp: [] };
  for (let round = 0; round < 3; round++) {
    for (const proto of ['tcp', 'udp'] as const) {
      const before = podProgramStats();
      const r = sockperfPingPong(a.pod, b.ip, proto, flags.liveSeconds, 1);
      const after = podProgramStats();
      const nsPerRun = (after.ns - before.ns) / (after.runs - before.runs);
      per[proto].push(nsPerRun);
      log(`live ${proto} round ${round + 1}: ${fmt(nsPerRun, 1)} ns per run, ${after.runs - before.runs} runs, RTT p50 ${fmt(r.p50Us)} µs`);
    }
  }
  execFileSync('sysctl', ['-qw', 'kernel.bpf_stats_enabled=0']);
  for (const proto of ['tcp', 'udp'] as const) rows.push([proto.toUpperCase(), fmt(percentile(per[proto], 50), 1), per[proto].map((x) => fmt(x, 1)).join(', ')]);
  return `Live, sockperf ping-pong between two pods on one node (${attach.join(', ')}), ${flags.liveSeconds} s × 3 per protocol, client and server on CPU 1:\n\n`
    + table(['protocol', 'fast_from_pod ns per packet (median of rounds)', 'rounds'], rows);
}
