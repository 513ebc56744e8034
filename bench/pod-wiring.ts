// Pod wiring inside the agent process: in-process rtnetlink (src/dataplane/net/pod-link.ts)
// against the `ip -batch` processes it replaced, side by side, pod by pod.
//
//   node --import tsx bench/pod-wiring.ts [--pods 200] [--warmup 10]
//
// Two node namespaces, one per method; every pod gets its own namespace, made before the
// clock starts. The methods alternate pod by pod (who goes first alternates too) with the
// pods accumulating, then every pod is deleted the same way. Wall time of each ADD and DEL
// as the agent sees it; CPU per pod counted for the whole run of each method: this
// process's user+system time, plus its waited-for children's (the `ip` processes) from
// /proc/self/stat. "Event loop held" is the synchronous part of the call (up to its first
// await: for netlink the whole ADD, for `ip` the first process's fork+exec; a lower bound
// for `ip`, whose second spawn holds the loop again). Then the netlink ADD's steps timed one by one (the same requests
// pod-link.ts makes, issued here step by step).
import * as fs from 'node:fs';
import * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import { withNetnsSync } from '../src/dataplane/net/netns.js';
import { createPodLink, deleteHostLink, randomMac, GATEWAY_V4, type PodLinkSpec } from '../src/dataplane/net/pod-link.js';
import { ipBatch, deleteLink as ipDeleteLink, type IpCommand } from '../src/dataplane/net/ip-command.js';
import {
  NetlinkSocket, addAddress, createVeth, deleteLink, getLink, replacePermanentNeighbour, replaceRoute, setLinkUp,
} from '../src/dataplane/net/netlink/index.js';
import { RT_SCOPE_LINK, RT_SCOPE_UNIVERSE } from '../src/dataplane/net/netlink/constants.js';
import { onCleanup, runBenchmark } from './lib/cleanup.js';
import { environmentLine, fmt, log, mean, parseFlags, percentile, progress, table } from './lib/report.js';

const flags = parseFlags({ pods: 200, warmup: 10 });

function netnsAdd(name: string): string {
  execFileSync('ip', ['netns', 'add', name]);
  onCleanup(`netns ${name}`, () => void execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' }));
  return `/var/run/netns/${name}`;
}

// The previous implementation's commands (pod-link.ts before in-process rtnetlink), verbatim.
function ipHostCommands(s: PodLinkSpec): IpCommand[] {
  const cmds: IpCommand[] = [
    ['link', 'add', 'name', s.hostIfName, 'mtu', String(s.mtu), 'address', s.hostMac, 'type', 'veth', 'peer', 'name', s.ifName, 'mtu', String(s.mtu), 'address', s.podMac, 'netns', s.netnsPath],
    `link set dev ${s.hostIfName} up`,
  ];
  for (const a of s.addresses) {
    cmds.push(`route replace ${a}/${net.isIPv6(a) ? 128 : 32} dev ${s.hostIfName} scope link`);
    cmds.push(`neigh replace ${a} lladdr ${s.podMac} dev ${s.hostIfName} nud permanent`);
  }
  cmds.push(`link show dev ${s.hostIfName}`);
  return cmds;
}

function ipPodCommands(s: PodLinkSpec): IpCommand[] {
  const dev = s.ifName;
  const cmds: IpCommand[] = [`link set dev lo up`, ['link', 'set', 'dev', dev, 'up']];
  for (const a of s.addresses) {
    cmds.push(['addr', 'add', `${a}/32`, 'dev', dev]);
    cmds.push(['neigh', 'replace', GATEWAY_V4, 'lladdr', s.hostMac, 'dev', dev, 'nud', 'permanent']);
    cmds.push(['route', 'replace', GATEWAY_V4, 'dev', dev, 'scope', 'link']);
    cmds.push(['route', 'replace', 'default', 'via', GATEWAY_V4, 'dev', dev]);
  }
  cmds.push(['link', 'show', 'dev', dev]);
  return cmds;
}

/** User+system CPU ms of this process and of its reaped children. */
function cpuMs(): { self: number; children: number } {
  const u = process.cpuUsage();
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]); // cutime, cstime (fields 16, 17)
  return { self: (u.user + u.system) / 1000, children: (ticks * 1000) / 100 };
}

interface Side { name: string; node: string; add: number[]; del: number[]; cpuAdd: number; cpuDel: number; heldAdd: number[]; heldDel: number[] }

function specFor(i: number, nodeTag: string, podPath: string): PodLinkSpec {
  return { netnsPath: podPath, ifName: 'eth0', hostIfName: `fst${nodeTag}${String(i).padStart(6, '0')}`, addresses: [`10.${nodeTag === 'n' ? 80 : 81}.${i >> 8}.${i & 255}`], mtu: 1450, podMac: randomMac(), hostMac: randomMac() };
}

async function timed(side: Side, list: number[], key: 'cpuAdd' | 'cpuDel', fn: () => Promise<unknown>): Promise<void> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const p = fn();
  (key === 'cpuAdd' ? side.heldAdd : side.heldDel).push(performance.now() - t0); // synchronous part: the event loop is held
  await p;
  list.push(performance.now() - t0);
  const c1 = cpuMs();
  side[key] += c1.self - c0.self + (c1.children - c0.children);
}

const addNetlink = (s: PodLinkSpec, node: string) => withNetnsSync(node, () => createPodLink(s));
const addIp = async (s: PodLinkSpec, node: string) => {
  await ipBatch(ipHostCommands(s), { json: true, netnsPath: node });
  await ipBatch(ipPodCommands(s), { json: true, netnsPath: s.netnsPath });
};

/** The netlink ADD's steps, one by one, each timed. */
function stepTimes(node: string, s: PodLinkSpec, out: Record<string, number[]>): void {
  const mark = (k: string, t0: number) => (out[k] ??= []).push(performance.now() - t0);
  withNetnsSync(node, () => {
    const nl = NetlinkSocket.open();
    try {
      let t = performance.now();
      const fd = fs.openSync(s.netnsPath, 'r');
      const pod = withNetnsSync(s.netnsPath, () => NetlinkSocket.open());
      mark('open the netns and a socket inside it (setns twice)', t);
      t = performance.now();
      createVeth(nl, 'veth', { name: s.hostIfName, mtu: s.mtu, mac: s.hostMac, up: true }, { name: s.ifName, mtu: s.mtu, mac: s.podMac, up: false, netnsFd: fd });
      mark('RTM_NEWLINK veth pair, peer in the pod namespace', t);
      t = performance.now();
      const host = getLink(nl, s.hostIfName)!;
      replaceRoute(nl, { dst: s.addresses[0]!, dstLen: 32, oif: host.ifindex, scope: RT_SCOPE_LINK });
      replacePermanentNeighbour(nl, host.ifindex, s.addresses[0]!, s.podMac);
      mark('node side: ifindex, /32 route, neighbour', t);
      t = performance.now();
      setLinkUp(pod, 'lo');
      setLinkUp(pod, s.ifName);
      const l = getLink(pod, s.ifName)!;
      addAddress(pod, l.ifindex, s.addresses[0]!, 32);
      replacePermanentNeighbour(pod, l.ifindex, GATEWAY_V4, s.hostMac);
      replaceRoute(pod, { dst: GATEWAY_V4, dstLen: 32, oif: l.ifindex, scope: RT_SCOPE_LINK });
      replaceRoute(pod, { dst: 'default', dstLen: 0, gateway: GATEWAY_V4, oif: l.ifindex, scope: RT_SCOPE_UNIVERSE });
      mark('pod side: lo and eth0 up, address, neighbour, two routes', t);
      pod.close();
      fs.closeSync(fd);
      t = performance.now();
      deleteLink(nl, s.hostIfName);
      mark('DEL: RTM_DELLINK', t);
    } finally {
      nl.close();
    }
  });
}

async function main(): Promise<void> {
  const env0 = environmentLine();
  const tag = process.pid.toString(36);
  const sides: Side[] = [
    { name: 'in-process rtnetlink', node: netnsAdd(`pwn-${tag}`), add: [], del: [], cpuAdd: 0, cpuDel: 0, heldAdd: [], heldDel: [] },
    { name: '`ip` processes (previous)', node: netnsAdd(`pwi-${tag}`), add: [], del: [], cpuAdd: 0, cpuDel: 0, heldAdd: [], heldDel: [] },
  ];
  const total = flags.warmup + flags.pods;
  const pods = Array.from({ length: total * 2 }, (_, i) => netnsAdd(`pwp-${tag}-${i}`));
  const specs: PodLinkSpec[][] = [[], []];
  for (let i = 0; i < total; i++) {
    const order = i % 2 ? [1, 0] : [0, 1];
    for (const k of order) {
      const side = sides[k]!;
      const s = specFor(i, k === 0 ? 'n' : 'i', pods[i * 2 + k]!);
      specs[k]!.push(s);
      const fn = k === 0 ? () => addNetlink(s, side.node) : () => addIp(s, side.node);
      if (i < flags.warmup) await fn();
      else await timed(side, side.add, 'cpuAdd', fn);
    }
    progress(`ADD ${i + 1}/${total}`);
  }
  for (let i = 0; i < total; i++) {
    const order = i % 2 ? [1, 0] : [0, 1];
    for (const k of order) {
      const side = sides[k]!;
      const s = specs[k]![i]!;
      const fn = k === 0 ? () => withNetnsSync(side.node, () => deleteHostLink(s.hostIfName)) : () => ipDeleteLink(s.hostIfName, { netnsPath: side.node });
      if (i < flags.warmup) await fn();
      else await timed(side, side.del, 'cpuDel', fn);
    }
    progress(`DEL ${i + 1}/${total}`);
  }
  progress('', true);

  const steps: Record<string, number[]> = {};
  for (let i = 0; i < 50; i++) stepTimes(sides[0]!.node, specFor(9000 + i, 'n', pods[i % pods.length]!), steps);

  const row = (label: string, xs: number[]) => [label, String(xs.length), fmt(percentile(xs, 50)), fmt(percentile(xs, 90)), fmt(percentile(xs, 99)), fmt(mean(xs)), fmt(Math.min(...xs)), fmt(Math.max(...xs))];
  console.log(`Environment: ${env0}; at the end: ${environmentLine()}\n`);
  console.log(table(['in-agent pod wiring (ms)', 'n', 'p50', 'p90', 'p99', 'mean', 'min', 'max'], [
    ...sides.map((s) => row(`ADD, ${s.name}`, s.add)),
    ...sides.map((s) => row(`DEL, ${s.name}`, s.del)),
    ...sides.map((s) => row(`ADD, event loop held, ${s.name}`, s.heldAdd)),
    ...sides.map((s) => row(`DEL, event loop held, ${s.name}`, s.heldDel)),
  ]));
  console.log();
  console.log(table(['CPU per pod (ms, this process + children)', 'ADD', 'DEL'], sides.map((s) => [s.name, fmt(s.cpuAdd / s.add.length), fmt(s.cpuDel / s.del.length)])));
  console.log();
  const [nl, ip] = sides;
  console.log(table(['ratio rtnetlink / ip', 'p50', 'p99', 'CPU'], [
    ['ADD', fmt(percentile(nl!.add, 50) / percentile(ip!.add, 50)), fmt(percentile(nl!.add, 99) / percentile(ip!.add, 99)), fmt(nl!.cpuAdd / ip!.cpuAdd)],
    ['DEL', fmt(percentile(nl!.del, 50) / percentile(ip!.del, 50)), fmt(percentile(nl!.del, 99) / percentile(ip!.del, 99)), fmt(nl!.cpuDel / ip!.cpuDel)],
  ]));
  console.log();
  console.log(table(['rtnetlink ADD step (ms), 50 pods', 'p50', 'p90', 'max'], Object.entries(steps).map(([k, xs]) => [k, fmt(percentile(xs, 50), 3), fmt(percentile(xs, 90), 3), fmt(Math.max(...xs), 3)])));
  log('done');
}

runBenchmark(main);
