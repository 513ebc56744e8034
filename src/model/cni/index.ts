// The pure CNI model: versions, errors, configuration, requests, results, GC and STATUS.

export * from './versions.js';
export * from './errors.js';
export * from './version-check.js';
export * from './identifiers.js';
export * from './addresses.js';
export * from './fields.js';
export * from './args.js';
export * from './result.js';
export { parseDns } from './prev-result.js';
export * from './netconf.js';
export * from './gc.js';
export * from './status.js';
export * from './request.js';
