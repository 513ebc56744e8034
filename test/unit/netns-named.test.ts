// Named network namespaces made in-process (src/dataplane/net/netns.ts), checked with iproute2:
// `ip netns` lists them, `ip -n` works in them with lo up, they are distinct from the caller's
// namespace (which the caller is back in), `ip netns del` removes them, and our deletion leaves
// neither a mount nor a file. Every namespace is removed even when a test fails.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import {
  addNamedNetns, addNamedNetnsSync, deleteNamedNetns, deleteNamedNetnsSync, netnsExists, withNetnsSync, NetnsError,
} from '../../src/dataplane/net/netns.js';
import { sh, uniqueName } from '../helpers/netns.js';

const made = new Set<string>();
after(() => {
  for (const n of made) {
    try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); } catch { /* gone already */ }
  }
});

function fresh(): string {
  const n = uniqueName('fnsu');
  made.add(n);
  return n;
}

/** Mount points of this mount namespace whose path ends with /name. */
function mountsOf(name: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.endsWith(`/netns/${name}`));
}

function nsInode(path: string): number {
  return fs.statSync(path).ino;
}

test('a namespace made in-process is listed by ip netns, usable by ip -n, has lo up, and is not ours', async () => {
  const name = fresh();
  const before = nsInode('/proc/thread-self/ns/net');
  const file = await addNamedNetns(name);
  assert.equal(file, `/var/run/netns/${name}`);
  assert.ok(netnsExists(file), 'an nsfs bind mount');
  assert.equal(nsInode('/proc/thread-self/ns/net'), before, 'the caller is back in its own namespace');
  assert.notEqual(nsInode(file), before, 'a new namespace, not the caller\'s');
  assert.ok(sh('ip', ['netns', 'list']).split('\n').some((l) => l.split(' ')[0] === name), 'ip netns list shows it');

  const lo = JSON.parse(sh('ip', ['-n', name, '-j', 'link', 'show', 'dev', 'lo'])) as Array<{ flags: string[]; operstate: string }>;
  assert.ok(lo[0]!.flags.includes('UP'), `lo is up: ${lo[0]!.flags.join(',')}`);
  const links = JSON.parse(sh('ip', ['-n', name, '-j', 'link', 'show'])) as unknown[];
  assert.equal(links.length, 1, 'only lo: a fresh namespace');
  // lo up means 127.0.0.1 answers inside it.
  sh('ip', ['netns', 'exec', name, 'ping', '-c1', '-W1', '127.0.0.1']);
  assert.equal(mountsOf(name).length, 1, 'one bind mount');

  await deleteNamedNetns(name);
  assert.equal(mountsOf(name).length, 0, 'no mount left');
  assert.ok(!fs.existsSync(file), 'no file left');
  assert.ok(!sh('ip', ['netns', 'list']).split('\n').some((l) => l.split(' ')[0] === name));
});

test('withNetnsSync runs inside a namespace made in-process and returns', () => {
  const name = fresh();
  const file = addNamedNetnsSync(name);
  try {
    const own = nsInode('/proc/thread-self/ns/net');
    const inside = withNetnsSync(file, () => nsInode('/proc/thread-self/ns/net'));
    assert.equal(inside, nsInode(file));
    assert.equal(nsInode('/proc/thread-self/ns/net'), own);
  } finally {
    deleteNamedNetnsSync(name);
  }
});

test('ip netns del removes a namespace made in-process without leaving a mount', () => {
  const name = fresh();
  addNamedNetnsSync(name);
  sh('ip', ['netns', 'del', name]);
  assert.equal(mountsOf(name).length, 0);
  assert.ok(!fs.existsSync(`/var/run/netns/${name}`));
});

test('a namespace made by ip netns add is deleted in-process without leaving a mount', () => {
  const name = fresh();
  sh('ip', ['netns', 'add', name]);
  deleteNamedNetnsSync(name);
  assert.equal(mountsOf(name).length, 0);
  assert.ok(!fs.existsSync(`/var/run/netns/${name}`));
});

test('an existing name is refused with a clear error and the existing namespace is left intact', () => {
  const name = fresh();
  const file = addNamedNetnsSync(name);
  try {
    const ino = nsInode(file);
    assert.throws(() => addNamedNetnsSync(name), (err: unknown) => {
      assert.ok(err instanceof NetnsError);
      assert.equal(err.code, 'EEXIST');
      assert.match(err.message, new RegExp(`network namespace "${name}" already exists`));
      return true;
    });
    assert.equal(nsInode(file), ino, 'the same namespace is still there');
    assert.equal(mountsOf(name).length, 1);
  } finally {
    deleteNamedNetnsSync(name);
  }
});

test('invalid names are refused before anything is made', () => {
  for (const bad of ['', '.', '..', 'a/b', '../etc', 'x'.repeat(255)]) {
    assert.throws(() => addNamedNetnsSync(bad), (err: unknown) => {
      assert.ok(err instanceof NetnsError, `${JSON.stringify(bad)}: ${String(err)}`);
      assert.equal(err.code, 'EINVAL');
      assert.match(err.message, /invalid network namespace name/);
      return true;
    });
    assert.throws(() => deleteNamedNetnsSync(bad), /invalid network namespace name/);
  }
});

test('deleting a namespace that does not exist is not an error', async () => {
  const name = fresh();
  await deleteNamedNetns(name);
  deleteNamedNetnsSync(name);
});

test('a plain file in the way (not a namespace) is reported as existing, and delete removes it', () => {
  const name = fresh();
  const file = `/var/run/netns/${name}`;
  fs.writeFileSync(file, '');
  assert.throws(() => addNamedNetnsSync(name), /already exists/);
  deleteNamedNetnsSync(name); // EINVAL from umount2 (not a mount point) is expected; the file goes
  assert.ok(!fs.existsSync(file));
});
