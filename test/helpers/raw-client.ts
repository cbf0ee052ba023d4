// A minimal D-Bus peer client of our own, for what real clients cannot send: malformed frames,
// oversized messages, NUL bytes inside strings. SASL by hand, messages from daemon/dbus/wire.ts.
import { closeFd, connectUnix, openSocket, type NativeSocket } from '../../addon';
import { decodeBody, encodeMessage, MessageReader, MessageType, type Message, type OutgoingMessage } from '../../daemon/dbus/wire';
import { OBJECT_PATH, splitMethod, splitSignature } from './dbus-tools';
import { slack } from './slack';

export interface RawConnectOptions {
  /** uid claimed in AUTH EXTERNAL (the daemon trusts SO_PEERCRED, not this) */
  claimUid?: number;
  negotiateFds?: boolean;
  /** largest reply we accept */
  maxMessage?: number;
  timeoutMs?: number;
}

export interface RawCallOptions {
  path?: string;
  flags?: number;
  timeoutMs?: number;
}

export interface RawReply {
  message: Message;
  ok: boolean;
  errorName?: string;
  /** decoded body: the values of a return, [text] of an error */
  values: unknown[];
}

/** `method` as in dbus-tools: 'Create' or 'org.freedesktop.DBus.Peer.Ping'. */
export function methodCall(method: string, signature = '', body: unknown[] = [], options: RawCallOptions = {}): Omit<OutgoingMessage, 'serial'> {
  const { iface, member } = splitMethod(method);
  return { type: MessageType.MethodCall, flags: options.flags ?? 0, path: options.path ?? OBJECT_PATH, interface: iface, member, signature, body };
}

/**
 * Encodes a call whose string arguments may contain NUL bytes. dbus-next's marshaller refuses
 * them, so each string is marshalled with a same-length stand-in and the bytes patched after.
 * Only s/i/u/h arguments are supported, which is all the API takes.
 */
export function encodeWithRawStrings(message: Omit<OutgoingMessage, 'serial'>, serial: number): Buffer {
  const body = message.body ?? [];
  // Without NUL bytes the marshaller encodes it as it is (any type, e.g. Setup's a{ss} and ai).
  if (!body.some((v) => typeof v === 'string' && v.includes('\0'))) return encodeMessage({ ...message, serial });
  const standIn = body.map((v) => (typeof v === 'string' ? v.replace(/\0/g, 'X') : v));
  const frame = encodeMessage({ ...message, serial, body: standIn });
  const bodyLen = frame.readUInt32LE(4);
  let pos = frame.length - bodyLen;
  const bodyStart = pos;
  splitSignature(message.signature ?? '').forEach((type, i) => {
    pos = bodyStart + Math.ceil((pos - bodyStart) / 4) * 4;
    if (type === 's') {
      const bytes = Buffer.from(body[i] as string, 'utf8');
      pos += 4;
      bytes.copy(frame, pos);
      pos += bytes.length + 1;
    } else if (type === 'i' || type === 'u' || type === 'h') {
      pos += 4;
    } else {
      throw new Error(`encodeWithRawStrings: unsupported type ${type}`);
    }
  });
  return frame;
}

export class RawClient {
  private readonly reader: MessageReader;
  private handshake = '';
  private handshakeWaiter: ((line: string) => void) | undefined;
  private open = false;
  private serial = 1;
  private readonly pending = new Map<number, (m: Message) => void>();
  private closeReason: string | undefined;
  private closeWaiters: Array<(reason: string) => void> = [];
  guid = '';

  private constructor(
    private readonly socket: NativeSocket,
    maxMessage: number,
    private readonly timeoutMs: number,
  ) {
    this.reader = new MessageReader(maxMessage);
  }

  /** Connects and completes the SASL handshake (EXTERNAL, unix-fd negotiation, BEGIN). */
  static async connect(socketPath: string, options: RawConnectOptions = {}): Promise<RawClient> {
    const client = RawClient.connectBare(socketPath, options);
    try {
      const uid = Buffer.from(String(options.claimUid ?? process.getuid?.() ?? 0)).toString('hex');
      const ok = await client.authLine(`\0AUTH EXTERNAL ${uid}\r\n`);
      if (!ok.startsWith('OK ')) throw new Error(`AUTH refused: ${ok}`);
      client.guid = ok.slice(3);
      if (options.negotiateFds ?? true) {
        const agree = await client.authLine('NEGOTIATE_UNIX_FD\r\n');
        if (agree !== 'AGREE_UNIX_FD') throw new Error(`NEGOTIATE_UNIX_FD refused: ${agree}`);
      }
      client.begin();
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** A connected socket with no handshake at all, for tests of the handshake itself. */
  static connectBare(socketPath: string, options: RawConnectOptions = {}): RawClient {
    const fd = connectUnix(socketPath);
    let client: RawClient | undefined;
    try {
      const socket = openSocket(
        fd,
        false,
        (data) => client?.onData(data),
        (errno) => client?.onClose(errno ? `socket error ${errno}` : 'closed by peer'),
      );
      client = new RawClient(socket, options.maxMessage ?? 16 * 1024 * 1024, options.timeoutMs ?? slack(10_000));
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return client;
  }

  private onData(data: Buffer): void {
    if (!this.open) {
      this.handshake += data.toString('latin1');
      const eol = this.handshake.indexOf('\r\n');
      if (eol >= 0 && this.handshakeWaiter) {
        const line = this.handshake.slice(0, eol);
        this.handshake = this.handshake.slice(eol + 2);
        const w = this.handshakeWaiter;
        this.handshakeWaiter = undefined;
        w(line);
      }
      return;
    }
    this.reader.push(data);
    for (;;) {
      let next: { message: Message } | undefined;
      try {
        next = this.reader.next();
      } catch (err) {
        this.close(`bad reply: ${(err as Error).message}`);
        return;
      }
      if (!next) return;
      const serial = next.message.replySerial;
      const waiter = serial === undefined ? undefined : this.pending.get(serial);
      if (waiter && serial !== undefined) {
        this.pending.delete(serial);
        waiter(next.message);
      }
    }
  }

  private onClose(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.closeWaiters.splice(0).forEach((w) => w(reason));
    this.handshakeWaiter?.('');
  }

  /** Writes one handshake line and waits for the daemon's answer line. */
  authLine(text: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(text)}`)), this.timeoutMs);
      this.handshakeWaiter = (line) => {
        clearTimeout(timer);
        if (this.closeReason !== undefined && line === '') reject(new Error(`connection closed: ${this.closeReason}`));
        else resolve(line);
      };
      this.writeRaw(Buffer.from(text, 'latin1'));
    });
  }

  /** Sends BEGIN; from here on bytes are D-Bus messages. */
  begin(): void {
    this.writeRaw(Buffer.from('BEGIN\r\n', 'latin1'));
    this.open = true;
  }

  /** `fds` ride with the first byte (SCM_RIGHTS), for 'h' arguments. */
  writeRaw(data: Buffer, fds?: number[]): void {
    if (this.closeReason !== undefined) return;
    const r = this.socket.write(data, fds);
    if (r < 0) this.onClose(`write failed (${r})`);
  }

  nextSerial(): number {
    return this.serial++;
  }

  /** Sends a call (strings may hold NUL bytes) and waits for its reply or error. */
  call(method: string, signature = '', body: unknown[] = [], options: RawCallOptions = {}): Promise<RawReply> {
    const serial = this.nextSerial();
    return this.sendFrame(encodeWithRawStrings(methodCall(method, signature, body, options), serial), serial, options.timeoutMs);
  }

  /** Sends a prepared frame with the given serial (and fds) and waits for the reply to it. */
  sendFrame(frame: Buffer, serial: number, timeoutMs = this.timeoutMs, fds?: number[]): Promise<RawReply> {
    return new Promise((resolve, reject) => {
      if (this.closeReason !== undefined) return reject(new Error(`connection closed: ${this.closeReason}`));
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(new Error(`no reply to serial ${serial}`));
      }, timeoutMs);
      const onClosed = (reason: string): void => {
        clearTimeout(timer);
        reject(new Error(`connection closed: ${reason}`));
      };
      this.closeWaiters.push(onClosed);
      this.pending.set(serial, (message) => {
        clearTimeout(timer);
        this.closeWaiters = this.closeWaiters.filter((w) => w !== onClosed);
        resolve(toReply(message));
      });
      this.writeRaw(frame, fds);
    });
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Resolves with the reason once the connection is closed (by either side), or rejects after `ms`. */
  closed(ms = this.timeoutMs): Promise<string> {
    if (this.closeReason !== undefined) return Promise.resolve(this.closeReason);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connection still open')), ms);
      this.closeWaiters.push((reason) => {
        clearTimeout(timer);
        resolve(reason);
      });
    });
  }

  close(reason = 'closed by client'): void {
    if (this.closeReason === undefined) this.socket.close();
    this.onClose(reason);
  }
}

function toReply(message: Message): RawReply {
  let values: unknown[] = [];
  try {
    values = decodeBody(message, []);
  } catch {
    // variants (Properties.Get) are not decoded by the daemon's reader; the raw message is still there
  }
  if (message.type === MessageType.Error) return { message, ok: false, errorName: message.errorName, values };
  return { message, ok: true, values };
}

