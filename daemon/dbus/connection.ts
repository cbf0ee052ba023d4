// One accepted D-Bus peer connection: the kernel's peer credentials, the SASL
// handshake, message framing and replies. A malformed frame closes this connection
// only; writes after the peer left are no-ops. What a hostile peer can make it hold is
// bounded: the handshake has a deadline, received fds a cap, and replies the peer does
// not read stop the reading of its calls (README "Denial of service").
import * as fs from 'node:fs';
import type { Logger } from '../logger';
import { openSocket, closeFd, type NativeSocket, type Ucred } from '../../addon';
import { SaslServer } from './sasl';
import { MessageReader, ProtocolError, encodeMessage, type Message, type OutgoingMessage, MessageType, Flag } from './wire';

const MAX_AUTH_BYTES = 16 * 1024;
/** fds a connection may hold before the message that claims them is complete: one message's worth during the handshake */
const MAX_HANDSHAKE_FDS = 16;
/** after the handshake: a few messages' worth (each carries at most 16, wire.ts) */
const MAX_HELD_FDS = 64;

// Why reading from the peer is paused; reading resumes when no reason is left.
const PAUSED_FOR_OUTPUT = 1;
const PAUSED_FOR_TURN = 2;
const PROC_BUFFER = Buffer.allocUnsafe(64 * 1024);

export interface ConnectionEvents {
  onMessage(conn: ServerConnection, message: Message, fds: number[]): void;
  onClose(conn: ServerConnection, reason: string): void;
  /** whether this connection may handle another message in this turn of the event loop (its uid's fair share) */
  mayProcess(conn: ServerConnection): boolean;
  /** calls `resume` once it may again */
  waitTurn(conn: ServerConnection, resume: () => void): void;
  /** the CPU time (ns) handling one message took, parsing included */
  charge(conn: ServerConnection, ns: number): void;
  /**
   * The bytes received and not yet handled (partial messages mostly) changed by `delta`;
   * false when the peer's uid now holds too many, and this connection must go.
   */
  inputHeld(conn: ServerConnection, delta: number): boolean;
}

export interface ConnectionLimits {
  /** largest incoming message in bytes */
  maxMessage: number;
  /** how long the peer has to finish the SASL handshake */
  handshakeTimeoutMs: number;
  /** reply bytes held for a peer that does not read them, beyond which its calls are no longer read */
  maxQueuedOutput: number;
}

/** Connections whose replies wait for the end of this turn of the event loop (drainBatch). */
const corkedConnections: ServerConnection[] = [];

function flushCorked(): void {
  for (const conn of corkedConnections.splice(0)) conn.uncork();
}

export class ServerConnection {
  readonly id: number;
  /** SO_PEERCRED: who called connect(), in the daemon's namespaces; fixed for the connection's life */
  readonly peer: Ucred;
  private readonly socket: NativeSocket;
  private readonly sasl: SaslServer;
  private readonly reader: MessageReader;
  private authBuffer = '';
  private open = false;
  private closed = false;
  private sawNul = false;
  private readonly handshakeFds: number[] = [];
  private corked: Buffer[] | undefined;
  private cgroupFd: number | undefined;
  /** the last /proc/PID/cgroup read, as bytes and as text (peerCgroupText) */
  private cgroupBytes: Buffer | undefined;
  private cgroupText: string | undefined;
  private childLog: Logger | undefined;
  private nextSerial = 1;
  private corkedBytes = 0;
  private pausedBy = 0;
  private deadline: NodeJS.Timeout | undefined;
  private keepDeadline = false;
  private reportedInput = 0;
  private closeListeners: Array<() => void> = [];
  /** requests whose reply (or Scm conversation) is still outstanding */
  inFlight = 0;

  constructor(
    id: number,
    fd: number,
    /** the fd's SO_PEERCRED, read by the caller before anything else */
    peer: Ucred,
    guid: string,
    private readonly limits: ConnectionLimits,
    private readonly events: ConnectionEvents,
  ) {
    this.id = id;
    this.peer = peer;
    this.sasl = new SaslServer(guid);
    this.reader = new MessageReader(limits.maxMessage);
    this.socket = openSocket(
      fd,
      false,
      (data, fds) => this.onData(data, fds),
      (errno) => this.finish(errno ? `socket error ${errno}` : 'peer closed'),
      () => this.resume(PAUSED_FOR_OUTPUT),
    );
    // A peer that connects and never finishes the handshake would hold an fd (and a slot of
    // its uid's connection limit) for ever.
    this.deadline = setTimeout(() => this.close('handshake timeout'), limits.handshakeTimeoutMs);
    this.deadline.unref();
  }

  /**
   * Keeps the handshake deadline armed past BEGIN: for a connection over its uid's limit,
   * which may only hear why it is refused, so it cannot hold its fd by staying silent.
   */
  keepDeadlinePastHandshake(): void {
    this.keepDeadline = true;
  }

  /** Reply bytes produced but not yet read by the peer. */
  get queuedOutput(): number {
    return this.closed ? 0 : this.socket.queuedBytes + this.corkedBytes;
  }

  /** A child of `base` with this connection's peer bound as the requestor (serialised once). */
  requestLogger(base: Logger): Logger {
    if (!this.childLog) this.childLog = base.child({ requestor: { pid: this.peer.pid, uid: this.peer.uid, gid: this.peer.gid } });
    return this.childLog;
  }

  /**
   * The peer's /proc/PID/cgroup, re-read through one fd kept open for the connection:
   * a pread is half the cost of open+read+close, and the fd keeps naming the process
   * that connected (after it exits, reads fail with ESRCH even if its pid is reused).
   * undefined when that process is gone.
   */
  peerCgroupText(): string | undefined {
    if (this.closed) return undefined;
    try {
      this.cgroupFd ??= fs.openSync(`/proc/${this.peer.pid}/cgroup`, fs.constants.O_RDONLY);
      const n = fs.readSync(this.cgroupFd, PROC_BUFFER, 0, PROC_BUFFER.length, 0);
      // Read afresh every request (the peer may have been moved); when the bytes are those of
      // the last read, the same string is returned, so callers can reuse what they parsed.
      const last = this.cgroupBytes;
      if (last !== undefined && this.cgroupText !== undefined && last.length === n && PROC_BUFFER.compare(last, 0, n, 0, n) === 0) return this.cgroupText;
      this.cgroupBytes = Buffer.from(PROC_BUFFER.subarray(0, n));
      this.cgroupText = PROC_BUFFER.toString('utf8', 0, n);
      return this.cgroupText;
    } catch {
      return undefined;
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get unixFdsNegotiated(): boolean {
    return this.sasl.unixFdNegotiated;
  }

  get authMechanism(): string | undefined {
    return this.sasl.mechanism;
  }

  private onData(data: Buffer, fds: number[] | undefined): void {
    if (this.closed) {
      fds?.forEach(closeFd);
      return;
    }
    if (this.open) {
      if (fds && !this.sasl.unixFdNegotiated) {
        // Nobody may make us hold fds it did not negotiate; a message that needed them fails to parse.
        fds.forEach(closeFd);
        fds = undefined;
      }
      this.reader.push(data, fds);
      if (this.reader.heldFds > MAX_HELD_FDS) return this.close('too many fds');
      this.drainMessages();
      this.reportInput();
      return;
    }
    // Our client pipelines its first call (which may carry an fd) right behind BEGIN.
    if (fds) {
      this.handshakeFds.push(...fds);
      if (this.handshakeFds.length > MAX_HANDSHAKE_FDS) return this.close('too many fds');
    }
    let text = data.toString('latin1');
    if (!this.sawNul) {
      if (text.charCodeAt(0) !== 0) return this.close('no credentials byte');
      this.sawNul = true;
      text = text.slice(1);
    }
    this.authBuffer += text;
    for (;;) {
      const eol = this.authBuffer.indexOf('\r\n');
      if (eol < 0) break;
      const line = this.authBuffer.slice(0, eol);
      this.authBuffer = this.authBuffer.slice(eol + 2);
      const step = this.sasl.feed(line);
      if (step.reply !== undefined) this.writeRaw(Buffer.from(step.reply + '\r\n', 'latin1'));
      if ('close' in step) return this.close('authentication failed');
      if ('begin' in step) {
        this.open = true;
        if (!this.keepDeadline) this.clearDeadline();
        // busctl pipelines its first message right behind BEGIN.
        const rest = Buffer.from(this.authBuffer, 'latin1');
        this.authBuffer = '';
        this.reader.push(rest, this.handshakeFds.splice(0));
        this.drainMessages();
        return;
      }
    }
    if (this.authBuffer.length > MAX_AUTH_BYTES) this.close('handshake too long');
  }

  // Handles the complete messages buffered, unless paused. Stops (and pauses reading) when
  // the peer leaves more than maxQueuedOutput of replies unread: a client that sends calls
  // and never reads would otherwise make us buffer without bound, and a small call can have
  // a large reply (Introspect). Resumes when the socket drains.
  private drainMessages(): void {
    while (!this.closed && this.pausedBy === 0) {
      if (!this.drainBatch()) return;
      this.uncork(); // over the bound: what waits for the end of the turn goes to the socket now
      if (this.socket.queuedBytes > this.limits.maxQueuedOutput) return this.pause(PAUSED_FOR_OUTPUT);
    }
  }

  // Replies produced while handling received bytes are held (corked) until the end of this
  // turn of the event loop, when every connection's leave in one write each
  // (flushCorked): a sendmsg that wakes a sleeping peer on another CPU is the most
  // expensive thing a call does here, and a client with several connections, or with N
  // calls pipelined, is then woken once per turn rather than once per reply. Returns true
  // when it stopped because the replies waiting reached maxQueuedOutput.
  private drainBatch(): boolean {
    if (!this.corked) {
      this.corked = [];
      corkedConnections.push(this);
      if (corkedConnections.length === 1) setImmediate(flushCorked);
    }
    try {
      for (;;) {
        if (this.queuedOutput > this.limits.maxQueuedOutput) return true;
        if (this.reader.buffered > 0 && !this.events.mayProcess(this)) {
          this.pause(PAUSED_FOR_TURN);
          this.events.waitTurn(this, () => this.resume(PAUSED_FOR_TURN));
          return false;
        }
        const started = process.hrtime.bigint();
        let next: { message: Message; fds: number[] } | undefined;
        try {
          next = this.reader.next();
        } catch (err) {
          this.close(err instanceof ProtocolError ? `protocol error: ${err.message}` : String(err));
          return false;
        }
        if (!next) return false;
        try {
          this.events.onMessage(this, next.message, next.fds);
        } finally {
          this.events.charge(this, Number(process.hrtime.bigint() - started));
        }
        if (this.closed) return false;
      }
    } finally {
      if (this.corked?.length === 0) this.corked = undefined; // nothing to send: no write at the end of the turn
    }
  }

  private pause(reason: number): void {
    if (this.closed) return;
    if (this.pausedBy === 0) this.socket.setReading(false);
    this.pausedBy |= reason;
  }

  private resume(reason: number): void {
    if (this.closed || (this.pausedBy & reason) === 0) return;
    this.pausedBy &= ~reason;
    if (this.pausedBy !== 0) return;
    this.socket.setReading(true);
    this.drainMessages(); // what was read before the pause
    this.reportInput();
  }

  // Partial messages (up to --max-message-size each) are held in memory; the server bounds
  // their sum per uid, so a uid's many connections cannot each hold a nearly complete one.
  private reportInput(): void {
    if (this.closed) return;
    const now = this.reader.buffered;
    const delta = now - this.reportedInput;
    if (delta === 0) return;
    this.reportedInput = now;
    if (!this.events.inputHeld(this, delta)) this.close('too much buffered input for this uid');
  }

  private clearDeadline(): void {
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    this.deadline = undefined;
  }

  /** Writes the replies held for the end of the turn (flushCorked, or sooner when it must). */
  uncork(): void {
    const pending = this.corked;
    this.corked = undefined;
    this.corkedBytes = 0;
    if (!pending || pending.length === 0 || this.closed) return;
    this.socket.write(pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending));
  }

  private writeRaw(buf: Buffer, fds?: number[]): void {
    if (this.closed) return;
    if (this.corked && !fds) {
      this.corked.push(buf);
      this.corkedBytes += buf.length;
      return;
    }
    if (this.corked) this.uncork();
    this.socket.write(buf, fds);
  }

  /** Sends a message; fills in the serial. Silently dropped once the connection is closed. */
  send(message: Omit<OutgoingMessage, 'serial'>): void {
    if (this.closed) return;
    const serial = this.nextSerial++;
    if (this.nextSerial > 0xffffffff) this.nextSerial = 1;
    this.writeRaw(encodeMessage({ ...message, serial }), message.fds);
  }

  reply(call: Message, signature: string, body: unknown[]): void {
    if (call.flags & Flag.NoReplyExpected) return;
    this.send({ type: MessageType.MethodReturn, replySerial: call.serial, signature, body });
  }

  replyError(call: Message, errorName: string, text: string): void {
    if (call.flags & Flag.NoReplyExpected) return;
    this.send({ type: MessageType.Error, replySerial: call.serial, errorName, signature: 's', body: [text] });
  }

  /**
   * Sends a signal of our object (path OBJECT_PATH) to this peer. No destination: on a
   * peer-to-peer connection the peer is the only receiver (gdbus, busctl and dbus-next take
   * such signals). A peer that leaves more than twice maxQueuedOutput unread is closed
   * rather than buffered for without bound: it cannot keep up with its watches.
   */
  sendSignal(path: string, iface: string, member: string, signature: string, body: unknown[]): void {
    if (this.closed) return;
    if (this.queuedOutput > 2 * this.limits.maxQueuedOutput) {
      this.close('signals not read');
      return;
    }
    this.send({ type: MessageType.Signal, flags: Flag.NoReplyExpected, path, interface: iface, member, signature, body });
  }

  /** Runs `listener` once when the connection ends (whoever ends it); at once if it already has. */
  onClose(listener: () => void): void {
    if (this.closed) queueMicrotask(listener);
    else this.closeListeners.push(listener);
  }

  close(reason = 'closed by daemon'): void {
    this.finish(reason);
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.uncork(); // replies already produced still go out (e.g. LimitsExceeded before closing)
    this.closed = true;
    this.clearDeadline();
    if (this.reportedInput !== 0) this.events.inputHeld(this, -this.reportedInput);
    this.reportedInput = 0;
    this.socket.close();
    this.reader.takeStrayFds().forEach(closeFd);
    if (this.cgroupFd !== undefined) fs.closeSync(this.cgroupFd);
    this.cgroupFd = undefined;
    this.handshakeFds.splice(0).forEach(closeFd);
    this.events.onClose(this, reason);
    for (const listener of this.closeListeners.splice(0)) listener();
  }
}
