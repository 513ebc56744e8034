// Content negotiation of the Accept header: the representations kube-apiserver offers besides
// plain JSON (meta.k8s.io Table and PartialObjectMetadata, aggregated discovery).
import { notAcceptable } from './errors.js';

export interface MediaRange {
  type: string;
  params: Record<string, string>;
}

export function parseAccept(header: string | undefined): MediaRange[] {
  if (!header || !header.trim()) return [{ type: '*/*', params: {} }];
  return header.split(',').map((part) => {
    const [type, ...rest] = part.split(';').map((s) => s.trim());
    const params: Record<string, string> = {};
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq > 0) params[p.slice(0, eq).trim()] = p.slice(eq + 1).trim().replace(/^"|"$/g, '');
    }
    return { type: type.toLowerCase(), params };
  });
}

function isJsonType(type: string): boolean {
  return type === 'application/json' || type === '*/*' || type === 'application/*';
}

export type ObjectFormat = 'json' | 'table' | 'metadata';

const OFFERED = [
  'application/json',
  'application/json;as=Table;v=v1;g=meta.k8s.io',
  'application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io',
  'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io',
];

/** The first representation of an object or list the client accepts that this server offers. */
export function negotiateObjectFormat(accept: string | undefined): ObjectFormat {
  for (const range of parseAccept(accept)) {
    if (!isJsonType(range.type)) continue;
    const { as, g, v } = range.params;
    if (as === undefined) return 'json';
    if (g !== 'meta.k8s.io' || (v !== 'v1' && v !== 'v1beta1')) continue;
    if (as === 'Table') return 'table';
    if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') return 'metadata';
  }
  throw notAcceptable(OFFERED);
}

/** The aggregated discovery version asked for (v2 or v2beta1), or undefined for the legacy form. */
export function negotiateAggregatedDiscovery(accept: string | undefined): 'v2' | 'v2beta1' | undefined {
  for (const range of parseAccept(accept)) {
    if (!isJsonType(range.type)) continue;
    const { as, g, v } = range.params;
    if (as === undefined) return undefined;
    if (as === 'APIGroupDiscoveryList' && g === 'apidiscovery.k8s.io' && (v === 'v2' || v === 'v2beta1')) return v;
  }
  return undefined;
}

export function aggregatedDiscoveryContentType(version: 'v2' | 'v2beta1'): string {
  return `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList`;
}
