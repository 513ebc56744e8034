// The committed eBPF objects are exactly what their sources compile to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';

test('committed bpf/*.o match a fresh build of bpf/*.c', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-bpf-build-'));
  try {
    const build = path.join(tmp, 'bpf');
    fs.cpSync('bpf', build, { recursive: true });
    const objects = fs.readdirSync('bpf').filter((f) => f.endsWith('.o'));
    assert.ok(objects.length > 0, 'no committed objects');
    for (const o of objects) fs.rmSync(path.join(build, o));
    execFileSync('make', ['-s', '-C', build], { stdio: 'pipe' });
    for (const o of objects) {
      const fresh = fs.readFileSync(path.join(build, o));
      const committed = fs.readFileSync(path.join('bpf', o));
      assert.ok(fresh.equals(committed), `bpf/${o} is stale: run make -C bpf and commit the result`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
