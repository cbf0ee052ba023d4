// The client side of one Scm exchange (reference §6): a datagram socketpair whose far
// end travels with the D-Bus call; we answer each kick with a credential the kernel
// checks and translates, then read the result. Shared by the client library and cgproxy.
import { closeFd, openSocket, setPassCred, socketPair, type NativeSocket, type Ucred } from '../addon';
import { parseErrorDetail } from '../daemon/scm/results';
import { hasOneCredential, METHODS_BY_NAME, SCM_SHAPES, type ScmResultKind } from '../daemon/dbus/interface';
import { decodeBodyBytes } from '../daemon/dbus/wire';

/** How each Scm method's result is encoded on the socket (reference §6.4; cgmanager1: the reply body). */
export type { ScmResultKind };

/** Each Scm method's result encoding, from the interface table. */
export const SCM_RESULT_KINDS: Readonly<Record<string, ScmResultKind>> = Object.fromEntries([...SCM_SHAPES].map(([name, shape]) => [name, shape.result]));

/** Methods whose exchange always carries exactly one credential after the requestor's (the 0_0 victim or owner). */
export const SCM_VICTIM_METHODS: ReadonlySet<string> = new Set(
  [...SCM_SHAPES].filter(([, shape]) => hasOneCredential(shape)).map(([name]) => name),
);

export type ScmValue =
  | { kind: 'status' }
  | { kind: 'existed'; existed: 1 | -1 }
  | { kind: 'string'; value: string }
  | { kind: 'tasks'; pids: number[] }
  | { kind: 'names'; names: string[] }
  | { kind: 'keys'; keys: Array<{ name: string; uid: number; gid: number; mode: number }> }
  /** cgmanager1: the plain method's reply values */
  | { kind: 'body'; values: unknown[] };

/** The daemon said no; `name` is the D-Bus error name when the daemon sent one (api_version 11). */
export class ScmFailure extends Error {
  constructor(
    readonly errorName: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'ScmFailure';
  }
}

export class ScmTimeout extends Error {
  constructor(what: string) {
    super(`no ${what} from the Scm peer in time`);
    this.name = 'ScmTimeout';
  }
}

interface Received {
  data: Buffer;
  cred: Ucred | undefined;
}

/** Our end of the socketpair: datagrams in arrival order, awaited with a timeout. */
class DatagramChannel {
  private readonly queue: Received[] = [];
  private waiter: ((d: Received | undefined) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  readonly socket: NativeSocket;

  constructor(fd: number) {
    this.socket = openSocket(
      fd,
      true,
      (data, fds, cred) => {
        fds?.forEach(closeFd);
        this.queue.push({ data, cred });
        const w = this.waiter;
        this.waiter = undefined;
        w?.(this.queue.shift());
      },
      () => undefined,
    );
  }

  next(timeoutMs: number, what: string): Promise<Received> {
    const ready = this.queue.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new ScmTimeout(what));
      }, timeoutMs);
      this.timer = timer;
      this.waiter = (d) => {
        clearTimeout(timer);
        if (d) resolve(d);
        else reject(new ScmTimeout(what));
      };
    });
  }

  /** A datagram that is already here, without waiting. */
  poll(): Received | undefined {
    return this.queue.shift();
  }

  send(cred: Ucred | undefined, payload = 'p'): void {
    const rc = this.socket.write(Buffer.from(payload), undefined, cred);
    if (rc < 0) throw credentialRefused(-rc);
  }

  close(): void {
    clearTimeout(this.timer);
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
    this.socket.close();
  }
}

export interface ScmExchange {
  method: string;
  requestor: Ucred;
  /** the one credential after the requestor's (0_0 victim or owner) */
  victim?: Ucred;
  /** every credential after the requestor's, in order (overrides victim) */
  credentials?: Ucred[];
  timeoutMs: number;
  /**
   * Sends the D-Bus call with `fd` as its `h` argument; resolves once it is written (the
   * D-Bus reply may be awaited or not). A rejection (e.g. an error reply) aborts the exchange.
   */
  sendCall(fd: number): Promise<unknown>;
  /**
   * The peer's api_version (Properties.Get on the connection the call went on). Asked only
   * when a failure result's error detail has not come within DETAIL_WAIT_MS; without it, a
   * detail later than that is lost (the failure has no name).
   */
  peerApiVersion?(): Promise<number>;
}

/** How long the error detail is waited for before the peer is asked whether it sends one. */
const DETAIL_WAIT_MS = 100;
/** The first api_version whose daemon sends the error detail behind every failure result. */
export const DETAIL_API_VERSION = 11;

async function failure(channel: DatagramChannel, x: ScmExchange): Promise<ScmFailure> {
  // Usually here at once: the daemon writes it right behind the failure, in the same turn
  // (an original daemon never does).
  let detail = channel.poll() ?? (await channel.next(DETAIL_WAIT_MS, 'error detail').catch(() => undefined));
  if (!detail && x.peerApiVersion) {
    // Late on a loaded machine (the peer descheduled between its two writes, or our timers
    // run before our reads): no guess at how late. A peer that sends details (api_version >=
    // 11) is waited for within the exchange's timeout; its answer to this call also comes
    // after the turn in which it wrote both. An original daemon costs this one round trip.
    const api = await x.peerApiVersion().catch(() => 0);
    if (api >= DETAIL_API_VERSION) detail = await channel.next(x.timeoutMs, 'error detail').catch(() => undefined);
  }
  const parsed = detail ? parseErrorDetail(detail.data) : undefined;
  return new ScmFailure(parsed?.name, parsed?.message ?? `${x.method} failed`);
}

function credentialRefused(errno: number): Error {
  return Object.assign(new Error(`cannot send the credential (errno ${errno})`), { errno });
}

/**
 * Sends each credential once on a scratch socketpair. The kernel checks a claimed pid,
 * uid and gid when it is sent (scm_check_creds: our own ids, or the capabilities to claim
 * others; a pid that exists in our pid namespace), so a claim it will refuse fails here,
 * before the daemon was asked to wait for it: a daemon never learns that a peer gave up,
 * and would hold the request until its timeout.
 */
function probeCredentials(creds: readonly Ucred[]): void {
  const [a, b] = socketPair(true);
  let socket: NativeSocket | undefined;
  try {
    socket = openSocket(a, true, () => undefined, () => undefined);
    for (const cred of creds) {
      const rc = socket.write(Buffer.from('p'), undefined, cred);
      if (rc < 0) throw credentialRefused(-rc);
    }
  } finally {
    if (socket) socket.close();
    else closeFd(a);
    closeFd(b);
  }
}

/**
 * Runs one Scm exchange and decodes its result; throws ScmFailure, ScmTimeout, the
 * call's own error, or (before anything is sent) an Error with `errno` when the kernel
 * refuses one of the credentials (ESRCH: no such pid here; EPERM, EINVAL: a claim we may
 * not make).
 */
export async function runScmExchange(x: ScmExchange): Promise<ScmValue> {
  const kind = SCM_RESULT_KINDS[x.method];
  if (!kind) throw new TypeError(`${x.method} is not an Scm method`);
  const extra = x.credentials ?? (SCM_VICTIM_METHODS.has(x.method) ? [x.victim ?? x.requestor] : []);
  probeCredentials([x.requestor, ...extra]);
  const [mine, theirs] = socketPair(true);
  let channel: DatagramChannel;
  try {
    setPassCred(mine, true);
    channel = new DatagramChannel(mine);
  } catch (err) {
    closeFd(mine);
    closeFd(theirs);
    throw err;
  }
  let callError: unknown;
  try {
    const call = x.sendCall(theirs).catch((err: unknown) => {
      callError = err;
    });
    closeFd(theirs);
    const t = x.timeoutMs;
    const kickOrCallError = async (what: string): Promise<void> => {
      await Promise.race([channel.next(t, what), call.then(() => (callError ? Promise.reject(callError) : new Promise(() => undefined)))]);
    };
    await kickOrCallError('kick');
    channel.send(x.requestor);
    for (const cred of extra) {
      await kickOrCallError('second kick');
      channel.send(cred);
    }
    const first = await channel.next(t, 'result');
    switch (kind) {
      case 'body': {
        // One datagram: the reply body, or the error detail alone.
        const detail = parseErrorDetail(first.data);
        if (detail) throw new ScmFailure(detail.name, detail.message);
        const plain = METHODS_BY_NAME.get(x.method.slice(0, -3));
        return { kind, values: decodeBodyBytes(plain?.outSignature ?? '', first.data) };
      }
      case 'status':
        if (first.data.toString('latin1') !== '1') throw await failure(channel, x);
        return { kind };
      case 'existed': {
        const c = first.data.toString('latin1');
        if (c !== '1' && c !== '2') throw await failure(channel, x);
        return { kind, existed: c === '2' ? 1 : -1 };
      }
      case 'string':
        if (first.data.length === 0) throw await failure(channel, x);
        return { kind, value: first.data.toString('utf8').replace(/\0[\s\S]*$/, '') };
      case 'tasks': {
        const count = first.data.length >= 4 ? first.data.readInt32LE(0) : -1;
        if (count < 0) throw await failure(channel, x);
        const pids: number[] = [];
        for (let i = 0; i < count; i++) {
          // The original proxy asked for each pid with a '1', which every daemon ignores;
          // we do not, as the daemon may already have closed its end.
          const d = await channel.next(t, 'pid credential');
          pids.push(d.cred?.pid ?? 0);
        }
        return { kind, pids };
      }
      case 'names':
      case 'keys': {
        const count = first.data.length >= 4 ? first.data.readInt32LE(0) : -1;
        if (count < 0) throw await failure(channel, x);
        if (count === 0) return kind === 'names' ? { kind, names: [] } : { kind, keys: [] };
        const lengthDatagram = await channel.next(t, 'length');
        const length = lengthDatagram.data.readUInt32LE(0);
        const payload = await channel.next(t, 'payload');
        const text = payload.data.subarray(0, length).toString('utf8');
        return kind === 'names' ? { kind, names: parseNames(text, count) } : { kind, keys: parseKeys(text, count) };
      }
    }
  } finally {
    channel.close();
  }
}

function parseNames(text: string, count: number): string[] {
  return text.split('\0').slice(0, count);
}

function parseKeys(text: string, count: number): Array<{ name: string; uid: number; gid: number; mode: number }> {
  const lines = text.split('\n');
  const keys: Array<{ name: string; uid: number; gid: number; mode: number }> = [];
  // Ids arrive as signed decimals (-1 for unmapped); present them unsigned like the plain call.
  const unsigned = (s: string | undefined): number => (Number(s) < 0 ? Number(s) + 0x100000000 : Number(s));
  for (let i = 0; i < count; i++) {
    const [name, uid, gid, mode] = lines.slice(i * 4, i * 4 + 4);
    keys.push({ name: name ?? '', uid: unsigned(uid), gid: unsigned(gid), mode: unsigned(mode) });
  }
  return keys;
}
