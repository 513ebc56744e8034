// CNI ADD and DEL latency: Fast (real agent in a node namespace, real cni/fast-cni)
// against the reference bridge + host-local plugins (/usr/lib/cni), in one run.
//
//   node --import tsx bench/cni-latency.ts [--pods 200] [--warmup 10] [--baseline 100]
//
// Each plugin runs in its own node namespace, executed by a long-lived helper inside that
// namespace (as a runtime would: fork+exec, config on stdin, wait for exit); only that is
// timed, pod namespace creation is not. Fast and bridge calls alternate pod by pod, and
// which goes first alternates too. Progress on stderr, a markdown table on stdout.
import * as fs from 'node:fs';
import { FAST_CNI, AGENT, envFor } from '../test/helpers/node-harness.js';
import { runBenchmark } from './lib/cleanup.js';
import { Invoker, type Invocation } from './lib/invoker.js';
import { BRIDGE, BridgeNode, CNI_VERSION, benchName, podNetns, startFastNode } from './lib/nodes.js';
import { commandLine, environmentLine, fmt, loadAverage, log, mean, numericFlags, percentile, progress, table } from './lib/report.js';

const opts = numericFlags({ pods: 200, warmup: 10, baseline: 100 });

type Side = 'fast' | 'bridge';

runBenchmark(async () => {
  for (const f of [FAST_CNI, AGENT, BRIDGE]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.json; make -C cni) / install containernetworking-plugins`);
  const command = commandLine();
  const loadAtStart = loadAverage();
  log(`cni-latency: ${opts.pods} pods per plugin, ${opts.warmup} warm-up ADD+DEL each`);

  const fast = await startFastNode(opts.pods + opts.warmup);
  const bridge = new BridgeNode();
  const inv: Record<Side, Invoker> = {
    fast: await new Invoker(fast.ns.path).start(),
    bridge: await new Invoker(bridge.ns.path).start(),
  };
  const plugin: Record<Side, string> = { fast: FAST_CNI, bridge: BRIDGE };
  const conf: Record<Side, object> = { fast: fast.conf(CNI_VERSION), bridge: bridge.conf(CNI_VERSION) };
  const newNetns = (side: Side) => (side === 'fast' ? podNetns('fpod') : bridge.addPodNetns());

  const call = async (side: Side, cmd: 'ADD' | 'DEL', containerId: string, netns: string): Promise<Invocation> => {
    const r = await inv[side].run(plugin[side], envFor(cmd, containerId, netns), conf[side]);
    if (r.status !== 0) throw new Error(`${side} ${cmd} ${containerId} exited ${r.status}: ${r.stdout}${r.stderr}${side === 'fast' ? '\n' + fast.agentLog.slice(-2000) : ''}`);
    return r;
  };
  const orderFor = (i: number): Side[] => (i % 2 === 0 ? ['fast', 'bridge'] : ['bridge', 'fast']);

  // What fork+exec+wait of a trivial program costs from the same helpers.
  const baseline: Record<Side, number[]> = { fast: [], bridge: [] };
  for (let i = 0; i < opts.baseline; i++) for (const side of orderFor(i)) baseline[side].push((await inv[side].run('/bin/true', {}, '')).ms);
  // And what fast-cni → agent → answer costs without any work (STATUS, CNI 1.1.0).
  const status: number[] = [];
  for (let i = 0; i < opts.baseline; i++) {
    const r = await inv.fast.run(FAST_CNI, { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' }, fast.conf('1.1.0'));
    if (r.status !== 0) throw new Error(`fast STATUS exited ${r.status}: ${r.stdout}`);
    status.push(r.ms);
  }

  for (let i = 0; i < opts.warmup; i++) {
    progress(`warm-up ${i + 1}/${opts.warmup}`);
    for (const side of orderFor(i)) {
      const id = benchName('warm');
      const ns = newNetns(side);
      await call(side, 'ADD', id, ns.path);
      await call(side, 'DEL', id, ns.path);
    }
  }
  progress(`warm-up done`, true);

  const pods: Record<Side, Array<{ id: string; netns: string; ip: string }>> = { fast: [], bridge: [] };
  const add: Record<Side, number[]> = { fast: [], bridge: [] };
  const del: Record<Side, number[]> = { fast: [], bridge: [] };
  for (let i = 0; i < opts.pods; i++) {
    if (i % 5 === 0) progress(`ADD ${i + 1}/${opts.pods}  fast p50 ${fmt(percentile(add.fast, 50))} ms, bridge p50 ${fmt(percentile(add.bridge, 50))} ms`);
    for (const side of orderFor(i)) {
      const id = benchName(side === 'fast' ? 'fctr' : 'bctr');
      const ns = newNetns(side); // not timed
      const r = await call(side, 'ADD', id, ns.path);
      pods[side].push({ id, netns: ns.path, ip: r.json?.ips?.[0]?.address });
      add[side].push(r.ms);
    }
  }
  progress(`ADD ${opts.pods}/${opts.pods} done`, true);
  const movesAfterAdds = tcxMoves(fast.agentLog);
  const fastLinks = fast.hostLinks().length;
  const bridgeLinks = bridge.vethCount();
  const distinct = (side: Side) => new Set(pods[side].map((p) => p.ip)).size;
  if (fastLinks !== opts.pods || bridgeLinks !== opts.pods || distinct('fast') !== opts.pods || distinct('bridge') !== opts.pods) {
    throw new Error(`after ADD: fast ${fastLinks} veths/${distinct('fast')} addresses, bridge ${bridgeLinks} veths/${distinct('bridge')} addresses, expected ${opts.pods}`);
  }

  for (let i = 0; i < opts.pods; i++) {
    if (i % 5 === 0) progress(`DEL ${i + 1}/${opts.pods}  fast p50 ${fmt(percentile(del.fast, 50))} ms, bridge p50 ${fmt(percentile(del.bridge, 50))} ms`);
    for (const side of orderFor(i)) {
      const p = pods[side][i]!;
      del[side].push((await call(side, 'DEL', p.id, p.netns)).ms);
    }
  }
  progress(`DEL ${opts.pods}/${opts.pods} done`, true);
  const movesAfterDels = tcxMoves(fast.agentLog);
  if (fast.hostLinks().length !== 0 || bridge.vethCount() !== 0) throw new Error('DEL left veths behind');

  const row = (label: string, s: number[]) => [label, String(s.length), fmt(percentile(s, 50)), fmt(percentile(s, 90)), fmt(percentile(s, 99)), fmt(mean(s)), fmt(Math.min(...s)), fmt(Math.max(...s))];
  const out: string[] = [];
  out.push(`Command: \`${command}\``);
  out.push('');
  out.push(`Environment: load average ${loadAtStart} at the start, then ${environmentLine()}`);
  out.push('');
  out.push(table(['plugin invocation (ms)', 'n', 'p50', 'p90', 'p99', 'mean', 'min', 'max'], [
    row('Fast ADD (fast-cni → agent)', add.fast),
    row('bridge + host-local ADD', add.bridge),
    row('Fast DEL', del.fast),
    row('bridge + host-local DEL', del.bridge),
    row('Fast STATUS (fast-cni → agent, no work)', status),
    row('/bin/true from the Fast node helper', baseline.fast),
    row('/bin/true from the bridge node helper', baseline.bridge),
  ]));
  const ratio = (a: number[], b: number[], p: number) => fmt(percentile(a, p) / percentile(b, p));
  out.push('');
  out.push(table(['ratio Fast / bridge', 'p50', 'p99'], [
    ['ADD', ratio(add.fast, add.bridge, 50), ratio(add.fast, add.bridge, 99)],
    ['DEL', ratio(del.fast, del.bridge, 50), ratio(del.fast, del.bridge, 99)],
  ]));
  const met = percentile(add.fast, 50) <= percentile(add.bridge, 50);
  out.push('');
  out.push(`Floor (Fast ADD p50 no slower than bridge ADD p50 in the same run): ${met ? 'met' : 'NOT met'} (${fmt(percentile(add.fast, 50))} ms vs ${fmt(percentile(add.bridge, 50))} ms)`);
  // attachMode auto moves pods to tcx links when the agent has been idle for 1 s; a move holds
  // RTNL ~15 ms, so say whether any happened while the two plugins were being timed.
  out.push(`Pods the Fast agent moved from cls_bpf to tcx (attachMode ${process.env.FAST_ATTACH_MODE ?? 'auto'}): ${movesAfterAdds} by the end of the ADDs, ${movesAfterDels - movesAfterAdds} during the DELs`);
  process.stdout.write(out.join('\n') + '\n');
});

function tcxMoves(agentLog: string): number {
  return agentLog.match(/pod moved from cls_bpf to its tcx link/g)?.length ?? 0;
}
