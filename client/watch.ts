// Watch on the client side: the events of a cgroup as an async iterator. One connection
// may iterate the same cgroup several times; the daemon is asked to Watch it once and to
// Unwatch it when the last loop ends (break, return, throw, or its AbortSignal). Signals
// are matched by the cgroup name given, exactly as the daemon echoes it.
import type { Ucred } from '../addon';
import { INTERFACE1_NAME, METHODS_BY_NAME, OBJECT_PATH, SIGNALS1, type MethodSpec } from '../daemon/dbus/interface';
import { decodeBody, type Message } from '../daemon/dbus/wire';
import type { PeerConnection } from './connection';
import type { CgmanagerError } from './errors';
import type { CallRoute } from './route';
import { invokeAsScm } from './scm-route';

/** One event of a watched cgroup. */
export interface CgroupEvent {
  /** 'emptied': nothing runs in it any more; 'oom': the OOM killer acted in it; 'frozen': it froze or thawed */
  type: 'emptied' | 'oom' | 'frozen';
  /** the cgroup as given to watch() */
  cgroup: string;
  /** 'oom': the cgroup's cumulative count of OOM kills, as the kernel counts them */
  count?: number;
  /** 'frozen': true when it is now frozen, false when thawed */
  frozen?: boolean;
}

export interface WatchOptions {
  /** ends the loop (without an error) when it fires */
  signal?: AbortSignal;
}

/** The decoded body of a cgmanager1 signal (one of SIGNALS1, with its signature); undefined for any other message. */
export function cgmanagerSignalBody(m: Message): unknown[] | undefined {
  if (m.path !== OBJECT_PATH || m.interface !== INTERFACE1_NAME) return undefined;
  const spec = SIGNALS1.find((s) => s.name === m.member);
  if (!spec || spec.signature !== m.signature) return undefined;
  try {
    return decodeBody(m, []);
  } catch {
    return undefined;
  }
}

/** The event a cgmanager1 signal stands for; undefined for any other message. */
export function eventFromSignal(m: Message): CgroupEvent | undefined {
  const body = cgmanagerSignalBody(m);
  if (!body) return undefined;
  const cgroup = body[0] as string;
  if (m.member === 'Emptied') return { type: 'emptied', cgroup };
  if (m.member === 'OOM') return { type: 'oom', cgroup, count: Number(body[1] as bigint) };
  return { type: 'frozen', cgroup, frozen: body[1] as boolean };
}

function spec(name: string): MethodSpec {
  const found = METHODS_BY_NAME.get(name);
  if (!found) throw new Error(`no method ${name} in the interface table`);
  return found;
}

/**
 * Watch or Unwatch as their Scm form for `requestor` on `connection` (cgproxy, on its
 * upstream connection for one client): the requestor's credential decides the base cgroup.
 */
export async function callWatchScm(connection: PeerConnection, method: 'Watch' | 'Unwatch', cgroup: string, requestor: Ucred, timeoutMs: number): Promise<void> {
  await invokeAsScm(connection, spec(method), [cgroup], requestor, timeoutMs);
}

/** The watches of one client connection, counted by cgroup name: the last one to end unwatches. */
export class WatchSet {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly connection: PeerConnection,
    private readonly route: CallRoute,
  ) {}

  // The client's route: plain, or WatchScm/UnwatchScm outside the daemon's namespaces.
  private send(method: 'Watch' | 'Unwatch', cgroup: string): Promise<void> {
    return this.route.invoke(spec(method), [cgroup]).then(() => undefined);
  }

  /**
   * Watches `cgroup`; resolves when the daemon agreed. Watch is sent every time (the daemon
   * treats a repeat as one watch): the daemon may have ended an earlier one with its cgroup.
   */
  async acquire(cgroup: string): Promise<void> {
    this.counts.set(cgroup, (this.counts.get(cgroup) ?? 0) + 1);
    try {
      await this.send('Watch', cgroup);
    } catch (err) {
      this.drop(cgroup);
      throw err;
    }
  }

  private drop(cgroup: string): boolean {
    const n = (this.counts.get(cgroup) ?? 1) - 1;
    if (n > 0) {
      this.counts.set(cgroup, n);
      return false;
    }
    this.counts.delete(cgroup);
    return true;
  }

  /** Ends one loop's interest; the last one unwatches (quietly: the connection may be gone). */
  async release(cgroup: string): Promise<void> {
    if (!this.drop(cgroup) || this.connection.isClosed) return;
    await this.send('Unwatch', cgroup).catch(() => undefined);
  }
}

/**
 * What CgmanagerClient.watch() returns: the events of one cgroup, in order, for one loop.
 * Watching starts at once (await `ready` to know the daemon agreed before starting what
 * is to be watched); the loop, close() or the AbortSignal ends it and unwatches.
 */
export class CgroupWatch implements AsyncIterable<CgroupEvent> {
  /** resolves once the daemon watches the cgroup; rejects with its error (the loop throws it too) */
  readonly ready: Promise<void>;
  private readonly queue: CgroupEvent[] = [];
  private wake: (() => void) | undefined;
  private ended: CgmanagerError | 'done' | undefined;
  private watching = false;
  private finished: Promise<void> | undefined;
  private readonly cleanups: Array<() => void> = [];

  /** @internal use CgmanagerClient.watch() */
  constructor(
    connection: PeerConnection,
    private readonly watches: WatchSet,
    readonly cgroup: string,
    options: WatchOptions = {},
  ) {
    const signal = options.signal;
    this.cleanups.push(
      connection.onSignal((m) => {
        const e = eventFromSignal(m);
        if (e && e.cgroup === cgroup && this.ended === undefined) {
          this.queue.push(e);
          this.poke();
        }
      }),
      connection.holdReading(),
      connection.onClose((reason) => this.end(reason ?? 'done')),
    );
    if (signal) {
      const onAbort = (): void => void this.close();
      signal.addEventListener('abort', onAbort, { once: true });
      this.cleanups.push(() => signal.removeEventListener('abort', onAbort));
    }
    this.ready = signal?.aborted
      ? Promise.resolve()
      : watches.acquire(cgroup).then(
          () => {
            if (this.ended !== undefined) return void this.watches.release(cgroup);
            this.watching = true;
          },
          (err: unknown) => {
            this.end('done');
            throw err;
          },
        );
    this.ready.catch(() => undefined); // also thrown by the loop; never unhandled here
    if (signal?.aborted) void this.close();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private end(how: CgmanagerError | 'done'): void {
    this.ended ??= how;
    this.cleanups.splice(0).forEach((f) => f());
    this.poke();
  }

  /** Ends the watch (events not yet read are dropped) and unwatches the cgroup. */
  close(): Promise<void> {
    this.finished ??= (async () => {
      this.end('done');
      await this.ready.catch(() => undefined);
      if (this.watching) {
        this.watching = false;
        await this.watches.release(this.cgroup);
      }
    })();
    return this.finished;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<CgroupEvent, void, undefined> {
    try {
      await this.ready;
      for (;;) {
        const next = this.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.ended === 'done') return;
        if (this.ended) throw this.ended;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      await this.close();
    }
  }
}
