// The lab kubelet's plugin runner (src/lab/kubelet/spawn.ts, posix_spawn) with real executables:
// stdin, stdout, stderr, environment, exit codes and signals, default signal dispositions in the
// child, large outputs, no zombie left; and CniRunner running a conflist through it (prevResult
// handed on, plugin errors reported with their CNI code).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runExecutable } from '../../src/lab/kubelet/spawn.js';
import { CniRunner, CniPluginError, type ConfList } from '../../src/lab/kubelet/cni-runner.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fast-spawn-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

/** Zombie children of this process (reaped children leave none). */
function zombies(): number {
  let n = 0;
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' && Number(f[1]) === process.pid) n++;
    } catch { /* gone */ }
  }
  return n;
}

test('stdin reaches the program, stdout and stderr come back, the exit code is reported', async () => {
  const file = script('echo', 'read line; echo "out:$line:$GREETING"; echo "err:$CNI_COMMAND" >&2; exit 3');
  const r = await runExecutable(file, { GREETING: 'hello', CNI_COMMAND: 'ADD', PATH: '/usr/bin:/bin' }, 'from-stdin\n');
  assert.deepEqual(r, { code: 3, stdout: 'out:from-stdin:hello\n', stderr: 'err:ADD\n' });
});

test('the program gets exactly the given environment', async () => {
  const r = await runExecutable('/usr/bin/env', { A: '1', B: 'two words', SKIPPED: undefined }, '');
  assert.equal(r.code, 0);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['A=1', 'B=two words']);
});

test('signals are at their defaults and unblocked in the program (Node ignores SIGPIPE; a plugin must not inherit that)', async () => {
  const file = script('sigs', 'grep -E "^Sig(Ign|Blk):" /proc/self/status');
  const r = await runExecutable(file, { PATH: '/usr/bin:/bin' }, '');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /SigBlk:\s+0+\n/);
  assert.match(r.stdout, /SigIgn:\s+0+\n/);
});

test('a program killed by a signal reports 128 + the signal; a program that reads nothing still runs', async () => {
  const killed = await runExecutable(script('kill', 'kill -9 $$'), { PATH: '/usr/bin:/bin' }, 'x'.repeat(200_000));
  assert.equal(killed.code, 128 + 9);
  const quiet = await runExecutable(script('quiet', 'exit 0'), {}, 'x'.repeat(200_000));
  assert.equal(quiet.code, 0);
});

test('large outputs are read whole, many runs at once leave no zombie', async () => {
  const file = script('big', 'head -c 300000 /dev/zero | tr "\\0" a');
  const runs = await Promise.all(Array.from({ length: 20 }, () => runExecutable(file, { PATH: '/usr/bin:/bin' }, '')));
  for (const r of runs) {
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, 300_000);
  }
  assert.equal(zombies(), 0);
});

test('a missing or non-executable program is refused with its path and the reason', async () => {
  await assert.rejects(runExecutable(path.join(dir, 'missing'), {}, ''), /spawn .*missing: No such file or directory/);
  const plain = path.join(dir, 'plain');
  fs.writeFileSync(plain, 'not a program', { mode: 0o644 });
  await assert.rejects(runExecutable(plain, {}, ''), /spawn .*plain: Permission denied/);
  assert.equal(zombies(), 0);
});

test('CniRunner runs a conflist through it: prevResult handed on, CNI errors reported with their code', async () => {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'first'), `#!/bin/sh
cat > /dev/null
echo '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.7/24"}]}'
`, { mode: 0o755 });
  // The second plugin echoes the prevResult it got, plus its command and container ID.
  fs.writeFileSync(path.join(bin, 'second'), `#!/bin/sh
conf=$(cat)
case "$conf" in *'"prevResult"'*'10.9.0.7/24'*) ;; *) echo '{"code":7,"msg":"no prevResult"}'; exit 1;; esac
echo "{\\"cniVersion\\":\\"1.0.0\\",\\"ips\\":[{\\"address\\":\\"10.9.0.7/24\\"}],\\"dns\\":{\\"domain\\":\\"$CNI_COMMAND-$CNI_CONTAINERID\\"}}"
`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'failing'), `#!/bin/sh
cat > /dev/null
echo '{"cniVersion":"1.0.0","code":11,"msg":"try again later","details":"pool busy"}'
exit 1
`, { mode: 0o755 });
  const runner = new CniRunner([bin]);
  const att = { containerId: 'c0ffee', netns: '/var/run/netns/none', ifName: 'eth0', args: { K8S_POD_NAME: 'p' } };
  const list: ConfList = { cniVersion: '1.0.0', name: 'test', plugins: [{ type: 'first' }, { type: 'second' }] };
  const result = await runner.add(list, att) as { dns: { domain: string } };
  assert.equal(result.dns.domain, 'ADD-c0ffee');
  await assert.rejects(runner.add({ ...list, plugins: [{ type: 'failing' }] }, att), (err: unknown) => {
    assert.ok(err instanceof CniPluginError);
    assert.equal(err.code, 11);
    assert.match(err.message, /plugin type="failing" failed \(code 11\): try again later: pool busy/);
    return true;
  });
  assert.equal(zombies(), 0);
});
