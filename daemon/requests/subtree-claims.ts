// The subtrees that a sliced request (recursive Remove, Prune) is taking apart right now. Such
// a request yields to other connections between slices, so without this a second request
// could create a cgroup or move a task into a tree half removed, or remove it twice. Requests
// that would change a claimed subtree are refused with Busy at once rather than queued: the
// caller retries, and the daemon never holds a request hostage to another one.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import { isUnder } from '../policy';

interface Claim {
  device: string;
  cg: string;
  what: string;
}

export class SubtreeClaims {
  private readonly claims = new Set<Claim>();

  /** The claim on or above `cg`, or below it when `orBelow` (a claimant there would be disturbed too). */
  private find(h: Hierarchy, cg: string, orBelow: boolean): Claim | undefined {
    for (const c of this.claims) {
      if (c.device !== h.device) continue;
      if (isUnder(cg, c.cg) || (orBelow && isUnder(c.cg, cg))) return c;
    }
    return undefined;
  }

  /** Busy when a sliced request is working on `cg` or a subtree containing it; `doing` says what waits ('creating memory:/a/b'). */
  assertFree(h: Hierarchy, cg: string, doing: string, orBelow = false): void {
    const c = this.find(h, cg, orBelow);
    if (c) throw new CgmError('Busy', `another request is ${c.what} ${h.primaryName}:${c.cg}; retry ${doing} when it is done`);
  }

  /** Claims the subtree at `cg` (Busy when it overlaps another claim); call the result when done. */
  claim(h: Hierarchy, cg: string, what: string): () => void {
    this.assertFree(h, cg, `${what} ${h.primaryName}:${cg}`, true);
    const c: Claim = { device: h.device, cg, what };
    this.claims.add(c);
    return () => {
      this.claims.delete(c);
    };
  }

  get size(): number {
    return this.claims.size;
  }
}
