// Pod wiring over in-process rtnetlink, checked against what `ip -j` reads back, with a
// real packet through it, and its failures (nothing left behind). Everything happens in
// namespaces made here: a "node" namespace (the module's node-side socket is opened in it
// on first use, so every call runs inside withNetnsSync(node)) and one pod namespace per test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { TestNetns, uniqueName } from '../helpers/netns.js';
import { withNetnsSync } from '../../src/dataplane/net/netns.js';
import { NetlinkSocket, listLinks, listAddresses } from '../../src/dataplane/net/netlink/index.js';
import {
  createPodLink, deleteHostLink, inspectPodSide, listHostLinks, showLink, GATEWAY_V4, GATEWAY_V6, type PodLinkSpec,
} from '../../src/dataplane/net/pod-link.js';

interface JLink { ifindex: number; ifname: string; address: string; mtu: number; flags: string[]; link_netnsid?: number; link_index?: number }
interface JAddr { ifname: string; addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string }> }
interface JRoute { dst: string; gateway?: string; dev: string; scope?: string }
interface JNeigh { dst: string; dev: string; lladdr: string; state: string[] }

const json = <T>(ns: TestNetns, ...args: string[]): T => JSON.parse(ns.ip('-j', ...args) || '[]') as T;
const linkNames = (ns: TestNetns) => json<JLink[]>(ns, 'link', 'show').map((l) => l.ifname).sort();

let node: TestNetns;
// The node side runs in `node`: the async functions do all their work before their first await.
const onNode = <T>(fn: () => T): T => withNetnsSync(node.path, fn);

before(() => {
  node = new TestNetns(uniqueName('plnode'));
  node.ip('addr', 'add', '10.255.0.1/32', 'dev', 'lo');
});
after(() => node.remove());

function spec(pod: TestNetns, over: Partial<PodLinkSpec> = {}): PodLinkSpec {
  return {
    netnsPath: pod.path, ifName: 'eth0', hostIfName: `fst${uniqueName('t').replace(/\W/g, '').slice(-11)}`,
    addresses: ['10.77.0.5', 'fd77::5'], mtu: 1400, podMac: '02:77:00:00:00:05', hostMac: '02:77:00:00:00:01', ...over,
  };
}

/** The node and the pod hold nothing of the attachment any more. */
function assertNothingLeft(pod: TestNetns, s: PodLinkSpec): void {
  assert.deepEqual(linkNames(node), ['lo'], 'node links');
  assert.deepEqual(json<JRoute[]>(node, 'route', 'show'), [], 'node IPv4 routes');
  assert.deepEqual(json<JNeigh[]>(node, 'neigh', 'show').filter((n) => s.addresses.includes(n.dst)), [], 'node neighbours');
  assert.deepEqual(linkNames(pod), ['lo'], 'pod links');
}

function withPod(fn: (pod: TestNetns) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const pod = new TestNetns(uniqueName('plpod'));
    try {
      await fn(pod);
    } finally {
      pod.remove();
      for (const l of linkNames(node)) if (l !== 'lo') spawnSync('ip', ['-n', node.name, 'link', 'del', 'dev', l]); // a peer may have gone with its pair
    }
  };
}

describe('createPodLink', () => {
  test('IPv4 + IPv6: the veth, addresses, routes, neighbours, MTU and MACs are as specified; DEL removes all of it', withPod(async (pod) => {
    const s = spec(pod);
    const link = await onNode(() => createPodLink(s));

    const [host] = json<JLink[]>(node, 'link', 'show', 'dev', s.hostIfName);
    const [peer] = json<JLink[]>(pod, 'link', 'show', 'dev', 'eth0');
    assert.deepEqual([host!.ifindex, host!.address, host!.mtu], [link.hostIfindex, s.hostMac, 1400]);
    assert.deepEqual([peer!.ifindex, peer!.address, peer!.mtu], [link.podIfindex, s.podMac, 1400]);
    assert.ok(host!.flags.includes('UP') && peer!.flags.includes('UP') && peer!.flags.includes('LOWER_UP'));
    assert.equal(host!.link_index, peer!.ifindex, 'the host end is paired with the pod end');
    assert.notEqual(host!.link_netnsid, undefined, 'the peer lives in another namespace');
    assert.deepEqual(linkNames(node), [s.hostIfName, 'lo'], 'no eth0 on the node');

    const addrs = json<JAddr[]>(pod, 'addr', 'show', 'dev', 'eth0')[0]!.addr_info.filter((a) => a.scope === 'global');
    assert.deepEqual(addrs.map((a) => `${a.local}/${a.prefixlen}`).sort(), ['10.77.0.5/32', 'fd77::5/128']);
    const r4 = json<JRoute[]>(pod, 'route', 'show');
    assert.deepEqual(r4.map((r) => [r.dst, r.gateway, r.dev, r.scope]).sort(), [[GATEWAY_V4, undefined, 'eth0', 'link'], ['default', GATEWAY_V4, 'eth0', undefined]]);
    assert.ok(json<JRoute[]>(pod, '-6', 'route', 'show').some((r) => r.dst === 'default' && r.gateway === GATEWAY_V6 && r.dev === 'eth0'));
    const podNeigh = json<JNeigh[]>(pod, 'neigh', 'show', 'dev', 'eth0').filter((n) => n.state.includes('PERMANENT'));
    assert.deepEqual(podNeigh.map((n) => [n.dst, n.lladdr]).sort(), [[GATEWAY_V4, s.hostMac], [GATEWAY_V6, s.hostMac]]);

    assert.deepEqual(json<JRoute[]>(node, 'route', 'show').map((r) => [r.dst, r.dev, r.scope]), [['10.77.0.5', s.hostIfName, 'link']]);
    assert.ok(json<JRoute[]>(node, '-6', 'route', 'show').some((r) => r.dst === 'fd77::5' && r.dev === s.hostIfName));
    const nodeNeigh = json<JNeigh[]>(node, 'neigh', 'show', 'dev', s.hostIfName).filter((n) => n.state.includes('PERMANENT'));
    assert.deepEqual(nodeNeigh.map((n) => [n.dst, n.lladdr]).sort(), [['10.77.0.5', s.podMac], ['fd77::5', s.podMac]]);

    // A real packet: pod -> node address via the gateway neighbour entry, and the reply
    // back via the node's /32 route and permanent neighbour (neither side ARPs).
    assert.equal(spawnSync('ip', ['netns', 'exec', pod.name, 'ping', '-c', '1', '-W', '2', '10.255.0.1']).status, 0, 'ping pod -> node');

    // What CHECK and restart read.
    const seen = await inspectPodSide(pod.path, 'eth0');
    assert.deepEqual([seen.link?.ifindex, seen.link?.address, seen.link?.kind], [link.podIfindex, s.podMac, 'veth']);
    assert.deepEqual(seen.addresses.sort(), ['10.77.0.5', 'fd77::5']);
    assert.deepEqual(seen.defaultRoutes.sort(), [GATEWAY_V4, GATEWAY_V6]);
    assert.equal((await onNode(() => showLink(s.hostIfName)))?.ifindex, link.hostIfindex);
    assert.equal((await showLink('eth0', pod.path))?.mtu, 1400);
    assert.deepEqual((await onNode(() => listHostLinks())).map((l) => l.ifname), [s.hostIfName]);

    assert.equal(await onNode(() => deleteHostLink(s.hostIfName)), true);
    assertNothingLeft(pod, s);
    assert.equal(await onNode(() => deleteHostLink(s.hostIfName)), false, 'a second delete finds nothing');
    assert.equal(await onNode(() => showLink(s.hostIfName)), undefined);
  }));

  test('IPv4 only and IPv6 only', withPod(async (pod) => {
    const v4 = spec(pod, { addresses: ['10.77.0.9'] });
    await onNode(() => createPodLink(v4));
    assert.deepEqual(json<JRoute[]>(pod, '-6', 'route', 'show').filter((r) => r.dst === 'default'), []);
    assert.equal(await onNode(() => deleteHostLink(v4.hostIfName)), true);
    const v6 = spec(pod, { addresses: ['fd77::9'] });
    await onNode(() => createPodLink(v6));
    assert.deepEqual(json<JRoute[]>(pod, 'route', 'show'), [], 'no IPv4 routes');
    assert.deepEqual((await inspectPodSide(pod.path, 'eth0')).addresses, ['fd77::9']);
    assert.equal(await onNode(() => deleteHostLink(v6.hostIfName)), true);
    assertNothingLeft(pod, v6);
  }));
});

describe('createPodLink failures say what failed and leave nothing behind', () => {
  test('the pod interface name is taken: EEXIST, the first attachment untouched', withPod(async (pod) => {
    const first = spec(pod, { addresses: ['10.77.0.5'] });
    const firstLink = await onNode(() => createPodLink(first));
    const second = spec(pod, { addresses: ['10.77.0.6'], podMac: '02:77:00:00:00:06' });
    await assert.rejects(onNode(() => createPodLink(second)), (e: Error) => {
      assert.equal(e.message, `creating veth ${second.hostIfName} (peer eth0 in ${pod.path}): File exists (EEXIST)`);
      return true;
    });
    assert.deepEqual(linkNames(node), [first.hostIfName, 'lo']);
    assert.deepEqual(json<JRoute[]>(node, 'route', 'show').map((r) => r.dst), ['10.77.0.5']);
    assert.equal(json<JLink[]>(pod, 'link', 'show', 'dev', 'eth0')[0]!.ifindex, firstLink.podIfindex);
    assert.equal(await onNode(() => deleteHostLink(first.hostIfName)), true);
    assertNothingLeft(pod, first);
  }));

  test('the host name is taken: EEXIST, the existing link untouched', withPod(async (pod) => {
    const s = spec(pod);
    node.ip('link', 'add', 'name', s.hostIfName, 'type', 'veth', 'peer', 'name', 'other');
    await assert.rejects(onNode(() => createPodLink(s)), { message: `creating veth ${s.hostIfName} (peer eth0 in ${pod.path}): File exists (EEXIST)` });
    assert.deepEqual(linkNames(node), [s.hostIfName, 'lo', 'other']);
    assert.deepEqual(linkNames(pod), ['lo']);
  }));

  test('the namespace is gone: the error names it, nothing is created', withPod(async (pod) => {
    const s = spec(pod, { netnsPath: `/var/run/netns/${uniqueName('gone')}` });
    await assert.rejects(onNode(() => createPodLink(s)), (e: Error) => e.message.startsWith(`opening network namespace ${s.netnsPath}: ENOENT`));
    assertNothingLeft(pod, s);
    assert.deepEqual(await inspectPodSide(s.netnsPath, 'eth0'), { addresses: [], defaultRoutes: [] });
    assert.equal(await showLink('eth0', s.netnsPath), undefined);
  }));

  test('a failure half-way in the pod (IPv6 disabled there): the error says where, the veth and node routes are gone', withPod(async (pod) => {
    pod.exec('sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    const s = spec(pod);
    await assert.rejects(onNode(() => createPodLink(s)), (e: Error) => {
      assert.match(e.message, new RegExp(`^adding address fd77::5/128 on eth0 in ${pod.path}: .+ \\([A-Z]+\\)`));
      return true;
    });
    assertNothingLeft(pod, s);
  }));

  test('a failure half-way on the node (MTU below IPv6 minimum): cleaned up after the IPv4 route was made', withPod(async (pod) => {
    const s = spec(pod, { mtu: 1000 });
    await assert.rejects(onNode(() => createPodLink(s)), new RegExp(`adding route fd77::5/128 on ${s.hostIfName}: .+ \\([A-Z]+\\)`));
    assertNothingLeft(pod, s);
  }));
});

describe('netlink dumps', () => {
  test('a dump spanning many datagrams (NLM_F_MULTI parts up to NLMSG_DONE) returns every link and address', withPod((pod) => {
    const n = 150; // ~1 KiB per link in a dump answer, so well over one 32 KiB datagram
    const batch = Array.from({ length: n }, (_, i) => `link add name va${i} type veth peer name vb${i}\naddr add 10.66.${i >> 8}.${i & 255}/32 dev va${i}`).join('\n') + '\n';
    const r = spawnSync('ip', ['-n', pod.name, '-batch', '-'], { input: batch, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const sock = withNetnsSync(pod.path, () => NetlinkSocket.open());
    try {
      const names = listLinks(sock).map((l) => l.ifname);
      assert.equal(names.length, 2 * n + 1);
      assert.deepEqual(names.sort(), linkNames(pod));
      const v4 = listAddresses(sock).filter((a) => a.family === 4 && a.address.startsWith('10.66.'));
      assert.equal(v4.length, n);
    } finally {
      sock.close();
    }
  }));
});
