import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../../src/model/cni/errors.js';
import {
  isValidAttachment,
  LEGACY_ATTACHMENTS_KEY,
  parseValidAttachments,
  VALID_ATTACHMENTS_KEY,
  validAttachmentSet,
} from '../../src/model/cni/gc.js';

const LIST = [
  { containerID: '3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755', ifname: 'eth0' },
  { containerID: '3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755', ifname: 'net1' },
];

function expectInvalid(conf: Record<string, unknown>, pattern: RegExp): void {
  assert.throws(
    () => parseValidAttachments(conf),
    (e: unknown) => e instanceof CniError && e.code === 7 && pattern.test(e.message),
    JSON.stringify(conf),
  );
}

test('either spelling of the attachments key is accepted', () => {
  assert.deepEqual(parseValidAttachments({ [VALID_ATTACHMENTS_KEY]: LIST }), LIST);
  assert.deepEqual(parseValidAttachments({ [LEGACY_ATTACHMENTS_KEY]: LIST }), LIST);
  assert.equal(parseValidAttachments({}), undefined);
  assert.deepEqual(parseValidAttachments({ [VALID_ATTACHMENTS_KEY]: [] }), []);
});

test('the spec spelling wins when libcni sends both', () => {
  const other = [{ containerID: 'x', ifname: 'eth0' }];
  assert.deepEqual(parseValidAttachments({ [VALID_ATTACHMENTS_KEY]: LIST, [LEGACY_ATTACHMENTS_KEY]: other }), LIST);
});

test('malformed attachment lists are error 7 naming the entry', () => {
  expectInvalid({ [VALID_ATTACHMENTS_KEY]: 'c1/eth0' }, /cni\.dev\/valid-attachments must be an array, got a string/);
  expectInvalid({ [VALID_ATTACHMENTS_KEY]: null }, /must be an array, got null/);
  expectInvalid({ [VALID_ATTACHMENTS_KEY]: [null] }, /valid-attachments\[0\] must be an object/);
  expectInvalid({ [VALID_ATTACHMENTS_KEY]: [{ ifname: 'eth0' }] }, /valid-attachments\[0\]\.containerID must be a string/);
  expectInvalid({ [VALID_ATTACHMENTS_KEY]: [{ containerID: '', ifname: 'eth0' }] }, /containerID must not be empty/);
  expectInvalid({ [VALID_ATTACHMENTS_KEY]: [LIST[0], { containerID: 'c', ifname: 5 }] }, /valid-attachments\[1\]\.ifname must be a string/);
  // A broken legacy copy is reported even when the spec spelling is fine.
  expectInvalid({ [VALID_ATTACHMENTS_KEY]: LIST, [LEGACY_ATTACHMENTS_KEY]: {} }, /cni\.dev\/attachments must be an array/);
});

test('valid attachment set lookups match container and interface together', () => {
  const set = validAttachmentSet(LIST);
  assert.ok(isValidAttachment(set, LIST[0]!.containerID, 'eth0'));
  assert.ok(isValidAttachment(set, LIST[0]!.containerID, 'net1'));
  assert.ok(!isValidAttachment(set, LIST[0]!.containerID, 'net2'));
  assert.ok(!isValidAttachment(set, 'other', 'eth0'));
  // Concatenation ambiguity must not create false matches.
  const tricky = validAttachmentSet([{ containerID: 'ab', ifname: 'c' }]);
  assert.ok(!isValidAttachment(tricky, 'a', 'bc'));
});
