// Cross-node pod-to-pod TCP throughput (iperf3, one stream) and request/response latency
// (sockperf ping-pong, TCP and UDP, 64-byte messages) in one run, for:
//   - node-to-node:   node1 -> node2 over the lab underlay (veth -> bridge -> veth, MTU
//                     1500), in the overlay lab, whose uplinks carry no program: the limit;
//   - node-to-node (native lab): the same in the native-routing lab, where every packet
//                     arriving on the uplink meets fast_from_uplink (for information);
//   - Fast overlay:   pod on node1 -> pod on node2 of a 2-node `fast lab` in overlay mode
//                     (pod packets encapsulated by eBPF, the default);
//   - Fast overlay (kernel encap): the same with overlayEncap: kernel (fast_vxlan
//                     encapsulates), in a third lab;
//   - Fast overlay (kernel decap): the same with overlayDecap: kernel (fast_vxlan
//                     decapsulates every packet; eBPF still encapsulates), in a fourth lab;
//   - Fast native:    the same in native-routing mode;
//   - VXLAN+bridge:   what flannel's vxlan backend with the bridge plugin does, built here
//                     by hand with the same underlay shape (an underlay namespace with a
//                     bridge, two node namespaces on it by MTU-1500 veths, GRO on): pods on a
//                     `cni0` bridge (MTU 1450), `flannel.1` (VXLAN id 1, UDP 8472,
//                     nolearning) with flannel's route / permanent neighbour / FDB entries.
//
//   node --import tsx bench/cross-node.ts [--duration 10] [--reps 5] [--latency-duration 5] [--latency-reps 5] [--pin 0]
//                                         [--setups all|overlay|native|<comma list of set-up names>]
//
// --setups narrows the run (node-to-node, the limit, is always measured): `overlay` is
// node-to-node, Fast overlay and VXLAN+bridge; `native` is node-to-node, its native-lab twin
// and Fast native. Only the labs the chosen set-ups need are brought up.
//
// Needs root, the built tree (npx tsc -p tsconfig.json && make -C cni), iperf3, sockperf.
// Repetitions are interleaved (one run of each set-up, then the next repetition, the order
// rotating) and medians are reported. Labs are named flabxbo / flabxbk / flabxbd / flabxbn (API
// ports 21571, 21573, 21574, 21572, directories /tmp/flabxb*); everything is removed at the end, on failure and on
// Ctrl-C. Progress on stderr, markdown on stdout.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runBenchmark, onCleanup } from './lib/cleanup.js';
import { commandLine, debVersion, environmentLine, fmt, log, median, parseFlags, progress, table } from './lib/report.js';
import { latencyTable } from './lib/report.js';
import { iperf, iperfServer, sockperfPingPong, sockperfServers, type IperfResult, type PingPong } from './lib/traffic.js';
import { TestNetns } from '../test/helpers/netns.js';
import { REPO } from '../test/helpers/node-harness.js';
import { podNetnsName } from '../src/lab/kubelet/sandbox-store.js';

const opts = parseFlags({ duration: 10, reps: 5, latencyDuration: 5, latencyReps: 5, pin: 0, setups: 'all' });
const CLIENT_CPU = opts.pin ? 0 : undefined;
const SERVER_CPU = opts.pin ? 1 : undefined;
const FAST = path.join(REPO, 'bin', 'fast');

type Setup = 'node-to-node' | 'node-to-node (native lab)' | 'Fast overlay' | 'Fast overlay (kernel encap)' | 'Fast overlay (kernel decap)' | 'Fast native' | 'VXLAN+bridge';
const ALL_SETUPS: Setup[] = ['node-to-node', 'node-to-node (native lab)', 'Fast overlay', 'Fast overlay (kernel encap)', 'Fast overlay (kernel decap)', 'Fast native', 'VXLAN+bridge'];
const SETUPS = chooseSetups(opts.setups);
const rotate = (r: number): Setup[] => SETUPS.map((_, i) => SETUPS[(i + r) % SETUPS.length]!);

interface End { ns: TestNetns; ip: string }

function chooseSetups(spec: string): Setup[] {
  const groups: Record<string, Setup[]> = {
    all: ALL_SETUPS,
    overlay: ['node-to-node', 'Fast overlay', 'Fast overlay (kernel encap)', 'Fast overlay (kernel decap)', 'VXLAN+bridge'],
    native: ['node-to-node', 'node-to-node (native lab)', 'Fast native'],
  };
  const named = groups[spec] ?? spec.split(',').map((s) => s.trim());
  for (const s of named) if (!ALL_SETUPS.includes(s as Setup)) throw new Error(`--setups: unknown set-up "${s}" (all, overlay, native or a list of: ${ALL_SETUPS.join(', ')})`);
  return ALL_SETUPS.filter((s) => s === 'node-to-node' || named.includes(s));
}

/** A namespace made by someone else (the lab), addressed by name like TestNetns. */
function nsRef(name: string): TestNetns {
  return Object.assign(Object.create(TestNetns.prototype) as TestNetns, { name, path: `/var/run/netns/${name}` });
}

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A 2-node `fast lab` with one pod per node, brought up by the built CLI. The pods are
 *  created once every agent has configured its cross-node datapath (pods created together
 *  with the first pool can race it and get the uplink's MTU: see test/e2e/cross-node.test.ts). */
class Lab {
  readonly dir: string;
  constructor(readonly mode: 'overlay' | 'native', readonly name: string, readonly port: number, readonly env: Record<string, string> = {}) {
    this.dir = `/tmp/${name}`;
  }

  kubectl(args: string[], input?: string): string {
    return sh('kubectl', ['--kubeconfig', path.join(this.dir, 'kubeconfig'), ...args], input);
  }

  async up(): Promise<{ pods: [End, End]; nodes: [End, End] }> {
    onCleanup(`lab ${this.name}`, () => { spawnSync(process.execPath, [FAST, 'lab', 'down', '--dir', this.dir], { stdio: 'ignore' }); });
    // The lab's agents inherit its environment: FAST_* variables override their config.
    const r = spawnSync(process.execPath, [FAST, 'lab', 'up', '--nodes', '2', '--mode', this.mode, '--name', this.name, '--port', String(this.port), '--dir', this.dir], { encoding: 'utf8', env: { ...process.env, ...this.env } });
    if (r.status !== 0) throw new Error(`fast lab up ${this.name} failed: ${r.stdout}${r.stderr}`);
    this.kubectl(['apply', '-f', '-'], 'apiVersion: sample.fast.io/v1alpha1\nkind: Ips\nmetadata: {name: default-ips}\nspec: {subnet: 10.244.0.1/16, ips: [10.244.100.0-10.244.200.250]}\n');
    const configured = (n: string) => fs.readFileSync(path.join(this.dir, n, 'agent.log'), 'utf8').includes('cross-node datapath configured');
    await until(`${this.name}: cross-node datapath configured`, () => configured('node1') && configured('node2'), 20000);
    this.kubectl(['apply', '-f', '-'], ['node1', 'node2'].map((n) => `apiVersion: v1\nkind: Pod\nmetadata: {name: bench-${n}, labels: {app: bench}}\nspec: {nodeName: ${n}, containers: [{name: c, image: none}]}\n`).join('---\n'));
    let items: any[] = [];
    await until(`${this.name}: bench pods Running`, () => {
      items = (JSON.parse(this.kubectl(['get', 'pods', '-l', 'app=bench', '-o', 'json'])) as { items: any[] }).items.filter((p) => p.status?.phase === 'Running' && p.status?.podIP);
      return items.length === 2;
    }, 60000);
    const pod = (n: string): End => {
      const p = items.find((x) => x.spec.nodeName === n)!;
      return { ns: nsRef(podNetnsName(p.metadata.uid, `${this.name}p-`)), ip: p.status.podIP };
    };
    return { pods: [pod('node1'), pod('node2')], nodes: [{ ns: nsRef(`${this.name}-node1`), ip: '172.30.0.11' }, { ns: nsRef(`${this.name}-node2`), ip: '172.30.0.12' }] };
  }

  podMtu(end: End): number {
    return Number(/mtu (\d+)/.exec(sh('ip', ['-n', end.ns.name, 'link', 'show', 'eth0']))?.[1]);
  }

  stats(): Record<string, number> {
    const out = sh('nsenter', [`--net=/var/run/netns/${this.name}-node1`, '--', process.execPath, path.join(REPO, 'dist/src/ctl/main.js'), '--config', path.join(this.dir, 'node1', 'agent.json'), 'map', 'dump', 'fast_stats_v1', '-o', 'json']);
    return Object.fromEntries((JSON.parse(out) as Array<{ counter: string; packets: string }>).map((r) => [r.counter, Number(r.packets)]));
  }
}

/** flannel's vxlan backend + the bridge plugin, by hand, on an underlay shaped like the lab's. */
function flannelLike(): [End, End] {
  const id = process.pid.toString(36);
  const made: TestNetns[] = [];
  onCleanup('VXLAN+bridge namespaces', () => { for (const n of made.reverse()) n.remove(); });
  const mk = (name: string) => { const n = new TestNetns(`flabxfl-${name}-${id}`); made.push(n); return n; };
  const underlay = mk('u');
  underlay.ip('link', 'add', 'br0', 'type', 'bridge');
  underlay.ip('link', 'set', 'br0', 'up');
  const nodeIp = (i: number) => `172.31.0.${10 + i}`;
  const vtepMac = (i: number) => `02:f1:a0:00:00:0${i}`;
  const pods: End[] = [];
  for (const i of [1, 2]) {
    const node = mk(`n${i}`);
    underlay.ip('link', 'add', `p-n${i}`, 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1500', 'netns', node.name);
    underlay.ip('link', 'set', `p-n${i}`, 'master', 'br0', 'up');
    // GRO on both ends of the underlay link, as the lab's topology does (src/lab/topology.ts).
    underlay.exec('ethtool', '-K', `p-n${i}`, 'gro', 'on');
    node.exec('ethtool', '-K', 'eth0', 'gro', 'on');
    node.ip('addr', 'add', `${nodeIp(i)}/24`, 'dev', 'eth0');
    node.ip('link', 'set', 'eth0', 'up');
    node.exec('sysctl', '-qw', 'net.ipv4.ip_forward=1');
    // The bridge plugin: cni0 with the pod subnet's gateway, the pod on a veth.
    node.ip('link', 'add', 'cni0', 'mtu', '1450', 'type', 'bridge');
    node.ip('addr', 'add', `10.50.${i}.1/24`, 'dev', 'cni0');
    node.ip('link', 'set', 'cni0', 'up');
    const pod = mk(`p${i}`);
    node.ip('link', 'add', 'veth0', 'mtu', '1450', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1450', 'netns', pod.name);
    node.ip('link', 'set', 'veth0', 'master', 'cni0', 'up');
    pod.ip('addr', 'add', `10.50.${i}.2/24`, 'dev', 'eth0');
    pod.ip('link', 'set', 'eth0', 'up');
    pod.ip('route', 'add', 'default', 'via', `10.50.${i}.1`);
    // flannel.1: the VTEP, addressed with the network address of the node's pod subnet.
    node.ip('link', 'add', 'flannel.1', 'address', vtepMac(i), 'mtu', '1450', 'type', 'vxlan', 'id', '1', 'local', nodeIp(i), 'dev', 'eth0', 'dstport', '8472', 'nolearning');
    node.ip('addr', 'add', `10.50.${i}.0/32`, 'dev', 'flannel.1');
    node.ip('link', 'set', 'flannel.1', 'up');
    pods.push({ ns: pod, ip: `10.50.${i}.2` });
  }
  // What flanneld writes for each remote node: route via its VTEP (onlink), the VTEP's
  // neighbour entry, and the FDB entry sending that MAC to the remote node's address.
  for (const [i, j] of [[1, 2], [2, 1]] as const) {
    const node = made.find((n) => n.name === `flabxfl-n${i}-${id}`)!;
    node.ip('route', 'add', `10.50.${j}.0/24`, 'via', `10.50.${j}.0`, 'dev', 'flannel.1', 'onlink');
    node.ip('neigh', 'replace', `10.50.${j}.0`, 'lladdr', vtepMac(j), 'dev', 'flannel.1', 'nud', 'permanent');
    sh('bridge', ['-n', node.name, 'fdb', 'append', vtepMac(j), 'dev', 'flannel.1', 'dst', nodeIp(j)]);
  }
  return pods as [End, End];
}

function ping(from: End, to: string): boolean {
  return spawnSync('ip', ['netns', 'exec', from.ns.name, 'ping', '-c', '1', '-W', '2', to], { stdio: 'ignore' }).status === 0;
}

runBenchmark(async () => {
  for (const tool of ['iperf3', 'sockperf', 'kubectl']) if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is missing`);
  const command = commandLine();
  const total = (opts.duration + 1) * opts.reps * SETUPS.length + opts.latencyDuration * 2 * opts.latencyReps * SETUPS.length;
  log(`cross-node: ${opts.reps}×${opts.duration} s iperf3 and ${opts.latencyReps}×${opts.latencyDuration} s sockperf (TCP, UDP) per set-up, about ${Math.round(total / 60)} min plus set-up`);

  const has = (x: Setup) => SETUPS.includes(x);
  // The overlay lab always: its nodes are the node-to-node limit.
  progress('overlay lab up');
  const overlay = new Lab('overlay', 'flabxbo', 21571);
  const ov = await overlay.up();
  const native = new Lab('native', 'flabxbn', 21572);
  const kernelEncap = new Lab('overlay', 'flabxbk', 21573, { FAST_OVERLAY_ENCAP: 'kernel' });
  if (has('Fast overlay (kernel encap)')) progress('overlay lab (kernel encapsulation) up');
  const kt = has('Fast overlay (kernel encap)') ? await kernelEncap.up() : undefined;
  const kernelDecap = new Lab('overlay', 'flabxbd', 21574, { FAST_OVERLAY_DECAP: 'kernel' });
  if (has('Fast overlay (kernel decap)')) progress('overlay lab (kernel decapsulation) up');
  const kd = has('Fast overlay (kernel decap)') ? await kernelDecap.up() : undefined;
  const needNative = has('Fast native') || has('node-to-node (native lab)');
  if (needNative) progress('native lab up');
  const nt = needNative ? await native.up() : undefined;
  if (has('VXLAN+bridge')) progress('VXLAN+bridge set-up');
  const fl = has('VXLAN+bridge') ? flannelLike() : undefined;
  const pairs = Object.fromEntries(Object.entries({
    'node-to-node': ov.nodes, 'node-to-node (native lab)': nt?.nodes, 'Fast overlay': ov.pods, 'Fast overlay (kernel encap)': kt?.pods, 'Fast overlay (kernel decap)': kd?.pods, 'Fast native': nt?.pods, 'VXLAN+bridge': fl,
  }).filter(([, v]) => v)) as Record<Setup, [End, End]>;
  const mtus = { overlay: overlay.podMtu(ov.pods[0]), native: nt ? native.podMtu(nt.pods[0]) : NaN };
  log(`pod MTU: Fast overlay ${mtus.overlay}, Fast native ${mtus.native}, VXLAN+bridge 1450`);
  for (const s of SETUPS) if (!ping(pairs[s][0], pairs[s][1].ip)) throw new Error(`${s}: ${pairs[s][0].ip} cannot reach ${pairs[s][1].ip}`);
  for (const s of SETUPS) {
    const [, b] = pairs[s];
    await iperfServer(b.ns, SERVER_CPU);
    await sockperfServers(b.ns, b.ip, SERVER_CPU);
  }
  const statsBefore = { overlay: overlay.stats(), kernel: kt ? kernelEncap.stats() : {}, native: nt ? native.stats() : {} };
  const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

  const tput = Object.fromEntries(SETUPS.map((s) => [s, [] as IperfResult[]])) as Record<Setup, IperfResult[]>;
  for (let r = 0; r < opts.reps; r++) {
    for (const s of rotate(r)) {
      progress(`iperf3 rep ${r + 1}/${opts.reps} ${s}`);
      const res = iperf(pairs[s][0].ns, pairs[s][1].ip, opts.duration, CLIENT_CPU);
      tput[s].push(res);
      log(`  iperf3 rep ${r + 1} ${s.padEnd(26)} ${fmt(res.gbps)} Gbit/s (retransmits ${res.retransmits}, cpu sender ${fmt(res.senderCpu, 0)}% receiver ${fmt(res.receiverCpu, 0)}%)`);
    }
  }
  const lat = { tcp: Object.fromEntries(SETUPS.map((s) => [s, [] as PingPong[]])), udp: Object.fromEntries(SETUPS.map((s) => [s, [] as PingPong[]])) } as Record<'tcp' | 'udp', Record<Setup, PingPong[]>>;
  for (let r = 0; r < opts.latencyReps; r++) {
    for (const proto of ['tcp', 'udp'] as const) {
      for (const s of rotate(r)) {
        progress(`sockperf ${proto} rep ${r + 1}/${opts.latencyReps} ${s}`);
        const res = sockperfPingPong(pairs[s][0].ns, pairs[s][1].ip, proto, opts.latencyDuration, CLIENT_CPU);
        lat[proto][s].push(res);
        log(`  sockperf ${proto} rep ${r + 1} ${s.padEnd(26)} rtt p50 ${fmt(res.p50Us)} µs, avg ${fmt(res.avgUs)} µs, p99 ${fmt(res.p99Us)} µs`);
      }
    }
  }
  const loadAfter = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const statsAfter = { overlay: overlay.stats(), kernel: kt ? kernelEncap.stats() : {}, native: nt ? native.stats() : {} };
  progress('done', true);

  const gbps = (s: Setup) => median(tput[s].map((x) => x.gbps));
  /** Median over repetitions of the ratio within each repetition (runs close in time: less
   *  exposed to the load of a shared machine drifting than a ratio of medians). */
  const paired = (s: Setup, ref: Setup) => median(tput[s].map((x, i) => x.gbps / tput[ref][i]!.gbps));
  const l = (proto: 'tcp' | 'udp', s: Setup, k: keyof PingPong) => median(lat[proto][s].map((x) => x[k]));
  const limit = gbps('node-to-node');
  const out: string[] = [];
  out.push(`Command: \`${command}\``);
  out.push('');
  out.push(`Environment: ${environmentLine([`iperf3 ${debVersion('iperf3')}`, `sockperf ${debVersion('sockperf')}`, opts.pin ? 'clients on CPU 0, servers on CPU 1' : 'no CPU pinning', `load average ${loadBefore} before, ${loadAfter} after (the machine is shared)`])}`);
  out.push('');
  out.push(`Pod MTU: Fast overlay ${mtus.overlay}, Fast native ${mtus.native}, VXLAN+bridge 1450; underlay MTU 1500 everywhere.`);
  out.push('');
  out.push(`Throughput: one TCP stream, ${opts.duration} s (+1 s omitted) × ${opts.reps}, median of the receiver-side rate.`);
  out.push('');
  out.push(table(['set-up', 'Gbit/s (median)', 'min', 'max', 'ratio to node-to-node (of medians)', 'ratio to node-to-node (median of per-rep ratios)', 'retransmits (median)', 'sender CPU %', 'receiver CPU %'], SETUPS.map((s) => [
    s, fmt(gbps(s)), fmt(Math.min(...tput[s].map((x) => x.gbps))), fmt(Math.max(...tput[s].map((x) => x.gbps))), fmt(gbps(s) / limit, 3), fmt(paired(s, 'node-to-node'), 3),
    fmt(median(tput[s].map((x) => x.retransmits)), 0), fmt(median(tput[s].map((x) => x.senderCpu)), 0), fmt(median(tput[s].map((x) => x.receiverCpu)), 0),
  ])));
  out.push('');
  out.push(`Latency: sockperf ping-pong, 64-byte messages, ${opts.latencyDuration} s × ${opts.latencyReps} per protocol, round-trip times in µs, median over repetitions.`);
  out.push('');
  out.push(latencyTable(l, SETUPS, [
    { title: 'p50 ratio to node-to-node', stat: 'p50Us' as const, baseline: 'node-to-node' as Setup },
    ...(has('VXLAN+bridge') ? [{ title: 'p50 ratio to VXLAN+bridge', stat: 'p50Us' as const, baseline: 'VXLAN+bridge' as Setup }] : []),
  ]));
  out.push('');
  if (has('Fast overlay')) {
    const ro = paired('Fast overlay', 'node-to-node');
    out.push(`Floor overlay throughput ≥ 0.9 × node-to-node (median of per-rep ratios): ${ro >= 0.9 ? 'met' : 'NOT met'} (${fmt(ro, 3)}; ratio of medians ${fmt(gbps('Fast overlay') / limit, 3)})`);
  }
  if (has('Fast native')) {
    const rn = paired('Fast native', 'node-to-node');
    out.push(`Floor native throughput ≥ 0.97 × node-to-node (median of per-rep ratios): ${rn >= 0.97 ? 'met' : 'NOT met'} (${fmt(rn, 3)}; ratio of medians ${fmt(gbps('Fast native') / limit, 3)})`);
  }
  if (has('Fast overlay (kernel encap)') && has('Fast overlay')) out.push(`Fast overlay, eBPF vs kernel encapsulation: throughput ${fmt(paired('Fast overlay', 'Fast overlay (kernel encap)'), 3)}× (median of per-rep ratios), TCP RTT p50 ${fmt(l('tcp', 'Fast overlay', 'p50Us') / l('tcp', 'Fast overlay (kernel encap)', 'p50Us'), 3)}×`);
  if (has('Fast overlay (kernel decap)') && has('Fast overlay')) out.push(`Fast overlay, eBPF vs kernel decapsulation: throughput ${fmt(paired('Fast overlay', 'Fast overlay (kernel decap)'), 3)}× (median of per-rep ratios), TCP RTT p50 ${fmt(l('tcp', 'Fast overlay', 'p50Us') / l('tcp', 'Fast overlay (kernel decap)', 'p50Us'), 3)}×`);
  if (has('VXLAN+bridge') && has('Fast overlay')) out.push(`Fast overlay vs VXLAN+bridge: throughput ${fmt(paired('Fast overlay', 'VXLAN+bridge'), 3)}× (median of per-rep ratios), TCP RTT p50 ${fmt(l('tcp', 'Fast overlay', 'p50Us') / l('tcp', 'VXLAN+bridge', 'p50Us'), 3)}×`);
  const d = (m: keyof typeof statsAfter, k: string) => (statsAfter[m][k] ?? 0) - (statsBefore[m][k] ?? 0);
  out.push(`eBPF counters on node1 during the run: overlay lab redirect_tunnel ${d('overlay', 'redirect_tunnel')} (encap_ebpf ${d('overlay', 'encap_ebpf')}), deliver_from_net ${d('overlay', 'deliver_from_net')}` +
    (kt ? `; kernel-encap lab redirect_tunnel ${d('kernel', 'redirect_tunnel')} (encap_ebpf ${d('kernel', 'encap_ebpf')})` : '') +
    (nt ? `; native lab redirect_neigh ${d('native', 'redirect_neigh')}, deliver_from_net ${d('native', 'deliver_from_net')}` : ''));
  process.stdout.write(out.join('\n') + '\n');
});
