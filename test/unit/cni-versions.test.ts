import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CNI_COMMANDS,
  commandsForVersion,
  compareVersions,
  isCniCommand,
  isSupportedVersion,
  LATEST,
  parseVersion,
  resultHasExtendedFields,
  resultHasIpVersion,
  SUPPORTED_VERSIONS,
  supportsCommand,
  versionAtLeast,
  versionInfo,
} from '../../src/model/cni/versions.js';

test('supported versions are exactly the ones the reference plugins accept', () => {
  assert.deepEqual([...SUPPORTED_VERSIONS], ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  assert.equal(LATEST, '1.1.0');
  for (const v of SUPPORTED_VERSIONS) assert.ok(isSupportedVersion(v));
  for (const v of ['0.1.0', '0.2.0', '1.2.0', '1.1', '', 'v1.0.0', ' 1.0.0', 1, null, undefined]) {
    assert.ok(!isSupportedVersion(v), `${String(v)} must not be supported`);
  }
});

test('versions compare numerically, not as strings', () => {
  assert.equal(compareVersions('0.10.0', '0.4.0'), 1);
  assert.equal(compareVersions('0.4.0', '0.10.0'), -1);
  assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
  for (let i = 0; i < SUPPORTED_VERSIONS.length; i++) {
    for (let j = 0; j < SUPPORTED_VERSIONS.length; j++) {
      assert.equal(compareVersions(SUPPORTED_VERSIONS[i]!, SUPPORTED_VERSIONS[j]!), Math.sign(i - j));
      assert.equal(versionAtLeast(SUPPORTED_VERSIONS[i]!, SUPPORTED_VERSIONS[j]!), i >= j);
    }
  }
  assert.equal(parseVersion('1.2'), undefined);
  assert.equal(parseVersion('a.b.c'), undefined);
  assert.throws(() => compareVersions('x', '1.0.0'), TypeError);
});

test('commands available per version: CHECK from 0.4.0, GC and STATUS from 1.1.0', () => {
  const expected: Record<string, string[]> = {
    '0.3.0': ['ADD', 'DEL', 'VERSION'],
    '0.3.1': ['ADD', 'DEL', 'VERSION'],
    '0.4.0': ['ADD', 'DEL', 'CHECK', 'VERSION'],
    '1.0.0': ['ADD', 'DEL', 'CHECK', 'VERSION'],
    '1.1.0': ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'],
  };
  for (const v of SUPPORTED_VERSIONS) {
    assert.deepEqual(commandsForVersion(v), expected[v], v);
    for (const c of CNI_COMMANDS) assert.equal(supportsCommand(v, c), expected[v]!.includes(c), `${v} ${c}`);
  }
});

test('result shape flags per version', () => {
  for (const v of SUPPORTED_VERSIONS) {
    assert.equal(resultHasIpVersion(v), v.startsWith('0.'), v);
    assert.equal(resultHasExtendedFields(v), v === '1.1.0', v);
  }
});

test('command names are exact and upper case', () => {
  for (const c of CNI_COMMANDS) assert.ok(isCniCommand(c));
  for (const c of ['add', 'Add', 'GET', '', 'ADD ']) assert.ok(!isCniCommand(c));
});

test('VERSION answer lists every supported version', () => {
  for (const v of SUPPORTED_VERSIONS) {
    assert.deepEqual(versionInfo(v), { cniVersion: v, supportedVersions: [...SUPPORTED_VERSIONS] });
  }
  assert.equal(versionInfo().cniVersion, LATEST);
});
