// One client connection to a cgmanager daemon or proxy: connect, SASL, method calls
// matched to replies by serial, many calls in flight at once, clean close. It knows
// D-Bus framing, not cgmanager's methods (client.ts has those).
//
// Built on our own transport pieces rather than dbus-next's client: dbus-next's
// MessageBus sends Hello to its peer, and its unix-fd transport (usocket) does not
// build on Node 20, while the Scm variants need fds and SCM credentials. So the socket
// is the addon's (connectUnix + openSocket keep received fds and can send credentials)
// and the bytes are daemon/dbus/wire.ts's (dbus-next's marshallers behind validation).
import { AddonLoadError, closeFd, connectUnix, openSocket, peerCred, type NativeSocket, type Ucred } from '../addon';
import { BodyError, MessageReader, MessageType, ProtocolError, decodeBody, encodeMessage, type Message } from '../daemon/dbus/wire';
import { CgmanagerError, errorFromConnect, errorFromReply } from './errors';
import { MAX_SASL_LINE, SaslClient } from './sasl';

/** Largest reply we accept (a GetTasks of a million pids is 4 MiB). */
const MAX_REPLY = 32 * 1024 * 1024;
const MAX_SERIAL = 0xffffffff;

export interface ConnectionOptions {
  socketPath: string;
  /** ms to wait for the handshake and for each reply; 0 waits forever */
  timeoutMs: number;
  /** uid claimed by SASL EXTERNAL; defaults to process.getuid() */
  uid?: number;
  /**
   * Keep reading while idle, so that a daemon that goes away is noticed at once (onClose
   * fires) rather than on the next call. It also keeps Node's event loop alive, so it is
   * for long-lived users such as cgproxy's upstream connection.
   */
  keepReading?: boolean;
  /** gives up connecting and authenticating when it fires (code 'Aborted') */
  signal?: AbortSignal;
}

export interface CallRequest {
  path: string;
  interface: string;
  member: string;
  signature: string;
  body: unknown[];
  /** the reply's signature; a reply with another one fails the call with ProtocolError */
  replySignature: string;
  /** replaces decodeBody for replies it cannot handle (the api_version variant) */
  decode?: (reply: Message) => unknown[];
  /** fds to pass with the call ('h' arguments index into this list); for the Scm route */
  fds?: number[];
  /** ms to wait for this reply instead of the connection's timeout; 0 waits forever */
  timeoutMs?: number;
  /** fails the call with code 'Aborted' when it fires; a reply arriving later is dropped */
  signal?: AbortSignal;
}

interface PendingCall {
  member: string;
  replySignature: string;
  decode?: (reply: Message) => unknown[];
  resolve(values: unknown[]): void;
  reject(err: CgmanagerError): void;
  timer: NodeJS.Timeout | undefined;
}

/** A signal as received; decode its body with decodeBody once its member and signature are known. */
export type SignalListener = (message: Message) => void;

type Phase = 'handshake' | 'authenticated' | 'open' | 'closed';

export class PeerConnection {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly keepReading: boolean;
  private readonly socket: NativeSocket;
  private peerCache: Ucred | undefined;
  private outgoing: Buffer[] = [];
  private readonly sasl: SaslClient;
  private readonly reader = new MessageReader(MAX_REPLY);
  private readonly pending = new Map<number, PendingCall>();
  private phase: Phase = 'handshake';
  private handshakeBytes: Buffer = Buffer.alloc(0);
  private handshakeFds: number[] = [];
  private nextSerial = 1;
  private reading = true;
  private closing = false;
  private closedByUs = false;
  private closeWaiters: Array<() => void> = [];
  private closeListeners: Array<(reason: CgmanagerError | undefined) => void> = [];
  private closeReason: CgmanagerError | undefined;
  private opened: { resolve(): void; reject(err: CgmanagerError): void; timer: NodeJS.Timeout | undefined } | undefined;
  private readonly signalListeners = new Set<SignalListener>();
  /** holders of holdReading(): watches that must hear signals while no call is in flight */
  private readingHolds = 0;

  /**
   * Connects and authenticates; resolves once the daemon said OK (one round trip). The
   * connect never blocks the event loop: while the daemon's accept backlog is full it is
   * retried on a timer, within the same timeoutMs as the authentication.
   */
  static async open(options: ConnectionOptions): Promise<PeerConnection> {
    const deadline = options.timeoutMs > 0 ? Date.now() + options.timeoutMs : Infinity;
    const fd = await connectBefore(options.socketPath, deadline, options.signal);
    let conn: PeerConnection;
    try {
      conn = new PeerConnection(fd, options); // owns (and on failure has closed) the fd
    } catch (err) {
      throw errorFromConnect(err, options.socketPath);
    }
    await conn.handshake(deadline === Infinity ? 0 : Math.max(1, deadline - Date.now()), options.signal);
    return conn;
  }

  private constructor(fd: number, options: ConnectionOptions) {
    this.socketPath = options.socketPath;
    this.timeoutMs = options.timeoutMs;
    this.keepReading = options.keepReading ?? false;
    this.sasl = new SaslClient(options.uid ?? process.getuid?.() ?? 0);
    this.socket = openSocket(
      fd,
      false,
      (data, fds) => this.onData(data, fds),
      (errno) => this.onSocketClosed(errno),
    );
  }

  /** The daemon's (or proxy's) credentials as our kernel sees them: pid 0 when it lives outside our pid namespace. */
  get peer(): Ucred {
    this.peerCache ??= peerCred(this.socket.fd);
    return this.peerCache;
  }

  /** Whether the daemon agreed to pass unix fds (needed by the Scm variants). */
  get unixFdsNegotiated(): boolean {
    return this.sasl.unixFdsNegotiated;
  }

  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  /**
   * Runs `listener` once when the connection ends: with the error that ended it, or
   * undefined after close(). (cgproxy reconnects to the host daemon on this.) Returns the
   * function that removes it.
   */
  onClose(listener: (reason: CgmanagerError | undefined) => void): () => void {
    if (this.phase === 'closed') queueMicrotask(() => listener(this.closeReason));
    else this.closeListeners.push(listener);
    return () => {
      this.closeListeners = this.closeListeners.filter((l) => l !== listener);
    };
  }

  /**
   * Runs `listener` for every signal the daemon sends (Watch's events), with the raw
   * message; returns the function that removes it. The listener decodes what it expects.
   */
  onSignal(listener: SignalListener): () => void {
    this.signalListeners.add(listener);
    return () => this.signalListeners.delete(listener);
  }

  /** Keeps reading while idle (signals may come at any time); returns the function that lets go. */
  holdReading(): () => void {
    this.readingHolds++;
    this.updateReading();
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.readingHolds--;
      this.updateReading();
    };
  }

  /** Calls in flight. */
  get pendingCalls(): number {
    return this.pending.size;
  }

  private handshake(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => this.fail('NoReply', `no authentication reply from cgmanager at ${this.socketPath} within ${this.timeoutMs} ms`), timeoutMs) : undefined;
      const onAbort = (): void => this.fail('Aborted', `connecting to cgmanager at ${this.socketPath} was aborted`);
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      this.opened = {
        resolve: () => {
          done();
          resolve();
        },
        reject: (err) => {
          done();
          reject(err);
        },
        timer,
      };
      if (signal?.aborted) return onAbort();
      this.writeOrFail(Buffer.from(this.sasl.start(), 'latin1'));
    });
  }

  /** Sends one method call; resolves with the decoded reply body. */
  call(request: CallRequest): Promise<unknown[]> {
    if (this.phase === 'closed' || this.closing) {
      const code = this.closing || this.closedByUs ? 'Closed' : 'Disconnected';
      return Promise.reject(new CgmanagerError(code, `cannot call ${request.member}: the connection to cgmanager at ${this.socketPath} is closed`, { method: request.member, socketPath: this.socketPath }));
    }
    if (this.phase === 'handshake') {
      return Promise.reject(new Error('PeerConnection.call before the handshake finished'));
    }
    const signal = request.signal;
    if (signal?.aborted) return Promise.reject(abortedError(request.member, this.socketPath));
    const serial = this.allocateSerial();
    let message: Buffer;
    try {
      message = encodeMessage({
        type: MessageType.MethodCall,
        serial,
        path: request.path,
        interface: request.interface,
        member: request.member,
        signature: request.signature,
        body: request.body,
        fds: request.fds,
      });
    } catch (err) {
      // Only reachable when a caller bypassed argument validation.
      return Promise.reject(new TypeError(`${request.member}: cannot encode the arguments: ${(err as Error).message}`));
    }
    const timeoutMs = request.timeoutMs ?? this.timeoutMs;
    return new Promise<unknown[]>((outerResolve, outerReject) => {
      // Giving up (timeout, abort) forgets the serial: a reply that comes later is dropped.
      const giveUp = (err: CgmanagerError): void => {
        if (!this.pending.delete(serial)) return;
        if (timer) clearTimeout(timer);
        reject(err);
        this.settled();
      };
      const onAbort = (): void => giveUp(abortedError(request.member, this.socketPath));
      const resolve = (values: unknown[]): void => {
        signal?.removeEventListener('abort', onAbort);
        outerResolve(values);
      };
      const reject = (err: unknown): void => {
        signal?.removeEventListener('abort', onAbort);
        outerReject(err);
      };
      const timer =
        timeoutMs > 0
          ? setTimeout(() => giveUp(new CgmanagerError('NoReply', `no reply from cgmanager at ${this.socketPath} to ${request.member} within ${timeoutMs} ms`, { method: request.member, socketPath: this.socketPath })), timeoutMs)
          : undefined;
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(serial, { member: request.member, replySignature: request.replySignature, decode: request.decode, resolve, reject, timer });
      this.updateReading();
      if (this.phase === 'authenticated') {
        // NEGOTIATE_UNIX_FD and BEGIN ride with the first call: no extra round trip.
        this.phase = 'open';
        message = Buffer.concat([Buffer.from(this.sasl.begin(), 'latin1'), message]);
      }
      this.writeOrFail(message, request.fds);
    });
  }

  /** Waits for the calls in flight, then closes. New calls fail with code 'Closed'. */
  close(): Promise<void> {
    if (this.phase === 'closed') return Promise.resolve();
    this.closing = true;
    if (this.pending.size === 0 && this.phase !== 'handshake') {
      this.shutdown();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.closeWaiters.push(resolve));
  }

  /** Closes now; calls in flight fail with code 'Closed'. */
  destroy(): void {
    this.closedByUs = true;
    this.fail('Closed', `the connection to cgmanager at ${this.socketPath} was closed by the client`);
  }

  private allocateSerial(): number {
    let serial = this.nextSerial;
    while (this.pending.has(serial)) serial = serial >= MAX_SERIAL ? 1 : serial + 1;
    this.nextSerial = serial >= MAX_SERIAL ? 1 : serial + 1;
    return serial;
  }

  // An idle connection stops polling its socket so that it does not keep Node's event
  // loop alive (like an unref'd net.Socket); a daemon that left meanwhile is noticed on
  // the next call (EPIPE on write, or end of stream once reading resumes), unless the
  // owner asked to keep reading (options.keepReading).
  private updateReading(): void {
    const want = this.keepReading || this.readingHolds > 0 || this.phase === 'handshake' || this.pending.size > 0;
    if (want === this.reading || this.phase === 'closed') return;
    this.reading = want;
    this.socket.setReading(want);
  }

  // Calls issued in the same tick leave in one write, so `Promise.all` of many calls
  // costs the daemon one wake-up; a call carrying fds flushes what is queued first.
  private writeOrFail(data: Buffer, fds?: number[]): void {
    if (fds && fds.length > 0) {
      this.flushOutgoing();
      this.writeNow(data, fds);
      return;
    }
    this.outgoing.push(data);
    if (this.outgoing.length === 1) process.nextTick(() => this.flushOutgoing());
  }

  private flushOutgoing(): void {
    const queued = this.outgoing;
    if (queued.length === 0) return;
    this.outgoing = [];
    if (this.phase !== 'closed') this.writeNow(queued.length === 1 ? (queued[0] as Buffer) : Buffer.concat(queued));
  }

  private writeNow(data: Buffer, fds?: number[]): void {
    const rc = this.socket.write(data, fds);
    if (rc < 0) this.fail('Disconnected', `lost the connection to cgmanager at ${this.socketPath} (write failed: ${errnoName(-rc)})`);
  }

  private onData(data: Buffer, fds: number[] | undefined): void {
    if (this.phase === 'closed') {
      fds?.forEach(closeFd);
      return;
    }
    if (this.phase === 'open' && this.sasl.state === 'open') {
      this.reader.push(data, fds);
      this.drainMessages();
      return;
    }
    if (fds) this.handshakeFds.push(...fds);
    this.handshakeBytes = this.handshakeBytes.length > 0 ? Buffer.concat([this.handshakeBytes, data]) : data;
    this.drainHandshake();
  }

  private drainHandshake(): void {
    for (;;) {
      const eol = this.handshakeBytes.indexOf('\r\n', 0, 'latin1');
      if (eol < 0) {
        if (this.handshakeBytes.length > MAX_SASL_LINE) this.fail('ProtocolError', `cgmanager at ${this.socketPath} sent an overlong authentication line`);
        return;
      }
      const line = this.handshakeBytes.toString('latin1', 0, eol);
      this.handshakeBytes = this.handshakeBytes.subarray(eol + 2);
      const step = this.sasl.feed(line);
      if ('send' in step) {
        this.writeOrFail(Buffer.from(step.send, 'latin1'));
      } else if ('fail' in step) {
        return this.fail('AuthFailed', `authentication with cgmanager at ${this.socketPath} failed: ${step.fail}`);
      } else if ('authenticated' in step) {
        if (this.handshakeBytes.length > 0) return this.fail('ProtocolError', `cgmanager at ${this.socketPath} sent data before BEGIN`);
        this.phase = 'authenticated';
        const opened = this.opened;
        this.opened = undefined;
        if (opened?.timer) clearTimeout(opened.timer);
        this.updateReading();
        opened?.resolve();
        if (this.closing && this.pending.size === 0) this.settled();
        return;
      } else {
        // Binary messages follow AGREE_UNIX_FD, possibly in the same read.
        const rest = this.handshakeBytes;
        this.handshakeBytes = Buffer.alloc(0);
        this.reader.push(rest, this.handshakeFds.splice(0));
        this.drainMessages();
        return;
      }
      if (this.phase === 'closed') return;
    }
  }

  private drainMessages(): void {
    while (this.phase !== 'closed') {
      let next: { message: Message; fds: number[] } | undefined;
      try {
        next = this.reader.next();
      } catch (err) {
        const text = err instanceof ProtocolError ? err.message : String(err);
        this.fail('ProtocolError', `cgmanager at ${this.socketPath} sent a malformed message: ${text}`);
        return;
      }
      if (!next) return;
      this.onMessage(next.message, next.fds);
    }
  }

  private onMessage(m: Message, fds: number[]): void {
    try {
      if (m.type === MessageType.Signal) {
        for (const listener of [...this.signalListeners]) {
          try {
            listener(m);
          } catch {
            // a listener's failure must not end the connection or starve the others
          }
        }
        return;
      }
      if (m.type !== MessageType.MethodReturn && m.type !== MessageType.Error) return; // the daemon sends no calls
      const serial = m.replySerial;
      const call = serial === undefined ? undefined : this.pending.get(serial);
      if (!call || serial === undefined) return; // timed out meanwhile
      this.pending.delete(serial);
      if (call.timer) clearTimeout(call.timer);
      if (m.type === MessageType.Error) {
        call.reject(errorFromReply(call.member, m.errorName ?? 'org.freedesktop.DBus.Error.Failed', errorText(m), this.socketPath));
      } else {
        try {
          call.resolve(this.decodeReply(call, m, fds));
        } catch (err) {
          call.reject(
            new CgmanagerError('ProtocolError', `cgmanager at ${this.socketPath} sent an unusable reply to ${call.member}: ${(err as Error).message}`, {
              method: call.member,
              socketPath: this.socketPath,
            }),
          );
        }
      }
      this.settled();
    } finally {
      // Plain replies carry no fds; never keep one we did not ask for.
      fds.forEach(closeFd);
    }
  }

  private decodeReply(call: PendingCall, m: Message, fds: number[]): unknown[] {
    if (call.decode) return call.decode(m);
    if (m.signature !== call.replySignature) {
      throw new BodyError(`signature ${JSON.stringify(m.signature)}, expected ${JSON.stringify(call.replySignature)}`);
    }
    return decodeBody(m, fds);
  }

  /** After a call finished: stop polling when idle, finish a pending close(). */
  private settled(): void {
    this.updateReading();
    if (this.closing && this.pending.size === 0 && this.phase !== 'handshake') {
      this.shutdown();
    }
  }

  private onSocketClosed(errno: number): void {
    const how = errno ? `socket error ${errnoName(errno)}` : 'the daemon closed the connection';
    const when = this.phase === 'handshake' ? ' during authentication' : '';
    this.fail('Disconnected', `lost the connection to cgmanager at ${this.socketPath}${when} (${how})`);
  }

  /** Ends the connection and fails everything still waiting with `code`. */
  private fail(code: CgmanagerError['code'], message: string): void {
    if (this.phase === 'closed') return;
    const opened = this.opened;
    this.opened = undefined;
    const calls = [...this.pending.values()];
    this.pending.clear();
    this.closeReason = new CgmanagerError(code, message, { socketPath: this.socketPath });
    this.shutdown();
    if (opened) {
      if (opened.timer) clearTimeout(opened.timer);
      opened.reject(this.closeReason);
    }
    for (const call of calls) {
      if (call.timer) clearTimeout(call.timer);
      const detail = code === 'Closed' || code === 'Disconnected' ? `${message}; ${call.member} got no reply` : message;
      call.reject(new CgmanagerError(code, detail, { method: call.member, socketPath: this.socketPath }));
    }
  }

  private shutdown(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.socket.close();
    this.handshakeFds.splice(0).forEach(closeFd);
    this.reader.takeStrayFds().forEach(closeFd);
    this.closeWaiters.splice(0).forEach((w) => w());
    const reason = this.closeReason;
    for (const listener of this.closeListeners.splice(0)) {
      queueMicrotask(() => listener(reason));
    }
  }
}

function abortedError(member: string, socketPath: string): CgmanagerError {
  return new CgmanagerError('Aborted', `${member} to cgmanager at ${socketPath} was aborted`, { method: member, socketPath });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A non-blocking connect, retried while the listener's backlog is full (EAGAIN) until
 * `deadline`: a daemon swamped by connections delays us without freezing our event loop.
 */
async function connectBefore(socketPath: string, deadline: number, signal: AbortSignal | undefined): Promise<number> {
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    if (signal?.aborted) throw new CgmanagerError('Aborted', `connecting to cgmanager at ${socketPath} was aborted`, { socketPath });
    try {
      return connectUnix(socketPath, true);
    } catch (err) {
      if (err instanceof AddonLoadError) throw err; // an installation problem, not a connection one
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw errorFromConnect(err, socketPath);
      if (Date.now() + wait > deadline) {
        throw new CgmanagerError('NoReply', `cannot connect to cgmanager at ${socketPath}: its backlog stayed full (EAGAIN) until the timeout`, { socketPath, errno: 'EAGAIN' });
      }
    }
    await sleep(wait);
  }
}

/** 'EPIPE' for 32, as Node names errnos. */
function errnoName(errno: number): string {
  // node:os is required here, when a connection fails, not at start-up (it costs cgm 0.1 ms).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { constants } = require('node:os') as typeof import('node:os');
  const found = Object.entries(constants.errno).find(([, n]) => n === errno);
  return found ? found[0] : `errno ${errno}`;
}

function errorText(m: Message): string | undefined {
  if (m.signature !== 's') return undefined;
  try {
    const [text] = decodeBody(m, []);
    return typeof text === 'string' ? text : undefined;
  } catch {
    return undefined;
  }
}
