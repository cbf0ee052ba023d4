// Surviving daemon restarts: a client that connects again (with retries while the daemon
// is coming back) after its connection was lost. A call that was cut off fails with the
// clear 'Disconnected' error by default, because it may or may not have reached the
// daemon; callers whose call is safe to repeat ask for `retry`.
import { connect, type CgmanagerClient, type ConnectOptions } from './client';
import { CgmanagerError, isCgmanagerError } from './errors';

export interface ReconnectOptions extends ConnectOptions {
  /** how long to keep trying while the daemon is not there (restarting); default 10000 ms */
  reconnectTimeoutMs?: number;
  /** first delay between attempts, doubled up to 1 s; default 25 ms */
  retryDelayMs?: number;
}

export interface RunOptions {
  /**
   * Run `fn` once more on a fresh connection when the connection was lost during it.
   * Only for calls that are safe to repeat (reads, SetValue, MovePid, RemoveOnEmpty…);
   * a repeated Create or Remove reports `existed` from the second attempt.
   */
  retry?: boolean;
}

/** The connection is gone (daemon stopped, restarted or crashed), as opposed to an answer from the daemon. */
export function isConnectionLost(err: unknown): boolean {
  return isCgmanagerError(err) && (err.code === 'Disconnected' || err.code === 'NotRunning');
}

/** Worth another connect attempt: nothing listens yet, or the accept queue is full. */
function isTransient(err: unknown): boolean {
  if (!isCgmanagerError(err)) return false;
  return err.code === 'NotRunning' || err.code === 'Disconnected' || (err.code === 'ConnectFailed' && err.errno === 'EAGAIN');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** connect(), retrying while the daemon is not there, for up to `reconnectTimeoutMs`. */
export async function connectWithRetry(options: ReconnectOptions = {}): Promise<CgmanagerClient> {
  const { reconnectTimeoutMs = 10_000, retryDelayMs = 25, ...connectOptions } = options;
  const deadline = Date.now() + reconnectTimeoutMs;
  let delay = retryDelayMs;
  for (;;) {
    try {
      return await connect(connectOptions);
    } catch (err) {
      if (!isTransient(err) || Date.now() + delay > deadline) throw err;
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 1000);
  }
}

export class ReconnectingClient {
  private current: Promise<CgmanagerClient> | undefined;
  private closed = false;
  private connections = 0;

  constructor(private readonly options: ReconnectOptions = {}) {}

  /** How many connections were made so far (1 + reconnects). */
  get connectCount(): number {
    return this.connections;
  }

  /** The live client; connects (again) when there is none or the last one was lost. */
  async client(): Promise<CgmanagerClient> {
    if (this.closed) throw new CgmanagerError('Closed', 'the reconnecting client was closed');
    const existing = this.current;
    if (existing) {
      const c = await existing.catch(() => undefined);
      if (c && !c.closed) return c;
      if (this.current === existing) this.current = undefined;
    }
    if (!this.current) {
      this.current = connectWithRetry(this.options).then((c) => {
        this.connections++;
        return c;
      });
      // A failed attempt is not kept: the next call tries again.
      this.current.catch(() => {
        this.current = undefined;
      });
    }
    return this.current;
  }

  /**
   * Runs `fn` with the live client. When the connection is lost during `fn`, the next
   * run() reconnects; this one rethrows the 'Disconnected' error unless `retry` is set.
   */
  async run<T>(fn: (client: CgmanagerClient) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const client = await this.client();
    try {
      return await fn(client);
    } catch (err) {
      if (!isConnectionLost(err)) throw err;
      client.destroy(); // client() sees it closed and connects again
      if (!options.retry) throw err;
      return fn(await this.client());
    }
  }

  /** Closes the current connection; later calls fail with 'Closed'. */
  async close(): Promise<void> {
    this.closed = true;
    const c = await this.current?.catch(() => undefined);
    this.current = undefined;
    await c?.close();
  }
}
