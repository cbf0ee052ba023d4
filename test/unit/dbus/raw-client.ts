// A deliberately small D-Bus peer client over the addon, for driving the server byte by
// byte: SASL lines written by hand, messages encoded with wire.ts, fds with SCM_RIGHTS.
// It lets a test do what real clients never do (pipeline everything, send garbage,
// leave mid-call) and see exactly what comes back.
import { closeFd, connectUnix, openSocket, type NativeSocket } from '../../../addon';
import { encodeMessage, MessageReader, MessageType, type Message, type OutgoingMessage } from '../../../daemon/dbus/wire';

export type Outgoing = Omit<OutgoingMessage, 'serial'>;

/** Rejects if `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class RawClient {
  private readonly socket: NativeSocket;
  private binary = false;
  private beginSent = false;
  private linesExpected = 0;
  private linesSeen = 0;
  private textBuf = Buffer.alloc(0);
  private readonly lines: string[] = [];
  private lineWaiters: Array<() => void> = [];
  private readonly reader = new MessageReader(64 * 1024 * 1024);
  private readonly pending = new Map<number, (m: Message) => void>();
  private messageWaiters: Array<() => void> = [];
  private nextSerial = 1;
  private closedFlag = false;
  /** every message received, in order */
  readonly received: Message[] = [];
  /** fds that arrived with replies (the test closes them) */
  readonly receivedFds: number[] = [];
  readonly closed: Promise<number>;
  private resolveClosed!: (errno: number) => void;

  constructor(socketPath: string) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const fd = connectUnix(socketPath);
    this.socket = openSocket(fd, false, (data, fds) => this.onData(data, fds), (errno) => this.onClosed(errno));
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** Connects and runs the usual handshake: NUL, AUTH EXTERNAL, NEGOTIATE_UNIX_FD, BEGIN. */
  static async open(socketPath: string, opts: { negotiateFds?: boolean } = {}): Promise<RawClient> {
    const c = new RawClient(socketPath);
    c.writeRaw('\0');
    c.command(`AUTH EXTERNAL ${Buffer.from(String(process.getuid?.() ?? 0)).toString('hex')}`);
    const ok = await c.nextLine();
    if (!ok.startsWith('OK ')) throw new Error(`authentication failed: ${ok}`);
    if (opts.negotiateFds !== false) {
      c.command('NEGOTIATE_UNIX_FD');
      const agree = await c.nextLine();
      if (agree !== 'AGREE_UNIX_FD') throw new Error(`fd negotiation failed: ${agree}`);
    }
    c.command('BEGIN');
    return c;
  }

  writeRaw(data: Buffer | string, fds?: number[]): number {
    return this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, fds);
  }

  /** Writes one SASL command line; its reply line will be waited for (none for BEGIN). */
  command(line: string): void {
    this.expectReplyTo(line);
    this.writeRaw(`${line}\r\n`);
  }

  /** Counts the reply a command will get, for commands sent inside a hand-made write. */
  expectReplyTo(line: string): void {
    if (line.startsWith('BEGIN')) this.beginSent = true;
    else this.linesExpected++;
  }

  async nextLine(ms = 2000): Promise<string> {
    while (this.lines.length === 0) {
      if (this.closedFlag) throw new Error('connection closed while waiting for a SASL line');
      await within(new Promise<void>((resolve) => this.lineWaiters.push(resolve)), ms, 'a SASL line');
    }
    return this.lines.shift() as string;
  }

  /** Encodes and sends a message; returns its serial. */
  send(m: Outgoing, serial = this.nextSerial++): number {
    this.writeRaw(encodeMessage({ ...m, serial }), m.fds);
    return serial;
  }

  /** A serial for a message the test frames itself. */
  reserveSerial(): number {
    return this.nextSerial++;
  }

  encode(m: Outgoing): { bytes: Buffer; serial: number } {
    const serial = this.nextSerial++;
    return { bytes: encodeMessage({ ...m, serial }), serial };
  }

  /** The reply (return or error) to the message with this serial. */
  reply(serial: number, ms = 2000): Promise<Message> {
    const already = this.received.find((m) => m.replySerial === serial);
    if (already) return Promise.resolve(already);
    return within(new Promise<Message>((resolve) => this.pending.set(serial, resolve)), ms, `the reply to serial ${serial}`);
  }

  call(m: Outgoing, ms = 2000): Promise<Message> {
    return this.reply(this.send(m), ms);
  }

  /** Resolves once `count` messages in all have arrived. */
  async waitForMessages(count: number, ms = 2000): Promise<void> {
    while (this.received.length < count) {
      await within(new Promise<void>((resolve) => this.messageWaiters.push(resolve)), ms, `${count} messages`);
    }
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.socket.close();
    this.resolveClosed(0);
  }

  private onClosed(errno: number): void {
    this.closedFlag = true;
    this.resolveClosed(errno);
    this.lineWaiters.splice(0).forEach((w) => w());
  }

  private onData(data: Buffer, fds: number[] | undefined): void {
    if (fds) this.receivedFds.push(...fds);
    if (this.binary) {
      this.pushBinary(data);
      return;
    }
    this.textBuf = Buffer.concat([this.textBuf, data]);
    for (;;) {
      if (this.beginSent && this.linesSeen >= this.linesExpected) {
        // Everything after the last reply line is the message stream.
        this.binary = true;
        const rest = this.textBuf;
        this.textBuf = Buffer.alloc(0);
        if (rest.length > 0) this.pushBinary(rest);
        return;
      }
      const eol = this.textBuf.indexOf('\r\n');
      if (eol < 0) return;
      this.lines.push(this.textBuf.toString('latin1', 0, eol));
      this.linesSeen++;
      this.textBuf = this.textBuf.subarray(eol + 2);
      this.lineWaiters.splice(0).forEach((w) => w());
    }
  }

  /** Set when the server sent something that does not frame; the client then closes. */
  protocolError: Error | undefined;

  private pushBinary(data: Buffer): void {
    this.reader.push(data);
    // Never throw out of the native read callback: record it and hang up.
    try {
      this.drain();
    } catch (err) {
      this.protocolError = err as Error;
      this.close();
    }
  }

  private drain(): void {
    for (let next = this.reader.next(); next; next = this.reader.next()) {
      this.received.push(next.message);
      if (next.message.replySerial !== undefined) {
        const waiter = this.pending.get(next.message.replySerial);
        this.pending.delete(next.message.replySerial);
        waiter?.(next.message);
      }
      this.messageWaiters.splice(0).forEach((w) => w());
    }
  }

  /** Closes fds that came with replies (none expected from this server). */
  dropReceivedFds(): void {
    this.receivedFds.splice(0).forEach(closeFd);
  }
}

export const isError = (m: Message): boolean => m.type === MessageType.Error;
