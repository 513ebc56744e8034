// CNI error values and their spec output form.

import { LATEST } from './versions.js';

// Spec "Well-known Error Codes" (0-99 reserved by the spec).
export const CniErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironmentVariables: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
} as const;

// The same codes as standalone constants, for call sites that read better with them.
export const ERR_INCOMPATIBLE_VERSION = CniErrorCode.IncompatibleVersion;
export const ERR_UNSUPPORTED_FIELD = CniErrorCode.UnsupportedField;
export const ERR_UNKNOWN_CONTAINER = CniErrorCode.UnknownContainer;
export const ERR_INVALID_ENV = CniErrorCode.InvalidEnvironmentVariables;
export const ERR_IO_FAILURE = CniErrorCode.IoFailure;
export const ERR_DECODING_FAILURE = CniErrorCode.DecodingFailure;
export const ERR_INVALID_NETWORK_CONFIG = CniErrorCode.InvalidNetworkConfig;
export const ERR_TRY_AGAIN_LATER = CniErrorCode.TryAgainLater;
export const ERR_PLUGIN_NOT_AVAILABLE = CniErrorCode.PluginNotAvailable;
export const ERR_LIMITED_CONNECTIVITY = CniErrorCode.LimitedConnectivity;

// Fast's own codes; the spec leaves 100 and above to plugins.
export const FastErrorCode = {
  PoolExhausted: 100,
  NoPoolForPod: 101,
  StaticAddressConflict: 102,
  DatapathFailure: 103,
  Internal: 104,
} as const;

export const SPEC_ERROR_CODES: readonly number[] = Object.values(CniErrorCode);
export const FAST_ERROR_CODES: readonly number[] = Object.values(FastErrorCode);

export interface CniErrorOutput {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  readonly code: number;
  readonly msg: string;
  readonly details?: string;

  constructor(code: number, msg: string, details?: string) {
    super(details === undefined ? msg : `${msg}; ${details}`);
    this.name = 'CniError';
    this.code = code;
    this.msg = msg;
    if (details !== undefined) this.details = details;
  }

  // The spec's error result. Its cniVersion should echo the request's version; callers that
  // failed before learning it (undecodable stdin) fall back to the latest we speak.
  toJSON(cniVersion: string = LATEST): CniErrorOutput {
    const out: CniErrorOutput = { cniVersion, code: this.code, msg: this.msg };
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

export function isCniError(value: unknown): value is CniError {
  return value instanceof CniError;
}

// Turns anything thrown into a CniError so the agent can always answer in spec form; an
// unexpected exception is our bug, hence "internal".
export function toCniError(value: unknown): CniError {
  if (value instanceof CniError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new CniError(FastErrorCode.Internal, 'internal error', message);
}

export function invalidConfig(msg: string, details?: string): CniError {
  return new CniError(CniErrorCode.InvalidNetworkConfig, msg, details);
}

export function invalidEnv(msg: string, details?: string): CniError {
  return new CniError(CniErrorCode.InvalidEnvironmentVariables, msg, details);
}
