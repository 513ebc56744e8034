// The validation of built-in kinds that clients most often run into (names, labels, pod
// containers, workload selectors, immutable fields), with kube-apiserver's messages.
import type { FieldError } from './errors.js';
import { requirementsFromLabelSelector, matchesLabels } from './selectors.js';
import { isJsonObject, jsonEqual, type JsonObject, type KubeObject } from './types.js';

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = `${DNS1123_LABEL}(\\.${DNS1123_LABEL})*`;
const DNS1035_LABEL = '[a-z]([-a-z0-9]*[a-z0-9])?';

export type NameRule = 'subdomain' | 'label' | 'dns1035' | 'path-segment';

const NAME_RULES: Record<Exclude<NameRule, 'path-segment'>, { regex: RegExp; max: number; message: string }> = {
  subdomain: {
    regex: new RegExp(`^${DNS1123_SUBDOMAIN}$`),
    max: 253,
    message: `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '${DNS1123_SUBDOMAIN}')`,
  },
  label: {
    regex: new RegExp(`^${DNS1123_LABEL}$`),
    max: 63,
    message: `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '${DNS1123_LABEL}')`,
  },
  dns1035: {
    regex: new RegExp(`^${DNS1035_LABEL}$`),
    max: 63,
    message: `a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '${DNS1035_LABEL}')`,
  },
};

export function validateName(name: string, rule: NameRule): FieldError[] {
  if (rule === 'path-segment') {
    if (name === '.' || name === '..' || name.includes('/') || name.includes('%')) {
      return [{ type: 'FieldValueInvalid', field: 'metadata.name', badValue: name, detail: `may not contain '/' or '%'` }];
    }
    return [];
  }
  const r = NAME_RULES[rule];
  const errs: FieldError[] = [];
  if (name.length > r.max) {
    errs.push({ type: 'FieldValueInvalid', field: 'metadata.name', badValue: name, detail: `must be no more than ${r.max} characters` });
  }
  if (!r.regex.test(name)) errs.push({ type: 'FieldValueInvalid', field: 'metadata.name', badValue: name, detail: r.message });
  return errs;
}

const LABEL_KEY_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function validLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (slash >= 0 && (prefix.length > 253 || !new RegExp(`^${DNS1123_SUBDOMAIN}$`).test(prefix))) return false;
  return name.length <= 63 && LABEL_KEY_NAME.test(name);
}

export function validateObjectMeta(obj: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  for (const [key, value] of Object.entries(obj.metadata.labels ?? {})) {
    if (!validLabelKey(key)) {
      errs.push({ type: 'FieldValueInvalid', field: 'metadata.labels', badValue: key, detail: `name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` });
    }
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      errs.push({ type: 'FieldValueInvalid', field: 'metadata.labels', badValue: value, detail: `a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` });
    }
  }
  for (const [key, value] of Object.entries(obj.metadata.annotations ?? {})) {
    if (typeof value !== 'string') {
      errs.push({ type: 'FieldValueTypeInvalid', field: `metadata.annotations.${key}`, badValue: value, detail: 'must be a string' });
    }
  }
  return errs;
}

function validateContainers(containers: unknown, path: string, required: boolean): FieldError[] {
  if (!Array.isArray(containers) || containers.length === 0) {
    return required ? [{ type: 'FieldValueRequired', field: path }] : [];
  }
  const errs: FieldError[] = [];
  const names = new Set<string>();
  containers.forEach((c, i) => {
    const at = `${path}[${i}]`;
    if (!isJsonObject(c)) return;
    if (typeof c.name !== 'string' || c.name === '') errs.push({ type: 'FieldValueRequired', field: `${at}.name` });
    else if (names.has(c.name)) errs.push({ type: 'FieldValueDuplicate', field: `${at}.name`, badValue: c.name });
    else names.add(c.name);
    if (typeof c.image !== 'string' || c.image === '') errs.push({ type: 'FieldValueRequired', field: `${at}.image` });
  });
  return errs;
}

export function validatePodSpec(spec: unknown, path: string): FieldError[] {
  const s = isJsonObject(spec) ? spec : {};
  return [
    ...validateContainers(s.containers, `${path}.containers`, true),
    ...validateContainers(s.initContainers, `${path}.initContainers`, false),
  ];
}

export function validatePod(pod: KubeObject): FieldError[] {
  return validatePodSpec(pod.spec, 'spec');
}

/** Pod spec fields a pod update may change (ValidatePodUpdate); everything else is immutable. */
function mutablePodSpecView(spec: unknown): unknown {
  if (!isJsonObject(spec)) return spec;
  const view: JsonObject = { ...spec };
  const stripImages = (list: unknown): unknown =>
    Array.isArray(list) ? list.map((c) => (isJsonObject(c) ? { ...c, image: undefined } : c)) : list;
  view.containers = stripImages(spec.containers);
  view.initContainers = stripImages(spec.initContainers);
  delete view.activeDeadlineSeconds;
  delete view.tolerations;
  delete view.terminationGracePeriodSeconds;
  return view;
}

export function validatePodUpdate(pod: KubeObject, old: KubeObject): FieldError[] {
  if (jsonEqual(mutablePodSpecView(pod.spec), mutablePodSpecView(old.spec))) return [];
  return [{
    type: 'FieldValueForbidden',
    field: 'spec',
    detail: 'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
  }];
}

/** Deployments, ReplicaSets and StatefulSets: a selector that selects the template's labels. */
export function validateWorkload(obj: KubeObject): FieldError[] {
  const spec = isJsonObject(obj.spec) ? obj.spec : {};
  const errs: FieldError[] = [];
  const selector = spec.selector;
  const template = isJsonObject(spec.template) ? spec.template : {};
  const templateMeta = isJsonObject(template.metadata) ? template.metadata : {};
  const labels = isJsonObject(templateMeta.labels) ? (templateMeta.labels as Record<string, string>) : {};
  const reqs = requirementsFromLabelSelector(selector);
  if (!isJsonObject(selector)) {
    errs.push({ type: 'FieldValueRequired', field: 'spec.selector' });
  } else if (reqs.length === 0) {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.selector', badValue: selector, detail: 'empty selector is invalid for deployment' });
  } else if (!matchesLabels(reqs, labels)) {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.template.metadata.labels', badValue: labels, detail: '`selector` does not match template `labels`' });
  }
  if (typeof spec.replicas === 'number' && spec.replicas < 0) {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.replicas', badValue: spec.replicas, detail: 'must be greater than or equal to 0' });
  }
  errs.push(...validatePodSpec(template.spec, 'spec.template.spec'));
  return errs;
}

export function validateWorkloadUpdate(obj: KubeObject, old: KubeObject): FieldError[] {
  const selector = (o: KubeObject): string => JSON.stringify(isJsonObject(o.spec) ? o.spec.selector : undefined);
  if (selector(obj) === selector(old)) return [];
  const badValue = isJsonObject(obj.spec) ? obj.spec.selector : undefined;
  return [{ type: 'FieldValueInvalid', field: 'spec.selector', badValue, detail: 'field is immutable' }];
}
