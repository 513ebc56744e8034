// The pieces of the lab controllers that need no API server: the work queue, template hashing,
// intstr resolution, deletion ranking, label selectors, the command line, kubeconfig loading,
// and the fast-lab-controllers process itself (started, doing work, stopped with SIGTERM).
import '../../src/k8s/node-compat.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { startApiServer, writeKubeconfig } from '../../src/lab/apiserver/index.js';
import { allowPlainHttp, loadKubeConfig } from '../../src/k8s/kubeconfig.js';
import { describeError } from '../../src/k8s/resilient-informer.js';
import { WorkQueue } from '../../src/lab/controllers/workqueue.js';
import { parseArgs } from '../../src/lab/controllers/args.js';
import { deletionCost } from '../../src/lab/controllers/replicaset.js';
import { ordinalOf } from '../../src/lab/controllers/statefulset.js';
import { createNode, waitFor } from '../../src/lab/controllers/testing.js';
import {
  computeTemplateHash, fnv32a, resolveIntOrPercent, safeEncodeString, selectorMatches, templatesEqualIgnoringHash,
} from '../../src/lab/controllers/util.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('work queue: one entry per key, never two workers on a key, re-queue of keys added while processed', async () => {
  const q = new WorkQueue();
  q.add('a');
  q.add('b');
  q.add('a');
  assert.equal(q.length, 2);
  const first = await q.get();
  assert.equal(first, 'a');
  q.add('a'); // while processing: deferred
  assert.equal(await q.get(), 'b');
  q.done('b');
  const pending = q.get();
  q.done('a'); // 'a' comes back now
  assert.equal(await pending, 'a');
  q.done('a');
  const delayed = q.get();
  q.addAfter('c', 30);
  q.addAfter('c', 10_000); // a later delay does not postpone it
  const t0 = Date.now();
  assert.equal(await delayed, 'c');
  assert.ok(Date.now() - t0 < 1000);
  q.done('c');
  assert.equal(q.addRateLimited('d'), 100);
  assert.equal(q.addRateLimited('d'), 200);
  q.forget('d');
  assert.equal(q.addRateLimited('d'), 100);
  const waiting = q.get();
  q.shutDown();
  assert.ok((await waiting) === 'd' || (await waiting) === undefined);
  assert.equal(await q.get(), undefined);
});

test('pod-template-hash: FNV-1a, safe alphabet, ignores the hash label, changes with the template and collisions', () => {
  assert.equal(fnv32a(''), 0x811c9dc5);
  assert.equal(fnv32a('a'), 0xe40c292c);
  // Decimal digits map to the ten characters real pod-template-hash values use ("7c5ddbdf54").
  assert.equal(safeEncodeString('0123456789'), '456789bcdf');
  const t = { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } };
  const h = computeTemplateHash(t);
  assert.match(h, /^[4-9bcdf]{1,10}$/);
  assert.equal(computeTemplateHash({ ...t, metadata: { labels: { app: 'x', 'pod-template-hash': h } } }), h);
  assert.equal(computeTemplateHash({ spec: t.spec, metadata: { labels: { app: 'x' } } }), h, 'key order does not matter');
  assert.notEqual(computeTemplateHash({ ...t, spec: { containers: [{ name: 'c', image: 'nginx:2' }] } }), h);
  assert.notEqual(computeTemplateHash(t, 1), h);
  assert.ok(templatesEqualIgnoringHash(t, { ...t, metadata: { labels: { app: 'x', 'pod-template-hash': 'zzz' } } }));
  fc.assert(fc.property(fc.dictionary(fc.string(), fc.string()), fc.string(), (labels, image) => {
    const reversed = Object.fromEntries(Object.entries(labels).reverse());
    const a = computeTemplateHash({ metadata: { labels }, spec: { containers: [{ name: 'c', image }] } });
    const b = computeTemplateHash({ metadata: { labels: { ...reversed, 'pod-template-hash': 'x' } }, spec: { containers: [{ image, name: 'c' }] } });
    return a === b && /^[4-9bcdf]{1,10}$/.test(a);
  }));
});

test('maxSurge rounds up and maxUnavailable rounds down, as intstr.GetScaledValueFromIntOrPercent', () => {
  assert.equal(resolveIntOrPercent('25%', 2, true, 0), 1);
  assert.equal(resolveIntOrPercent('25%', 2, false, 0), 0);
  assert.equal(resolveIntOrPercent('25%', 10, true, 0), 3);
  assert.equal(resolveIntOrPercent('25%', 10, false, 0), 2);
  assert.equal(resolveIntOrPercent(3, 10, false, 0), 3);
  assert.equal(resolveIntOrPercent(undefined, 4, true, '50%'), 2);
  assert.equal(resolveIntOrPercent('2', 4, true, 0), 2);
});

test('deletion ranking: unscheduled, pending, unready, recently ready and newer pods go first', () => {
  const mk = (name: string, opts: { node?: string; phase?: string; ready?: boolean; readySince?: string; created?: string }): V1Pod => ({
    metadata: { name, creationTimestamp: (opts.created ?? '2024-01-01T00:00:00Z') as unknown as Date },
    spec: { containers: [], nodeName: opts.node },
    status: {
      phase: opts.phase ?? 'Running',
      conditions: opts.ready ? [{ type: 'Ready', status: 'True', lastTransitionTime: (opts.readySince ?? '2024-01-01T00:00:00Z') as unknown as Date }] : [],
    },
  });
  const pods = [
    mk('old-ready', { node: 'n', ready: true, readySince: '2024-01-01T00:00:00Z' }),
    mk('new-ready', { node: 'n', ready: true, readySince: '2024-06-01T00:00:00Z' }),
    mk('unready', { node: 'n' }),
    mk('pending', { node: 'n', phase: 'Pending' }),
    mk('unscheduled', { phase: 'Pending' }),
  ];
  assert.deepEqual([...pods].sort(deletionCost).map((p) => p.metadata?.name), ['unscheduled', 'pending', 'unready', 'new-ready', 'old-ready']);
});

test('label selectors and StatefulSet ordinals', () => {
  const sel = { matchLabels: { app: 'a' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }, { key: 'canary', operator: 'DoesNotExist' }] };
  assert.equal(selectorMatches(sel, { app: 'a', tier: 'web' }), true);
  assert.equal(selectorMatches(sel, { app: 'a', tier: 'db' }), false);
  assert.equal(selectorMatches(sel, { app: 'a', tier: 'web', canary: '1' }), false);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['1'] }] }, {}), true);
  assert.equal(selectorMatches(undefined, { app: 'a' }), false);
  assert.equal(ordinalOf('db', 'db-0'), 0);
  assert.equal(ordinalOf('db', 'db-12'), 12);
  assert.equal(ordinalOf('db', 'db-01'), -1);
  assert.equal(ordinalOf('db', 'db-x'), -1);
  assert.equal(ordinalOf('db', 'dbx-1'), -1);
  assert.equal(ordinalOf('db', 'db-extra-1'), -1);
});

test('command line', () => {
  assert.deepEqual(parseArgs(['--kubeconfig', '/k', '--controllers=scheduler,deployment', '--workers', '4', '--log-level=debug']), {
    kubeconfig: '/k', controllers: ['scheduler', 'deployment'], workers: 4, logLevel: 'debug',
  });
  assert.deepEqual(parseArgs([]).controllers, ['deployment', 'replicaset', 'statefulset', 'scheduler']);
  assert.throws(() => parseArgs(['--controllers', 'nope']), /unknown controller nope/);
  assert.throws(() => parseArgs(['--kubeconfig']), /needs a value/);
  assert.throws(() => parseArgs(['--workers', '0']), /positive/);
  assert.throws(() => parseArgs(['extra']), /unknown argument/);
});

test('kubeconfig: a file kubectl accepts for plain HTTP works with the client too', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-controllers-kc-'));
  try {
    const server = await startApiServer({ host: '127.0.0.1', port: 0 });
    try {
      const file = writeKubeconfig(path.join(dir, 'kubeconfig'), server.url);
      const kc = loadKubeConfig({ path: file });
      assert.equal(kc.getCurrentCluster()?.server, server.url);
      assert.equal(kc.getCurrentCluster()?.skipTLSVerify, true);
      const namespaces = await kc.makeApiClient(CoreV1Api).listNamespace();
      assert.ok(namespaces.items.some((n) => n.metadata?.name === 'default'));
    } finally {
      await server.close();
    }
    assert.throws(() => loadKubeConfig({ path: path.join(dir, 'missing') }), /does not exist/);
    const untouched = loadKubeConfig({ path: writeKubeconfig(path.join(dir, 'https'), 'https://10.0.0.1:6443') });
    assert.equal(allowPlainHttp(untouched), untouched);
    assert.equal(untouched.getCurrentCluster()?.skipTLSVerify, false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('describeError names the status and message of API errors, and the code of network errors', () => {
  assert.equal(describeError({ code: 409, body: JSON.stringify({ kind: 'Status', message: 'pods "x" already exists' }) }), 'HTTP 409: pods "x" already exists');
  assert.equal(describeError(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })), 'fetch failed (ECONNREFUSED)');
  assert.equal(describeError(undefined), 'undefined');
});

test('fast-lab-controllers runs as a process: JSON logs on stderr, does its work, exits 0 on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-controllers-main-'));
  const server = await startApiServer({ host: '127.0.0.1', port: 0 });
  try {
    const kubeconfig = writeKubeconfig(path.join(dir, 'kubeconfig'), server.url);
    const core = loadKubeConfig({ path: kubeconfig }).makeApiClient(CoreV1Api);
    await createNode(core, 'node-1');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/lab/controllers/main.ts'), '--kubeconfig', kubeconfig], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += String(d); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i' }] } } });
      await waitFor('pod bound by the process', async () => (await core.readNamespacedPod({ name: 'p', namespace: 'default' })).spec?.nodeName, {
        timeoutMs: 30_000, describe: () => stderr,
      });
      await waitFor('caches synced log', () => stderr.includes('caches synced'));
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    const lines = stderr.trim().split('\n');
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: string; msg: string; time: string; component: string };
      assert.ok(entry.time && entry.level && entry.msg, line);
      assert.equal(entry.component, 'fast-lab-controllers');
    }
    assert.ok(lines.some((l) => l.includes('"msg":"pod bound"')));
    assert.ok(lines.at(-1)!.includes('"msg":"stopped"'));
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fast-lab-controllers refuses bad arguments with usage (exit 2)', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/lab/controllers/main.ts'), '--bogus'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 2);
  assert.match(stderr, /unknown argument --bogus/);
  assert.match(stderr, /usage: fast-lab-controllers/);
});
