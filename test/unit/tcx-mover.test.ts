// The background move of pods from cls_bpf to tcx links: it waits for the node to be idle
// (no CNI call in flight, none for idleMs), moves one pod at a time, skips pods deleted in
// the meantime, and keeps going after a failed move. Time is simulated (mock timers and an
// injected clock), so the test does not depend on the machine's load. The kernel side of
// the move is in test/unit/bpf-attach.test.ts and test/integration/node-datapath.test.ts.
import { test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { TcxMover } from '../../src/agent/tcx-mover.js';
import type { Endpoint } from '../../src/agent/endpoint-store.js';
import { createLogger } from '../../src/agent/log.js';

const ep = (id: string) => ({ containerId: id, ifName: 'eth0', hostIfindex: 7 } as Endpoint);
let clock = 0;

beforeEach(() => {
  clock = 0;
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => mock.timers.reset());

/** Advances the simulated clock and fires the timers due by then. */
function advance(ms: number): void {
  clock += ms;
  mock.timers.tick(ms);
}

function mover(opts: { idleMs?: number; maxWaitMs?: number; present?: Set<string>; failOn?: string } = {}) {
  const moved: Array<{ id: string; at: number }> = [];
  const present = opts.present ?? new Set(['a', 'b', 'c']);
  const m = new TcxMover({
    idleMs: opts.idleMs ?? 1000,
    maxWaitMs: opts.maxWaitMs,
    now: () => clock,
    log: createLogger('error', {}),
    lookup: (id) => (present.has(id) ? ep(id) : undefined),
    move: (e) => {
      if (e.containerId === opts.failOn) throw new Error('ENODEV');
      moved.push({ id: e.containerId, at: clock });
    },
  });
  return { m, moved };
}

test('pods move once the node has been idle for idleMs, one after the other', () => {
  const { m, moved } = mover();
  m.schedule(ep('a'));
  m.schedule(ep('b'));
  assert.equal(m.pending, 2);
  advance(999);
  assert.equal(moved.length, 0, 'not before idleMs');
  advance(1);
  assert.deepEqual(moved, [{ id: 'a', at: 1000 }, { id: 'b', at: 1000 }], 'the next one right after, while still idle');
  assert.equal(m.pending, 0);
  assert.equal(m.stats.moved, 2);
  m.stop();
});

test('no move while a CNI call is in flight, and idleMs counts from the end of the last one', () => {
  const { m, moved } = mover();
  m.schedule(ep('a'));
  m.callStarted();
  advance(5000);
  assert.equal(moved.length, 0, 'a call in flight holds every move');
  m.callStarted();
  m.callEnded();
  advance(5000);
  assert.equal(moved.length, 0, 'one of two calls still in flight');
  m.callEnded(); // at 10000
  advance(999);
  assert.equal(moved.length, 0, 'idleMs not yet over');
  advance(1);
  assert.deepEqual(moved, [{ id: 'a', at: 11000 }]);
  m.stop();
});

test('a call between two moves pushes the next one back by idleMs', () => {
  const { m, moved } = mover();
  m.schedule(ep('a'));
  advance(1000);
  m.schedule(ep('b'));
  m.callStarted(); // a CNI call arrives before b's turn
  advance(0);
  advance(300);
  m.callEnded(); // at 1300
  advance(999);
  assert.deepEqual(moved.map((x) => x.id), ['a']);
  advance(1);
  assert.deepEqual(moved, [{ id: 'a', at: 1000 }, { id: 'b', at: 2300 }]);
  m.stop();
});

test('a pod deleted while it waited is skipped; a failed move is counted and the rest go on', () => {
  const present = new Set(['a', 'b', 'c']);
  const { m, moved } = mover({ present, failOn: 'b' });
  for (const id of ['a', 'b', 'c']) m.schedule(ep(id));
  present.delete('a');
  advance(1000);
  advance(0);
  advance(0);
  assert.deepEqual(moved.map((x) => x.id), ['c']);
  assert.deepEqual(m.stats, { moved: 1, failed: 1 });
  assert.equal(m.pending, 0);
  m.stop();
});

test('scheduling the same pod twice moves it once; stop() cancels what waits', () => {
  const { m, moved } = mover();
  m.schedule(ep('a'));
  m.schedule(ep('a'));
  advance(1000);
  advance(0);
  assert.deepEqual(moved.map((x) => x.id), ['a']);
  m.schedule(ep('b'));
  m.stop();
  advance(5000);
  assert.deepEqual(moved.map((x) => x.id), ['a']);
  assert.equal(m.pending, 1);
});

test('on a node that is never idle for idleMs, a pod that waited maxWaitMs moves in a gap between calls, one per idleMs', () => {
  const { m, moved } = mover({ maxWaitMs: 5000 });
  m.schedule(ep('a'));
  m.schedule(ep('b'));
  // A CNI call of 100 ms every 500 ms: never 1 s of quiet.
  const during: number[] = [];
  for (let t = 0; t < 9000; t += 500) {
    m.callStarted();
    const before = moved.length;
    advance(100);
    if (moved.length > before) during.push(clock);
    m.callEnded();
    advance(400);
  }
  assert.deepEqual(during, [], 'no move while a call was in flight');
  assert.ok(moved.length === 2, `moved: ${JSON.stringify(moved)}`);
  assert.ok(moved[0]!.at >= 5000, `first forced move after maxWaitMs, at ${moved[0]!.at}`);
  assert.ok(moved[1]!.at - moved[0]!.at >= 1000, `then one per idleMs: ${JSON.stringify(moved)}`);
  m.stop();
});
