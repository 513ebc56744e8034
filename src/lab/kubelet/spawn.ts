// Runs a CNI plugin (an executable reading stdin, answering on stdout) with posix_spawn(3)
// instead of child_process.spawn. Node's spawn forks the whole Node process (page tables of a
// ~100 MB heap, copy-on-write faults afterwards) for every plugin; glibc's posix_spawn uses
// clone(CLONE_VM|CLONE_VFORK), which copies nothing. The lab kubelet runs two plugins per pod,
// so this is most of what a pod costs it. What the plugin sees is what Node's spawn gives it:
// stdin/stdout/stderr pipes, the given environment, default signal dispositions, no signal
// blocked, the kubelet's other descriptors closed (they are all close-on-exec).
import * as net from 'node:net';
import koffi from 'koffi';
import { libc, common, O_CLOEXEC } from '../../sys/libc.js';

const sys = {
  posixSpawn: libc.func('int posix_spawn(_Out_ int *pid, const char *path, const void *fileActions, const void *attr, const char **argv, const char **envp)'),
  actionsInit: libc.func('int posix_spawn_file_actions_init(void *fileActions)'),
  actionsDup2: libc.func('int posix_spawn_file_actions_adddup2(void *fileActions, int fd, int newfd)'),
  actionsDestroy: libc.func('int posix_spawn_file_actions_destroy(void *fileActions)'),
  attrInit: libc.func('int posix_spawnattr_init(void *attr)'),
  attrSetFlags: libc.func('int posix_spawnattr_setflags(void *attr, short flags)'),
  attrSetSigDefault: libc.func('int posix_spawnattr_setsigdefault(void *attr, const void *sigset)'),
  attrSetSigMask: libc.func('int posix_spawnattr_setsigmask(void *attr, const void *sigset)'),
  attrDestroy: libc.func('int posix_spawnattr_destroy(void *attr)'),
  sigemptyset: libc.func('int sigemptyset(void *sigset)'),
  pipe2: libc.func('int pipe2(void *fds, int flags)'),
  waitpid: libc.func('int waitpid(int pid, _Out_ int *status, int options)'),
  close: common.close,
  strerror: common.strerror,
};

const WNOHANG = 1;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSIGDEF = 0x04;
// glibc x86-64/aarch64 sizes, with room to spare.
const FILE_ACTIONS_SIZE = 128;
const ATTR_SIZE = 512;
const SIGSET_SIZE = 128;

export interface PluginExit {
  /** Exit status, or 128 + signal number if a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
}

function pipe(): [read: number, write: number] {
  const fds = Buffer.alloc(8);
  if (sys.pipe2(fds, O_CLOEXEC) !== 0) throw new Error(`pipe2: ${sys.strerror(koffi.errno())}`);
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

/** Every signal at its default action and none blocked in the child, as Node's spawn does. */
function spawnAttributes(): Buffer {
  const attr = Buffer.alloc(ATTR_SIZE);
  // Every bit set by hand: sigfillset leaves out glibc's internal real-time signals (32, 33),
  // which this process ignores and the child would otherwise inherit ignored.
  const all = Buffer.alloc(SIGSET_SIZE, 0xff);
  const none = Buffer.alloc(SIGSET_SIZE);
  sys.attrInit(attr);
  sys.sigemptyset(none);
  sys.attrSetSigDefault(attr, all);
  sys.attrSetSigMask(attr, none);
  sys.attrSetFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  return attr;
}

/** Starts `file` with the pipes as its stdin/stdout/stderr; returns its pid. */
function start(file: string, env: string[], stdin: number, stdout: number, stderr: number): number {
  const actions = Buffer.alloc(FILE_ACTIONS_SIZE);
  const attr = spawnAttributes();
  sys.actionsInit(actions);
  try {
    sys.actionsDup2(actions, stdin, 0);
    sys.actionsDup2(actions, stdout, 1);
    sys.actionsDup2(actions, stderr, 2);
    const pid = [0];
    const rc = sys.posixSpawn(pid, file, actions, attr, [file, null], [...env, null]);
    if (rc !== 0) throw Object.assign(new Error(`spawn ${file}: ${sys.strerror(rc)}`), { errno: rc });
    return pid[0]!;
  } finally {
    sys.actionsDestroy(actions);
    sys.attrDestroy(attr);
  }
}

/** Reaps the child once its output is closed (it normally exits right then). */
function reap(pid: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const status = [0];
    let delay = 1;
    const poll = () => {
      const r = sys.waitpid(pid, status, WNOHANG);
      if (r === pid) {
        const s = status[0]!;
        resolve((s & 0x7f) === 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f));
      } else if (r < 0) {
        reject(new Error(`waitpid ${pid}: ${sys.strerror(koffi.errno())}`));
      } else {
        setTimeout(poll, delay);
        delay = Math.min(delay * 2, 50);
      }
    };
    poll();
  });
}

function collect(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = new net.Socket({ fd, readable: true, writable: false });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', reject);
    s.on('close', () => resolve(text));
  });
}

/** Runs the executable with this environment and stdin; resolves when it has exited. */
export async function runExecutable(file: string, env: NodeJS.ProcessEnv, input: string): Promise<PluginExit> {
  const envList = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const [inR, inW] = pipe();
  const [outR, outW] = pipe();
  const [errR, errW] = pipe();
  let pid: number;
  try {
    pid = start(file, envList, inR, outW, errW);
  } catch (err) {
    for (const fd of [inW, outR, errR]) sys.close(fd);
    throw err;
  } finally {
    for (const fd of [inR, outW, errW]) sys.close(fd); // the child's ends
  }
  const stdin = new net.Socket({ fd: inW, readable: false, writable: true });
  stdin.on('error', () => {}); // EPIPE: the plugin exited without reading; its exit status tells
  stdin.end(input);
  const [stdout, stderr] = await Promise.all([collect(outR), collect(errR)]);
  return { code: await reap(pid), stdout, stderr };
}
