// notify_on_release on cgroup v1 is both the daemon's remove-on-empty mark (RemoveOnEmpty
// sets it, the release agent then removes the cgroup) and the only way the kernel tells
// anyone that a v1 cgroup emptied. A Watch needs the second without the first, so it
// borrows the flag: sets it where it was 0, remembers that the cgroup (and what is created
// below it meanwhile, which inherits the flag) is watched, not marked, and the release
// handler keeps such cgroups. When the last watch of the cgroup ends the flag goes back to
// 0 there and on the descendants that inherited it, unless RemoveOnEmpty claimed them.
// Held in memory only: a daemon that dies while watching leaves the flag set (README).
import type { CgroupFs } from './cgroupfs';
import type { Hierarchy } from './layout';
import { subtreeOf } from './subtree-walk';

const FLAG = 'notify_on_release';

interface Borrowed {
  h: Hierarchy;
  cg: string;
  users: number;
  /** whether we set the flag (it was 0): only then is it ours to give back */
  setByUs: boolean;
  /** descendants that had the flag before we borrowed (RemoveOnEmpty marks of earlier runs) */
  markedBefore: Set<string>;
}

function isAtOrBelow(cg: string, top: string): boolean {
  return top === '/' || cg === top || cg.startsWith(`${top}/`);
}

export class ReleaseFlags {
  private readonly borrowed = new Map<string, Borrowed>();
  /** RemoveOnEmpty marks made during this run below a borrowed cgroup */
  private readonly claimed = new Set<string>();

  constructor(private readonly cgfs: () => CgroupFs) {}

  private key(h: Hierarchy, cg: string): string {
    return `${h.primaryName}:${cg}`;
  }

  private flagOf(h: Hierarchy, cg: string): boolean {
    try {
      return this.cgfs().readFile(h, cg, FLAG, 64).trim() === '1';
    } catch {
      return false;
    }
  }

  /** Sets notify_on_release on `cg` for a watch (refcounted). Throws when it cannot be written. */
  borrow(h: Hierarchy, cg: string): void {
    const key = this.key(h, cg);
    const held = this.borrowed.get(key);
    if (held) {
      held.users++;
      return;
    }
    const setByUs = !this.flagOf(h, cg);
    const markedBefore = new Set<string>();
    if (setByUs) {
      for (const below of subtreeOf(this.cgfs(), h, cg, undefined).slice(1)) if (this.flagOf(h, below)) markedBefore.add(below);
      this.cgfs().writeFile(h, cg, FLAG, '1\n');
    }
    this.borrowed.set(key, { h, cg, users: 1, setByUs, markedBefore });
  }

  /** Ends one watch's borrow; the last one puts the flags it caused back to 0. */
  giveBack(h: Hierarchy, cg: string): void {
    const key = this.key(h, cg);
    const held = this.borrowed.get(key);
    if (!held || --held.users > 0) return;
    this.borrowed.delete(key);
    const claimedHere = [...this.claimed].filter((c) => c.startsWith(`${h.primaryName}:`) && isAtOrBelow(c.slice(h.primaryName.length + 1), cg));
    if (held.setByUs) {
      const cgfs = this.cgfs();
      let nodes: string[];
      try {
        nodes = subtreeOf(cgfs, h, cg, undefined);
      } catch {
        nodes = [];
      }
      for (const node of nodes) {
        // A claimed cgroup (and what it handed the flag to) keeps it: it is a mark now.
        if (claimedHere.some((c) => isAtOrBelow(node, c.slice(h.primaryName.length + 1)))) continue;
        if (held.markedBefore.has(node) || this.insideOtherBorrow(h, node, key)) continue;
        try {
          if (this.flagOf(h, node)) cgfs.writeFile(h, node, FLAG, '0\n');
        } catch {
          // removed meanwhile
        }
      }
    }
    // Claims matter only below a borrowed cgroup.
    for (const c of claimedHere) if (!this.insideOtherBorrow(h, c.slice(h.primaryName.length + 1), key)) this.claimed.delete(c);
  }

  private insideOtherBorrow(h: Hierarchy, cg: string, except: string): boolean {
    for (const [key, b] of this.borrowed) if (key !== except && b.h.primaryName === h.primaryName && isAtOrBelow(cg, b.cg)) return true;
    return false;
  }

  /** RemoveOnEmpty marked `cg` (it set the flag itself): from now on its release removes it. */
  claim(h: Hierarchy, cg: string): void {
    if (this.insideOtherBorrow(h, cg, '')) this.claimed.add(this.key(h, cg));
  }

  /**
   * Whether the release of `cg` must not remove it: the nearest borrowed-or-claimed cgroup at
   * or above it is a watch's borrow, not a RemoveOnEmpty claim.
   */
  keep(h: Hierarchy, cg: string): boolean {
    for (let at = cg; ; at = at.lastIndexOf('/') <= 0 ? '/' : at.slice(0, at.lastIndexOf('/'))) {
      const key = this.key(h, at);
      if (this.claimed.has(key)) return false;
      const b = this.borrowed.get(key);
      // A flag that was set before the watch (and what inherited it) is a mark of its own.
      if (b) return b.setByUs && !b.markedBefore.has(cg);
      if (at === '/') return false;
    }
  }

  get size(): number {
    return this.borrowed.size;
  }
}
