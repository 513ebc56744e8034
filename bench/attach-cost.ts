// What attaching and detaching the pod program costs, clsact + cls_bpf against a tcx link,
// side by side: the part of every CNI ADD and DEL that depends on the attach mode.
//
//   node --import tsx bench/attach-cost.ts [--devices 30] [--rounds 4]
//
// One scratch namespace with fresh veths (made before the clock starts); fast_pod.o loaded
// once with its maps pinned in a private bpffs. Each round attaches the program to every
// device's ingress in one mode, then detaches it, timing each call; the modes alternate
// round by round. Then a teardown round per mode times what a CNI DEL does to the device:
// the veth deleted (rtnetlink, as the agent does it) with a cls_bpf filter on it; a tcx link
// unpinned first, then the veth deleted (the agent's order); and the other order (veth
// deleted with the link attached, then the pin removed). Wall time per call, as the agent's
// event loop sees it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { LoadedBpfObject } from '../src/dataplane/bpf/bpf-object.js';
import { attachTc, detachTc, setAttachMode, type AttachMode } from '../src/dataplane/bpf/tc.js';
import { ensureBpffs, removeBpffs } from '../src/dataplane/net/bpffs.js';
import { withNetnsSync } from '../src/dataplane/net/netns.js';
import { NetlinkSocket, deleteLinkOffThread } from '../src/dataplane/net/netlink/index.js';
import { removeTcxPin, tcxPinPath } from '../src/dataplane/bpf/tcx.js';
import { onCleanup, runBenchmark } from './lib/cleanup.js';
import { environmentLine, fmt, log, percentile, parseFlags, table } from './lib/report.js';

const flags = parseFlags({ devices: 30, rounds: 4 });
const NS = `fattach${process.pid}`;

/** `--devices` veth names with this prefix. */
function deviceNames(prefix: string): string[] {
  return Array.from({ length: flags.devices }, (_, i) => `${prefix}x${i}`);
}

function makeDevices(names: string[]): number[] {
  const ifindexes: number[] = [];
  for (const name of names) {
    execFileSync('ip', ['-n', NS, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `p${name}`.slice(0, 15)]);
    const [link] = JSON.parse(execFileSync('ip', ['-n', NS, '-j', 'link', 'show', name], { encoding: 'utf8' })) as Array<{ ifindex: number }>;
    ifindexes.push(link!.ifindex);
  }
  return ifindexes;
}

type Teardown = 'tc' | 'tcx-unpin-first' | 'tcx-delete-first';
const kinds: Teardown[] = ['tc', 'tcx-unpin-first', 'tcx-delete-first'];

/**
 * Devices set up as attachMode auto leaves them (cls_bpf at ADD; for the tcx kinds the timed
 * move to a tcx link, `moves`), then deleted the way a DEL does, timing each (ms).
 */
async function timeTeardown(kind: Teardown, round: number, progFd: number, linkDir: string, moves: number[]): Promise<number[]> {
  setAttachMode(kind === 'tc' ? 'tc' : 'tcx', linkDir);
  const names = deviceNames(`t${kinds.indexOf(kind)}r${round}`);
  const ifindexes = makeDevices(names);
  withNetnsSync(`/var/run/netns/${NS}`, () => { for (const i of ifindexes) attachTc(i, 'ingress', progFd, { newDevice: true, via: 'tc' }); });
  if (kind !== 'tc') moves.push(...timeEach(ifindexes, (i) => attachTc(i, 'ingress', progFd)));
  const sock = withNetnsSync(`/var/run/netns/${NS}`, () => NetlinkSocket.open());
  const times: number[] = [];
  try {
    for (let k = 0; k < names.length; k++) {
      const pin = tcxPinPath(linkDir, ifindexes[k]!, 'ingress');
      const t = performance.now();
      if (kind === 'tcx-unpin-first') removeTcxPin(pin);
      await deleteLinkOffThread(sock, names[k]!);
      if (kind === 'tcx-delete-first') removeTcxPin(pin);
      times.push(performance.now() - t);
    }
  } finally {
    sock.close();
  }
  return times;
}

function timeEach(ifindexes: number[], fn: (ifindex: number) => void): number[] {
  return withNetnsSync(`/var/run/netns/${NS}`, () => ifindexes.map((ifindex) => {
    const t = performance.now();
    fn(ifindex);
    return performance.now() - t;
  }));
}

runBenchmark(async () => {
  execFileSync('ip', ['netns', 'add', NS]);
  onCleanup('namespace', () => { execFileSync('ip', ['netns', 'del', NS]); });
  const pinDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-attach-'));
  ensureBpffs(pinDir);
  onCleanup('bpffs', () => removeBpffs(pinDir));
  const linkDir = path.join(pinDir, 'links');
  fs.mkdirSync(linkDir, { recursive: true });
  const obj = LoadedBpfObject.load(path.resolve('bpf/fast_pod.o'), pinDir);
  onCleanup('program', () => obj.close());
  const progFd = obj.programFd('fast_from_pod');

  const samples: Record<AttachMode, { attach: number[]; detach: number[] }> = { tc: { attach: [], detach: [] }, tcx: { attach: [], detach: [] } };
  for (let round = 0; round < flags.rounds; round++) {
    for (const mode of (round % 2 === 0 ? ['tc', 'tcx'] : ['tcx', 'tc']) as AttachMode[]) {
      setAttachMode(mode, linkDir);
      const names = deviceNames(`h${mode}${round}`);
      const devices = makeDevices(names);
      samples[mode].attach.push(...timeEach(devices, (i) => attachTc(i, 'ingress', progFd, { newDevice: true })));
      samples[mode].detach.push(...timeEach(devices, (i) => detachTc(i, 'ingress')));
      for (const name of names) execFileSync('ip', ['-n', NS, 'link', 'del', name]);
      log(`round ${round + 1}/${flags.rounds} ${mode}: ${flags.devices} attach + detach`);
    }
  }
  const teardown: Record<Teardown, number[]> = { tc: [], 'tcx-unpin-first': [], 'tcx-delete-first': [] };
  const moves: number[] = [];
  for (let round = 0; round < flags.rounds; round++) {
    for (const kind of kinds.map((_, i) => kinds[(i + round) % kinds.length]!)) {
      teardown[kind].push(...await timeTeardown(kind, round, progFd, linkDir, moves));
      log(`teardown round ${round + 1}/${flags.rounds} ${kind}: ${flags.devices} veths deleted`);
    }
  }
  setAttachMode('tc');

  const row = (what: string, xs: number[]) => [what, String(xs.length), fmt(percentile(xs, 50), 3), fmt(percentile(xs, 90), 3), fmt(percentile(xs, 99), 3)];
  console.log(`Command: \`node --import tsx bench/attach-cost.ts --devices ${flags.devices} --rounds ${flags.rounds}\`\n`);
  console.log(`Environment: ${environmentLine()}\n`);
  console.log(table(['call (ms)', 'n', 'p50', 'p90', 'p99'], [
    row('attach, clsact + cls_bpf', samples.tc.attach),
    row('attach, tcx link (pinned)', samples.tcx.attach),
    row('detach, clsact + cls_bpf', samples.tc.detach),
    row('detach, tcx link (pin removed)', samples.tcx.detach),
    row('move, cls_bpf filter → tcx link (attachMode auto)', moves),
    row('DEL teardown: veth deleted, cls_bpf filter on it', teardown.tc),
    row('DEL teardown: tcx link unpinned, then veth deleted', teardown['tcx-unpin-first']),
    row('DEL teardown: veth deleted with its tcx link, then unpinned', teardown['tcx-delete-first']),
  ]));
});
