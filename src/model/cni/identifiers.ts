// Name rules from the spec's parameter definitions. Each check returns the reason a value is
// unacceptable, or undefined when it is fine, so callers pick the error code and wording.

// Spec: container IDs and network names start with an alphanumeric character, then any
// mix of alphanumerics, underscore, dot and hyphen.
const SPEC_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

// Linux IFNAMSIZ is 16 bytes including the terminating NUL.
export const MAX_IFNAME_BYTES = 15;

function nameProblem(value: string): string | undefined {
  if (value === '') return 'is empty';
  if (!SPEC_NAME.test(value)) {
    return 'must start with a letter or digit and contain only letters, digits, "_", "." and "-"';
  }
  return undefined;
}

export function containerIdProblem(value: string): string | undefined {
  return nameProblem(value);
}

export function networkNameProblem(value: string): string | undefined {
  return nameProblem(value);
}

// The kernel's dev_valid_name rules, as the spec restates them. NUL is refused as well: C
// code would silently truncate the name there and act on a different interface.
export function interfaceNameProblem(value: string): string | undefined {
  if (value === '') return 'is empty';
  if (Buffer.byteLength(value, 'utf8') > MAX_IFNAME_BYTES) {
    return `is longer than ${MAX_IFNAME_BYTES} bytes`;
  }
  if (value === '.' || value === '..') return 'must not be "." or ".."';
  if (/[/:\s\0]/u.test(value)) return 'must not contain "/", ":", whitespace or NUL';
  return undefined;
}

export function isValidContainerId(value: string): boolean {
  return containerIdProblem(value) === undefined;
}

export function isValidInterfaceName(value: string): boolean {
  return interfaceNameProblem(value) === undefined;
}

export function isValidNetworkName(value: string): boolean {
  return networkNameProblem(value) === undefined;
}
