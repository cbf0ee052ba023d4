// The addresses of the Scm datagram sockets this process holds, so that a credential
// datagram this process sent itself is never taken as a requestor's or victim's.
//
// Why addresses: a caller controls the passed socket and can (re)connect it to another
// socket the daemon holds, or to itself, at any time (connect(2) on a datagram socket
// changes its peer), so a check of the peer when the fd arrives proves nothing. What
// cannot be forged is the sender address the kernel reports with each datagram: every
// socket held here is bound to a name when it arrives (autobind, if the caller left it
// unnamed), and a bound name never changes. A datagram whose sender address is one of
// ours was written by us: a kick, or a result carrying a task's pid with uid 0.
//
// A datagram outlives its sender: one written before a socket closed can still be
// queued on another socket held here. So an address stays known after its socket
// closes, until every socket that was open at that moment has closed too. Datagrams
// queued before a socket arrived are discarded on arrival (see drainDatagrams).
// Pure bookkeeping; no I/O.

/** One held socket; `release()` when the socket is closed. */
export interface OwnSocket {
  release(): void;
}

interface Entry {
  key: string;
  /** when it was registered, in registration order */
  openedAt: number;
  /** when it was released; undefined while open */
  closedAt?: number;
}

export class OwnSocketRegistry {
  private clock = 0;
  private readonly open = new Set<Entry>();
  private readonly closed: Entry[] = [];
  /** address -> how many entries (open or remembered) carry it */
  private readonly counts = new Map<string, number>();

  register(address: Buffer): OwnSocket {
    const entry: Entry = { key: address.toString('latin1'), openedAt: ++this.clock };
    this.open.add(entry);
    this.counts.set(entry.key, (this.counts.get(entry.key) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.open.delete(entry);
        entry.closedAt = ++this.clock;
        this.closed.push(entry);
        this.forget();
      },
    };
  }

  /** Whether a datagram from `address` may have been sent by this process. */
  isOwn(address: Buffer | undefined): boolean {
    return address !== undefined && address.length > 0 && this.counts.has(address.toString('latin1'));
  }

  /** How many addresses are remembered (open or recently closed); for tests and bounds. */
  get size(): number {
    return this.open.size + this.closed.length;
  }

  /** Drops closed entries that no open socket can still hold datagrams from. */
  private forget(): void {
    let oldestOpen = Infinity;
    for (const e of this.open) oldestOpen = Math.min(oldestOpen, e.openedAt);
    let kept = 0;
    for (const e of this.closed) {
      if ((e.closedAt ?? 0) < oldestOpen) {
        const n = (this.counts.get(e.key) ?? 1) - 1;
        if (n > 0) this.counts.set(e.key, n);
        else this.counts.delete(e.key);
      } else {
        this.closed[kept++] = e;
      }
    }
    this.closed.length = kept;
  }
}

/** The process's one registry: the daemon's and cgproxy's Scm conversations share it. */
export const ownScmSockets = new OwnSocketRegistry();
