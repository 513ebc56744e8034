// The subset of kubectl/client-go JSONPath that CRD printer columns use: `.a.b`, `['a.b']`,
// `[0]`, `[-1]`, `[*]`, `.*`, `[1:3]` and filters like `[?(@.type=="Ready")]`.
import { isJsonObject } from './types.js';

type Segment =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'slice'; start?: number; end?: number }
  | { kind: 'wildcard' }
  | { kind: 'filter'; path: Segment[]; op?: string; literal?: unknown };

export class JsonPathError extends Error {}

/** Finds the index of the bracket closing the one at `open`, skipping quoted text. */
function closingBracket(text: string, open: number): number {
  let quote: string | undefined;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '[') {
      depth++;
    } else if (ch === ']') {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new JsonPathError(`unclosed bracket in ${text}`);
}

function parseLiteral(text: string): unknown {
  const t = text.trim();
  if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) return t.slice(1, -1);
  if (t === 'true' || t === 'false') return t === 'true';
  if (t !== '' && !Number.isNaN(Number(t))) return Number(t);
  throw new JsonPathError(`unsupported literal ${t}`);
}

function parseFilter(inner: string): Segment {
  const body = inner.replace(/^\?\(/, '').replace(/\)$/, '').trim();
  const m = /^@((?:\.[^=!<>\s]+|\[[^\]]*\])*)\s*(==|!=|<=|>=|<|>)?\s*(.*)$/.exec(body);
  if (!m) throw new JsonPathError(`unsupported filter ${inner}`);
  const path = parseSegments(m[1]);
  return m[2] ? { kind: 'filter', path, op: m[2], literal: parseLiteral(m[3]) } : { kind: 'filter', path };
}

function parseBracket(inner: string): Segment {
  const t = inner.trim();
  if (t === '*') return { kind: 'wildcard' };
  if (t.startsWith('?')) return parseFilter(t);
  if (/^-?\d+$/.test(t)) return { kind: 'index', index: Number(t) };
  const slice = /^(-?\d*):(-?\d*)$/.exec(t);
  if (slice) {
    return { kind: 'slice', start: slice[1] ? Number(slice[1]) : undefined, end: slice[2] ? Number(slice[2]) : undefined };
  }
  return { kind: 'field', name: String(parseLiteral(t)) };
}

function parseSegments(path: string): Segment[] {
  const segments: Segment[] = [];
  let i = 0;
  while (i < path.length) {
    if (path[i] === '.') {
      i++;
      let j = i;
      while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
      const name = path.slice(i, j);
      if (name === '*') segments.push({ kind: 'wildcard' });
      else if (name !== '') segments.push({ kind: 'field', name });
      i = j;
    } else if (path[i] === '[') {
      const close = closingBracket(path, i);
      segments.push(parseBracket(path.slice(i + 1, close)));
      i = close + 1;
    } else {
      throw new JsonPathError(`unexpected character ${path[i]} in ${path}`);
    }
  }
  return segments;
}

export function parseJsonPath(expression: string): Segment[] {
  let text = expression.trim();
  if (text.startsWith('{') && text.endsWith('}')) text = text.slice(1, -1).trim();
  if (text.startsWith('$')) text = text.slice(1);
  if (text !== '' && !text.startsWith('.') && !text.startsWith('[')) text = `.${text}`;
  return parseSegments(text);
}

function compare(value: unknown, op: string, literal: unknown): boolean {
  switch (op) {
    case '==':
      return value === literal;
    case '!=':
      return value !== literal;
    default: {
      if (typeof value !== 'number' || typeof literal !== 'number') return false;
      if (op === '<') return value < literal;
      if (op === '>') return value > literal;
      if (op === '<=') return value <= literal;
      return value >= literal;
    }
  }
}

function children(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (isJsonObject(value)) return Object.values(value);
  return [];
}

function step(values: unknown[], segment: Segment): unknown[] {
  const out: unknown[] = [];
  for (const value of values) {
    switch (segment.kind) {
      case 'field':
        if (isJsonObject(value) && value[segment.name] !== undefined) out.push(value[segment.name]);
        break;
      case 'index':
        if (Array.isArray(value)) {
          const idx = segment.index < 0 ? value.length + segment.index : segment.index;
          if (idx >= 0 && idx < value.length) out.push(value[idx]);
        }
        break;
      case 'slice':
        if (Array.isArray(value)) out.push(...value.slice(segment.start, segment.end));
        break;
      case 'wildcard':
        out.push(...children(value));
        break;
      case 'filter':
        for (const item of children(value)) {
          const found = evaluate(segment.path, [item]);
          if (segment.op === undefined ? found.length > 0 : found.some((f) => compare(f, segment.op!, segment.literal))) {
            out.push(item);
          }
        }
        break;
    }
  }
  return out;
}

function evaluate(segments: Segment[], roots: unknown[]): unknown[] {
  return segments.reduce(step, roots);
}

/** Every value the expression selects in `root` (empty when nothing matches). */
export function jsonPathValues(root: unknown, expression: string): unknown[] {
  return evaluate(parseJsonPath(expression), [root]);
}
