// CNI spec versions Fast speaks, and which commands exist in each.
//
// Only the versions the reference plugins still accept are listed: 0.1.0 and 0.2.0 use the
// pre-0.3 result shape (ip4/ip6 objects) that no current runtime sends.

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

export const LATEST: CniVersion = '1.1.0';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;

export type CniCommand = (typeof CNI_COMMANDS)[number];

// The first spec version that defines each command (spec "Released versions" table:
// CHECK arrived in 0.4.0, GC and STATUS in 1.1.0).
const COMMAND_INTRODUCED_IN: Readonly<Record<CniCommand, string>> = {
  ADD: '0.1.0',
  DEL: '0.1.0',
  VERSION: '0.2.0',
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
};

export function isSupportedVersion(value: unknown): value is CniVersion {
  return typeof value === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(value);
}

export function isCniCommand(value: unknown): value is CniCommand {
  return typeof value === 'string' && (CNI_COMMANDS as readonly string[]).includes(value);
}

// Splits "x.y.z" into numbers; anything that is not three decimal parts is not a version.
export function parseVersion(version: string): [number, number, number] | undefined {
  const match = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})$/.exec(version);
  if (match === null) return undefined;
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

// Orders two versions numerically (so "0.10.0" > "0.4.0"); throws on malformed input
// because comparing garbage silently would hide a bug in the caller.
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (pa === undefined || pb === undefined) {
    throw new TypeError(`cannot compare malformed versions ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
  }
  for (let i = 0; i < 3; i++) {
    const d = pa[i]! - pb[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export function versionAtLeast(version: string, minimum: string): boolean {
  return compareVersions(version, minimum) >= 0;
}

export function versionBefore(version: string, limit: string): boolean {
  return compareVersions(version, limit) < 0;
}

export function commandIntroducedIn(command: CniCommand): string {
  return COMMAND_INTRODUCED_IN[command];
}

export function supportsCommand(version: CniVersion, command: CniCommand): boolean {
  return versionAtLeast(version, COMMAND_INTRODUCED_IN[command]);
}

export function commandsForVersion(version: CniVersion): CniCommand[] {
  return CNI_COMMANDS.filter((command) => supportsCommand(version, command));
}

// Results before 1.0.0 carry "version": "4"|"6" on each IP entry.
export function resultHasIpVersion(version: CniVersion): boolean {
  return versionBefore(version, '1.0.0');
}

// Interface mtu/socketPath/pciID and route mtu/advmss/priority/table/scope are 1.1.0 additions.
export function resultHasExtendedFields(version: CniVersion): boolean {
  return versionAtLeast(version, '1.1.0');
}

// The VERSION command's answer. Spec 1.x: its cniVersion is the one given on input; when the
// input named none we speak (or none at all), we answer in the latest, as libcni does.
export function versionInfo(cniVersion: CniVersion = LATEST): { cniVersion: CniVersion; supportedVersions: CniVersion[] } {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}
