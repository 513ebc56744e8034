// A NETLINK_ROUTE socket over libc through koffi, used synchronously.
//
// Synchronous on purpose: rtnetlink requests are handled inside the kernel's sendmsg
// (the answer is queued before send returns) and dumps are produced by recvmsg, so a
// blocking recv never waits on anything but the kernel; and it lets a socket be opened
// inside another network namespace with withNetnsSync (setns around synchronous code):
// the socket stays bound to the namespace it was created in, whatever the thread does
// afterwards. A receive timeout turns a kernel that never answers into an error instead
// of a hung agent.
import koffi from 'koffi';
import * as c from './constants.js';
import { nlmsg, parseDone, parseError, parseMessages, type NlMsg } from './message.js';
import { libc, common, describeErrno, errnoName, ERRNO, SOCK_RAW, SOCK_CLOEXEC } from '../../../sys/libc.js';

export { describeErrno };

const sys = {
  socket: common.socket,
  bind: libc.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
  send: libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
  recv: libc.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)'),
  close: common.close,
  strerror: common.strerror,
};

const MSG_TRUNC = 0x20;
const RECV_TIMEOUT_S = 5;
const RECV_BUFFER = 64 * 1024; // dump datagrams are at most 32 KiB

export class NetlinkError extends Error {
  readonly code: string;
  constructor(readonly op: string, readonly errno: number, readonly extack?: string) {
    super(`${op}: ${describeErrno(errno)}${extack ? `: ${extack}` : ''}`);
    this.name = 'NetlinkError';
    this.code = errnoName(errno) ?? `errno ${errno}`;
  }
}

function setIntOption(fd: number, level: number, name: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  sys.setsockopt(fd, level, name, b, 4); // best effort: older kernels lack the ACK options
}

export class NetlinkSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly rx = Buffer.alloc(RECV_BUFFER);
  private closed = false;

  private constructor(private readonly fd: number) {}

  /** A socket in the calling thread's current network namespace. */
  static open(): NetlinkSocket {
    const fd = sys.socket(c.AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, c.NETLINK_ROUTE) as number;
    if (fd < 0) throw new NetlinkError('opening a netlink socket', koffi.errno());
    try {
      const addr = Buffer.alloc(12); // sockaddr_nl: family, pad, pid 0 (the kernel picks), groups 0
      addr.writeUInt16LE(c.AF_NETLINK, 0);
      if (sys.bind(fd, addr, addr.length) !== 0) throw new NetlinkError('binding a netlink socket', koffi.errno());
      setIntOption(fd, c.SOL_NETLINK, c.NETLINK_EXT_ACK, 1); // the kernel's reason in errors
      setIntOption(fd, c.SOL_NETLINK, c.NETLINK_CAP_ACK, 1); // errors without our request echoed
      const tv = Buffer.alloc(16); // struct timeval { long tv_sec; long tv_usec; }
      tv.writeBigInt64LE(BigInt(RECV_TIMEOUT_S), 0);
      sys.setsockopt(fd, c.SOL_SOCKET, c.SO_RCVTIMEO, tv, tv.length);
      return new NetlinkSocket(fd);
    } catch (err) {
      sys.close(fd);
      throw err;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sys.close(this.fd);
  }

  /**
   * Sends one request with NLM_F_ACK and returns the answers that came before the ACK
   * (a GET's reply); throws NetlinkError, named by `op`, when the kernel refuses.
   */
  request(op: string, type: number, flags: number, body: Buffer): NlMsg[] {
    return this.awaitAck(op, this.send(op, type, flags | c.NLM_F_REQUEST | c.NLM_F_ACK, body));
  }

  /**
   * The same, with the send (where the kernel does the work) on a libuv worker thread:
   * for requests that take milliseconds, such as deleting a veth (15–20 ms of RCU waits),
   * which would otherwise hold the event loop. The socket must not be used by anything
   * else until the promise settles (another request's receive would take this ACK).
   */
  async requestOffThread(op: string, type: number, flags: number, body: Buffer): Promise<NlMsg[]> {
    if (this.closed) throw new Error(`${op}: netlink socket is closed`);
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const msg = nlmsg(type, flags | c.NLM_F_REQUEST | c.NLM_F_ACK, seq, body);
    const n = await new Promise<number>((resolve, reject) => {
      sys.send.async(this.fd, msg, msg.length, 0, (err: unknown, res: unknown) => (err ? reject(err) : resolve(Number(res))));
    });
    // errno is the worker thread's and lost; netlink reports refusals in the ACK, not here.
    if (n !== msg.length) throw new NetlinkError(op, 5 /* EIO */, `send returned ${n}`);
    return this.awaitAck(op, seq);
  }

  private awaitAck(op: string, seq: number): NlMsg[] {
    const replies: NlMsg[] = [];
    for (;;) {
      for (const m of this.receive(op)) {
        if (m.seq !== seq) continue; // a late answer to an earlier, abandoned request
        if (m.type === c.NLMSG_ERROR) {
          const e = parseError(m);
          if (e.errno !== 0) throw new NetlinkError(op, e.errno, e.extack);
          return replies;
        }
        if (m.type !== c.NLMSG_NOOP) replies.push(m);
      }
    }
  }

  /** A dump: every NLM_F_MULTI part up to NLMSG_DONE. */
  dump(op: string, type: number, body: Buffer): NlMsg[] {
    const seq = this.send(op, type, c.NLM_F_REQUEST | c.NLM_F_DUMP, body);
    const parts: NlMsg[] = [];
    for (;;) {
      for (const m of this.receive(op)) {
        if (m.seq !== seq) continue;
        if (m.type === c.NLMSG_DONE) {
          const errno = parseDone(m);
          if (errno > 0) throw new NetlinkError(op, errno);
          return parts;
        }
        if (m.type === c.NLMSG_ERROR) {
          const e = parseError(m);
          throw new NetlinkError(op, e.errno || c.NLMSG_ERROR, e.extack);
        }
        if (m.type === c.NLMSG_OVERRUN) throw new NetlinkError(op, 105 /* ENOBUFS */, 'dump overrun');
        if (m.type !== c.NLMSG_NOOP) parts.push(m);
        if (!(m.flags & c.NLM_F_MULTI)) return parts; // a single-part answer
      }
    }
  }

  private send(op: string, type: number, flags: number, body: Buffer): number {
    if (this.closed) throw new Error(`${op}: netlink socket is closed`);
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const msg = nlmsg(type, flags, seq, body);
    for (;;) {
      const n = Number(sys.send(this.fd, msg, msg.length, 0));
      if (n === msg.length) return seq;
      const errno = koffi.errno();
      if (n < 0 && errno === ERRNO.EINTR) continue;
      throw new NetlinkError(op, n < 0 ? errno : ERRNO.EIO); // EIO: a short send
    }
  }

  private receive(op: string): NlMsg[] {
    for (;;) {
      const n = Number(sys.recv(this.fd, this.rx, this.rx.length, MSG_TRUNC));
      if (n < 0) {
        const errno = koffi.errno();
        if (errno === ERRNO.EINTR) continue;
        if (errno === ERRNO.EAGAIN) throw new NetlinkError(op, errno, `no answer from the kernel within ${RECV_TIMEOUT_S} s`);
        throw new NetlinkError(op, errno);
      }
      if (n > this.rx.length) throw new NetlinkError(op, ERRNO.EMSGSIZE, `answer of ${n} bytes does not fit ${this.rx.length}`);
      // Copy: the receive buffer is reused by the next call.
      return parseMessages(Buffer.from(this.rx.subarray(0, n)));
    }
  }
}

/** The same error with where it happened added to the operation ("... in /var/run/netns/x"). */
export function withPlace(err: unknown, place: string): Error {
  if (err instanceof NetlinkError) return new NetlinkError(`${err.op} ${place}`, err.errno, err.extack);
  const e = err as Error;
  return new Error(`${place}: ${e.message ?? String(err)}`);
}
