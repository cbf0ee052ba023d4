// One Scm conversation on a passed datagram socket (reference §6.1-6.3): kick '1', read
// the requestor's credential (and the victim's after a second kick), run the request,
// write the result datagrams, close. Each wait has a timeout (SPEC §2.4); nothing here
// blocks the daemon, and the fd is closed on every path.
//
// This is the one place where Scm credentials enter (the daemon's and cgproxy's alike):
// a credential this process sent itself is never taken as a requestor's or victim's
// (see own-sockets.ts for why the sender address decides).
import { closeFd, drainDatagrams, openSocket, socketAddresses, type NativeSocket, type Ucred } from '../../addon';
import { CgmError } from '../errors';
import { ownScmSockets, type OwnSocket } from './own-sockets';
import type { Datagram } from './results';

const ESRCH = 3;

export interface ScmOutcome {
  datagrams: Datagram[];
  /** what to log when the request failed */
  error?: unknown;
}

export interface ConversationSpec {
  /** one credential follows the requestor's (the 0_0 victim or new owner) */
  needsVictim: boolean;
  /** how many credentials follow the requestor's (SetupScm: owner and pids); overrides needsVictim */
  credentials?: number;
  timeoutMs: number;
  /** the failure result to write when a credential is refused */
  failure(error: CgmError): Datagram[];
  /** called with the refused credential before the conversation ends, for the log */
  refused(cred: Ucred | undefined, from: Buffer | undefined): void;
  /** runs the request once the credentials are in (`v` the first after r, `extra` all of them); returns what to write, and the error to log if it failed */
  run(r: Ucred, v: Ucred | undefined, extra: Ucred[]): ScmOutcome | Promise<ScmOutcome>;
  /** called exactly once at the end with the outcome to log */
  done(error?: unknown): void;
}

/** More queued datagrams than this on a socket that just arrived: refuse it rather than drain on. */
const MAX_QUEUED_ON_ARRIVAL = 4096;

/**
 * Takes in a passed Scm socket before anything is written to it: binds it to a name if
 * the caller left it unnamed (so that whatever we write on it names us as its sender),
 * refuses one connected to itself or to a socket we hold, registers its name as ours,
 * and discards what was queued on it before it arrived (it may hold datagrams we wrote
 * on another socket earlier). Throws a CgmError; the caller closes the fd.
 */
export function admitScmSocket(fd: number): OwnSocket {
  const { local, peer } = socketAddresses(fd, true);
  if (!local) throw new CgmError('Failed', 'the Scm socket could not be given a name');
  if (peer && (peer.equals(local) || ownScmSockets.isOwn(peer))) {
    throw new CgmError('ReflectedCredentials', "the Scm socket is connected to itself or to one of cgmanager's own sockets");
  }
  const own = ownScmSockets.register(local);
  try {
    if (drainDatagrams(fd, MAX_QUEUED_ON_ARRIVAL) >= MAX_QUEUED_ON_ARRIVAL) {
      throw new CgmError('LimitsExceeded', `the Scm socket arrived with more than ${MAX_QUEUED_ON_ARRIVAL} datagrams queued`);
    }
  } catch (err) {
    own.release();
    throw err instanceof CgmError ? err : new CgmError('InvalidArgs', `cannot read the Scm socket: ${(err as Error).message}`);
  }
  return own;
}

/** Conversations still waiting for credentials; a stopping daemon ends them rather than wait. */
const waiting = new Set<ScmConversation>();

/**
 * Ends every conversation that is still waiting for its peer's credentials (the peer may
 * be gone: a datagram socket gives no hang-up). Requests already running are not touched.
 */
export function abandonWaitingScm(reason: string): number {
  const all = [...waiting];
  for (const c of all) c.abandon(reason);
  return all.length;
}

export class ScmConversation {
  private readonly socket: NativeSocket;
  private phase: 'requestor' | 'victim' | 'finished' = 'requestor';
  private r: Ucred | undefined;
  /** credentials received after the requestor's */
  private readonly extra: Ucred[] = [];
  private readonly wanted: number;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  /** `own` comes from admitScmSocket(fd) and is released when the socket closes. */
  constructor(
    fd: number,
    private readonly own: OwnSocket,
    private readonly spec: ConversationSpec,
  ) {
    this.wanted = spec.credentials ?? (spec.needsVictim ? 1 : 0);
    try {
      this.socket = openSocket(fd, true, (data, fds, cred, from) => this.onDatagram(fds, cred, from), () => this.onPeerGone());
    } catch (err) {
      own.release();
      throw err;
    }
    waiting.add(this);
    this.kick();
  }

  abandon(reason: string): void {
    if (this.phase === 'finished') return;
    this.end(new CgmError('Unavailable', reason));
  }

  private kick(): void {
    const rc = this.socket.write(Buffer.from('1'));
    if (rc < 0) {
      this.end(new CgmError('InvalidArgs', `cannot write to the Scm socket (errno ${-rc})`));
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimeout(), this.spec.timeoutMs);
  }

  private onDatagram(fds: number[] | undefined, cred: Ucred | undefined, from: Buffer | undefined): void {
    fds?.forEach(closeFd); // fds are never accepted on this channel
    if (this.phase === 'finished') return;
    // Our own kick carries our pid; a result we wrote carries a task's pid with uid 0 but
    // always our address. Either would make the daemon (or proxy) its own requestor.
    if (ownScmSockets.isOwn(from) || (cred && cred.pid === process.pid)) {
      this.spec.refused(cred, from);
      const error = new CgmError('ReflectedCredentials', 'the Scm credentials were sent by cgmanager itself (a reflected socket)');
      this.phase = 'finished';
      this.writeAll(this.spec.failure(error));
      this.end(error);
      return;
    }
    // SO_PASSCRED makes the kernel attach the sender's credentials to every datagram;
    // pid -1 would be the original's "failed to read ucred".
    if (!cred || cred.pid <= 0) {
      this.end(new CgmError('InvalidArgs', 'an Scm credential datagram carried no valid SCM_CREDENTIALS'));
      return;
    }
    if (this.phase === 'requestor') this.r = cred;
    else if (this.phase === 'victim') this.extra.push(cred);
    if (!this.r) return;
    // Each credential after the requestor's is asked for with its own kick (reference §6.2).
    if (this.extra.length < this.wanted) {
      this.phase = 'victim';
      this.kick();
      return;
    }
    this.finish(this.r, this.extra[0]);
  }

  private finish(r: Ucred, v: Ucred | undefined): void {
    this.phase = 'finished';
    waiting.delete(this);
    clearTimeout(this.timer);
    let outcome: ScmOutcome | Promise<ScmOutcome>;
    try {
      outcome = this.spec.run(r, v, this.extra);
    } catch (err) {
      // run() encodes its own failures; reaching here is a bug, so send nothing useful.
      outcome = { datagrams: [], error: err };
    }
    const deliver = (o: ScmOutcome): void => {
      this.writeAll(o.datagrams);
      this.end(o.error);
    };
    if (outcome instanceof Promise) outcome.then(deliver, (err: unknown) => deliver({ datagrams: [], error: err }));
    else deliver(outcome);
  }

  /** Writes the result; a pid credential for a task that just exited is replaced by the first pid sent (reference §6.4). */
  private writeAll(datagrams: Datagram[]): void {
    let firstPid: number | undefined;
    for (const d of datagrams) {
      let rc = this.socket.write(d.data, undefined, d.cred);
      if (rc === -ESRCH && d.cred && firstPid !== undefined) {
        rc = this.socket.write(d.data, undefined, { ...d.cred, pid: firstPid });
      }
      if (rc < 0) return; // the peer left, or too much pid churn: the client will time out
      if (d.cred && firstPid === undefined) firstPid = d.cred.pid;
    }
  }

  private onTimeout(): void {
    if (this.phase === 'finished') return;
    const which = this.phase === 'requestor' ? "requestor's" : this.wanted === 1 ? "victim's" : `next (${this.extra.length + 1} of ${this.wanted} after the requestor's)`;
    this.end(new CgmError('Timeout', `the Scm peer did not send the ${which} credentials within ${this.spec.timeoutMs} ms`));
  }

  private onPeerGone(): void {
    if (this.phase === 'finished') return;
    this.end(new CgmError('InvalidArgs', 'the Scm peer closed its socket before sending its credentials'));
  }

  private end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    waiting.delete(this);
    this.phase = 'finished';
    clearTimeout(this.timer);
    this.timer = undefined;
    this.closeWhenFlushed(Date.now() + this.spec.timeoutMs);
    this.spec.done(error);
  }

  /** Results the peer has not read yet are queued by the socket; close once they are out (or the peer gave up). */
  private closeWhenFlushed(deadline: number): void {
    if (this.socket.pendingWrites === 0 || Date.now() > deadline) {
      this.socket.close();
      this.own.release();
      return;
    }
    setTimeout(() => this.closeWhenFlushed(deadline), 5);
  }
}
