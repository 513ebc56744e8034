// Network namespace helpers: entering a namespace for a synchronous section, and named
// namespaces under /var/run/netns made and removed in-process, the way `ip netns add/del` do
// (iproute2 ip/ipnetns.c), without a child process per namespace.
import * as fs from 'node:fs';
import koffi from 'koffi';
import { libc, common, ERRNO, AF_INET, SOCK_DGRAM, SOCK_CLOEXEC } from '../../sys/libc.js';

const CLONE_NEWNET = 0x40000000;
const NSFS_MAGIC = 0x6e736673;

const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_SHARED = 0x100000;
const MNT_DETACH = 2;

const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;
/** struct ifreq: 16 bytes of name, then a union whose first member here is short ifr_flags. */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

export const NETNS_RUN_DIR = '/var/run/netns';

const sys = {
  close: common.close,
  setns: common.setns,
  unshare: libc.func('int unshare(int flags)'),
  mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)'),
  umount2: libc.func('int umount2(const char *target, int flags)'),
  socket: common.socket,
  ioctl: libc.func('int ioctl(int fd, unsigned long request, ...)'),
  strerror: common.strerror,
};

/** A failed system call, with errno and what we were doing. */
export class NetnsError extends Error {
  /** 'EEXIST': the namespace already exists; 'EINVAL': not a valid name. */
  readonly code?: string;
  constructor(message: string, readonly errno?: number, code?: string) {
    super(errno === undefined ? message : `${message}: ${sys.strerror(errno)} (errno ${errno})`);
    this.name = 'NetnsError';
    this.code = code;
  }
}

/** Throws unless a libc call returned >= 0 (errno is read right after the call). */
function checked(rc: number, what: string): number {
  if (rc < 0) throw new NetnsError(what, koffi.errno());
  return rc;
}

/** True only for a network namespace handle (a bind mount of nsfs or /proc/PID/ns/net). */
export function netnsExists(path: string): boolean {
  try {
    return fs.statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

function returnTo(self: number): void {
  if (sys.setns(self, CLONE_NEWNET) !== 0) {
    // Continuing in the wrong namespace would corrupt everything after this point.
    process.stderr.write('fatal: cannot return to the original network namespace\n');
    process.exit(70);
  }
}

/**
 * Runs a synchronous function with the calling (main) thread switched into another
 * network namespace, and switches back even if it throws. Only synchronous code may
 * run inside: setns() is per thread and the event loop must not observe the switch.
 */
export function withNetnsSync<T>(path: string, fn: () => T): T {
  const target = fs.openSync(path, 'r');
  try {
    return switchedSync(() => {
      if (sys.setns(target, CLONE_NEWNET) !== 0) throw new NetnsError(`setns ${path} failed`, koffi.errno());
    }, fn);
  } finally {
    fs.closeSync(target);
  }
}

/** Remembers the thread's namespace, `enter`s another, runs `fn`, and always returns. */
function switchedSync<T>(enter: () => void, fn: () => T): T {
  const self = fs.openSync('/proc/thread-self/ns/net', 'r');
  try {
    enter();
    try {
      return fn();
    } finally {
      returnTo(self);
    }
  } finally {
    fs.closeSync(self);
  }
}

/**
 * Runs a synchronous function with the calling thread in a brand-new network namespace
 * (unshare), then returns to the original one. The new namespace lives on only if `fn`
 * pins it (a bind mount of /proc/thread-self/ns/net, an open socket, …).
 */
function inNewNetnsSync<T>(fn: () => T): T {
  return switchedSync(() => checked(sys.unshare(CLONE_NEWNET), 'unshare(CLONE_NEWNET)'), fn);
}

/** iproute2's rule: not empty, not "." or "..", no "/", shorter than NAME_MAX. */
export function checkNetnsName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0') || Buffer.byteLength(name) >= 255) {
    throw new NetnsError(`invalid network namespace name ${JSON.stringify(name)}: it must be a non-empty file name without "/" (not "." or "..", under 255 bytes)`, undefined, 'EINVAL');
  }
}

let runDirShared = false;

/**
 * Makes /var/run/netns a shared mount point (once per process, as `ip netns add` does every
 * time), so that the namespace bind mounts propagate to other mount namespaces (`ip netns exec`,
 * containers) and unmounting one here unmounts it there too, letting the namespace be freed.
 */
function ensureSharedRunDir(): void {
  if (runDirShared) return;
  fs.mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  let madeMountPoint = false;
  while (sys.mount('', NETNS_RUN_DIR, 'none', MS_SHARED | MS_REC, null) !== 0) {
    const errno = koffi.errno();
    // EINVAL: not a mount point yet; bind it onto itself once and try again.
    if (errno !== ERRNO.EINVAL || madeMountPoint) throw new NetnsError(`mount --make-shared ${NETNS_RUN_DIR} failed`, errno);
    checked(sys.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', MS_BIND | MS_REC, null), `mount --bind ${NETNS_RUN_DIR} ${NETNS_RUN_DIR} failed`);
    madeMountPoint = true;
  }
  runDirShared = true;
}

/** Sets IFF_UP on an interface of the calling thread's network namespace (SIOCSIFFLAGS). */
function setLinkUpSync(ifname: string): void {
  const fd = checked(sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), 'socket(AF_INET)');
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(ifname, 0, IFNAMSIZ - 1, 'utf8');
    checked(sys.ioctl(fd, SIOCGIFFLAGS, 'void *', ifr), `SIOCGIFFLAGS ${ifname}`);
    ifr.writeUInt16LE(ifr.readUInt16LE(IFNAMSIZ) | IFF_UP, IFNAMSIZ);
    checked(sys.ioctl(fd, SIOCSIFFLAGS, 'void *', ifr), `SIOCSIFFLAGS ${ifname} up`);
  } finally {
    sys.close(fd);
  }
}

/**
 * Creates the named network namespace /var/run/netns/NAME with `lo` up, in-process and
 * synchronously (what `ip netns add NAME` and `ip -n NAME link set lo up` do). Throws if the
 * name is invalid or the namespace already exists; leaves nothing behind when it fails.
 */
export function addNamedNetnsSync(name: string): string {
  checkNetnsName(name);
  ensureSharedRunDir();
  const file = `${NETNS_RUN_DIR}/${name}`;
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new NetnsError(`network namespace "${name}" already exists (${file})`, undefined, 'EEXIST');
    throw new NetnsError(`cannot create namespace file ${file}: ${(err as Error).message}`);
  }
  try {
    inNewNetnsSync(() => {
      checked(sys.mount('/proc/thread-self/ns/net', file, 'none', MS_BIND, null), `bind mount of the new network namespace on ${file} failed`);
      setLinkUpSync('lo');
    });
  } catch (err) {
    deleteNamedNetnsSync(name);
    throw err;
  }
  return file;
}

/**
 * Removes the named network namespace (`ip netns del NAME`): detaches its bind mount, so the
 * kernel frees the namespace once nothing else holds it, and unlinks the file. A namespace
 * that does not exist is not an error (deletion is idempotent).
 */
export function deleteNamedNetnsSync(name: string): void {
  checkNetnsName(name);
  const file = `${NETNS_RUN_DIR}/${name}`;
  if (sys.umount2(file, MNT_DETACH) !== 0) {
    const errno = koffi.errno();
    // EINVAL: not a mount point (a half-made namespace); ENOENT: already gone.
    if (errno !== ERRNO.EINVAL && errno !== ERRNO.ENOENT) throw new NetnsError(`umount ${file} failed`, errno);
  }
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new NetnsError(`cannot remove namespace file ${file}: ${(err as Error).message}`);
  }
}

/** Named namespaces under /var/run/netns (tests and the lab use these). */
export async function addNamedNetns(name: string): Promise<string> {
  return addNamedNetnsSync(name);
}

export async function deleteNamedNetns(name: string): Promise<void> {
  deleteNamedNetnsSync(name);
}
