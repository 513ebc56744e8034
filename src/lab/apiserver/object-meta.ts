// Metadata the server owns: uid, timestamps, generated names, and the fields an update may not
// change (rest.BeforeCreate / BeforeUpdate in k8s.io/apiserver).
import { randomInt, randomUUID } from 'node:crypto';
import type { KubeObject, ObjectMeta } from './types.js';

/** RFC 3339 with second precision, as metav1.Time serialises. */
export function timestamp(at: Date = new Date()): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The alphabet of names.SimpleNameGenerator: no vowels, no look-alike characters. */
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function generateNameSuffix(): string {
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
  return suffix;
}

/** Server-set metadata of a new object. */
export function stampNewObject(meta: ObjectMeta, withGeneration: boolean): void {
  meta.uid = randomUUID();
  meta.creationTimestamp = timestamp();
  delete meta.deletionTimestamp;
  delete meta.deletionGracePeriodSeconds;
  delete meta.resourceVersion;
  if (withGeneration) meta.generation = 1;
  else delete meta.generation;
}

/** Carries over what a client cannot change by update: identity, timestamps, generation. */
export function keepServerOwnedMeta(next: KubeObject, old: KubeObject): void {
  const meta = next.metadata;
  const prev = old.metadata;
  meta.name = prev.name;
  if (prev.namespace !== undefined) meta.namespace = prev.namespace;
  else delete meta.namespace;
  meta.uid = prev.uid;
  meta.creationTimestamp = prev.creationTimestamp;
  for (const key of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'generateName'] as const) {
    if (prev[key] !== undefined) meta[key] = prev[key] as never;
    else delete meta[key];
  }
  meta.resourceVersion = prev.resourceVersion;
}
