// A raw Scm peer for protocol tests (reference §6): our end of a datagram socketpair with
// SO_PASSCRED, whose other end travels as the 'h' argument of an …Scm call sent by a
// RawClient. Every datagram the daemon writes is kept with its exact bytes and the
// credentials the kernel attached; credentials are sent by hand, or not at all.
import * as fs from 'node:fs';
import { closeFd, openSocket, setPassCred, socketPair, type NativeSocket, type Ucred } from '../../addon';
import { encodeMessage, MessageType } from '../../daemon/dbus/wire';
import { INTERFACE, OBJECT_PATH } from './dbus-tools';
import type { RawClient, RawReply } from './raw-client';

export interface ReceivedDatagram {
  data: Buffer;
  cred: Ucred | undefined;
}

export class ScmPeer {
  private readonly socket: NativeSocket;
  private readonly queue: ReceivedDatagram[] = [];
  private waiter: (() => void) | undefined;
  private theirsFd: number | undefined;

  private constructor(mine: number, theirs: number) {
    this.theirsFd = theirs;
    this.socket = openSocket(
      mine,
      true,
      (data, fds, cred) => {
        fds?.forEach(closeFd);
        this.queue.push({ data, cred });
        const w = this.waiter;
        this.waiter = undefined;
        w?.();
      },
      () => undefined,
    );
  }

  /** A fresh datagram socketpair; SO_PASSCRED on our end so every datagram shows its sender. */
  static create(): ScmPeer {
    const [mine, theirs] = socketPair(true);
    try {
      setPassCred(mine, true);
      return new ScmPeer(mine, theirs);
    } catch (err) {
      closeFd(mine);
      closeFd(theirs);
      throw err;
    }
  }

  /** The end to pass to the daemon (closed by closeTheirs(), normally right after the call is written). */
  get theirs(): number {
    if (this.theirsFd === undefined) throw new Error('the far end was closed already');
    return this.theirsFd;
  }

  closeTheirs(): void {
    if (this.theirsFd !== undefined) closeFd(this.theirsFd);
    this.theirsFd = undefined;
  }

  /** The next datagram from the daemon; rejects after `timeoutMs`. */
  async next(timeoutMs = 2000): Promise<ReceivedDatagram> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const d = this.queue.shift();
      if (d) return d;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no datagram from the daemon within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = undefined;
          resolve();
        }, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Datagrams that arrived and were not read yet. */
  get unread(): number {
    return this.queue.length;
  }

  /** Sends one datagram ('p' by default) with these SCM_CREDENTIALS (none: the kernel attaches ours). Returns 0, 1 or -errno. */
  send(cred?: Ucred, payload: Buffer | string = 'p'): number {
    return this.socket.write(Buffer.isBuffer(payload) ? payload : Buffer.from(payload), undefined, cred);
  }

  close(): void {
    this.closeTheirs();
    this.socket.close();
  }
}

/** Sends `<method>(args…, fd)` on a raw connection; resolves with the D-Bus reply (the Scm result comes on the socket). */
export function callScm(client: RawClient, method: string, signature: string, args: readonly unknown[], fd: number, timeoutMs?: number): Promise<RawReply> {
  const serial = client.nextSerial();
  const frame = encodeMessage({
    type: MessageType.MethodCall,
    serial,
    path: OBJECT_PATH,
    interface: INTERFACE,
    member: method,
    signature,
    body: [...args, 0],
    fds: [fd],
  });
  return client.sendFrame(frame, serial, timeoutMs, [fd]);
}

/** int32 in the host's byte order, as the Scm counts travel. */
export function int32Bytes(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n, 0);
  return b;
}

export function uint32Bytes(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/** The daemon's open fds (for leak checks). */
export function openFdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}
