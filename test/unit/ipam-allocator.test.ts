import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIp, maxValue, parseIp } from '../../src/model/ipam/address.js';
import {
  type AllocationRecord,
  type AllocationRequest,
  type OpCounter,
  PoolAllocator,
  effectiveBlockSize,
} from '../../src/model/ipam/allocator.js';
import { addressFromEndpointName, endpointName } from '../../src/model/ipam/naming.js';
import { type Pool, validatePool } from '../../src/model/ipam/pool.js';

function pool(name: string, spec: unknown): Pool {
  const v = validatePool(name, spec);
  if (!v.ok) assert.fail(JSON.stringify(v.problems));
  return v.pool;
}

function req(c: number, node: string, ifName = 'eth0'): AllocationRequest {
  return {
    node,
    podNamespace: 'ns',
    podName: `pod-${c % 7}`,
    podUID: `uid-${c}`,
    containerID: `ctr-${c}`,
    interface: ifName,
  };
}

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

// ---- the property test: random operation sequences against a reference model -----------------

type Op =
  | { k: 'alloc'; node: number; c: number }
  | { k: 'static'; node: number; c: number; idx: number }
  | { k: 'release'; c: number }
  | { k: 'releaseAddr'; idx: number }
  | { k: 'observe'; node: number; c: number; idx: number }
  | { k: 'advance'; ms: number }
  | { k: 'restart' }
  | { k: 'nodeGone'; node: number };

const NODES = ['node-a', 'node-b', 'node-c'];
const COOLDOWN = 1000;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('alloc' as const), node: fc.nat(2), c: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('static' as const), node: fc.nat(2), c: fc.nat(40), idx: fc.nat(45) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('release' as const), c: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('releaseAddr' as const), idx: fc.nat(45) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('observe' as const), node: fc.nat(2), c: fc.nat(40), idx: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.constantFrom(0, 300, 999, 1000, 5000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('nodeGone' as const), node: fc.nat(2) }) },
);

const POOL_SPECS: unknown[] = [
  // 29 addresses with holes, IPv4
  { subnet: '10.0.0.0/24', ips: ['10.0.0.1-10.0.0.12', '10.0.0.40-10.0.0.55', '10.0.0.255'], excludeIPs: ['10.0.0.50'] },
  // 24 addresses, IPv6, across a 32-bit boundary
  { subnet: 'fd00::/64', ips: ['fd00::ffff:fff0-fd00::1:0:f'], excludeIPs: ['fd00::1:0:8-fd00::1:0:f'] },
  // 7 addresses
  { subnet: '192.168.1.0/29', ips: ['192.168.1.0/29'], gateway: '192.168.1.7' },
];

interface Ref {
  alloc: Map<string, { c: number; podName: string }>;
  byC: Map<number, string>;
  cooling: Map<string, { releasedAt: number; podName: string }>;
}

test('property: random allocate/release/static/observe/restart/clock sequences never hand out an address twice and keep counts exact', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...POOL_SPECS.keys()),
      fc.constantFrom(1, 2, 4, 8, 64),
      fc.array(opArb, { maxLength: 150, size: 'max' }),
      (specIdx, blockSize, ops) => {
        const p = pool(`p${specIdx}`, POOL_SPECS[specIdx]);
        const clk = clock();
        const opts = { cooldownMs: COOLDOWN, now: clk.now, blockSize };
        let a = new PoolAllocator(p, opts);
        const total = p.allocatable.size;
        const ref: Ref = { alloc: new Map(), byC: new Map(), cooling: new Map() };
        const expire = () => {
          for (const [k, v] of ref.cooling) if (v.releasedAt + COOLDOWN <= clk.t) ref.cooling.delete(k);
        };
        // idx beyond the pool: an address outside it
        const addrAt = (idx: number) =>
          formatIp(BigInt(idx) < total ? p.allocatable.nth(idx) : { family: p.family, value: p.subnet.network + 100_000n + BigInt(idx) });
        const refRelease = (addr: string, cool: boolean) => {
          const h = ref.alloc.get(addr)!;
          ref.alloc.delete(addr);
          ref.byC.delete(h.c);
          if (cool) ref.cooling.set(addr, { releasedAt: clk.t, podName: h.podName });
        };

        for (const op of ops) {
          expire();
          switch (op.k) {
            case 'alloc': {
              const r = a.allocate(req(op.c, NODES[op.node]!));
              const had = ref.byC.get(op.c);
              const free = total - BigInt(ref.alloc.size + ref.cooling.size);
              if (had !== undefined) {
                assert.ok(r.ok && r.reused && r.record.address === had, 'idempotent re-ADD');
              } else if (free > 0n) {
                assert.ok(r.ok, `allocation failed with ${free} free: ${!r.ok && r.error.message}`);
                assert.ok(!r.reused);
                const addr = r.record.address;
                assert.ok(p.allocatable.contains(parseIp(addr)), 'inside the pool');
                assert.ok(!ref.alloc.has(addr), `${addr} handed out twice`);
                assert.ok(!ref.cooling.has(addr), `${addr} handed out while cooling`);
                ref.alloc.set(addr, { c: op.c, podName: req(op.c, '').podName });
                ref.byC.set(op.c, addr);
              } else {
                assert.ok(!r.ok && r.error.code === 'Exhausted');
                assert.ok(r.error.message.includes(`(${ref.alloc.size} of ${total} allocated`), r.error.message);
                assert.equal(r.error.counts?.cooling, ref.cooling.size);
                if (ref.cooling.size > 0) assert.ok(r.error.retryAt! > clk.t);
              }
              break;
            }
            case 'static': {
              const addr = addrAt(op.idx);
              const inPool = BigInt(op.idx) < total;
              const rq = req(op.c, NODES[op.node]!);
              const r = a.allocateStatic(rq, addr);
              const had = ref.byC.get(op.c);
              const holder = ref.alloc.get(addr);
              const cool = ref.cooling.get(addr);
              if (!inPool) assert.ok(!r.ok && r.error.code === 'NotInPool');
              else if (had !== undefined) {
                if (had === addr) assert.ok(r.ok && r.reused);
                else assert.ok(!r.ok && r.error.code === 'ContainerHasOtherAddress');
              } else if (holder) {
                assert.ok(!r.ok && r.error.code === 'Conflict');
                assert.equal(r.error.owner?.containerID, `ctr-${holder.c}`);
                assert.match(r.error.message, new RegExp(`in use by pod ns/${holder.podName} \\(uid uid-${holder.c}, container ctr-${holder.c}`));
              } else if (cool && cool.podName !== rq.podName) {
                assert.ok(!r.ok && r.error.code === 'Cooling', JSON.stringify(r));
              } else {
                assert.ok(r.ok && r.record.address === addr, JSON.stringify(r));
                ref.cooling.delete(addr);
                ref.alloc.set(addr, { c: op.c, podName: rq.podName });
                ref.byC.set(op.c, addr);
              }
              break;
            }
            case 'release': {
              const r = a.releaseByContainer(`ctr-${op.c}`, 'eth0');
              const had = ref.byC.get(op.c);
              assert.equal(r?.address, had);
              if (had !== undefined) refRelease(had, true);
              break;
            }
            case 'releaseAddr': {
              const addr = addrAt(op.idx);
              const r = a.releaseByAddress(addr);
              const h = ref.alloc.get(addr);
              assert.equal(r?.containerID, h ? `ctr-${h.c}` : undefined);
              if (h) refRelease(addr, true);
              break;
            }
            case 'observe': {
              if (BigInt(op.idx) >= total) break;
              const addr = addrAt(op.idx);
              const rq = req(op.c, NODES[op.node]!);
              const r = a.observe({ ...rq, pool: p.name, address: addr });
              assert.ok(r.ok);
              const holder = ref.alloc.get(addr);
              const expected: string[] = [];
              if (holder && holder.c !== op.c) {
                expected.push(`ctr-${holder.c}`);
                refRelease(addr, false);
              }
              const mine = ref.byC.get(op.c);
              if (mine !== undefined && mine !== addr) {
                expected.push(`ctr-${op.c}`);
                refRelease(mine, false);
              }
              assert.deepEqual(r.displaced.map((d) => d.containerID), expected);
              ref.cooling.delete(addr);
              ref.alloc.set(addr, { c: op.c, podName: rq.podName });
              ref.byC.set(op.c, addr);
              break;
            }
            case 'advance':
              clk.t += op.ms;
              break;
            case 'restart': {
              const saved: AllocationRecord[] = [...a.records(), ...a.coolingRecords()];
              a = new PoolAllocator(p, opts);
              const rep = a.restore(saved);
              assert.deepEqual(rep.rejected, []);
              break;
            }
            case 'nodeGone':
              a.releaseNodeAffinity(NODES[op.node]!);
              break;
          }
          expire();
          assert.deepEqual(a.checkInvariants(), []);
          const counts = a.counts();
          assert.equal(counts.allocated, ref.alloc.size, 'allocated count');
          assert.equal(counts.cooling, ref.cooling.size, 'cooling count');
          assert.equal(counts.free, total - BigInt(ref.alloc.size + ref.cooling.size), 'free count');
          const recs = a.records();
          assert.equal(new Set(recs.map((r) => r.address)).size, recs.length, 'one holder per address');
          assert.deepEqual(
            new Map(recs.map((r) => [r.address, r.containerID])),
            new Map([...ref.alloc].map(([k, v]) => [k, `ctr-${v.c}`])),
          );
          for (const addr of ref.cooling.keys()) assert.ok(a.isCooling(addr), `${addr} cooling`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

// ---- targeted behaviour --------------------------------------------------------------------

const SAMPLE = { subnet: '10.244.0.1/16', ips: ['10.244.10.0-10.244.90.0'] };

test('idempotent re-ADD, release by container and by address', () => {
  const a = new PoolAllocator(pool('sample-ips', SAMPLE), { now: clock().now });
  const r1 = a.allocate(req(1, 'n1'));
  const r2 = a.allocate(req(1, 'n1'));
  assert.ok(r1.ok && r2.ok);
  assert.equal(r2.record.address, r1.record.address);
  assert.ok(r2.reused);
  const other = a.allocate(req(1, 'n1', 'net1'));
  assert.ok(other.ok && other.record.address !== r1.record.address, 'another interface, another address');
  const clash = a.allocate({ ...req(1, 'n1'), podUID: 'someone-else' });
  assert.ok(!clash.ok && clash.error.code === 'ContainerConflict');
  assert.equal(a.releaseByContainer('ctr-1', 'eth0')?.address, r1.record.address);
  assert.equal(a.releaseByContainer('ctr-1', 'eth0'), undefined, 'DEL is idempotent');
  assert.equal(a.releaseByAddress(other.record.address)?.containerID, 'ctr-1');
  assert.equal(a.counts().allocated, 0);
  assert.equal(a.counts().cooling, 2);
});

test('exhaustion reports exact counts and recovers after release + cooldown', () => {
  const clk = clock();
  const a = new PoolAllocator(pool('sample-ips', SAMPLE), { now: clk.now });
  const nodes = ['n1', 'n2', 'n3', 'n4'];
  const seen = new Set<string>();
  for (let i = 0; i < 20481; i++) {
    const r = a.allocate(req(i, nodes[i % 4]!));
    assert.ok(r.ok);
    assert.ok(!seen.has(r.record.address));
    seen.add(r.record.address);
  }
  const full = a.allocate(req(99999, 'n1'));
  assert.ok(!full.ok);
  assert.equal(full.error.message, 'pool sample-ips has no free address (20481 of 20481 allocated)');
  assert.deepEqual(full.error.counts, { total: 20481n, allocated: 20481, cooling: 0, free: 0n });

  const freed = a.releaseByContainer('ctr-77', 'eth0')!;
  const cooling = a.allocate(req(99999, 'n1'));
  assert.ok(!cooling.ok);
  assert.equal(cooling.error.message, 'pool sample-ips has no free address (20480 of 20481 allocated, 1 cooling down, next free in 30 s)');
  assert.equal(cooling.error.retryAt, clk.t + 30_000);
  clk.t += 29_999;
  assert.ok(!a.allocate(req(99999, 'n1')).ok, 'cooldown honoured');
  clk.t += 1;
  const back = a.allocate(req(99999, 'n1'));
  assert.ok(back.ok);
  assert.equal(back.record.address, freed.address);
  assert.deepEqual(a.counts(), { total: 20481n, allocated: 20481, cooling: 0, free: 0n });
  assert.deepEqual(a.checkInvariants(), []);
});

test('static address: conflict names the owner; cooling refused except for the same pod (StatefulSet)', () => {
  const clk = clock();
  const a = new PoolAllocator(pool('sample-ips', SAMPLE), { now: clk.now });
  const web0 = { ...req(1, 'n1'), podName: 'web-0', podUID: 'uid-a' };
  assert.ok(a.allocateStatic(web0, '10.244.50.5').ok);
  const clash = a.allocateStatic(req(2, 'n2'), '10.244.50.5');
  assert.ok(!clash.ok && clash.error.code === 'Conflict');
  assert.equal(
    clash.error.message,
    'address 10.244.50.5 of pool sample-ips is in use by pod ns/web-0 (uid uid-a, container ctr-1, interface eth0, node n1)',
  );
  assert.ok(!a.allocateStatic(req(2, 'n2'), '10.244.0.1').ok, 'the gateway is not allocatable');
  assert.equal((a.allocateStatic(req(2, 'n2'), '10.244.0.1') as any).error.code, 'NotInPool');
  assert.equal((a.allocateStatic(req(2, 'n2'), 'nope') as any).error.code, 'InvalidAddress');
  a.releaseByContainer('ctr-1', 'eth0');
  const stranger = a.allocateStatic(req(3, 'n2'), '10.244.50.5');
  assert.ok(!stranger.ok && stranger.error.code === 'Cooling');
  assert.match(stranger.error.message, /released by pod ns\/web-0 and rests for 30 s more/);
  // the same StatefulSet pod, recreated with a new UID on another node, gets it back at once
  const again = a.allocateStatic({ ...req(4, 'n3'), podName: 'web-0', podUID: 'uid-b' }, '10.244.50.5');
  assert.ok(again.ok && again.record.node === 'n3');
  assert.equal(a.counts().cooling, 0);
  // released again later: the first cooldown's timer must not free it early
  clk.t += 10_000;
  a.releaseByContainer('ctr-4', 'eth0');
  clk.t += 20_000; // the first release's cooldown ends here
  assert.ok(a.isCooling('10.244.50.5'), 'second cooldown still running');
  assert.ok(!a.allocateStatic(req(6, 'n2'), '10.244.50.5').ok);
  clk.t += 10_000;
  assert.ok(!a.isCooling('10.244.50.5'));
  assert.ok(a.allocateStatic(req(4, 'n3'), '10.244.50.5').ok);
  a.releaseByContainer('ctr-4', 'eth0');
  assert.ok(a.allocateStatic(req(5, 'n2'), '10.244.50.5', { ignoreCooldown: true }).ok);
  assert.deepEqual(a.checkInvariants(), []);
});

test('per-node blocks: nodes allocate in their own blocks, claim new ones, then borrow', () => {
  // 256 addresses, blocks of 32 → 8 blocks
  const p = pool('p', { subnet: '10.9.0.0/16', ips: ['10.9.1.0/24'] });
  const a = new PoolAllocator(p, { now: clock().now, blockSize: 32 });
  assert.equal(a.blockSize, 32);
  const blockOf = (addr: string) => p.allocatable.indexOf(parseIp(addr))! / 32n;
  const n1: bigint[] = [];
  const n2: bigint[] = [];
  for (let i = 0; i < 40; i++) {
    const r1 = a.allocate(req(i, 'n1'));
    const r2 = a.allocate(req(1000 + i, 'n2'));
    assert.ok(r1.ok && r2.ok);
    n1.push(blockOf(r1.record.address));
    n2.push(blockOf(r2.record.address));
  }
  const b1 = new Set(n1);
  const b2 = new Set(n2);
  assert.equal(b1.size, 2, '40 addresses = 2 blocks of 32');
  assert.equal(b2.size, 2);
  assert.ok([...b1].every((b) => !b2.has(b)), 'nodes do not share blocks');
  assert.deepEqual(a.blocksOf('n1'), [...b1].sort((x, y) => (x < y ? -1 : 1)));
  // restart derives the same affinities from the records alone
  const b = new PoolAllocator(p, { now: clock().now, blockSize: 32 });
  b.restore(a.records() as AllocationRecord[]);
  for (const n of ['n1', 'n2']) assert.deepEqual(b.blocksOf(n), a.blocksOf(n), n);
  // n3 takes the rest: 256 - 80 = 176 addresses; it claims the 4 free blocks (128) then borrows
  let borrowed = 0;
  for (let i = 0; i < 176; i++) {
    const r = a.allocate(req(2000 + i, 'n3'));
    assert.ok(r.ok);
    if (a.affinityOf(r.record.address) !== 'n3') borrowed++;
  }
  assert.equal(a.blocksOf('n3').length, 4);
  assert.equal(borrowed, 48);
  assert.ok(!a.allocate(req(9999, 'n1')).ok);
  // after borrowing, a block goes to the node holding most of its addresses
  const c = new PoolAllocator(p, { now: clock().now, blockSize: 32 });
  c.restore(a.records() as AllocationRecord[]);
  assert.equal(c.blocksOf('n3').length, 6, 'n3 holds 24 of 32 in the two blocks it borrowed from');
  assert.deepEqual(c.checkInvariants(), []);
  // a node that is gone leaves its blocks to others
  a.releaseByContainer('ctr-0', 'eth0', { cooldown: false });
  assert.equal(a.affinityOf(p.allocatable.nth(Number(n1[0]!) * 32)), 'n1');
  a.releaseNodeAffinity('n1');
  const r = a.allocate(req(3000, 'n3'));
  assert.ok(r.ok && a.affinityOf(r.record.address) === 'n3', 'n3 claimed the block n1 left');
  assert.deepEqual(a.checkInvariants(), []);
});

test('smaller pools get smaller blocks', () => {
  assert.equal(effectiveBlockSize(20481n), 64);
  assert.equal(effectiveBlockSize(200n), 16);
  assert.equal(effectiveBlockSize(7n), 1);
  assert.equal(effectiveBlockSize(1n << 64n), 64);
  assert.equal(effectiveBlockSize(1n << 64n, 256), 256);
});

test('micro-check: allocating from a 20k-address pool never scans the pool (operation counter)', () => {
  const counter: OpCounter = { steps: 0 };
  const clk = clock();
  const a = new PoolAllocator(pool('sample-ips', SAMPLE), { now: clk.now, counter });
  const N = 20481;
  let max = 0;
  for (let i = 0; i < N; i++) {
    const before = counter.steps;
    const r = a.allocate(req(i, `n${i % 10}`));
    assert.ok(r.ok);
    max = Math.max(max, counter.steps - before);
  }
  // a full scan would be ~N/2 steps per allocation on average (~2·10^8 in all)
  // (measured: 53017 steps in all, at most 10 for one allocation; the pool has 321 blocks)
  assert.ok(counter.steps < 4 * N, `total steps ${counter.steps}`);
  assert.ok(max <= 32, `max steps per allocation ${max}`);
  // churn at near-full: release + reallocate stays O(block)
  for (let i = 0; i < 2000; i++) {
    a.releaseByContainer(`ctr-${(i * 7919) % N}`, 'eth0', { cooldown: false });
    const before = counter.steps;
    assert.ok(a.allocate(req(N + i, `n${i % 10}`)).ok);
    assert.ok(counter.steps - before <= 16, `churn allocation cost ${counter.steps - before}`);
  }
});

test('IPv6 /64 pool: allocation is cheap and addresses are canonical', () => {
  const counter: OpCounter = { steps: 0 };
  const p = pool('v6', { subnet: 'fd00:10::/64', ips: ['fd00:10::/64'] });
  const a = new PoolAllocator(p, { now: clock().now, counter });
  assert.equal(a.counts().total, (1n << 64n) - 2n);
  const seen = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const r = a.allocate(req(i, `n${i % 3}`));
    assert.ok(r.ok);
    assert.equal(formatIp(parseIp(r.record.address)), r.record.address);
    seen.add(r.record.address);
  }
  assert.equal(seen.size, 3000);
  assert.ok(counter.steps < 10 * 3000);
  assert.ok(a.allocateStatic(req(5000, 'n1'), 'fd00:10::ffff:ffff:ffff:ffff').ok);
  assert.deepEqual(a.checkInvariants(), []);
});

test('restore reports foreign, invalid and duplicate records, honours releasedAt', () => {
  const clk = clock();
  const p = pool('small', { subnet: '10.1.0.0/24', ips: ['10.1.0.10-10.1.0.19'] });
  const a = new PoolAllocator(p, { now: clk.now, cooldownMs: 30_000 });
  const base = { pool: 'small', node: 'n1', podNamespace: 'ns', podName: 'p', podUID: 'u', interface: 'eth0' };
  const rep = a.restore([
    { ...base, address: '10.1.0.10', containerID: 'c1' },
    { ...base, address: '10.1.0.10', containerID: 'c2' },
    { ...base, address: '10.1.0.11', containerID: 'c1' },
    { ...base, address: '10.1.0.99', containerID: 'c3' },
    { ...base, address: 'bogus', containerID: 'c4' },
    { ...base, pool: 'other', address: '10.1.0.12', containerID: 'c5' },
    { ...base, address: '10.1.0.13', containerID: 'c6', releasedAt: new Date(clk.t - 10_000).toISOString() },
    { ...base, address: '10.1.0.14', containerID: 'c7', releasedAt: new Date(clk.t - 40_000).toISOString() },
    { ...base, address: '10.1.0.10', containerID: 'c8', releasedAt: new Date(clk.t).toISOString() },
  ]);
  assert.equal(rep.allocated, 1);
  assert.equal(rep.cooling, 1);
  assert.deepEqual(rep.rejected.map((r) => [r.record.containerID, r.reason]), [
    ['c2', 'DuplicateAddress'],
    ['c1', 'DuplicateContainer'],
    ['c3', 'OutsidePool'],
    ['c4', 'InvalidAddress'],
    ['c5', 'WrongPool'],
    ['c8', 'DuplicateAddress'],
  ]);
  assert.deepEqual(a.counts(), { total: 10n, allocated: 1, cooling: 1, free: 8n });
  assert.ok(a.isCooling('10.1.0.13'));
  clk.t += 20_000;
  assert.ok(!a.isCooling('10.1.0.13'));
  assert.deepEqual(a.checkInvariants(), []);
});

test('property: endpoint names are valid DNS-1123 subdomains and map back to their address', () => {
  const dns = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  fc.assert(
    fc.property(fc.oneof(fc.bigInt({ min: 0n, max: maxValue(4) }).map((value) => ({ family: 4 as const, value })), fc.bigInt({ min: 0n, max: maxValue(6) }).map((value) => ({ family: 6 as const, value }))), (addr) => {
      const n = endpointName(addr);
      assert.match(n, dns);
      assert.ok(n.length <= 39);
      assert.deepEqual(addressFromEndpointName(n), addr);
    }),
    { numRuns: 2000 },
  );
  assert.equal(endpointName('10.244.0.5'), '10-244-0-5');
  assert.equal(endpointName('::'), '0-0-0-0-0-0-0-0');
  assert.equal(addressFromEndpointName('10-244-0-05'), undefined);
  assert.equal(addressFromEndpointName('busybox'), undefined);
});
