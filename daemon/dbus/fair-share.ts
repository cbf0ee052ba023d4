// Each uid's share of the event loop. The daemon is one thread: a uid that floods it
// with calls (NO_REPLY_EXPECTED ones cost no writes, so nothing else slows it down)
// would otherwise make every other caller wait behind its whole backlog. A uid whose
// messages used up its budget in this turn of the loop waits for the next turn, so one
// turn costs at most one budget per busy uid and everybody else's call gets in between.
// It never rejects anything; it only orders work.

export class FairShare {
  private readonly used = new Map<number, number>();
  private waiting: Array<() => void> = [];
  private scheduled = false;

  /** `budgetNs`: the CPU time one uid's messages may take per turn of the event loop */
  constructor(private readonly budgetNs: number) {}

  /** Whether `uid` may handle another message in this turn. */
  mayRun(uid: number): boolean {
    return (this.used.get(uid) ?? 0) < this.budgetNs;
  }

  /** Records that `uid`'s message took `ns`. */
  charge(uid: number, ns: number): void {
    this.used.set(uid, (this.used.get(uid) ?? 0) + ns);
    this.schedule();
  }

  /** Calls `resume` at the start of the next turn (after the I/O of this one). */
  waitTurn(resume: () => void): void {
    this.waiting.push(resume);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate runs after this turn's poll phase: the other connections' reads come first.
    setImmediate(() => this.newTurn());
  }

  private newTurn(): void {
    this.scheduled = false;
    this.used.clear();
    for (const resume of this.waiting.splice(0)) resume();
  }
}
