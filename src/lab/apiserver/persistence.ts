// Optional persistence of the lab's state: a JSON file rewritten (atomically, debounced) after
// writes and read back at start. History is not saved, so watches from before a restart get 410.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ApiStore } from './api-store.js';
import type { StorageSnapshot } from './storage.js';

interface StateFile extends StorageSnapshot {
  format: 'fast-lab-apiserver/v1';
}

/** Loads a state file into the store; false when there is none yet. */
export function loadState(store: ApiStore, file: string): boolean {
  if (!fs.existsSync(file)) return false;
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<StateFile>;
  if (data.format !== 'fast-lab-apiserver/v1' || typeof data.resourceVersion !== 'number' || !data.objects) {
    throw new Error(`${file} is not a lab API server state file`);
  }
  store.restore({ resourceVersion: data.resourceVersion, objects: data.objects });
  return true;
}

export class StateSaver {
  private timer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;

  constructor(private readonly store: ApiStore, private readonly file: string, private readonly debounceMs = 100) {
    this.unsubscribe = store.onChange(() => this.schedule());
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.save();
    }, this.debounceMs);
  }

  /** Writes the state now (write to a temporary file, then rename: never a torn file). */
  save(): void {
    const state: StateFile = { format: 'fast-lab-apiserver/v1', ...this.store.snapshot() };
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, this.file);
  }

  /** Stops listening and writes any pending change. */
  close(): void {
    this.unsubscribe();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.save();
    }
  }
}
