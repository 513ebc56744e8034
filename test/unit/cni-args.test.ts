import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCniArgs } from '../../src/model/cni/args.js';
import { CniError } from '../../src/model/cni/errors.js';

function expectEnvError(raw: string, pattern: RegExp): void {
  assert.throws(
    () => parseCniArgs(raw),
    (e: unknown) => e instanceof CniError && e.code === 4 && pattern.test(e.message),
    `CNI_ARGS ${JSON.stringify(raw)}`,
  );
}

test('absent and empty CNI_ARGS give no pairs', () => {
  for (const raw of [undefined, '', ';', ';;;']) {
    const args = parseCniArgs(raw);
    assert.equal(args.values.size, 0);
    assert.equal(args.ignoreUnknown, false);
    assert.equal(args.podName, undefined);
  }
});

test('kubelet-style args are recognised', () => {
  const args = parseCniArgs(
    'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=9f1e2d3c-0000-4000-8000-000000000001',
  );
  assert.equal(args.ignoreUnknown, true);
  assert.equal(args.podNamespace, 'default');
  assert.equal(args.podName, 'web-0');
  assert.equal(args.podInfraContainerId, '0123abcd');
  assert.equal(args.podUid, '9f1e2d3c-0000-4000-8000-000000000001');
  assert.equal(args.values.get('K8S_POD_NAME'), 'web-0');
});

test('IgnoreUnknown accepts 1/true/0/false in any case', () => {
  for (const [text, expected] of [['1', true], ['true', true], ['TRUE', true], ['True', true], ['0', false], ['false', false], ['FALSE', false]] as const) {
    assert.equal(parseCniArgs(`IgnoreUnknown=${text};K8S_POD_NAME=a`).ignoreUnknown, expected, text);
  }
  expectEnvError('IgnoreUnknown=yes', /IgnoreUnknown/);
  expectEnvError('IgnoreUnknown=', /IgnoreUnknown/);
});

test('unknown keys are refused unless IgnoreUnknown is set', () => {
  expectEnvError('FOO=bar', /unknown key "FOO"/);
  expectEnvError('K8S_POD_NAME=a;FOO=bar', /FOO/);
  expectEnvError('IgnoreUnknown=0;FOO=bar', /FOO/);
  const args = parseCniArgs('FOO=bar;IgnoreUnknown=1');
  assert.equal(args.values.get('FOO'), 'bar');
  // Order does not matter: IgnoreUnknown may come last.
  assert.equal(args.ignoreUnknown, true);
});

test('conventional IP and MAC keys are known', () => {
  const args = parseCniArgs('IP=10.0.0.5;MAC=aa:bb:cc:dd:ee:ff');
  assert.equal(args.values.get('IP'), '10.0.0.5');
  assert.equal(args.values.get('MAC'), 'aa:bb:cc:dd:ee:ff');
});

test('malformed pairs are error 4 naming CNI_ARGS and the pair', () => {
  expectEnvError('K8S_POD_NAME', /CNI_ARGS.*"K8S_POD_NAME"/);
  expectEnvError('K8S_POD_NAME=a=b', /exactly one "="/);
  expectEnvError('=value', /empty key/);
  expectEnvError('K8S_POD_NAME=a;broken', /"broken"/);
});

test('edge values are kept verbatim', () => {
  const args = parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=;SPACE= x ;__proto__=p;constructor=c');
  assert.equal(args.podName, '');
  assert.equal(args.values.get('SPACE'), ' x ');
  assert.equal(args.values.get('__proto__'), 'p');
  assert.equal(args.values.get('constructor'), 'c');
  assert.equal(Object.getPrototypeOf(args), Object.prototype);
});

test('a repeated key keeps its last value', () => {
  assert.equal(parseCniArgs('K8S_POD_NAME=a;K8S_POD_NAME=b').podName, 'b');
});

test('a trailing separator is tolerated', () => {
  assert.equal(parseCniArgs('K8S_POD_NAME=a;').podName, 'a');
});
