// A hostile local client for the denial-of-service tests and benchmark, run as an
// unprivileged uid: `node dos-attacker-main.js '<json AttackSpec>'`. It prints JSON lines
// on stdout: {"event":"ready"} once the attack is in place (connections open, calls
// written), then {"event":"done", ...report} and exits. Every attack ends by itself.
import * as fs from 'node:fs';
import { closeFd, connectUnix, openSocket, socketPair, type NativeSocket } from '../../addon';
import { encodeMessage, Flag, MessageReader, MessageType, type OutgoingMessage } from '../../daemon/dbus/wire';
import { INTERFACE, OBJECT_PATH } from './dbus-tools';

export type AttackName = 'no-read' | 'no-reply-flood' | 'half-open' | 'fd-flood' | 'scm-silent' | 'partial';

export interface AttackSpec {
  socket: string;
  attack: AttackName;
  /** connections to use (half-open: to open) */
  connections?: number;
  /** no-read: calls written per connection; scm-silent: Scm calls per connection; fd-flood: fds to send in all */
  calls?: number;
  /** how long to keep the attack up (flood) or hold it (half-open, no-read) */
  durationMs?: number;
  /** half-open: send a partial AUTH line instead of nothing */
  partialAuth?: boolean;
  /** scm-silent: the controller to name in the calls */
  controller?: string;
  /** partial: the size of the message of which all but the last byte is sent */
  messageBytes?: number;
}

export interface AttackReport {
  event: 'done';
  attack: AttackName;
  /** connections opened */
  opened: number;
  /** connections the daemon closed (EOF or error seen) */
  closedByDaemon: number;
  /** calls written */
  sent: number;
  /** replies received (no-read: after it started reading again) */
  replies: number;
  /** error replies by name */
  errors: Record<string, number>;
  /** no-read: bytes still in our own write queue when the hold ended (the daemon stopped reading) */
  stalledBytes: number;
  /** fd-flood: fds handed to the kernel in SCM_RIGHTS */
  fdsSent: number;
  /** a fresh connection from this uid answered a Ping after the attack */
  recovered: boolean;
}

const HELLO = (uid: number): string => `\0AUTH EXTERNAL ${Buffer.from(String(uid)).toString('hex')}\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function emit(o: object): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

/** One raw connection: handshake written blindly, replies counted by serial-less framing. */
class Conn {
  readonly socket: NativeSocket;
  closed = false;
  replies = 0;
  readonly errors: Record<string, number> = {};
  private authDone = false;
  private auth = '';
  private readonly reader = new MessageReader(64 * 1024 * 1024);
  private serial = 1;

  constructor(socketPath: string, private readonly onClosed: () => void, read = true) {
    const fd = connectUnix(socketPath);
    this.socket = openSocket(
      fd,
      false,
      (data, fds) => this.onData(data, fds),
      () => this.markClosed(),
    );
    if (!read) this.socket.setReading(false);
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
  }

  private onData(data: Buffer, fds: number[] | undefined): void {
    fds?.forEach(closeFd);
    if (!this.authDone) {
      this.auth += data.toString('latin1');
      // OK <guid>\r\nAGREE_UNIX_FD\r\n, then messages
      const end = this.auth.indexOf('AGREE_UNIX_FD\r\n');
      if (end < 0) return;
      this.authDone = true;
      data = Buffer.from(this.auth.slice(end + 15), 'latin1');
    }
    this.reader.push(data);
    for (;;) {
      const next = this.reader.next();
      if (!next) return;
      this.replies++;
      const name = next.message.errorName;
      if (next.message.type === MessageType.Error && name) this.errors[name] = (this.errors[name] ?? 0) + 1;
    }
  }

  hello(): void {
    this.write(Buffer.from(HELLO(process.getuid?.() ?? 0), 'latin1'));
  }

  frame(member: string, iface: string, options: { noReply?: boolean; signature?: string; body?: unknown[]; fds?: number[] } = {}): Buffer {
    const m: OutgoingMessage = {
      type: MessageType.MethodCall,
      serial: this.serial++,
      flags: options.noReply ? Flag.NoReplyExpected : 0,
      path: OBJECT_PATH,
      interface: iface,
      member,
      signature: options.signature ?? '',
      body: options.body ?? [],
      ...(options.fds ? { fds: options.fds } : {}),
    };
    return encodeMessage(m);
  }

  write(buf: Buffer, fds?: number[]): boolean {
    if (this.closed) return false;
    const r = this.socket.write(buf, fds);
    if (r < 0) this.markClosed();
    return r >= 0;
  }

  close(): void {
    if (!this.closed) this.socket.close();
    this.closed = true;
  }
}

async function pingOnce(socketPath: string): Promise<boolean> {
  let conn: Conn | undefined;
  try {
    conn = new Conn(socketPath, () => undefined);
    conn.hello();
    conn.write(conn.frame('Ping', 'org.freedesktop.DBus.Peer'));
    for (let i = 0; i < 500 && conn.replies === 0 && !conn.closed; i++) await sleep(10);
    return conn.replies > 0 && Object.keys(conn.errors).length === 0;
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}

async function run(spec: AttackSpec): Promise<AttackReport> {
  const report: AttackReport = {
    event: 'done', attack: spec.attack, opened: 0, closedByDaemon: 0, sent: 0, replies: 0, errors: {}, stalledBytes: 0, fdsSent: 0, recovered: false,
  };
  const conns: Conn[] = [];
  const open = (read = true): Conn => {
    const c = new Conn(spec.socket, () => report.closedByDaemon++, read);
    report.opened++;
    conns.push(c);
    return c;
  };
  const n = spec.connections ?? 1;
  const duration = spec.durationMs ?? 1000;
  const collect = (): void => {
    for (const c of conns) {
      report.replies += c.replies;
      for (const [k, v] of Object.entries(c.errors)) report.errors[k] = (report.errors[k] ?? 0) + v;
    }
  };

  switch (spec.attack) {
    case 'half-open': {
      for (let i = 0; i < n; i++) {
        const c = open();
        if (spec.partialAuth) c.write(Buffer.from('\0AUTH EXTER', 'latin1'));
      }
      emit({ event: 'ready' });
      const end = Date.now() + duration;
      while (Date.now() < end && report.closedByDaemon < report.opened) await sleep(20);
      break;
    }
    case 'no-read': {
      // Small calls with large replies (Introspect), pipelined, replies never read.
      for (let i = 0; i < n; i++) {
        const c = open(false);
        c.hello();
        const frames: Buffer[] = [];
        for (let k = 0; k < (spec.calls ?? 1000); k++) frames.push(c.frame('Introspect', 'org.freedesktop.DBus.Introspectable'));
        c.write(Buffer.concat(frames));
        report.sent += frames.length;
      }
      emit({ event: 'ready' });
      await sleep(duration);
      report.stalledBytes = conns.reduce((sum, c) => sum + (c.closed ? 0 : c.socket.queuedBytes), 0);
      // Now read: every call must still get its reply.
      for (const c of conns) c.socket.setReading(true);
      const want = report.sent;
      const end = Date.now() + 60_000;
      while (Date.now() < end && conns.reduce((s, c) => s + c.replies, 0) < want && conns.some((c) => !c.closed)) await sleep(20);
      break;
    }
    case 'no-reply-flood': {
      for (let i = 0; i < n; i++) open().hello();
      const batch = Buffer.concat(Array.from({ length: 256 }, () => conns[0]!.frame('Ping', 'org.freedesktop.DBus.Peer', { noReply: true })));
      emit({ event: 'ready' });
      const end = Date.now() + duration;
      while (Date.now() < end) {
        for (const c of conns) {
          // Keep the kernel buffer full without letting our own queue grow without bound.
          if (!c.closed && c.socket.queuedBytes < 256 * 1024 && c.write(batch)) report.sent += 256;
        }
        await new Promise((r) => setImmediate(r));
      }
      break;
    }
    case 'fd-flood': {
      // 16 fds per message (our addon's most); the daemon may close the connection, then we reconnect.
      const fd = fs.openSync('/dev/null', 'r');
      const total = spec.calls ?? 10_000;
      const fds = Array.from({ length: 16 }, () => fd);
      const end = Date.now() + duration;
      let c = open();
      c.hello();
      emit({ event: 'ready' });
      while (report.fdsSent < total && Date.now() < end) {
        if (c.closed) {
          c.close();
          c = open();
          c.hello();
        }
        if (c.socket.queuedBytes > 0) {
          await new Promise((r) => setImmediate(r));
          continue;
        }
        // One byte of a message that never completes: its fds wait for a claim that never comes.
        if (c.write(Buffer.from('l'), fds)) report.fdsSent += fds.length;
        if (report.fdsSent % 1024 === 0) await new Promise((r) => setImmediate(r));
      }
      fs.closeSync(fd);
      await sleep(200);
      break;
    }
    case 'partial': {
      // Slow loris: every connection sends all of one large message but its last byte.
      const size = spec.messageBytes ?? 1024 * 1024;
      for (let i = 0; i < n; i++) {
        const c = open();
        c.hello();
        const frame = c.frame('GetValue', INTERFACE, { signature: 'sss', body: ['x', 'x', 'k'.repeat(size - 200)] });
        c.write(frame.subarray(0, frame.length - 1));
        report.sent++;
      }
      emit({ event: 'ready' });
      await sleep(duration);
      break;
    }
    case 'scm-silent': {
      const controller = spec.controller ?? 'unified';
      const held: number[] = [];
      for (let i = 0; i < n; i++) {
        const c = open();
        c.hello();
        for (let k = 0; k < (spec.calls ?? 64); k++) {
          const [mine, theirs] = socketPair(true);
          held.push(mine);
          c.write(c.frame('GetValueScm', INTERFACE, { signature: 'sssh', body: [controller, '', 'cgroup.procs', 0], fds: [theirs] }), [theirs]);
          closeFd(theirs);
          report.sent++;
        }
      }
      emit({ event: 'ready' });
      const end = Date.now() + duration;
      while (Date.now() < end && conns.reduce((s, c) => s + c.replies, 0) < report.sent) await sleep(20);
      await sleep(Math.max(0, end - Date.now()));
      held.forEach(closeFd);
      break;
    }
  }
  collect();
  for (const c of conns) c.close();
  report.recovered = await pingOnce(spec.socket);
  return report;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as AttackSpec;
run(spec).then(
  (report) => {
    emit(report);
    process.exit(0);
  },
  (err: unknown) => {
    emit({ event: 'error', message: String(err) });
    process.exit(1);
  },
);
