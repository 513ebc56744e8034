// The seed's quick start, against a running lab: the Ips pools and Deployments of
// examples/ applied with the real kubectl, pods get addresses from their pools, and
// pods ping each other on the same node and across nodes.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { readState, podNetnsPrefix } from './lab-state.js';
import { kubectl, waitFor, REPO } from './lab-up.js';
import { podNetnsName } from './kubelet/sandbox-store.js';
import { parseIpEntries } from '../model/ipam/ranges.js';
import { parseIp } from '../model/ipam/address.js';

interface PodInfo { name: string; uid: string; ip?: string; node?: string; app?: string; phase?: string }

export function listPods(kubeconfig: string, selector?: string): PodInfo[] {
  const out = JSON.parse(kubectl(kubeconfig, ['get', 'pods', '-o', 'json', ...(selector ? ['-l', selector] : [])])) as { items: Array<{ metadata: { name: string; uid: string; labels?: Record<string, string> }; spec: { nodeName?: string }; status?: { podIP?: string; phase?: string } }> };
  return out.items.map((p) => ({ name: p.metadata.name, uid: p.metadata.uid, ip: p.status?.podIP, node: p.spec.nodeName, app: p.metadata.labels?.app, phase: p.status?.phase }));
}

export function podPing(netnsPrefix: string, from: PodInfo, to: PodInfo): boolean {
  return spawnSync('ip', ['netns', 'exec', podNetnsName(from.uid, netnsPrefix), 'ping', '-c', '1', '-W', '2', to.ip!], { stdio: 'ignore' }).status === 0;
}

function inPool(ip: string, entries: string[]): boolean {
  return parseIpEntries(entries).set?.contains(parseIp(ip)) ?? false;
}

export async function runQuickstart(dir: string, progress: (m: string) => void): Promise<number> {
  const state = readState(dir);
  if (!state) throw new Error('no lab is up: run `fast lab up` first');
  const kc = state.hostKubeconfig;
  progress(`kubectl apply -f ${path.join(REPO, 'examples')}/ (Ips sample-ips and default-ips, Deployments busybox and busybox1)`);
  process.stdout.write(kubectl(kc, ['apply', '-f', path.join(REPO, 'examples', 'fast-sample-ips.yaml')]));
  process.stdout.write(kubectl(kc, ['apply', '-f', path.join(REPO, 'examples', 'fast-default-ips-busybox1.yaml')]));
  process.stdout.write(kubectl(kc, ['apply', '-f', path.join(REPO, 'examples', 'fast-busybox.yaml')]));

  progress('waiting for 4 pods Running with addresses');
  await waitFor('quick start pods', () => listPods(kc).filter((p) => (p.app === 'busybox' || p.app === 'busybox1') && p.phase === 'Running' && p.ip).length >= 4, 60000,
    () => kubectl(kc, ['get', 'pods', '-o', 'wide']) + kubectl(kc, ['get', 'events']));
  process.stdout.write('\n' + kubectl(kc, ['get', 'pods', '-o', 'wide']) + '\n' + kubectl(kc, ['get', 'ips']) + '\n');

  const pods = listPods(kc).filter((p) => p.app === 'busybox' || p.app === 'busybox1');
  let ok = true;
  for (const p of pods) {
    const pool = p.app === 'busybox' ? ['10.244.10.0-10.244.90.0'] : ['10.244.100.0-10.244.200.250'];
    const good = inPool(p.ip!, pool);
    ok &&= good;
    progress(`${p.name} ${p.ip} on ${p.node}: ${good ? 'inside' : 'OUTSIDE'} its pool (${p.app === 'busybox' ? 'sample-ips' : 'default-ips'} ${pool[0]})`);
  }
  for (const a of pods) for (const b of pods) {
    if (a === b) continue;
    const where = a.node === b.node ? 'same node' : 'across nodes';
    const good = podPing(podNetnsPrefix(state.name), a, b);
    ok &&= good;
    progress(`ping ${a.name} (${a.node}) -> ${b.name} ${b.ip} (${b.node}), ${where}: ${good ? 'ok' : 'FAILED'}`);
  }
  progress(ok ? 'quick start: all pods in their pools, all pings answered' : 'quick start: FAILED');
  return ok ? 0 : 1;
}
