// Tables of custom resources: the Name column plus the CRD version's additionalPrinterColumns
// (or Age when it declares none), as apiextensions-apiserver's tableconvertor builds them.
import { jsonPathValues } from './jsonpath.js';
import { ageOf, column, NAME_COLUMN, type ColumnDefinition, type TableConvertor } from './table.js';
import { isJsonObject, type KubeObject } from './types.js';

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

const DEFAULT_COLUMNS: PrinterColumn[] = [
  {
    name: 'Age',
    type: 'date',
    jsonPath: '.metadata.creationTimestamp',
    description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  },
];

export function printerColumnsOf(version: unknown): PrinterColumn[] {
  if (!isJsonObject(version) || !Array.isArray(version.additionalPrinterColumns)) return DEFAULT_COLUMNS;
  const columns = version.additionalPrinterColumns.filter(isJsonObject).map((c) => ({
    name: String(c.name ?? ''),
    type: String(c.type ?? 'string'),
    format: typeof c.format === 'string' ? c.format : undefined,
    description: typeof c.description === 'string' ? c.description : undefined,
    priority: typeof c.priority === 'number' ? c.priority : 0,
    jsonPath: String(c.jsonPath ?? ''),
  }));
  return columns.length > 0 ? columns : DEFAULT_COLUMNS;
}

function cellFor(obj: KubeObject, col: PrinterColumn, now: number): unknown {
  let values: unknown[];
  try {
    values = jsonPathValues(obj, col.jsonPath);
  } catch {
    return null;
  }
  if (values.length === 0) return null;
  if (values.length > 1) return values.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(' ');
  const value = values[0];
  if (col.type === 'date') return typeof value === 'string' ? ageOf(value, now) : null;
  if (col.type === 'integer' && typeof value === 'number') return Math.trunc(value);
  return value;
}

export function customResourceTable(columns: PrinterColumn[]): TableConvertor {
  const definitions: ColumnDefinition[] = [
    NAME_COLUMN,
    ...columns.map((c) => column(c.name, c.type, {
      format: c.format ?? '',
      description: c.description ?? `Custom resource definition column (in JSONPath format): ${c.jsonPath}`,
      priority: c.priority ?? 0,
    })),
  ];
  return {
    columns: definitions,
    cells: (obj, now) => [obj.metadata.name ?? '', ...columns.map((c) => cellFor(obj, c, now))],
  };
}
