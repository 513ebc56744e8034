// Persistence of the lab API server: a snapshot plus an append-only change log. The state
// survives a kill -9 of the real process, a torn last log line is ignored, the log is compacted
// into a new snapshot while serving and at start, and the older one-document format still loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ApiStore } from '../../src/lab/apiserver/api-store.js';
import { loadState, StateSaver } from '../../src/lab/apiserver/persistence.js';
import { RawClient } from '../../src/lab/apiserver/raw-client.js';

const PODS = { group: '', version: 'v1', resource: 'pods' };
const MAIN = path.join(import.meta.dirname, '..', '..', 'src', 'lab', 'apiserver', 'main.ts');

function pod(name: string, labels: Record<string, string> = {}): object {
  return { metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
}

function tmpDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apiserver-persist-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function filesOf(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

function podNames(store: ApiStore): string[] {
  return store.list(PODS, { namespace: 'default' }).items.map((p) => p.metadata.name ?? '').sort();
}

/** Starts the API server CLI; resolves with its process and URL once it listens. */
async function startProcess(stateFile: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--port', '0', '--state-file', stateFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`API server exited ${code}`)));
  });
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

test('the state survives a kill -9 of the API server process, twice', async (t) => {
  const dir = tmpDir(t);
  const stateFile = path.join(dir, 'state.json');
  const first = await startProcess(stateFile);
  t.after(() => first.child.kill('SIGKILL'));
  const client = new RawClient(first.url);
  for (let i = 0; i < 20; i++) assert.equal((await client.post('/api/v1/namespaces/default/pods', pod(`p${i}`))).status, 201);
  assert.equal((await client.delete('/api/v1/namespaces/default/pods/p3', { gracePeriodSeconds: 0 })).status, 200);
  const labelled = await client.patch('/api/v1/namespaces/default/pods/p4', { metadata: { labels: { kept: 'yes' } } }, 'merge');
  assert.equal(labelled.status, 200);
  await new Promise((r) => setTimeout(r, 300)); // longer than the write delay (20 ms)
  await kill9(first.child);

  const second = await startProcess(stateFile);
  t.after(() => second.child.kill('SIGKILL'));
  const again = new RawClient(second.url);
  const names = (await again.get('/api/v1/namespaces/default/pods')).body.items.map((p: { metadata: { name: string } }) => p.metadata.name);
  assert.equal(names.length, 19);
  assert.ok(!names.includes('p3'), 'the deletion survived');
  const p4 = await again.get('/api/v1/namespaces/default/pods/p4');
  assert.deepEqual(p4.body.metadata.labels, { kept: 'yes' });
  assert.equal(p4.body.metadata.resourceVersion, labelled.body.metadata.resourceVersion);
  const created = await again.post('/api/v1/namespaces/default/pods', pod('after'));
  assert.ok(Number(created.body.metadata.resourceVersion) > Number(labelled.body.metadata.resourceVersion), 'resourceVersions go on');
  await new Promise((r) => setTimeout(r, 300));
  await kill9(second.child);

  const third = await startProcess(stateFile);
  t.after(() => third.child.kill('SIGKILL'));
  const last = await new RawClient(third.url).get('/api/v1/namespaces/default/pods/after');
  assert.equal(last.status, 200);
  assert.equal(last.body.metadata.uid, created.body.metadata.uid);
  third.child.kill('SIGTERM');
  await new Promise((resolve) => third.child.once('exit', resolve));
  // A clean stop leaves the snapshot and one (empty or short) log, no temporary files.
  assert.deepEqual(filesOf(dir).filter((f) => !/^state\.json(\.log-\d+)?$/.test(f)), []);
});

test('a torn last line of the change log (a write cut by a kill) is ignored', async (t) => {
  const dir = tmpDir(t);
  const stateFile = path.join(dir, 'state.json');
  const store = new ApiStore();
  loadState(store, stateFile);
  const saver = new StateSaver(store, stateFile, { debounceMs: 1 });
  store.create(PODS, pod('a'), { namespace: 'default' });
  store.create(PODS, pod('b'), { namespace: 'default' });
  await saver.close();
  const [log] = filesOf(dir).filter((f) => f.includes('.log-'));
  assert.ok(log, 'a change log exists');
  const logFile = path.join(dir, log);
  const lines = fs.readFileSync(logFile, 'utf8');
  assert.equal(lines.trim().split('\n').length, 2);
  fs.appendFileSync(logFile, lines.split('\n')[1]!.slice(0, 40)); // half of a third line

  const reloaded = new ApiStore();
  assert.equal(loadState(reloaded, stateFile), true);
  assert.deepEqual(podNames(reloaded), ['a', 'b']);
  // Starting over compacts: the torn line is gone with its log, and new changes load again.
  const saver2 = new StateSaver(reloaded, stateFile, { debounceMs: 1 });
  assert.ok(!fs.existsSync(logFile), 'the old log was compacted away');
  reloaded.create(PODS, pod('c'), { namespace: 'default' });
  await saver2.close();
  const third = new ApiStore();
  loadState(third, stateFile);
  assert.deepEqual(podNames(third), ['a', 'b', 'c']);
});

test('a torn line before the end of a log is an error with the file and line', async (t) => {
  const dir = tmpDir(t);
  const stateFile = path.join(dir, 'state.json');
  const store = new ApiStore();
  const saver = new StateSaver(store, stateFile, { debounceMs: 1 });
  store.create(PODS, pod('a'), { namespace: 'default' });
  await saver.close();
  const log = path.join(dir, filesOf(dir).find((f) => f.includes('.log-'))!);
  fs.writeFileSync(log, `{"rv":\n${fs.readFileSync(log, 'utf8')}`);
  assert.throws(() => loadState(new ApiStore(), stateFile), new RegExp(`${log.replace(/[.]/g, '\\.')}: line 1 is not JSON`));
});

test('the log is compacted into a new snapshot while serving; the state loads the same', async (t) => {
  const dir = tmpDir(t);
  const stateFile = path.join(dir, 'state.json');
  const store = new ApiStore();
  const saver = new StateSaver(store, stateFile, { debounceMs: 1, compactMinBytes: 0 });
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const name = `p${i % 10}`;
    const existing = store.list(PODS, { namespace: 'default', fieldSelector: `metadata.name=${name}` }).items[0];
    if (existing) store.patch(PODS, name, 'merge', { metadata: { labels: { round: String(i) } } }, { namespace: 'default' });
    else store.create(PODS, pod(name), { namespace: 'default' });
    for (const f of filesOf(dir)) seen.add(f);
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 10));
  }
  await saver.close();
  const logs = filesOf(dir).filter((f) => f.includes('.log-'));
  assert.ok([...seen].filter((f) => f.includes('.log-')).length > 1, `several logs over time: ${[...seen].join(' ')}`);
  assert.equal(logs.length, 1, `older logs removed: ${filesOf(dir).join(' ')}`);
  const reloaded = new ApiStore();
  loadState(reloaded, stateFile);
  assert.equal(reloaded.resourceVersion, store.resourceVersion);
  assert.deepEqual(reloaded.list(PODS, { namespace: 'default' }), store.list(PODS, { namespace: 'default' }));
});

test('a state file in the older one-document format still loads', async (t) => {
  const dir = tmpDir(t);
  const stateFile = path.join(dir, 'state.json');
  const store = new ApiStore();
  store.create(PODS, pod('old', { v: '1' }), { namespace: 'default' });
  fs.writeFileSync(stateFile, JSON.stringify({ format: 'fast-lab-apiserver/v1', ...store.snapshot() }));
  const reloaded = new ApiStore();
  assert.equal(loadState(reloaded, stateFile), true);
  assert.deepEqual(reloaded.get(PODS, 'old', { namespace: 'default' }), store.get(PODS, 'old', { namespace: 'default' }));
  fs.writeFileSync(stateFile, '{"format":"something-else","resourceVersion":3}');
  assert.throws(() => loadState(new ApiStore(), stateFile), /not a lab API server state file \(unknown format "something-else"\)/);
});
