// cgproxy's upstream connection against a scripted peer: with keepReading an idle
// connection notices at once that the daemon went away (the proxy reconnects before the
// next call instead of failing it); without it, only the next call finds out.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerConnection } from '../../../client/connection';
import { createLogger } from '../../../daemon/logger';
import { Upstream } from '../../../proxy/upstream';

const GUID = '0123456789abcdef0123456789abcdef';

interface Peer {
  socketPath: string;
  /** sockets accepted so far */
  accepted: net.Socket[];
  close(): Promise<void>;
}

/** Accepts connections, answers AUTH with OK, then says nothing more. */
function startPeer(socketPath: string): Promise<Peer> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    accepted.push(s);
    s.on('data', (d) => {
      if (d.toString('latin1').includes('AUTH')) s.write(`OK ${GUID}\r\n`);
    });
    s.on('error', () => undefined);
  });
  return new Promise((resolve) => {
    server.listen(socketPath, () =>
      resolve({
        socketPath,
        accepted,
        close: () =>
          new Promise<void>((done) => {
            accepted.forEach((s) => s.destroy());
            server.close(() => done());
          }),
      }),
    );
  });
}

describe('the upstream connection notices a daemon that leaves while it is idle', () => {
  let dir: string;
  const cleanups: Array<() => unknown> = [];

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const setup = async (): Promise<Peer> => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-upstream-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const peer = await startPeer(path.join(dir, 'sock'));
    cleanups.push(() => peer.close());
    return peer;
  };

  it.each([
    [true, 'at once'],
    [false, 'not before the next call'],
  ])('keepReading %s: the close is seen %s', async (keepReading) => {
    const peer = await setup();
    const conn = await PeerConnection.open({ socketPath: peer.socketPath, timeoutMs: 2000, keepReading });
    cleanups.push(() => conn.destroy());
    let closed = false;
    conn.onClose(() => (closed = true));
    peer.accepted.forEach((s) => s.destroy());
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(keepReading);
    expect(conn.isClosed).toBe(keepReading);
  });

  it('Upstream reconnects by itself, so the first call after a restart gets a live connection', async () => {
    const peer = await setup();
    const upstream = new Upstream(peer.socketPath, 2000, createLogger({ level: 'silent' }));
    cleanups.push(() => upstream.stop());
    await upstream.start();
    const first = await upstream.get();
    // The "daemon" restarts: every connection drops, a new one is accepted.
    peer.accepted.forEach((s) => s.destroy());
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(first.isClosed).toBe(true);
    const second = await upstream.get();
    expect(second).not.toBe(first);
    expect(second.isClosed).toBe(false);
    expect(peer.accepted.length).toBe(2);
  });
});
