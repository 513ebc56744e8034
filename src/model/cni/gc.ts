// The GC command's list of attachments the runtime still wants kept.
//
// Spec 1.1.0 names the key "cni.dev/valid-attachments"; an earlier draft of the spec said
// "cni.dev/attachments", and libcni (since 1.2.3) sends both with the same value so plugins
// written against either keep working. We accept either and prefer the spec's spelling.

import { invalidConfig } from './errors.js';
import { isJsonObject, ownField, wrongType, type JsonObject } from './fields.js';

export const VALID_ATTACHMENTS_KEY = 'cni.dev/valid-attachments';
export const LEGACY_ATTACHMENTS_KEY = 'cni.dev/attachments';

export interface GcAttachment {
  containerID: string;
  ifname: string;
}

// Only types are enforced, not the container-ID and interface-name character rules: an entry
// that could never have been ADDed protects nothing, so accepting it is harmless, while
// rejecting the whole list would stall garbage collection over one odd entry.
function parseAttachment(item: unknown, path: string): GcAttachment {
  if (!isJsonObject(item)) wrongType(path, 'an object', item);
  const containerID = ownField(item, 'containerID');
  const ifname = ownField(item, 'ifname');
  if (typeof containerID !== 'string') wrongType(`${path}.containerID`, 'a string', containerID);
  if (containerID === '') throw invalidConfig(`${path}.containerID must not be empty`);
  if (typeof ifname !== 'string') wrongType(`${path}.ifname`, 'a string', ifname);
  return { containerID, ifname };
}

function parseAttachmentList(value: unknown, key: string): GcAttachment[] {
  if (!Array.isArray(value)) wrongType(key, 'an array', value);
  return value.map((item, i) => parseAttachment(item, `${key}[${i}]`));
}

// Both spellings are validated when present, so a malformed duplicate is not silently
// ignored; the spec spelling wins when both are there.
export function parseValidAttachments(conf: JsonObject): GcAttachment[] | undefined {
  const current = ownField(conf, VALID_ATTACHMENTS_KEY);
  const legacy = ownField(conf, LEGACY_ATTACHMENTS_KEY);
  const currentList = current === undefined ? undefined : parseAttachmentList(current, VALID_ATTACHMENTS_KEY);
  const legacyList = legacy === undefined ? undefined : parseAttachmentList(legacy, LEGACY_ATTACHMENTS_KEY);
  return currentList ?? legacyList;
}

// The key an attachment is tracked under; the spec's state key is (network, container, ifname)
// and GC is per network, so container and interface suffice here. NUL cannot occur in either
// part (environment variables cannot hold it), so the join is unambiguous.
export function attachmentKey(containerID: string, ifname: string): string {
  return `${containerID}\0${ifname}`;
}

export function validAttachmentSet(attachments: readonly GcAttachment[]): Set<string> {
  return new Set(attachments.map((a) => attachmentKey(a.containerID, a.ifname)));
}

// True when GC must keep the attachment (containerID, ifname).
export function isValidAttachment(valid: ReadonlySet<string>, containerID: string, ifname: string): boolean {
  return valid.has(attachmentKey(containerID, ifname));
}
