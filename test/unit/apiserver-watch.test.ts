// Watch semantics of the lab API server over HTTP: list-then-watch under concurrent writers,
// 410 Expired for compacted resourceVersions and recovery by relisting, bookmarks, exact lists,
// selector transitions and watch timeouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/lab/apiserver/index.js';
import { RawClient } from '../../src/lab/apiserver/raw-client.js';
import type { WatchEvent } from '../../src/lab/apiserver/types.js';

const PODS = '/api/v1/namespaces/default/pods';

function pod(name: string, labels: Record<string, string> = {}): object {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
}

/** Runs `body` against a fresh server and always closes it. */
async function withServer(options: ApiServerOptions, body: (server: ApiServer, client: RawClient) => Promise<void>): Promise<void> {
  const server = await startApiServer({ port: 0, ...options });
  try {
    await body(server, new RawClient(server.url));
  } finally {
    await server.close();
  }
}

const rvOf = (e: WatchEvent): number => Number(e.object.metadata.resourceVersion);

test('list-then-watch under concurrent writers sees every change exactly once, in order', async () => {
  await withServer({}, async (server, client) => {
    const truth: { rv: number; type: string; name: string }[] = [];
    server.store.onChange((e) => {
      if (e.storageKey === '/pods') truth.push({ rv: e.rv, type: e.type, name: e.object.metadata.name ?? '' });
    });

    const writer = async (id: number): Promise<void> => {
      for (let i = 0; i < 30; i++) {
        const name = `w${id}-${i}`;
        const created = await client.post(PODS, pod(name));
        assert.equal(created.status, 201);
        const updated = await client.patch(`${PODS}/${name}`, { metadata: { labels: { step: 'updated' } } });
        assert.equal(updated.status, 200);
        if (i % 2 === 0) assert.equal((await client.delete(`${PODS}/${name}`)).status, 200);
      }
    };
    const writers = [0, 1, 2, 3].map(writer);

    // List while the writers run, then watch from the list's resourceVersion.
    await new Promise((r) => setTimeout(r, 30));
    const list = await client.get(PODS);
    const listRv = Number(list.body.metadata.resourceVersion);
    const watch = client.watch(`${PODS}?resourceVersion=${listRv}`);
    try {
      await Promise.all(writers);
      const sentinel = await client.post(PODS, pod('sentinel'));
      const lastRv = Number(sentinel.body.metadata.resourceVersion);
      await watch.until((events) => events.some((e) => rvOf(e) === lastRv), 10_000);

      assert.ok(truth.some((t) => t.rv <= listRv), 'writes happened before the list');
      // The list is exactly the state at its resourceVersion.
      const state = new Set<string>();
      for (const e of truth.filter((t) => t.rv <= listRv)) {
        if (e.type === 'DELETED') state.delete(e.name);
        else state.add(e.name);
      }
      assert.deepEqual(list.body.items.map((p: { metadata: { name: string } }) => p.metadata.name).sort(), [...state].sort());

      // The watch delivers every later change once, in order, and nothing else.
      const expected = truth.filter((t) => t.rv > listRv).map((t) => `${t.rv} ${t.type} ${t.name}`);
      const seen = watch.events.map((e) => `${rvOf(e)} ${e.type} ${e.object.metadata.name ?? ''}`);
      assert.ok(expected.length > 50, `enough concurrent changes after the list (${expected.length})`);
      assert.deepEqual(seen, expected);
    } finally {
      watch.close();
    }
  });
});

test('a watch from a compacted resourceVersion gets a 410 ERROR event; a relist recovers', async () => {
  await withServer({ historyWindow: 5 }, async (_server, client) => {
    const first = await client.post(PODS, pod('early'));
    const oldRv = first.body.metadata.resourceVersion;
    for (let i = 0; i < 10; i++) await client.post(PODS, pod(`filler-${i}`));

    const stale = client.watch(`${PODS}?resourceVersion=${oldRv}`);
    await stale.done;
    assert.equal(stale.status, 200);
    assert.equal(stale.events.length, 1);
    const [error] = stale.events;
    assert.equal(error.type, 'ERROR');
    assert.equal(error.object.kind, 'Status');
    assert.equal((error.object as unknown as { code: number }).code, 410);
    assert.equal((error.object as unknown as { reason: string }).reason, 'Expired');
    assert.match((error.object as unknown as { message: string }).message, /^too old resource version: \d+ \(\d+\)$/);

    // Recovery: list again and watch from the new resourceVersion.
    const relist = await client.get(PODS);
    assert.equal(relist.body.items.length, 11);
    const fresh = client.watch(`${PODS}?resourceVersion=${relist.body.metadata.resourceVersion}`);
    try {
      await client.post(PODS, pod('after-relist'));
      const events = await fresh.until((es) => es.length >= 1);
      assert.equal(events[0].type, 'ADDED');
      assert.equal(events[0].object.metadata.name, 'after-relist');
    } finally {
      fresh.close();
    }
  });
});

test('paging: a continue token survives writes, and expires with 410 once compacted', async () => {
  await withServer({ historyWindow: 50 }, async (server, client) => {
    for (let i = 0; i < 5; i++) await client.post(PODS, pod(`p${i}`));
    const page1 = await client.get(`${PODS}?limit=2`);
    assert.deepEqual(page1.body.items.map((p: { metadata: { name: string } }) => p.metadata.name), ['p0', 'p1']);
    assert.equal(page1.body.metadata.remainingItemCount, 3);
    // Writes between pages do not show: the pages are a consistent snapshot.
    await client.delete(`${PODS}/p3`);
    await client.post(PODS, pod('p2a'));
    const page2 = await client.get(`${PODS}?limit=10&continue=${encodeURIComponent(page1.body.metadata.continue)}`);
    assert.deepEqual(page2.body.items.map((p: { metadata: { name: string } }) => p.metadata.name), ['p2', 'p3', 'p4']);
    assert.equal(page2.body.metadata.resourceVersion, page1.body.metadata.resourceVersion);

    server.store.compact();
    const expired = await client.get(`${PODS}?limit=2&continue=${encodeURIComponent(page1.body.metadata.continue)}`);
    assert.equal(expired.status, 410);
    assert.equal(expired.body.reason, 'Expired');
    assert.match(expired.body.message, /continue parameter is too old/);
  });
});

test('resourceVersionMatch=Exact lists an earlier state; a future resourceVersion is a 504', async () => {
  await withServer({}, async (_server, client) => {
    const a = await client.post(PODS, pod('a'));
    await client.post(PODS, pod('b'));
    await client.delete(`${PODS}/a`);
    const rv = a.body.metadata.resourceVersion;
    const exact = await client.get(`${PODS}?resourceVersion=${rv}&resourceVersionMatch=Exact`);
    assert.equal(exact.status, 200);
    assert.deepEqual(exact.body.items.map((p: { metadata: { name: string } }) => p.metadata.name), ['a']);
    assert.equal(exact.body.metadata.resourceVersion, rv);
    const future = await client.get(`${PODS}?resourceVersion=999999&resourceVersionMatch=NotOlderThan`);
    assert.equal(future.status, 504);
    assert.equal(future.body.reason, 'Timeout');
    const noRv = await client.get(`${PODS}?resourceVersionMatch=Exact`);
    assert.equal(noRv.status, 422);
  });
});

test('bookmarks arrive only when allowed, carrying the current resourceVersion', async () => {
  await withServer({ bookmarkIntervalMs: 50 }, async (server, client) => {
    await client.post(PODS, pod('x'));
    const rv = server.store.resourceVersion;
    const withBookmarks = client.watch(`${PODS}?resourceVersion=${rv}&allowWatchBookmarks=true`);
    const without = client.watch(`${PODS}?resourceVersion=${rv}`);
    try {
      const events = await withBookmarks.until((es) => es.filter((e) => e.type === 'BOOKMARK').length >= 2);
      const bookmark = events.find((e) => e.type === 'BOOKMARK')!;
      assert.equal(bookmark.object.kind, 'Pod');
      assert.equal(bookmark.object.apiVersion, 'v1');
      assert.equal(bookmark.object.metadata.resourceVersion, rv);
      assert.deepEqual(Object.keys(bookmark.object.metadata), ['resourceVersion']);
      assert.equal(without.events.length, 0);
    } finally {
      withBookmarks.close();
      without.close();
    }
  });
});

test('sendInitialEvents streams the state then an initial-events-end bookmark', async () => {
  await withServer({}, async (_server, client) => {
    await client.post(PODS, pod('one'));
    await client.post(PODS, pod('two'));
    const watch = client.watch(`${PODS}?sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true`);
    try {
      const events = await watch.until((es) => es.length >= 3);
      assert.deepEqual(events.slice(0, 2).map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED one', 'ADDED two']);
      assert.equal(events[2].type, 'BOOKMARK');
      assert.equal(events[2].object.metadata.annotations?.['k8s.io/initial-events-end'], 'true');
    } finally {
      watch.close();
    }
  });
});

test('a selective watch sees objects enter and leave its selection as ADDED and DELETED', async () => {
  await withServer({}, async (server, client) => {
    await client.post(PODS, pod('mover', { tier: 'web' }));
    const watch = client.watch(`${PODS}?labelSelector=tier%3Dweb&resourceVersion=${server.store.resourceVersion}`);
    try {
      await client.patch(`${PODS}/mover`, { metadata: { labels: { tier: 'db' } } });
      await client.patch(`${PODS}/mover`, { metadata: { labels: { tier: 'web' } } });
      await client.patch(`${PODS}/mover`, { metadata: { annotations: { touched: 'yes' } } });
      const events = await watch.until((es) => es.length >= 3);
      assert.deepEqual(events.map((e) => e.type), ['DELETED', 'ADDED', 'MODIFIED']);
      assert.equal(events[0].object.metadata.labels?.tier, 'web', 'DELETED carries the last matching state');
    } finally {
      watch.close();
    }
  });
});

test('watchers of two versions of a resource each get the change in their own version', async () => {
  await withServer({}, async (server, client) => {
    const rv = server.store.resourceVersion;
    const core = client.watch(`/api/v1/namespaces/default/events?resourceVersion=${rv}`);
    const core2 = client.watch(`/api/v1/namespaces/default/events?resourceVersion=${rv}`);
    const v1 = client.watch(`/apis/events.k8s.io/v1/namespaces/default/events?resourceVersion=${rv}`);
    try {
      await client.post('/api/v1/namespaces/default/events', {
        metadata: { name: 'e1' }, involvedObject: { kind: 'Pod', name: 'x' }, reason: 'Failed', message: 'boom', type: 'Warning', count: 1,
      });
      const [a] = await core.until((es) => es.length >= 1);
      const [b] = await core2.until((es) => es.length >= 1);
      const [c] = await v1.until((es) => es.length >= 1);
      assert.equal(a.object.apiVersion, 'v1');
      assert.equal(a.object.message, 'boom');
      assert.deepEqual(b, a, 'watchers of the same version see the same event');
      assert.equal(c.object.apiVersion, 'events.k8s.io/v1');
      assert.equal(c.object.note, 'boom');
      assert.equal(c.object.metadata.resourceVersion, a.object.metadata.resourceVersion);
    } finally {
      core.close();
      core2.close();
      v1.close();
    }
  });
});

test('watch without resourceVersion starts with ADDED for existing objects; timeoutSeconds ends it', async () => {
  await withServer({}, async (_server, client) => {
    await client.post(PODS, pod('existing'));
    const watch = client.watch(`${PODS}?timeoutSeconds=1`);
    await watch.done;
    assert.deepEqual(watch.events.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED existing']);
  });
});

test('watching one object by name (GET .../name?watch=1)', async () => {
  await withServer({}, async (server, client) => {
    await client.post(PODS, pod('target'));
    await client.post(PODS, pod('other'));
    const watch = client.watch(`${PODS}/target?resourceVersion=${server.store.resourceVersion}`);
    try {
      await client.patch(`${PODS}/other`, { metadata: { labels: { a: 'b' } } });
      await client.patch(`${PODS}/target`, { metadata: { labels: { a: 'b' } } });
      const events = await watch.until((es) => es.length >= 1);
      assert.equal(events.length, 1);
      assert.equal(events[0].object.metadata.name, 'target');
    } finally {
      watch.close();
    }
  });
});
