// Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and pkg/fields.
import { badRequest } from './errors.js';
import { isJsonObject } from './types.js';

export type LabelOperator = '=' | '!=' | 'in' | 'notin' | 'exists' | '!' | '>' | '<';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  values: string[];
}

const KEY = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)*\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?`;
const VALUE = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const NOT_EXISTS = new RegExp(String.raw`^!\s*(${KEY})$`);
const SET_BASED = new RegExp(String.raw`^(${KEY})\s+(in|notin)\s*\((.*)\)$`);
const EQUALITY = new RegExp(String.raw`^(${KEY})\s*(==|=|!=|>|<)\s*(${VALUE})$`);
const EXISTS = new RegExp(String.raw`^(${KEY})$`);
const VALUE_ONLY = new RegExp(String.raw`^${VALUE}$`);

/** Splits on commas that are not inside parentheses ("a in (x,y),b" → two parts). */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

function parseRequirement(raw: string): LabelRequirement {
  const text = raw.trim();
  let m = NOT_EXISTS.exec(text);
  if (m) return { key: m[1], operator: '!', values: [] };
  m = SET_BASED.exec(text);
  if (m) {
    const values = m[3].split(',').map((v) => v.trim());
    for (const v of values) {
      if (!VALUE_ONLY.test(v)) throw badRequest(`unable to parse requirement: invalid label value: "${v}"`);
    }
    return { key: m[1], operator: m[2] as 'in' | 'notin', values };
  }
  m = EQUALITY.exec(text);
  if (m) {
    const op = m[2] === '==' ? '=' : (m[2] as LabelOperator);
    if ((op === '>' || op === '<') && !/^-?\d+$/.test(m[3])) {
      throw badRequest(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer`);
    }
    return { key: m[1], operator: op, values: [m[3]] };
  }
  m = EXISTS.exec(text);
  if (m) return { key: m[1], operator: 'exists', values: [] };
  throw badRequest(`unable to parse requirement: found '${text}', expected: identifier`);
}

/** Parses a labelSelector query string; the empty string selects everything. */
export function parseLabelSelector(text: string | undefined): LabelRequirement[] {
  if (!text || !text.trim()) return [];
  return splitTopLevel(text).map(parseRequirement);
}

export function matchesRequirement(req: LabelRequirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, req.key);
  const value = labels[req.key];
  switch (req.operator) {
    case '=':
      return has && value === req.values[0];
    case '!=':
      return !has || value !== req.values[0];
    case 'in':
      return has && req.values.includes(value);
    case 'notin':
      return !has || !req.values.includes(value);
    case 'exists':
      return has;
    case '!':
      return !has;
    case '>':
    case '<': {
      if (!has || !/^-?\d+$/.test(value)) return false;
      const diff = Number(value) - Number(req.values[0]);
      return req.operator === '>' ? diff > 0 : diff < 0;
    }
  }
}

export function matchesLabels(reqs: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const set = labels ?? {};
  return reqs.every((r) => matchesRequirement(r, set));
}

/** A metav1.LabelSelector ({matchLabels, matchExpressions}) as requirements. */
export function requirementsFromLabelSelector(selector: unknown): LabelRequirement[] {
  if (!isJsonObject(selector)) return [];
  const reqs: LabelRequirement[] = [];
  if (isJsonObject(selector.matchLabels)) {
    for (const [key, value] of Object.entries(selector.matchLabels)) {
      reqs.push({ key, operator: '=', values: [String(value)] });
    }
  }
  if (Array.isArray(selector.matchExpressions)) {
    for (const expr of selector.matchExpressions) {
      if (!isJsonObject(expr)) continue;
      const values = Array.isArray(expr.values) ? expr.values.map(String) : [];
      const op = String(expr.operator);
      const operator: LabelOperator =
        op === 'In' ? 'in' : op === 'NotIn' ? 'notin' : op === 'Exists' ? 'exists' : '!';
      reqs.push({ key: String(expr.key), operator, values });
    }
  }
  return reqs;
}

/** Requirements in their canonical string form, sorted by key as labels.Selector.String() does. */
export function formatLabelSelector(reqs: LabelRequirement[]): string {
  return [...reqs]
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((r) => {
      switch (r.operator) {
        case 'exists':
          return r.key;
        case '!':
          return `!${r.key}`;
        case 'in':
        case 'notin':
          return `${r.key} ${r.operator} (${[...r.values].sort().join(',')})`;
        default:
          return `${r.key}${r.operator}${r.values[0]}`;
      }
    })
    .join(',');
}

// ---- field selectors --------------------------------------------------------------------------

export interface FieldRequirement {
  field: string;
  operator: '=' | '!=';
  value: string;
}

/** Splits on separators not preceded by a backslash escape. */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) {
      current += ch + text[i + 1];
      i++;
    } else if (ch === separator) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

function unescapeFieldValue(value: string): string {
  return value.replace(/\\(.)/g, '$1');
}

function parseFieldRequirement(text: string): FieldRequirement {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') {
      i++;
      continue;
    }
    if (text.startsWith('!=', i)) {
      return { field: text.slice(0, i).trim(), operator: '!=', value: unescapeFieldValue(text.slice(i + 2)) };
    }
    if (text.startsWith('==', i)) {
      return { field: text.slice(0, i).trim(), operator: '=', value: unescapeFieldValue(text.slice(i + 2)) };
    }
    if (text[i] === '=') {
      return { field: text.slice(0, i).trim(), operator: '=', value: unescapeFieldValue(text.slice(i + 1)) };
    }
  }
  throw badRequest(`invalid selector: '${text}'; can't understand '${text}'`);
}

export function parseFieldSelector(text: string | undefined): FieldRequirement[] {
  if (!text || !text.trim()) return [];
  return splitUnescaped(text, ',').filter((p) => p.trim() !== '').map(parseFieldRequirement);
}

/** Matches against an object's field set; a field the set lacks counts as the empty string. */
export function matchesFields(reqs: FieldRequirement[], fields: Record<string, string>): boolean {
  return reqs.every((r) => {
    const value = fields[r.field] ?? '';
    return r.operator === '=' ? value === r.value : value !== r.value;
  });
}
