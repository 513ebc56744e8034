// STATUS (spec 1.1.0): success means "ready for ADD"; failure uses one of two dedicated codes.

import { CniError, CniErrorCode, SPEC_ERROR_CODES } from './errors.js';

// 50: the plugin cannot serve ADD right now, existing pods are unaffected (for Fast: the
// agent is unreachable or still starting).
export function pluginNotAvailable(msg: string, details?: string): CniError {
  return new CniError(CniErrorCode.PluginNotAvailable, msg, details);
}

// 51: the plugin cannot serve ADD and existing pods may have degraded connectivity (for
// Fast: the datapath is not loaded or the agent reports it broken).
export function limitedConnectivity(msg: string, details?: string): CniError {
  return new CniError(CniErrorCode.LimitedConnectivity, msg, details);
}

export function isStatusErrorCode(code: number): boolean {
  return code === CniErrorCode.PluginNotAvailable || code === CniErrorCode.LimitedConnectivity;
}

// Protocol errors (bad version, bad config) stay as they are; a Fast-specific failure is
// reported as 50 so a runtime that only knows the spec's STATUS codes still reads "not ready".
export function asStatusError(error: CniError): CniError {
  if (SPEC_ERROR_CODES.includes(error.code)) return error;
  return pluginNotAvailable(error.msg, error.details);
}
