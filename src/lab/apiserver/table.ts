// meta.k8s.io/v1 Table responses: what `kubectl get` prints. Column sets per kind live in
// printers.ts (built-ins) and crd-table.ts (printer columns of custom resources).
import type { KubeObject, JsonObject } from './types.js';

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableConvertor {
  columns: ColumnDefinition[];
  /** One cell per column, in order; `now` is the time ages are measured from (ms). */
  cells(obj: KubeObject, now: number): unknown[];
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function column(name: string, type = 'string', options: Partial<ColumnDefinition> = {}): ColumnDefinition {
  return { name, type, format: options.format ?? '', description: options.description ?? '', priority: options.priority ?? 0 };
}

export const NAME_COLUMN = column('Name', 'string', {
  format: 'name',
  description: 'Name must be unique within a namespace. More info: http://kubernetes.io/docs/user-guide/identifiers#names',
});

/** Go's duration.HumanDuration, the "AGE" format of kubectl. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const d = Math.floor(hours / 24) % 365;
    const y = Math.floor(hours / 24 / 365);
    return d === 0 ? `${y}y` : `${y}y${d}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

/** The age of a timestamp as kubectl shows it, "<unknown>" when absent. */
export function ageOf(timestamp: unknown, now: number): string {
  if (typeof timestamp !== 'string' || timestamp === '') return '<unknown>';
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

/** The convertor kube-apiserver uses for kinds that have no printer: Name and Created At. */
export const defaultTableConvertor: TableConvertor = {
  columns: [
    NAME_COLUMN,
    column('Created At', 'date', { description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' }),
  ],
  cells: (obj) => [obj.metadata.name ?? '', obj.metadata.creationTimestamp ?? null],
};

export interface TableOptions {
  includeObject: IncludeObject;
  /** Omit columnDefinitions (every watch event after the first). */
  noHeaders?: boolean;
  listMeta?: JsonObject;
  now?: number;
}

function rowObject(obj: KubeObject, include: IncludeObject): JsonObject | undefined {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function buildTable(convertor: TableConvertor, objects: KubeObject[], options: TableOptions): JsonObject {
  const now = options.now ?? Date.now();
  const rows = objects.map((obj) => {
    const row: JsonObject = { cells: convertor.cells(obj, now) };
    const object = rowObject(obj, options.includeObject);
    if (object) row.object = object;
    return row;
  });
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: options.listMeta ?? {},
    columnDefinitions: options.noHeaders ? [] : convertor.columns,
    rows,
  };
}
