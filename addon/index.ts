// Typed wrapper around the native addon: the only module that loads the .node file.
// It validates arguments so the C++ side can trust them.
// Named imports: `import * as` copies every export of node:fs through a helper, which cgm's
// start-up pays once per module.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface Ucred {
  pid: number;
  uid: number;
  gid: number;
}

export interface NativeSocket {
  /** 0 sent, 1 queued, negative errno when refused (e.g. -3 ESRCH, -32 EPIPE). */
  write(data: Buffer, fds?: number[], cred?: Ucred): number;
  close(): void;
  setReading(on: boolean): void;
  readonly fd: number;
  readonly pendingWrites: number;
  /** bytes written but still waiting for the peer to read (held in our memory) */
  readonly queuedBytes: number;
}

/**
 * `from` is the sender's address on a datagram socket (sun_path bytes; an abstract name
 * starts with a NUL), undefined when the sender is unnamed or on a stream socket.
 */
export type ReadHandler = (data: Buffer, fds: number[] | undefined, cred: Ucred | undefined, from: Buffer | undefined) => void;

/** A unix socket's own and its peer's address bytes; undefined when unnamed or not connected. */
export interface SocketAddresses {
  local: Buffer | undefined;
  peer: Buffer | undefined;
}
export type CloseHandler = (errno: number) => void;
/** Called when a write queue that had to wait for the peer has emptied. */
export type DrainHandler = () => void;
/** Called when accept fails for lack of fds or memory (errno); accepting resumes after a pause. */
export type AcceptErrorHandler = (errno: number) => void;

interface NativeModule {
  Socket: new (fd: number, datagram: boolean, onRead: ReadHandler, onClose: CloseHandler, onDrain?: DrainHandler) => NativeSocket;
  Listener: new (fd: number, onConnection: (fd: number) => void, onError?: AcceptErrorHandler, retryMs?: number) => { close(): void };
  listenUnix(path: string, backlog: number): number;
  connectUnix(path: string, nonBlocking: boolean): number;
  peerCred(fd: number): Ucred;
  setPassCred(fd: number, on: boolean): void;
  socketKind(fd: number): { domain: 'unix' | 'other'; type: 'dgram' | 'stream' | 'seqpacket' | 'other' };
  socketPair(datagram: boolean): [number, number];
  socketAddresses(fd: number, bindIfUnnamed: boolean): SocketAddresses;
  drainDatagrams(fd: number, max: number): number;
  pidfdOpen(pid: number): number;
  pidfdExited(fd: number): boolean;
  closeFd(fd: number): void;
  notifyDatagram(socketPath: string, text: string): void;
  bpfLoadDeviceProgram(insns: Buffer, name: string): number;
  bpfAttachDeviceProgram(cgroupFd: number, progFd: number, replaceFd: number): void;
  bpfDetachDeviceProgram(cgroupFd: number, progFd: number): void;
  bpfQueryDevicePrograms(cgroupFd: number): number[];
  bpfProgramFdById(id: number): number;
  bpfProgramId(progFd: number): number;
  EventFd: new (onSignal: (count: number) => void) => EventCounter;
}

/** An eventfd(2) the addon polls: `onSignal(count)` runs with the counter each time the kernel adds to it. */
export interface EventCounter {
  /** the eventfd, to register with the kernel (cgroup.event_control); -1 once closed */
  readonly fd: number;
  /** stops watching and closes the eventfd */
  close(): void;
}

/**
 * The addon could not be loaded: not built, deleted, or built for another Node. Entry
 * points (cgmanager, cgm, cgproxy) print its message as their one error line.
 */
export class AddonLoadError extends Error {
  readonly code = 'ADDON_LOAD_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'AddonLoadError';
  }
}

// Where the .node file may be, relative to this module: dist/addon/index.js and
// addon/index.ts are both two levels below the package root, and cgm's bundle is
// dist/client/cgm-bundle.js, also two levels down. $CGMANAGER_ADDON overrides (tests
// and packagers that install it elsewhere).
function addonCandidates(): string[] {
  const fromEnv = process.env.CGMANAGER_ADDON;
  if (fromEnv) return [fromEnv];
  return [join(__dirname, '..', '..', 'addon', 'build', 'Release', 'cgm_native.node'), join(__dirname, 'build', 'Release', 'cgm_native.node')];
}

function loadNative(): NativeModule {
  const candidates = addonCandidates();
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    try {
      return require(file) as NativeModule;
    } catch (err) {
      const why = String((err as Error)?.message ?? err).split('\n')[0];
      throw new AddonLoadError(`cannot load the native addon ${file}: ${why} (rebuild it: npm rebuild cgmanager, with npm_config_nodedir=/usr where Node's headers are installed)`);
    }
  }
  const where = candidates[0] ?? 'addon/build/Release/cgm_native.node';
  throw new AddonLoadError(`native addon not built: no ${where} (build it: npm rebuild cgmanager, with npm_config_nodedir=/usr where Node's headers are installed)`);
}

// Loaded on first use, not at import: `--help` works without it, and a missing addon
// surfaces inside the entry points' error handling as one line, not a stack trace.
let loaded: NativeModule | undefined;
function native(): NativeModule {
  loaded ??= loadNative();
  return loaded;
}

/** Loads the addon now; throws AddonLoadError when it is missing or broken. */
export function assertAddonLoadable(): void {
  native();
}

function assertFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new TypeError(`not a file descriptor: ${fd}`);
}

function assertCred(cred: Ucred): void {
  if (!Number.isInteger(cred.pid) || cred.pid < -0x80000000 || cred.pid > 0x7fffffff) throw new TypeError('bad pid');
  for (const id of [cred.uid, cred.gid]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new TypeError('bad uid or gid');
  }
}

function assertPath(p: string): void {
  if (typeof p !== 'string' || p.length === 0 || p.includes('\0') || Buffer.byteLength(p) >= 108) {
    throw new TypeError(`unusable unix socket path: ${JSON.stringify(p)}`);
  }
}

/** Wraps an fd we own into a polled socket; the socket owns and closes the fd. */
export function openSocket(fd: number, datagram: boolean, onRead: ReadHandler, onClose: CloseHandler, onDrain?: DrainHandler): NativeSocket {
  assertFd(fd);
  const Socket = native().Socket;
  return new CheckedSocket(onDrain ? new Socket(fd, datagram, onRead, onClose, onDrain) : new Socket(fd, datagram, onRead, onClose));
}

class CheckedSocket implements NativeSocket {
  constructor(private readonly inner: NativeSocket) {}

  write(data: Buffer, fds?: number[], cred?: Ucred): number {
    if (!Buffer.isBuffer(data)) throw new TypeError('write needs a Buffer');
    if (fds) {
      if (fds.length > 16) throw new TypeError('at most 16 fds per message');
      fds.forEach(assertFd);
    }
    if (cred) assertCred(cred);
    return this.inner.write(data, fds, cred);
  }

  close(): void {
    this.inner.close();
  }

  setReading(on: boolean): void {
    this.inner.setReading(on);
  }

  get fd(): number {
    return this.inner.fd;
  }

  get pendingWrites(): number {
    return this.inner.pendingWrites;
  }

  get queuedBytes(): number {
    return this.inner.queuedBytes;
  }
}

/**
 * Accepts connections on listening socket `fd`. When accept runs out of fds or memory,
 * accepting pauses for `retryMs` (pending connections wait in the backlog) and
 * `onError` hears the errno once per pause.
 */
export function listen(fd: number, onConnection: (fd: number) => void, onError?: AcceptErrorHandler, retryMs = 100): { close(): void } {
  assertFd(fd);
  if (!Number.isInteger(retryMs) || retryMs < 1 || retryMs > 60_000) throw new TypeError(`bad retry interval: ${retryMs}`);
  return new (native().Listener)(fd, onConnection, onError ?? (() => undefined), retryMs);
}

export function listenUnix(socketPath: string, backlog = 4096): number {
  assertPath(socketPath);
  return native().listenUnix(socketPath, backlog);
}

/**
 * Connects a stream socket to `socketPath`. Blocking by default (waits while the listener's
 * backlog is full); with `nonBlocking` that case throws EAGAIN at once, for callers that
 * retry on a timer.
 */
export function connectUnix(socketPath: string, nonBlocking = false): number {
  assertPath(socketPath);
  return native().connectUnix(socketPath, nonBlocking);
}

export function peerCred(fd: number): Ucred {
  assertFd(fd);
  return native().peerCred(fd);
}

export function setPassCred(fd: number, on: boolean): void {
  assertFd(fd);
  native().setPassCred(fd, on);
}

export function socketKind(fd: number): { domain: 'unix' | 'other'; type: 'dgram' | 'stream' | 'seqpacket' | 'other' } {
  assertFd(fd);
  return native().socketKind(fd);
}

export function socketPair(datagram: boolean): [number, number] {
  return native().socketPair(datagram);
}

/**
 * getsockname/getpeername of a unix socket. With `bindIfUnnamed`, an unnamed socket is
 * first autobound to a fresh abstract name so that whatever it sends names its sender.
 */
export function socketAddresses(fd: number, bindIfUnnamed: boolean): SocketAddresses {
  assertFd(fd);
  return native().socketAddresses(fd, bindIfUnnamed);
}

/** Discards up to `max` datagrams already queued on a socket (fds they carried are released); returns how many. */
export function drainDatagrams(fd: number, max: number): number {
  assertFd(fd);
  if (!Number.isInteger(max) || max < 0 || max > 0x7fffffff) throw new TypeError(`bad datagram count: ${max}`);
  return native().drainDatagrams(fd, max);
}

/**
 * A pidfd for `pid` (pidfd_open(2)): it names that process and no other, even once the pid
 * is reused. -1 where the kernel has no pidfds. Throws ESRCH when there is no such process.
 */
export function pidfdOpen(pid: number): number {
  if (!Number.isInteger(pid) || pid <= 0 || pid > 0x7fffffff) throw new TypeError(`not a pid: ${pid}`);
  return native().pidfdOpen(pid);
}

/** Whether the process of a pidfd has exited. */
export function pidfdExited(fd: number): boolean {
  assertFd(fd);
  return native().pidfdExited(fd);
}

export function closeFd(fd: number): void {
  assertFd(fd);
  native().closeFd(fd);
}

/** Sends one sd_notify datagram to `socketPath` (a path, or `@name` for the abstract namespace). */
export function notifyDatagram(socketPath: string, text: string): void {
  assertPath(socketPath);
  native().notifyDatagram(socketPath, text);
}

/** A failed BPF_PROG_LOAD also carries the kernel verifier's log. */
export interface BpfLoadError extends Error {
  code: string;
  errno: number;
  syscall: string;
  log?: string;
}

const BPF_INSN_BYTES = 8;
const BPF_MAX_INSNS = 1_000_000;

/**
 * Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (license "GPL") from raw struct bpf_insn
 * bytes; returns its fd, which the caller closes (an attached program stays loaded).
 */
export function bpfLoadDeviceProgram(insns: Buffer, name = 'cgm_devices'): number {
  if (!Buffer.isBuffer(insns) || insns.length === 0 || insns.length % BPF_INSN_BYTES !== 0 || insns.length / BPF_INSN_BYTES > BPF_MAX_INSNS) {
    throw new TypeError('a BPF program is a non-empty Buffer of 8-byte instructions');
  }
  if (!/^[A-Za-z0-9_.]{1,15}$/.test(name)) throw new TypeError(`bad BPF object name ${JSON.stringify(name)}`);
  return native().bpfLoadDeviceProgram(insns, name);
}

/** Attaches with BPF_F_ALLOW_MULTI to a cgroup directory fd; with `replaceFd`, atomically in place of that program (BPF_F_REPLACE). */
export function bpfAttachDeviceProgram(cgroupFd: number, progFd: number, replaceFd?: number): void {
  assertFd(cgroupFd);
  assertFd(progFd);
  if (replaceFd !== undefined) assertFd(replaceFd);
  native().bpfAttachDeviceProgram(cgroupFd, progFd, replaceFd ?? -1);
}

export function bpfDetachDeviceProgram(cgroupFd: number, progFd: number): void {
  assertFd(cgroupFd);
  assertFd(progFd);
  native().bpfDetachDeviceProgram(cgroupFd, progFd);
}

/** Ids of the device programs attached to the cgroup itself (not inherited ones). */
export function bpfQueryDevicePrograms(cgroupFd: number): number[] {
  assertFd(cgroupFd);
  return native().bpfQueryDevicePrograms(cgroupFd);
}

/** An fd for a loaded program, by id; the caller closes it. */
export function bpfProgramFdById(id: number): number {
  if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) throw new TypeError(`not a BPF program id: ${id}`);
  return native().bpfProgramFdById(id);
}

export function bpfProgramId(progFd: number): number {
  assertFd(progFd);
  return native().bpfProgramId(progFd);
}

/**
 * A fresh non-blocking eventfd, watched without keeping the process alive: `onSignal` gets
 * the counter (reset by the read) each time it becomes readable. Close it when done.
 */
export function openEventCounter(onSignal: (count: number) => void): EventCounter {
  if (typeof onSignal !== 'function') throw new TypeError('openEventCounter needs a callback');
  return new (native().EventFd)(onSignal);
}
