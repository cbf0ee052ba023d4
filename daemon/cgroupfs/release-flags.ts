// notify_on_release on cgroup v1 is both the daemon's remove-on-empty mark (RemoveOnEmpty
// sets it, the release agent then removes the cgroup) and the only way the kernel tells
// anyone that a v1 cgroup emptied. A Watch needs the second without the first, so it
// borrows the flag: sets it where it was 0, remembers that the cgroup (and what is created
// below it meanwhile, which inherits the flag) is watched, not marked, and the release
// handler keeps such cgroups. When the last watch of the cgroup ends the flag goes back to
// 0 there and on the descendants that inherited it, unless RemoveOnEmpty claimed them.
// The borrows are written to <state-dir>/watch-flags.json, so that a daemon that dies while
// watching gives them back at its next start (restore()) instead of leaving marks behind.
import * as path from 'node:path';
import { ListFile, memoryOnly, type ListStore } from '../state-list';
import { childOf, isAtOrBelow, parentOf, type CgroupFs } from './cgroupfs';
import type { Hierarchy } from './layout';
import { CgmError } from '../errors';

/** One borrowed flag as saved: the hierarchy's primary name, the cgroup, what was marked before. */
export interface SavedBorrow {
  hierarchy: string;
  cgroup: string;
  markedBefore: string[];
  /** RemoveOnEmpty marks made below it while it was borrowed */
  claimed: string[];
}

export type BorrowStore = ListStore<SavedBorrow>;

export const BORROWS_MEMORY_ONLY: BorrowStore = memoryOnly();

const isPath = (v: unknown): v is string => typeof v === 'string' && v.startsWith('/') && !v.split('/').includes('..');

function parseBorrows(text: string): SavedBorrow[] {
  const doc = JSON.parse(text) as { version?: number; borrows?: unknown };
  if (doc.version !== 1 || !Array.isArray(doc.borrows)) throw new Error('not a version 1 watch-flags file');
  return (doc.borrows as Array<Record<string, unknown>>).filter(
    (b): b is SavedBorrow & Record<string, unknown> =>
      typeof b.hierarchy === 'string' && isPath(b.cgroup) && Array.isArray(b.markedBefore) && b.markedBefore.every(isPath) && Array.isArray(b.claimed) && b.claimed.every(isPath),
  );
}

const formatBorrows = (borrows: readonly SavedBorrow[]): string => `${JSON.stringify({ version: 1, borrows }, null, 1)}\n`;

/** <state-dir>/watch-flags.json, replaced atomically. */
export class BorrowFile extends ListFile<SavedBorrow> {
  constructor(stateDir: string) {
    super(path.join(stateDir, 'watch-flags.json'), parseBorrows, formatBorrows);
  }
}

const FLAG = 'notify_on_release';

/**
 * Most cgroups a borrow walks (at the borrow, and again when giving it back): the walk is
 * synchronous, so a watcher must not make the daemon read a huge subtree. Beyond it the
 * Watch of v1 Emptied fails with LimitsExceeded.
 */
export const MAX_BORROW_SUBTREE = 4096;

/** The subtree's cgroups, top first; past `max`, throws LimitsExceeded (or, `truncate`, stops there). */
function boundedSubtree(cgfs: CgroupFs, h: Hierarchy, cg: string, max = MAX_BORROW_SUBTREE, truncate = false): string[] {
  const out: string[] = [];
  const pending = [cg];
  while (pending.length > 0) {
    const at = pending.pop() as string;
    if (out.length >= max && truncate) break;
    out.push(at);
    if (out.length > max) throw new CgmError('LimitsExceeded', `more than ${max} cgroups below ${cgfs.describe(h, cg)}: too many to watch for Emptied on cgroup v1`);
    let names: string[];
    try {
      names = cgfs.children(h, at);
    } catch {
      continue; // removed while we walked
    }
    for (const name of names) pending.push(childOf(at, name));
  }
  return out;
}

interface Borrowed {
  h: Hierarchy;
  cg: string;
  users: number;
  /** whether we set the flag (it was 0): only then is it ours to give back */
  setByUs: boolean;
  /** descendants that had the flag before we borrowed (RemoveOnEmpty marks of earlier runs) */
  markedBefore: Set<string>;
}

export class ReleaseFlags {
  private readonly borrowed = new Map<string, Borrowed>();
  /** RemoveOnEmpty marks made during this run below a borrowed cgroup */
  private readonly claimed = new Set<string>();
  /** a dead run's borrows, while the releases it left in the spool are handled (restore()) */
  private restored: SavedBorrow[] = [];

  constructor(
    private readonly cgfs: () => CgroupFs,
    private store: BorrowStore = BORROWS_MEMORY_ONLY,
  ) {}

  /** Where borrows are saved (the daemon's state directory); set before the first borrow. */
  useStore(store: BorrowStore): void {
    this.store = store;
  }

  private persist(): void {
    const out: SavedBorrow[] = [];
    for (const b of this.borrowed.values()) {
      if (!b.setByUs) continue;
      out.push({ hierarchy: b.h.primaryName, cgroup: b.cg, markedBefore: [...b.markedBefore], claimed: this.claimsBelow(b.h, b.cg) });
    }
    try {
      this.store.save(out);
    } catch {
      // the borrows still hold for this process; only a crash would leave their flags set
    }
  }

  /**
   * At start: gives back what a previous run borrowed and could not (it died), keeping the
   * marks that were there before and those RemoveOnEmpty made meanwhile. Returns how many.
   */
  restore(): number {
    let saved: SavedBorrow[];
    try {
      saved = this.store.load();
    } catch {
      return 0;
    }
    let done = 0;
    for (const b of saved) {
      const h = this.cgfs().layout.find(b.hierarchy);
      if (!h || h.version !== 1) continue;
      this.resetSubtree(h, b.cgroup, new Set(b.markedBefore), b.claimed, '');
      this.restored.push(b);
      done++;
    }
    this.persist();
    return done;
  }

  /** After the releases spooled while the daemon was down were handled: the old borrows no longer count. */
  finishRestore(): void {
    this.restored = [];
  }

  private key(h: Hierarchy, cg: string): string {
    return `${h.primaryName}:${cg}`;
  }

  /** The RemoveOnEmpty claims of `h` at or below `cg`, as cgroup paths. */
  private claimsBelow(h: Hierarchy, cg: string): string[] {
    const prefix = `${h.primaryName}:`;
    return [...this.claimed].filter((c) => c.startsWith(prefix) && isAtOrBelow(c.slice(prefix.length), cg)).map((c) => c.slice(prefix.length));
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
    if (setByUs) for (const below of boundedSubtree(this.cgfs(), h, cg).slice(1)) if (this.flagOf(h, below)) markedBefore.add(below);
    this.borrowed.set(key, { h, cg, users: 1, setByUs, markedBefore });
    if (!setByUs) return;
    // Saved before the write: a crash in between leaves a borrow to give back, never a stray mark.
    this.persist();
    try {
      this.cgfs().writeFile(h, cg, FLAG, '1\n');
    } catch (err) {
      this.borrowed.delete(key);
      this.persist();
      throw err;
    }
  }

  /** Ends one watch's borrow; the last one puts the flags it caused back to 0. */
  giveBack(h: Hierarchy, cg: string): void {
    const key = this.key(h, cg);
    const held = this.borrowed.get(key);
    if (!held || --held.users > 0) return;
    this.borrowed.delete(key);
    const claimedHere = this.claimsBelow(h, cg);
    if (held.setByUs) this.resetSubtree(h, cg, held.markedBefore, claimedHere, key);
    // Claims matter only below a borrowed cgroup.
    for (const c of claimedHere) if (!this.insideOtherBorrow(h, c, key)) this.claimed.delete(this.key(h, c));
    this.persist();
  }

  /** Puts notify_on_release back to 0 at and below `cg`, except what was marked before or claimed since. */
  private resetSubtree(h: Hierarchy, cg: string, markedBefore: ReadonlySet<string>, claimed: readonly string[], except: string): void {
    const cgfs = this.cgfs();
    // Twice the borrow's bound, for what was created below meanwhile (never throws).
    const nodes = boundedSubtree(cgfs, h, cg, 2 * MAX_BORROW_SUBTREE, true);
    for (const node of nodes) {
      // A claimed cgroup (and what it handed the flag to) keeps it: it is a mark now.
      if (claimed.some((c) => isAtOrBelow(node, c))) continue;
      if (markedBefore.has(node) || this.insideOtherBorrow(h, node, except)) continue;
      try {
        if (this.flagOf(h, node)) cgfs.writeFile(h, node, FLAG, '0\n');
      } catch {
        // removed meanwhile
      }
    }
  }

  private insideOtherBorrow(h: Hierarchy, cg: string, except: string): boolean {
    for (const [key, b] of this.borrowed) if (key !== except && b.h.primaryName === h.primaryName && isAtOrBelow(cg, b.cg)) return true;
    return false;
  }

  /** RemoveOnEmpty marked `cg` (it set the flag itself): from now on its release removes it. */
  claim(h: Hierarchy, cg: string): void {
    if (!this.insideOtherBorrow(h, cg, '')) return;
    this.claimed.add(this.key(h, cg));
    this.persist();
  }

  /**
   * Whether the release of `cg` must not remove it: the nearest borrowed-or-claimed cgroup at
   * or above it is a watch's borrow, not a RemoveOnEmpty claim.
   */
  keep(h: Hierarchy, cg: string): boolean {
    for (const b of this.restored) {
      if (b.hierarchy !== h.primaryName || !isAtOrBelow(cg, b.cgroup)) continue;
      if (!b.markedBefore.includes(cg) && !b.claimed.some((c) => isAtOrBelow(cg, c))) return true;
    }
    for (let at = cg; ; at = parentOf(at)) {
      const key = this.key(h, at);
      if (this.claimed.has(key)) return false;
      const b = this.borrowed.get(key);
      // A flag that was set before the watch (and what inherited it) is a mark of its own.
      if (b) return b.setByUs && !b.markedBefore.has(cg);
      if (at === '/') return false;
    }
  }
}
