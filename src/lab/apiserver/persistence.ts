// Optional persistence of the lab's state, kept off the request path: a snapshot file plus an
// append-only change log, read back at start. History is not saved, so watches from before a
// restart get 410.
//
// Files, for a state file F:
//   F              the snapshot: a header line {"format":"fast-lab-apiserver/v2","resourceVersion":R}
//                  then one line per object {"k":storageKey,"o":object}. Written to a temporary
//                  file and renamed, so F is always a whole snapshot. (The v1 format, the whole
//                  store as one JSON document, is still read.)
//   F.log-S        the changes committed after resourceVersion S, one line each:
//                  {"rv":N,"k":storageKey,"o":object} or {"rv":N,"k":storageKey,"d":objectKey}.
// Loading reads F, then replays every log in order, skipping changes the snapshot already has.
//
// Writing: each committed change becomes one log line (the object's JSON text is shared with the
// watchers, see stored-json.ts); lines are appended asynchronously, a batch at most every
// `debounceMs`, one write in flight at a time. When the log outgrows the snapshot, a new log is
// started and a new snapshot is written asynchronously in chunks; the older logs are removed
// once it is renamed into place. At start the state is compacted the same way, synchronously.
//
// What a kill -9 can lose: the changes committed in the last `debounceMs` (default 20 ms) before
// it and those of the batch being written at that moment (a batch is written by one write call;
// what the kernel has accepted survives the process). A write cut short leaves a torn last line
// in the newest log, which loading ignores; every other file is whole. Nothing here survives a
// power loss better than the page cache does (no fsync on the log; the snapshot is fsynced).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { ApiStore } from './api-store.js';
import { objectKeyOf, type StorageSnapshot, type StoredEvent } from './storage.js';
import { storedJson } from './stored-json.js';
import type { KubeObject } from './types.js';

const FORMAT_V1 = 'fast-lab-apiserver/v1';
const FORMAT_V2 = 'fast-lab-apiserver/v2';
/** A log is compacted into a new snapshot when larger than this and than twice the snapshot. */
const MIN_COMPACT_BYTES = 16 * 1024 * 1024;
/** Objects serialised per step of an asynchronous snapshot (a few ms of the event loop each). */
const SNAPSHOT_CHUNK = 200;

const write = promisify(fs.write);
const fsync = promisify(fs.fsync);
const close = promisify(fs.close);

interface LogLine {
  rv: number;
  k: string;
  o?: KubeObject;
  d?: string;
}

/** The change logs next to a state file, oldest first: [path, resourceVersion it follows]. */
function logsOf(file: string): Array<[string, number]> {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.log-`;
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir)
    .filter((name) => name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length)))
    .map((name): [string, number] => [path.join(dir, name), Number(name.slice(prefix.length))])
    .sort((a, b) => a[1] - b[1]);
}

function logPath(file: string, after: number): string {
  return `${file}.log-${after}`;
}

type Buckets = Map<string, Map<string, KubeObject>>;

function bucketOf(buckets: Buckets, storageKey: string): Map<string, KubeObject> {
  let bucket = buckets.get(storageKey);
  if (!bucket) buckets.set(storageKey, (bucket = new Map()));
  return bucket;
}

function keyOf(obj: KubeObject): string {
  return objectKeyOf(obj.metadata.namespace, obj.metadata.name ?? '');
}

function notAStateFile(file: string, why: string): Error {
  return new Error(`${file} is not a lab API server state file (${why})`);
}

/** Reads a snapshot (v2 lines or the v1 document) into buckets; its resourceVersion. */
function readSnapshot(file: string, buckets: Buckets): number {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let header: { format?: unknown; resourceVersion?: unknown; objects?: unknown };
  try {
    header = JSON.parse(lines[0] ?? '') as typeof header;
  } catch {
    throw notAStateFile(file, 'its first line is not JSON');
  }
  if (typeof header.resourceVersion !== 'number') throw notAStateFile(file, 'no resourceVersion');
  if (header.format === FORMAT_V1 && header.objects && typeof header.objects === 'object') {
    for (const [storageKey, objects] of Object.entries(header.objects as Record<string, KubeObject[]>)) {
      const bucket = bucketOf(buckets, storageKey);
      for (const obj of objects) bucket.set(keyOf(obj), obj);
    }
    return header.resourceVersion;
  }
  if (header.format !== FORMAT_V2) throw notAStateFile(file, `unknown format ${JSON.stringify(header.format)}`);
  for (let i = 1; i < lines.length; i++) {
    if (lines[i] === '') continue;
    const entry = JSON.parse(lines[i]!) as { k: string; o: KubeObject };
    bucketOf(buckets, entry.k).set(keyOf(entry.o), entry.o);
  }
  return header.resourceVersion;
}

/** Applies a change log's lines after `rv`; a torn last line (a write cut by a kill) is ignored. */
function replayLog(file: string, buckets: Buckets, rv: number): number {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    let change: LogLine;
    try {
      change = JSON.parse(line) as LogLine;
    } catch (err) {
      if (i === lines.length - 1) break; // no newline after it: the write was cut short
      throw new Error(`${file}: line ${i + 1} is not JSON: ${(err as Error).message}`);
    }
    if (change.rv <= rv) continue;
    rv = change.rv;
    const bucket = bucketOf(buckets, change.k);
    if (change.o) bucket.set(keyOf(change.o), change.o);
    else if (change.d !== undefined) bucket.delete(change.d);
  }
  return rv;
}

/** Loads the state file and its change logs into the store; false when there is none yet. */
export function loadState(store: ApiStore, file: string): boolean {
  const logs = logsOf(file);
  if (!fs.existsSync(file) && logs.length === 0) return false;
  const buckets: Buckets = new Map();
  let rv = fs.existsSync(file) ? readSnapshot(file, buckets) : 0;
  for (const [log] of logs) rv = replayLog(log, buckets, rv);
  const objects: StorageSnapshot['objects'] = {};
  for (const [storageKey, bucket] of buckets) objects[storageKey] = [...bucket.values()];
  store.restore({ resourceVersion: rv, objects });
  return true;
}

function snapshotHeader(rv: number): string {
  return `${JSON.stringify({ format: FORMAT_V2, resourceVersion: rv })}\n`;
}

function* snapshotLines(snapshot: StorageSnapshot): Generator<string> {
  for (const [storageKey, objects] of Object.entries(snapshot.objects)) {
    const k = JSON.stringify(storageKey);
    for (const obj of objects) yield `{"k":${k},"o":${storedJson(obj)}}\n`;
  }
}

function changeLine(event: StoredEvent): string {
  const k = JSON.stringify(event.storageKey);
  return event.type === 'DELETED'
    ? `{"rv":${event.rv},"k":${k},"d":${JSON.stringify(event.objectKey)}}\n`
    : `{"rv":${event.rv},"k":${k},"o":${storedJson(event.object)}}\n`;
}

/** Removes the logs a snapshot at `rv` covers, and temporary snapshots of killed processes. */
function removeStale(file: string, rv: number): void {
  for (const [log, after] of logsOf(file)) if (after < rv) fs.rmSync(log, { force: true });
  const base = path.basename(file);
  const isTmp = (name: string): boolean => name.startsWith(`${base}.`) && name.endsWith('.tmp') &&
    /^\d+$/.test(name.slice(base.length + 1, -'.tmp'.length));
  for (const name of fs.readdirSync(path.dirname(file))) {
    if (isTmp(name) && name !== path.basename(tmpPath(file))) fs.rmSync(path.join(path.dirname(file), name), { force: true });
  }
}

function tmpPath(file: string): string {
  return `${file}.${process.pid}.tmp`;
}

export interface StateSaverOptions {
  /** Changes are written at most this long after their commit (default 20 ms). */
  debounceMs?: number;
  /** The log is compacted once larger than this and than twice the snapshot (default 16 MiB). */
  compactMinBytes?: number;
  onError?: (err: unknown) => void;
}

export class StateSaver {
  private readonly unsubscribe: () => void;
  private timer: NodeJS.Timeout | undefined;
  private pending: string[] = [];
  /** The log being appended to. */
  private logFd: number;
  private logBytes = 0;
  private snapshotBytes = 0;
  /** Every log write and close, in order: one write in flight at a time. */
  private writes: Promise<void> = Promise.resolve();
  private compacting: Promise<void> | undefined;
  private failed: unknown;
  private closed = false;

  private readonly debounceMs: number;
  private readonly compactMinBytes: number;
  private readonly onError: (err: unknown) => void;

  constructor(private readonly store: ApiStore, private readonly file: string, options: StateSaverOptions = {}) {
    this.debounceMs = options.debounceMs ?? 20;
    this.compactMinBytes = options.compactMinBytes ?? MIN_COMPACT_BYTES;
    this.onError = options.onError ?? ((err) => console.error('lab API server: saving state failed:', err));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // The snapshot of the state just loaded covers every log and temporary file left behind.
    const rv = Number(store.resourceVersion);
    this.writeSnapshotSync(store.snapshot(), rv);
    removeStale(file, Infinity);
    this.logFd = fs.openSync(logPath(file, rv), 'w');
    this.unsubscribe = store.onChange((event) => this.record(event));
  }

  private writeSnapshotSync(snapshot: StorageSnapshot, rv: number): void {
    const tmp = tmpPath(this.file);
    const text = snapshotHeader(rv) + [...snapshotLines(snapshot)].join('');
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, this.file);
    this.snapshotBytes = text.length;
  }

  private record(event: StoredEvent): void {
    this.pending.push(changeLine(event));
    this.timer ??= setTimeout(() => this.flush(), this.debounceMs);
  }

  /** Queues what is pending for the current log. */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    const fd = this.logFd;
    this.writes = this.writes.then(async () => {
      const data = Buffer.from(text);
      for (let off = 0; off < data.length;) off += (await write(fd, data, off, data.length - off)).bytesWritten;
      this.logBytes += data.length;
    }).catch((err: unknown) => this.fail(err));
    void this.writes.then(() => this.maybeCompact());
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = err;
    this.onError(err);
  }

  private maybeCompact(): void {
    if (this.closed || this.compacting || this.failed) return;
    if (this.logBytes < this.compactMinBytes || this.logBytes < 2 * this.snapshotBytes) return;
    this.compacting = this.compact().catch((err: unknown) => this.fail(err)).finally(() => { this.compacting = undefined; });
  }

  /**
   * Starts a new log at the current resourceVersion, writes the snapshot of that moment (stored
   * objects are immutable, so holding them is enough), then removes the logs it covers.
   */
  private async compact(): Promise<void> {
    this.flush();
    const rv = Number(this.store.resourceVersion);
    const snapshot = this.store.snapshot();
    const oldFd = this.logFd;
    this.logFd = fs.openSync(logPath(this.file, rv), 'a');
    this.logBytes = 0;
    this.writes = this.writes.then(() => close(oldFd)).catch((err: unknown) => this.fail(err));
    const tmp = tmpPath(this.file);
    const fd = fs.openSync(tmp, 'w');
    let bytes = 0;
    try {
      let chunk = [snapshotHeader(rv)];
      for (const line of snapshotLines(snapshot)) {
        chunk.push(line);
        if (chunk.length < SNAPSHOT_CHUNK) continue;
        bytes += await this.writeChunk(fd, chunk);
        chunk = [];
      }
      bytes += await this.writeChunk(fd, chunk);
      await fsync(fd);
    } finally {
      await close(fd);
    }
    fs.renameSync(tmp, this.file);
    this.snapshotBytes = bytes;
    await this.writes; // the old log's last lines are written before it is removed
    removeStale(this.file, rv);
  }

  private async writeChunk(fd: number, lines: string[]): Promise<number> {
    const data = Buffer.from(lines.join(''));
    for (let off = 0; off < data.length;) off += (await write(fd, data, off, data.length - off)).bytesWritten;
    return data.length;
  }

  /** Stops listening and writes everything committed so far. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.flush();
    await this.compacting;
    const fd = this.logFd;
    await (this.writes = this.writes.then(() => close(fd)));
  }
}
