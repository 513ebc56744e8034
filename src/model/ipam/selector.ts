// Kubernetes metav1.LabelSelector: validation and matching (pure), with the semantics of
// metav1.LabelSelectorAsSelector: all matchLabels and all matchExpressions must hold; an empty
// selector ({}) matches everything. An absent selector is the caller's business (for pool
// affinities it means "no constraint").

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: LabelSelectorOperator;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export type Labels = Readonly<Record<string, string>>;

const OPERATORS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Problems of a selector as found in an object (untrusted input); [] when it is valid. */
export function validateSelector(sel: unknown, path: string): string[] {
  if (sel === undefined || sel === null) return [];
  if (!isRecord(sel)) return [`${path} must be an object`];
  const out: string[] = [];
  for (const k of Object.keys(sel)) {
    if (k !== 'matchLabels' && k !== 'matchExpressions') out.push(`${path}.${k} is not a label selector field`);
  }
  const ml = sel['matchLabels'];
  if (ml !== undefined && ml !== null) {
    if (!isRecord(ml)) out.push(`${path}.matchLabels must be a map of strings`);
    else
      for (const [k, v] of Object.entries(ml)) {
        if (k === '') out.push(`${path}.matchLabels has an empty key`);
        if (typeof v !== 'string') out.push(`${path}.matchLabels.${k} must be a string`);
      }
  }
  const me = sel['matchExpressions'];
  if (me !== undefined && me !== null) {
    if (!Array.isArray(me)) out.push(`${path}.matchExpressions must be a list`);
    else
      me.forEach((r: unknown, i) => {
        const p = `${path}.matchExpressions[${i}]`;
        if (!isRecord(r)) {
          out.push(`${p} must be an object`);
          return;
        }
        if (typeof r['key'] !== 'string' || r['key'] === '') out.push(`${p}.key must be a non-empty string`);
        const op = r['operator'];
        if (typeof op !== 'string' || !OPERATORS.includes(op)) {
          out.push(`${p}.operator must be one of In, NotIn, Exists, DoesNotExist (got ${JSON.stringify(op)})`);
          return;
        }
        const values = r['values'];
        if (values !== undefined && values !== null && (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))) {
          out.push(`${p}.values must be a list of strings`);
          return;
        }
        const n = Array.isArray(values) ? values.length : 0;
        if ((op === 'In' || op === 'NotIn') && n === 0) out.push(`${p}: operator ${op} needs at least one value`);
        if ((op === 'Exists' || op === 'DoesNotExist') && n > 0) out.push(`${p}: operator ${op} takes no values`);
      });
  }
  return out;
}

function has(labels: Labels, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(labels, key);
}

function requirementMatches(r: LabelSelectorRequirement, labels: Labels): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return has(labels, r.key) && values.includes(labels[r.key]!);
    case 'NotIn':
      return !has(labels, r.key) || !values.includes(labels[r.key]!);
    case 'Exists':
      return has(labels, r.key);
    case 'DoesNotExist':
      return !has(labels, r.key);
    default:
      return false; // unknown operator: match nothing (validateSelector reports it)
  }
}

/** Whether `labels` satisfy the selector. An undefined selector matches everything. */
export function matchesSelector(sel: LabelSelector | undefined, labels: Labels | undefined): boolean {
  if (!sel) return true;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (!has(l, k) || l[k] !== v) return false;
  }
  for (const r of sel.matchExpressions ?? []) {
    if (!requirementMatches(r, l)) return false;
  }
  return true;
}

/** kubectl-like text: `app=web,tier in (a,b),!legacy`. */
export function formatSelector(sel: LabelSelector | undefined): string {
  if (!sel) return '<none>';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const r of sel.matchExpressions ?? []) {
    const vs = (r.values ?? []).join(',');
    switch (r.operator) {
      case 'In':
        parts.push(`${r.key} in (${vs})`);
        break;
      case 'NotIn':
        parts.push(`${r.key} notin (${vs})`);
        break;
      case 'Exists':
        parts.push(r.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${r.key}`);
        break;
    }
  }
  return parts.length === 0 ? '<everything>' : parts.join(',');
}
