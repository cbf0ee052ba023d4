// The proxy's one connection to the host daemon, re-established when the daemon
// restarts. Calls made while it is down fail at once with a clear error instead of
// blocking every client (the original proxy blocked, retrying every 5 s).
//
// The connection keeps reading while idle (PeerConnection's keepReading), so a daemon
// that stops is noticed when it closes the socket, not by the next forwarded call: the
// first call after a restart goes out on a fresh connection instead of failing on the
// dead one.
import type { Logger } from '../daemon/logger';
import { CgmError } from '../daemon/errors';
import { PeerConnection } from '../client/connection';

export const RECONNECT_MS = 1000;

export class Upstream {
  private connection: PeerConnection | undefined;
  private connecting: Promise<PeerConnection> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private down = false;

  constructor(
    readonly socketPath: string,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** Connects now; rejects when the daemon cannot be reached. */
  async start(): Promise<void> {
    await this.get();
  }

  /** The live connection, connecting first if needed. */
  async get(): Promise<PeerConnection> {
    if (this.connection && !this.connection.isClosed) return this.connection;
    if (this.stopped) throw new CgmError('Unavailable', 'cgproxy is stopping');
    this.connecting ??= PeerConnection.open({ socketPath: this.socketPath, timeoutMs: this.timeoutMs, keepReading: true })
      .then((conn) => {
        if (this.stopped) {
          conn.destroy();
          throw new CgmError('Unavailable', 'cgproxy is stopping');
        }
        this.connection = conn;
        this.down = false;
        clearTimeout(this.timer);
        this.timer = undefined;
        conn.onClose((reason) => this.lost(conn, reason?.message));
        this.log.info({ upstream: this.socketPath }, 'connected to the host daemon');
        return conn;
      })
      .catch((err: unknown) => {
        if (!this.down) this.log.warn({ upstream: this.socketPath, reason: (err as Error).message }, 'cannot reach the host daemon; retrying');
        this.down = true;
        this.scheduleReconnect();
        if (err instanceof CgmError) throw err;
        throw new CgmError('Unavailable', `the host cgmanager at ${this.socketPath} cannot be reached: ${(err as Error).message}`);
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  private lost(conn: PeerConnection, reason: string | undefined): void {
    if (this.connection === conn) this.connection = undefined;
    if (this.stopped) return;
    this.log.warn({ upstream: this.socketPath, reason }, 'lost the host daemon; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.connection && !this.connection.isClosed) return;
      this.get().catch(() => undefined);
    }, RECONNECT_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.connection?.close();
  }
}
