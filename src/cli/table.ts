// Plain-text tables for people; every CLI also has `-o json` for scripts.
export function renderTable(headers: string[], rows: Array<Array<string | number | boolean | undefined>>): string {
  const cells = rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

export type OutputFormat = 'table' | 'json';

export function parseOutputFlag(args: string[]): { format: OutputFormat; rest: string[] } {
  const rest: string[] = [];
  let format: OutputFormat = 'table';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-o' || a === '--output') format = args[++i] === 'json' ? 'json' : 'table';
    else if (a === '-ojson' || a === '--output=json') format = 'json';
    else rest.push(a);
  }
  return { format, rest };
}
