// One accepted D-Bus peer connection: the kernel's peer credentials, the SASL
// handshake, message framing and replies. A malformed frame closes this connection
// only; writes after the peer left are no-ops.
import * as fs from 'node:fs';
import type { Logger } from '../logger';
import { openSocket, peerCred, closeFd, type NativeSocket, type Ucred } from '../../addon';
import { SaslServer } from './sasl';
import { MessageReader, ProtocolError, encodeMessage, type Message, type OutgoingMessage, MessageType, Flag } from './wire';

const MAX_AUTH_BYTES = 16 * 1024;
const PROC_BUFFER = Buffer.allocUnsafe(64 * 1024);

export interface ConnectionEvents {
  onMessage(conn: ServerConnection, message: Message, fds: number[]): void;
  onClose(conn: ServerConnection, reason: string): void;
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
  private childLog: Logger | undefined;
  private nextSerial = 1;
  /** requests whose reply (or Scm conversation) is still outstanding */
  inFlight = 0;

  constructor(
    id: number,
    fd: number,
    guid: string,
    maxMessage: number,
    private readonly events: ConnectionEvents,
  ) {
    this.id = id;
    // Read before anything else: if the peer is already gone this throws and the caller drops the fd.
    this.peer = peerCred(fd);
    this.sasl = new SaslServer(guid);
    this.reader = new MessageReader(maxMessage);
    this.socket = openSocket(fd, false, (data, fds) => this.onData(data, fds), (errno) => this.finish(errno ? `socket error ${errno}` : 'peer closed'));
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
      return PROC_BUFFER.toString('utf8', 0, n);
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
      this.reader.push(data, fds);
      this.drainMessages();
      return;
    }
    // Our client pipelines its first call (which may carry an fd) right behind BEGIN.
    if (fds) this.handshakeFds.push(...fds);
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

  // Replies produced while handling one batch of received bytes leave in one write: a
  // client that pipelines N calls costs one wake-up, not N (a sendmsg that wakes a peer
  // on another CPU is the most expensive thing a call does here).
  private drainMessages(): void {
    this.corked = [];
    try {
      for (;;) {
        let next: { message: Message; fds: number[] } | undefined;
        try {
          next = this.reader.next();
        } catch (err) {
          this.close(err instanceof ProtocolError ? `protocol error: ${err.message}` : String(err));
          return;
        }
        if (!next) return;
        this.events.onMessage(this, next.message, next.fds);
        if (this.closed) return;
      }
    } finally {
      this.uncork();
    }
  }

  private uncork(): void {
    const pending = this.corked;
    this.corked = undefined;
    if (!pending || pending.length === 0 || this.closed) return;
    this.socket.write(pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending));
  }

  private writeRaw(buf: Buffer, fds?: number[]): void {
    if (this.closed) return;
    if (this.corked && !fds) {
      this.corked.push(buf);
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

  close(reason = 'closed by daemon'): void {
    this.finish(reason);
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.uncork(); // replies already produced still go out (e.g. LimitsExceeded before closing)
    this.closed = true;
    this.socket.close();
    this.reader.takeStrayFds().forEach(closeFd);
    if (this.cgroupFd !== undefined) fs.closeSync(this.cgroupFd);
    this.cgroupFd = undefined;
    this.handshakeFds.splice(0).forEach(closeFd);
    this.events.onClose(this, reason);
  }
}
