// The error for a cniVersion Fast does not speak, shared by every entry point that takes one.

import { CniError, CniErrorCode } from './errors.js';
import { isSupportedVersion, SUPPORTED_VERSIONS, type CniVersion } from './versions.js';

// Spec: "If the cniVersion in the network configuration is not supported by the plugin, the
// plugin should return an error code 1". The supported list goes in the message itself so it
// shows in runtime logs that print only msg.
export function incompatibleVersionError(version: unknown): CniError {
  const problem =
    version === undefined
      ? 'cniVersion is missing, which means 0.1.0'
      : `incompatible CNI version ${JSON.stringify(version)}`;
  return new CniError(
    CniErrorCode.IncompatibleVersion,
    `${problem}; supported versions: ${SUPPORTED_VERSIONS.join(', ')}`,
  );
}

export function requireSupportedVersion(version: unknown): CniVersion {
  if (!isSupportedVersion(version)) throw incompatibleVersionError(version);
  return version;
}
