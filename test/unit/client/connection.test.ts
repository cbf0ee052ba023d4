// The client connection against a scripted in-process peer on a real unix socket: SASL
// with fallback, the pipelined first call, serial matching, drops, timeouts, close.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeFd, listenUnix } from '../../../addon';
import { decodeBody, encodeMessage, MessageReader, MessageType, type Message } from '../../../daemon/dbus/wire';
import { PeerConnection } from '../../../client/connection';
import { connect } from '../../../client/client';
import type { CgmanagerError } from '../../../client/errors';

const GUID = 'abcdefabcdefabcdefabcdefabcdef01';

type Handler = (call: Message, args: unknown[], reply: Replier) => void;

interface Replier {
  ok(signature: string, body: unknown[]): void;
  error(name: string, text: string): void;
  raw(bytes: Buffer): void;
  drop(): void;
}

interface FakePeer {
  socketPath: string;
  /** the SASL lines received, in order */
  lines: string[];
  /** SASL replies written before the first method call arrived */
  repliesBeforeFirstCall: number | undefined;
  /** the first chunk received after OK */
  chunkAfterOk: Buffer | undefined;
  calls: Message[];
  close(): Promise<void>;
}

interface PeerOptions {
  rejectExternal?: boolean;
  rejectAll?: boolean;
  silent?: boolean;
}

let dir: string;
let peers: FakePeer[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-client-conn-'));
});

afterEach(async () => {
  await Promise.all(peers.map((p) => p.close()));
  peers = [];
  fs.rmSync(dir, { recursive: true, force: true });
});

async function fakePeer(handler: Handler, options: PeerOptions = {}): Promise<FakePeer> {
  const socketPath = path.join(dir, `sock${peers.length}`);
  const sockets = new Set<net.Socket>();
  const peer: FakePeer = { socketPath, lines: [], repliesBeforeFirstCall: undefined, chunkAfterOk: undefined, calls: [], close: async () => undefined };
  let replies = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let text = '';
    let binary = false;
    let okSent = false;
    const reader = new MessageReader(1 << 20);
    let serial = 1;
    const send = (s: string): void => {
      replies++;
      socket.write(s);
    };
    socket.on('data', (chunk: Buffer) => {
      if (okSent && peer.chunkAfterOk === undefined) peer.chunkAfterOk = chunk;
      if (binary) {
        reader.push(chunk);
      } else {
        text += chunk.toString('latin1');
        if (text.startsWith('\0')) text = text.slice(1);
        for (;;) {
          const eol = text.indexOf('\r\n');
          if (eol < 0) break;
          const line = text.slice(0, eol);
          text = text.slice(eol + 2);
          peer.lines.push(line);
          if (options.silent) continue;
          if (line.startsWith('AUTH EXTERNAL')) {
            if (options.rejectExternal || options.rejectAll) send('REJECTED EXTERNAL ANONYMOUS\r\n');
            else {
              send(`OK ${GUID}\r\n`);
              okSent = true;
            }
          } else if (line.startsWith('AUTH ANONYMOUS')) {
            if (options.rejectAll) send('REJECTED EXTERNAL\r\n');
            else {
              send(`OK ${GUID}\r\n`);
              okSent = true;
            }
          } else if (line === 'NEGOTIATE_UNIX_FD') {
            send('AGREE_UNIX_FD\r\n');
          } else if (line === 'BEGIN') {
            binary = true;
            reader.push(Buffer.from(text, 'latin1'));
            text = '';
            break;
          }
        }
      }
      if (!binary) return;
      for (let next = reader.next(); next; next = reader.next()) {
        const m = next.message;
        if (peer.repliesBeforeFirstCall === undefined) peer.repliesBeforeFirstCall = replies - 1; // AGREE_UNIX_FD answers the pipelined request
        peer.calls.push(m);
        const args = decodeBody(m, []);
        handler(m, args, {
          ok: (signature, body) => socket.write(encodeMessage({ type: MessageType.MethodReturn, serial: serial++, replySerial: m.serial, signature, body })),
          error: (name, t) => socket.write(encodeMessage({ type: MessageType.Error, serial: serial++, replySerial: m.serial, errorName: name, signature: 's', body: [t] })),
          raw: (bytes) => socket.write(bytes),
          drop: () => socket.destroy(),
        });
      }
    });
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  peer.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  peers.push(peer);
  return peer;
}

const call = (conn: PeerConnection, member: string, body: unknown[] = [], signature = body.length ? 'i' : '', replySignature = '') =>
  conn.call({ path: '/org/linuxcontainers/cgmanager', interface: 'org.linuxcontainers.cgmanager0_0', member, signature, body, replySignature });

describe('PeerConnection', () => {
  it('EXTERNAL with our uid, then NEGOTIATE_UNIX_FD + BEGIN pipelined with the first call: two round trips', async () => {
    const peer = await fakePeer((m, _a, r) => r.ok('i', [-1]));
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    expect(peer.lines).toEqual([`AUTH EXTERNAL ${Buffer.from(String(process.getuid?.() ?? 0)).toString('hex')}`]);
    await expect(call(conn, 'Create', ['memory', 'x'], 'ss', 'i')).resolves.toEqual([-1]);
    expect(peer.lines.slice(1)).toEqual(['NEGOTIATE_UNIX_FD', 'BEGIN']);
    expect(peer.chunkAfterOk?.toString('latin1').startsWith('NEGOTIATE_UNIX_FD\r\nBEGIN\r\nl')).toBe(true);
    expect(peer.repliesBeforeFirstCall).toBe(1); // only OK went out before the call arrived
    expect(conn.unixFdsNegotiated).toBe(true);
    await conn.close();
  });

  it('falls back to ANONYMOUS when EXTERNAL is rejected', async () => {
    const peer = await fakePeer((_m, _a, r) => r.ok('', []), { rejectExternal: true });
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    expect(peer.lines[1]).toBe('AUTH ANONYMOUS');
    await expect(call(conn, 'Ping', [0])).resolves.toEqual([]);
    await conn.close();
  });

  it('AuthFailed when every mechanism is refused', async () => {
    const peer = await fakePeer(() => undefined, { rejectAll: true });
    await expect(PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'AuthFailed',
      message: expect.stringContaining('refused EXTERNAL and ANONYMOUS'),
    });
  });

  it('NoReply when the peer never answers the handshake', async () => {
    const peer = await fakePeer(() => undefined, { silent: true });
    await expect(PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 200 })).rejects.toMatchObject({ code: 'NoReply' });
  });

  it('matches out-of-order replies to their calls by serial', async () => {
    const held: Array<() => void> = [];
    const peer = await fakePeer((m, args, r) => {
      held.push(() => r.ok('i', [args[0] as number]));
      if (held.length === 5) held.reverse().forEach((f) => f());
    });
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => call(conn, 'Echo', [n], 'i', 'i')));
    expect(results).toEqual([[1], [2], [3], [4], [5]]);
    expect(new Set(peer.calls.map((m) => m.serial)).size).toBe(5);
    await conn.close();
  });

  it('error replies become CgmanagerErrors with name, code and the daemon text', async () => {
    const peer = await fakePeer((_m, _a, r) => r.error('org.freedesktop.DBus.Error.AccessDenied', 'cannot create memory:/x: permission denied'));
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    await expect(call(conn, 'Create', ['memory', 'x'], 'ss', 'i')).rejects.toMatchObject({
      name: 'CgmanagerError',
      code: 'AccessDenied',
      dbusName: 'org.freedesktop.DBus.Error.AccessDenied',
      method: 'Create',
      message: 'cannot create memory:/x: permission denied',
    });
    await conn.close();
  });

  it('calls pending when the connection drops fail with Disconnected; later calls too', async () => {
    let drop: (() => void) | undefined;
    const peer = await fakePeer((_m, _a, r) => {
      drop = r.drop;
    });
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    const a = call(conn, 'GetTasks', ['memory', ''], 'ss', 'ai');
    const b = call(conn, 'ListChildren', ['memory', ''], 'ss', 'as');
    await new Promise((r) => setTimeout(r, 50));
    const closed = new Promise<CgmanagerError | undefined>((resolve) => conn.onClose(resolve));
    drop?.();
    await expect(a).rejects.toMatchObject({ code: 'Disconnected', method: 'GetTasks', message: expect.stringMatching(/lost the connection to cgmanager at .*sock0 .*GetTasks got no reply/) });
    await expect(b).rejects.toMatchObject({ code: 'Disconnected', method: 'ListChildren' });
    await expect(closed).resolves.toMatchObject({ code: 'Disconnected' });
    expect(conn.isClosed).toBe(true);
    await expect(call(conn, 'Ping', [0])).rejects.toMatchObject({ code: 'Disconnected' });
  });

  it('a connection dropped while idle fails the next call with Disconnected', async () => {
    let drop: (() => void) | undefined;
    const peer = await fakePeer((_m, _a, r) => {
      drop = r.drop;
      r.ok('', []);
    });
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    await call(conn, 'Ping', [0]);
    drop?.();
    await new Promise((r) => setTimeout(r, 50));
    await expect(call(conn, 'Ping', [0])).rejects.toMatchObject({ code: 'Disconnected', message: expect.stringMatching(/lost the connection .*(EPIPE|ECONNRESET|closed the connection)/) });
    expect(conn.isClosed).toBe(true);
  });

  it('NoReply after the timeout; a late reply is ignored and the connection stays usable', async () => {
    let first = true;
    const peer = await fakePeer((_m, args, r) => {
      if (first) {
        first = false;
        setTimeout(() => r.ok('i', [args[0] as number]), 300);
      } else r.ok('i', [args[0] as number]);
    });
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 100 });
    await expect(call(conn, 'Echo', [1], 'i', 'i')).rejects.toMatchObject({ code: 'NoReply', message: expect.stringContaining('Echo within 100 ms') });
    await new Promise((r) => setTimeout(r, 350));
    await expect(call(conn, 'Echo', [2], 'i', 'i')).resolves.toEqual([2]);
    await conn.close();
  });

  it('a reply with the wrong signature fails that call only', async () => {
    const peer = await fakePeer((m, _a, r) => (m.member === 'Bad' ? r.ok('s', ['x']) : r.ok('i', [7])));
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    await expect(call(conn, 'Bad', [1], 'i', 'i')).rejects.toMatchObject({ code: 'ProtocolError', message: expect.stringContaining('expected "i"') });
    await expect(call(conn, 'Good', [1], 'i', 'i')).resolves.toEqual([7]);
    await conn.close();
  });

  it('a malformed message ends the connection with ProtocolError', async () => {
    const peer = await fakePeer((_m, _a, r) => r.raw(Buffer.from('X'.repeat(32))));
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    await expect(call(conn, 'Ping', [0])).rejects.toMatchObject({ code: 'ProtocolError', message: expect.stringContaining('malformed message') });
    expect(conn.isClosed).toBe(true);
  });

  it('close() waits for calls in flight; calls after it fail with Closed', async () => {
    const peer = await fakePeer((_m, args, r) => setTimeout(() => r.ok('i', [args[0] as number]), 50));
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    const pending = call(conn, 'Echo', [9], 'i', 'i');
    const closing = conn.close();
    await expect(call(conn, 'Echo', [1], 'i', 'i')).rejects.toMatchObject({ code: 'Closed' });
    await expect(pending).resolves.toEqual([9]);
    await closing;
    expect(conn.isClosed).toBe(true);
    await conn.close(); // twice is fine
  });

  it('destroy() fails calls in flight with Closed', async () => {
    const peer = await fakePeer(() => undefined);
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    const pending = call(conn, 'Ping', [0]);
    conn.destroy();
    await expect(pending).rejects.toMatchObject({ code: 'Closed', message: expect.stringContaining('closed by the client') });
  });

  it('close() right after connect, before any call, just closes', async () => {
    const peer = await fakePeer(() => undefined);
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 5000 });
    await conn.close();
    expect(conn.isClosed).toBe(true);
    expect(peer.lines).toHaveLength(1);
  });
});

describe('nothing listening', () => {
  it('no socket file: NotRunning, ENOENT, path in the message', async () => {
    const socketPath = path.join(dir, 'missing', 'sock');
    await expect(connect({ socket: socketPath })).rejects.toMatchObject({
      name: 'CgmanagerError',
      code: 'NotRunning',
      errno: 'ENOENT',
      socketPath,
      message: expect.stringContaining(socketPath),
    });
  });

  it('a stale socket file: NotRunning, ECONNREFUSED', async () => {
    // A bound socket whose listener is gone: the file stays behind, nobody accepts.
    const stale = path.join(dir, 'stale');
    closeFd(listenUnix(stale, 1));
    expect(fs.statSync(stale).isSocket()).toBe(true);
    await expect(connect({ socket: stale })).rejects.toMatchObject({ code: 'NotRunning', errno: 'ECONNREFUSED', message: expect.stringContaining('nothing is listening (ECONNREFUSED)') });
  });

  it('CGMANAGER_SOCKET is used when no socket is given', async () => {
    const socketPath = path.join(dir, 'env-sock');
    const saved = process.env.CGMANAGER_SOCKET;
    process.env.CGMANAGER_SOCKET = socketPath;
    try {
      await expect(connect()).rejects.toMatchObject({ code: 'NotRunning', socketPath });
    } finally {
      if (saved === undefined) delete process.env.CGMANAGER_SOCKET;
      else process.env.CGMANAGER_SOCKET = saved;
    }
  });
});

describe('timeouts and aborts', () => {
  it('a per-call timeoutMs overrides the connection timeout; the connection stays usable', async () => {
    let first = true;
    const peer = await fakePeer((_m, args, r) => {
      if (first) first = false; // never answers the first call
      else r.ok('i', [args[0] as number]);
    });
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 60_000 });
    const request = { path: '/org/linuxcontainers/cgmanager', interface: 'org.linuxcontainers.cgmanager0_0', member: 'Echo', signature: 'i', replySignature: 'i' };
    await expect(conn.call({ ...request, body: [1], timeoutMs: 50 })).rejects.toMatchObject({ code: 'NoReply', message: expect.stringContaining('Echo within 50 ms') });
    await expect(conn.call({ ...request, body: [2] })).resolves.toEqual([2]);
    await conn.close();
  });

  it('an AbortSignal fails the call with Aborted (before sending, or while waiting); the connection stays usable', async () => {
    const held: Array<() => void> = [];
    const peer = await fakePeer((m, args, r) => {
      if (m.member === 'Hold') held.push(() => r.ok('i', [args[0] as number]));
      else r.ok('i', [args[0] as number]);
    });
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 60_000 });
    const request = { path: '/org/linuxcontainers/cgmanager', interface: 'org.linuxcontainers.cgmanager0_0', signature: 'i', replySignature: 'i' };
    await expect(conn.call({ ...request, member: 'Echo', body: [1], signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'Aborted' });
    expect(peer.calls).toHaveLength(0); // never sent
    const controller = new AbortController();
    const waiting = conn.call({ ...request, member: 'Hold', body: [2], signal: controller.signal });
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'Aborted', message: expect.stringContaining('Hold') });
    held.forEach((answer) => answer()); // the late reply is dropped
    expect(conn.pendingCalls).toBe(0);
    await expect(conn.call({ ...request, member: 'Echo', body: [3] })).resolves.toEqual([3]);
    await conn.close();
  });

  it('connect: an aborted signal and a silent peer give Aborted and NoReply', async () => {
    const peer = await fakePeer(() => undefined, { silent: true });
    await expect(connect({ socket: peer.socketPath, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'Aborted' });
    const controller = new AbortController();
    const pending = connect({ socket: peer.socketPath, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ code: 'Aborted' });
    await expect(connect({ socket: peer.socketPath, timeoutMs: 50 })).rejects.toMatchObject({ code: 'NoReply' });
  });

  it('connect never blocks the event loop: a full backlog is retried on a timer until the timeout', async () => {
    // A listener that never accepts, with a backlog of 1: further connects get EAGAIN
    // (non-blocking) where a blocking connect(2) would freeze the whole process.
    const full = path.join(dir, 'full');
    const listenFd = listenUnix(full, 0);
    const fillers: net.Socket[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const s = net.connect(full);
        s.on('error', () => undefined);
        fillers.push(s);
      }
      await new Promise((r) => setTimeout(r, 50));
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      try {
        await expect(connect({ socket: full, timeoutMs: 200 })).rejects.toMatchObject({ code: 'NoReply', errno: 'EAGAIN' });
      } finally {
        clearInterval(ticker);
      }
      expect(ticks).toBeGreaterThan(0); // timers ran while connect waited
    } finally {
      fillers.forEach((s) => s.destroy());
      closeFd(listenFd);
    }
  });
});

describe('CgmanagerClient options', () => {
  it('every method takes { timeoutMs, signal } last; bad options are TypeErrors; await using closes', async () => {
    const peer = await fakePeer((m, _a, r) => {
      if (m.member === 'Ping') r.ok('', []);
    });
    const client = await connect({ socket: peer.socketPath, route: 'plain' });
    await expect(client.ping(0, { timeoutMs: 5000 })).resolves.toBeUndefined();
    await expect(client.getValue('memory', 'x', 'k', { timeoutMs: 30 })).rejects.toMatchObject({ code: 'NoReply' });
    await expect(client.listControllers({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'Aborted' });
    await expect(client.apiVersion({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'Aborted' });
    await expect(client.ping(0, { timeoutMs: -1 })).rejects.toThrow(TypeError);
    await expect(client.ping(0, { signal: 'no' as unknown as AbortSignal })).rejects.toThrow(TypeError);
    expect(typeof client[Symbol.asyncDispose]).toBe('function');
    expect(Symbol.asyncDispose).toBe(Symbol.for('nodejs.asyncDispose'));
    await client[Symbol.asyncDispose]();
    expect(client.closed).toBe(true);
  });
});
