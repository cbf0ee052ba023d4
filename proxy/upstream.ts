// The proxy's one connection to the host daemon, re-established when the daemon
// restarts. Calls made while it is down fail at once with a clear error instead of
// blocking every client (the original proxy blocked, retrying every 5 s).
import type { Logger } from '../daemon/logger';
import { CgmError } from '../daemon/errors';
import { PeerConnection } from '../client/connection';

export const RECONNECT_MS = 1000;

export class Upstream {
  private connection: PeerConnection | undefined;
  private connecting: Promise<PeerConnection> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

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
    this.connecting ??= PeerConnection.open({ socketPath: this.socketPath, timeoutMs: this.timeoutMs })
      .then((conn) => {
        this.connection = conn;
        conn.onClose(() => this.lost());
        this.log.info({ upstream: this.socketPath }, 'connected to the host daemon');
        return conn;
      })
      .catch((err: unknown) => {
        this.scheduleReconnect();
        throw new CgmError('Unavailable', `the host cgmanager at ${this.socketPath} cannot be reached: ${(err as Error).message}`);
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  private lost(): void {
    if (this.stopped) return;
    this.connection = undefined;
    this.log.warn({ upstream: this.socketPath }, 'lost the host daemon; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.get().catch(() => undefined);
    }, RECONNECT_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.connection?.close();
  }
}
