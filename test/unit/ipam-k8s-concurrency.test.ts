// Several agents against one API server: 200 concurrent ADDs over 4 nodes from a pool of exactly
// 200 addresses, exhaustion and recovery after release + cooldown, a restarted agent answering a
// retried ADD with the same address, and a property test of random interleavings.
import '../../src/k8s/node-compat.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RESERVED_LABEL, type KubernetesIpam } from '../../src/agent/ipam/kubernetes.js';
import { CniError, CniErrorCode, FastErrorCode } from '../../src/model/cni/errors.js';
import { type Lab, add, addFails, createNamespace, createNode, createPod, createPool, endpoints, newAgent, sleep, startLab, waitFor } from './ipam-k8s-harness.test.js';

let lab: Lab;
const requests: string[] = [];
const NODES = ['n1', 'n2', 'n3', 'n4'];
let agents: KubernetesIpam[];

before(async () => {
  lab = await startLab({ requestLog: (line) => requests.push(line) });
  for (const n of NODES) await createNode(lab, n);
  await createNamespace(lab, 'load');
  await createPool(lab, 'exact-200', { subnet: '10.40.0.0/24', ips: ['10.40.0.10-10.40.0.209'] });
  agents = [];
  for (const n of NODES) agents.push(await newAgent(lab, n, { cooldownMs: 1000 }));
});

after(async () => {
  await lab.close();
});

const POOL = { 'fast.io/ips': 'exact-200' };

test('200 concurrent ADDs over 4 agents from a pool of exactly 200 addresses: all succeed, all distinct', async () => {
  const pods: { node: number; name: string; uid: string }[] = [];
  await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const node = i % 4;
      const name = `pod-${i}`;
      pods.push({ node, name, uid: await createPod(lab, 'load', name, NODES[node]!, { annotations: POOL }) });
    }),
  );
  const before = requests.length;
  const granted = await Promise.all(pods.map((p) => add(agents[p.node]!, 'load', p.name, p.uid, `ctr-${p.name}`)));
  const writes = requests.slice(before).filter((l) => l.startsWith('POST') || l.startsWith('PUT')).length;
  const addresses = granted.map((g) => g.address);
  assert.equal(new Set(addresses).size, 200, 'all distinct');
  assert.ok(granted.every((g) => g.pool === 'exact-200'));
  const eps = (await endpoints(lab)).filter((e) => e.spec.pool === 'exact-200');
  assert.equal(eps.length, 200);
  for (const p of pods) {
    const e = eps.find((x) => x.spec.containerID === `ctr-${p.name}`)!;
    assert.equal(e.spec.podUID, p.uid);
    assert.equal(e.spec.node, NODES[p.node]);
  }
  // one create per allocation, plus the few refused claims (409) where nodes met
  assert.ok(writes < 400, `${writes} writes for 200 allocations`);
  process.stderr.write(`# 200 allocations over 4 agents: ${writes} API writes\n`);

  // one more pod: exhausted, with the counts
  const uid = await createPod(lab, 'load', 'one-too-many', 'n1', { annotations: POOL });
  await waitFor(async () => (await agents[0]!.usage()).find((u) => u.name === 'exact-200')?.allocated === 200, 'n1 sees 200 allocated');
  const err = await addFails(agents[0]!, 'load', 'one-too-many', uid, 'ctr-one-too-many');
  assert.equal(err.code, FastErrorCode.PoolExhausted);
  assert.equal(err.msg, 'pool exact-200 has no free address (200 of 200 allocated)');
});

test('an exhausted pool: a released address rests for the cooldown, then the waiting pod gets it', async () => {
  const uid = (await lab.core.readNamespacedPod({ name: 'one-too-many', namespace: 'load' })).metadata!.uid!;
  // pod-7 (on n4) goes away
  assert.equal(await agents[3]!.release('ctr-pod-7', 'eth0'), 1);
  const freed = (await endpoints(lab)).find((e) => e.spec.containerID === 'ctr-pod-7')!;
  assert.ok(freed.spec.releasedAt);
  await waitFor(async () => (await agents[0]!.usage()).find((u) => u.name === 'exact-200')?.cooling === 1, 'n1 sees the release');
  const err = await addFails(agents[0]!, 'load', 'one-too-many', uid, 'ctr-one-too-many');
  assert.equal(err.code, FastErrorCode.PoolExhausted);
  assert.match(err.msg, /^pool exact-200 has no free address \(199 of 200 allocated, 1 cooling down, next free in [01] s\)$/);
  await sleep(1100);
  // no controller-manager runs here: the agent takes the rested record over itself
  const g = await add(agents[0]!, 'load', 'one-too-many', uid, 'ctr-one-too-many');
  assert.equal(g.address, freed.spec.address);
  const ep = (await endpoints(lab)).find((e) => e.metadata.name === freed.metadata.name)!;
  assert.equal(ep.spec.containerID, 'ctr-one-too-many');
  assert.equal(ep.spec.releasedAt, undefined);
});

test('a restarted agent answers a retried ADD with the same address and lists its node allocations', async () => {
  const uid = await createPod(lab, 'load', 'restart-me', 'n2');
  await createPool(lab, 'default-ips', { subnet: '10.41.0.0/24', ips: ['10.41.0.10-10.41.0.50'] });
  await waitFor(async () => (await agents[1]!.usage()).some((u) => u.name === 'default-ips'), 'default pool seen');
  const first = await add(agents[1]!, 'load', 'restart-me', uid, 'ctr-restart');
  await agents[1]!.close();
  const restarted = await newAgent(lab, 'n2', { cooldownMs: 1000 });
  agents[1] = restarted;
  const before = (await endpoints(lab)).length;
  const again = await add(restarted, 'load', 'restart-me', uid, 'ctr-restart');
  assert.deepEqual(again, first);
  assert.equal((await endpoints(lab)).length, before, 'no second IpEndpoint');
  const owned = await restarted.owned();
  assert.ok(owned.some((o) => o.containerId === 'ctr-restart' && o.address === first.address));
  assert.equal(owned.filter((o) => o.pool === 'exact-200').length, 50, 'the 50 pods of n2 from the first test');
});

test('an ADD for a pod UID the API server does not have fails with try-again, without allocating', async () => {
  await createPod(lab, 'load', 'stale', 'n3');
  const before = (await endpoints(lab)).length;
  const err = await addFails(agents[2]!, 'load', 'stale', 'not-the-uid');
  assert.equal(err.code, CniErrorCode.TryAgainLater);
  assert.match(err.msg, /pod load\/stale has uid .*, not not-the-uid/);
  assert.equal((await endpoints(lab)).length, before);
});

test('property: random interleavings of ADD and DEL across agents never give one address to two live pods', async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: fc.record({ k: fc.constant('add' as const), agent: fc.nat(3), pod: fc.nat(9) }) },
            { weight: 2, arbitrary: fc.record({ k: fc.constant('del' as const), pod: fc.nat(9) }) },
          ),
          { minLength: 1, maxLength: 6 },
        ),
        { minLength: 1, maxLength: 6 },
      ),
      async (batches) => {
        run++;
        const pool = `prop-${run}`;
        // 6 addresses for 10 pods: exhaustion and reuse happen
        await createPool(lab, pool, { subnet: `10.60.${run}.0/24`, ips: [`10.60.${run}.10-10.60.${run}.15`] });
        await waitFor(async () => (await Promise.all(agents.map((a) => a.usage()))).every((u) => u.some((p) => p.name === pool)), `${pool} seen`);
        const uids: string[] = [];
        for (let k = 0; k < 10; k++) uids.push(await createPod(lab, 'load', `${pool}-p${k}`, 'n1', { annotations: { 'fast.io/ips': pool } }));
        // model: pod → { container, address, agent } of live allocations
        const live = new Map<number, { ctr: string; address: string; agent: number }>();
        let gen = 0;
        for (const batch of batches) {
          await Promise.all(
            batch.map(async (op) => {
              if (op.k === 'add') {
                if (live.has(op.pod)) return;
                const ctr = `${pool}-c${op.pod}-${gen++}`;
                const agent = agents[op.agent]!;
                try {
                  const g = await agent.allocate({ containerId: ctr, ifName: 'eth0', node: agent.nodeName, pod: { namespace: 'load', name: `${pool}-p${op.pod}`, uid: uids[op.pod]! } });
                  if (live.has(op.pod)) {
                    // two concurrent ADDs for one pod (different containers): keep one, DEL the other
                    await agent.release(ctr, 'eth0');
                    return;
                  }
                  live.set(op.pod, { ctr, address: g[0]!.address, agent: op.agent });
                } catch (err) {
                  if (!(err instanceof CniError)) throw err;
                  assert.ok(err.code === FastErrorCode.PoolExhausted || err.code === CniErrorCode.TryAgainLater, err.message);
                }
              } else {
                const l = live.get(op.pod);
                if (!l) return;
                live.delete(op.pod);
                assert.equal(await agents[l.agent]!.release(l.ctr, 'eth0'), 1);
              }
            }),
          );
          const addrs = [...live.values()].map((l) => l.address);
          assert.equal(new Set(addrs).size, addrs.length, `one address for two live pods: ${JSON.stringify([...live])}`);
          const eps = (await endpoints(lab)).filter((e) => e.spec.pool === pool && !e.spec.releasedAt && e.metadata.labels?.[RESERVED_LABEL] !== 'true');
          for (const l of live.values()) {
            const e = eps.find((x) => x.spec.address === l.address);
            assert.equal(e?.spec.containerID, l.ctr, `the API server records ${l.address} for ${l.ctr}`);
          }
          assert.equal(eps.length, live.size, 'no leaked live allocation');
        }
        for (const l of live.values()) await agents[l.agent]!.release(l.ctr, 'eth0');
      },
    ),
    { numRuns: 12 },
  );
});
