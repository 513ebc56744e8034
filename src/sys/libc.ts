// libc through koffi, loaded once per process. The calls several modules need (close,
// strerror, setns, socket) are declared here once; a module that needs something only it
// uses (posix_spawn, mount, send/recv, ioctl) declares it with `libc.func` on this handle.
import koffi from 'koffi';
import * as os from 'node:os';

export const libc = koffi.load('libc.so.6');

export const common = {
  close: libc.func('int close(int fd)'),
  strerror: libc.func('const char *strerror(int errnum)'),
  setns: libc.func('int setns(int fd, int nstype)'),
  socket: libc.func('int socket(int domain, int type, int protocol)'),
};

/** errno values by name, as Node knows them for this platform (ERRNO.ENOENT, ...): no
 *  module writes the numbers by hand. */
export const ERRNO = os.constants.errno;

/** socket(2) address families and types (Linux values). */
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;

/** O_CLOEXEC, also SOCK_CLOEXEC on Linux (socket(2) takes the open flag's value). */
export const O_CLOEXEC = 0o2000000;
export const SOCK_CLOEXEC = O_CLOEXEC;

const ERRNO_NAMES = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** "EEXIST", or undefined for a number Node does not name. */
export function errnoName(errno: number): string | undefined {
  return ERRNO_NAMES.get(errno);
}

/** "File exists (EEXIST)". */
export function describeErrno(errno: number): string {
  const name = ERRNO_NAMES.get(errno);
  return `${common.strerror(errno)}${name ? ` (${name})` : ` (errno ${errno})`}`;
}
