// One Scm conversation on a passed datagram socket (reference §6.1-6.3): kick '1', read
// the requestor's credential (and the victim's after a second kick), run the request,
// write the result datagrams, close. Each wait has a timeout (SPEC §2.4); nothing here
// blocks the daemon, and the fd is closed on every path.
import { closeFd, openSocket, type NativeSocket, type Ucred } from '../../addon';
import { CgmError } from '../errors';
import type { Datagram } from './results';

const ESRCH = 3;

export interface ScmOutcome {
  datagrams: Datagram[];
  /** what to log when the request failed */
  error?: unknown;
}

export interface ConversationSpec {
  needsVictim: boolean;
  timeoutMs: number;
  /** runs the request once the credentials are in; returns what to write, and the error to log if it failed */
  run(r: Ucred, v: Ucred | undefined): ScmOutcome | Promise<ScmOutcome>;
  /** called exactly once at the end with the outcome to log */
  done(error?: unknown): void;
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
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(fd: number, private readonly spec: ConversationSpec) {
    this.socket = openSocket(fd, true, (data, fds, cred) => this.onDatagram(fds, cred), () => this.onPeerGone());
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

  private onDatagram(fds: number[] | undefined, cred: Ucred | undefined): void {
    fds?.forEach(closeFd); // fds are never accepted on this channel
    if (this.phase === 'finished') return;
    // SO_PASSCRED makes the kernel attach the sender's credentials to every datagram;
    // pid -1 would be the original's "failed to read ucred".
    if (!cred || cred.pid <= 0) {
      this.end(new CgmError('InvalidArgs', 'an Scm credential datagram carried no valid SCM_CREDENTIALS'));
      return;
    }
    if (this.phase === 'requestor') {
      this.r = cred;
      if (this.spec.needsVictim) {
        this.phase = 'victim';
        this.kick();
        return;
      }
      this.finish(cred, undefined);
    } else if (this.phase === 'victim' && this.r) {
      this.finish(this.r, cred);
    }
  }

  private finish(r: Ucred, v: Ucred | undefined): void {
    this.phase = 'finished';
    waiting.delete(this);
    clearTimeout(this.timer);
    let outcome: ScmOutcome | Promise<ScmOutcome>;
    try {
      outcome = this.spec.run(r, v);
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
    const which = this.phase === 'requestor' ? "requestor's" : "victim's";
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
      return;
    }
    setTimeout(() => this.closeWhenFlushed(deadline), 5);
  }
}
