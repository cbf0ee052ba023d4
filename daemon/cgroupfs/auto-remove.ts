// Remove-on-empty: v1 marks cgroups with notify_on_release (the kernel then runs the
// release agent, see release-agent.ts), v2 watches each marked cgroup's directory
// (cgroup.events changes and child removals both show there) and removes the cgroup,
// with its by then empty subtree, once `populated 0`. v2 marks are kept in the state
// file so that a restart or a crash loses none. Never kills a task: a cgroup that still
// has tasks simply stays.
import type { Logger } from '../logger';
import type { DaemonOptions } from '../options';
import type { MarkStore, RemoveOnEmptyMark } from '../state-file';
import { isAtOrBelow, parentOf, type CgroupFs } from './cgroupfs';
import { driverFor } from './driver';
import { DirWatches } from './dir-watch';
import type { ReleaseFlags } from './release-flags';
import type { Hierarchy } from './layout';

type AutoRemoveOptions = Pick<DaemonOptions, 'mountDir' | 'allowAutoremovePremounted'>;

/** Whether the daemon mounted `h` itself (-m), under the directory it owns. */
export function isMountedByDaemon(h: Hierarchy, mountDir: string): boolean {
  return h.mountPoint === mountDir || h.mountPoint.startsWith(`${mountDir}/`);
}

/**
 * v2 always (we watch it ourselves); v1 only where the daemon owns the release agent:
 * hierarchies it mounted itself, or premounted ones the administrator allowed (reference §8.2).
 */
export function isAutoRemoveSupported(h: Hierarchy, options: AutoRemoveOptions): boolean {
  if (driverFor(h).autoRemove === 'watch') return true;
  if (isMountedByDaemon(h, options.mountDir)) return true;
  const allowed = options.allowAutoremovePremounted;
  return allowed.includes('all') || h.names.some((n) => allowed.includes(n));
}

/** Whether nothing runs anywhere in the subtree (v1: every tasks file; v2: cgroup.events). */
export function isSubtreeEmpty(cgfs: CgroupFs, h: Hierarchy, cg: string): boolean {
  return driverFor(h).isSubtreeEmpty(cgfs, h, cg);
}

/** rmdir of the subtree, deepest first, the hidden v2 leaf before its cgroup. Throws at the first busy one. */
export function removeSubtree(cgfs: CgroupFs, h: Hierarchy, cg: string): void {
  driverFor(h).removeSubtree(cgfs, h, cg);
}

/** The root of the hierarchy, or of what the daemon sees of it, is never removed. */
export function isHierarchyTop(h: Hierarchy, cg: string): boolean {
  return cg === '/' || cg === h.mountRoot;
}

function keyOf(hierarchy: string, cg: string): string {
  return `${hierarchy}:${cg}`;
}

export class AutoRemover {
  /** the promises (v2): what the state file holds */
  private readonly marks = new Map<string, RemoveOnEmptyMark>();
  /** the stop functions of the inotify watches of the marks whose hierarchy is mounted now */
  private readonly watches = new Map<string, () => void>();
  private readonly queued = new Set<string>();
  private batching = 0;
  private dirty = false;
  private closed = false;

  constructor(
    private readonly cgfs: () => CgroupFs,
    private readonly options: AutoRemoveOptions,
    private readonly log: Logger,
    private readonly store: MarkStore,
    private readonly dirs: DirWatches = new DirWatches(),
    /** v1 notify_on_release flags that a Watch borrowed; a mark claims them (release-flags.ts) */
    private readonly releaseFlags?: ReleaseFlags,
  ) {}

  isSupported(h: Hierarchy): boolean {
    return isAutoRemoveSupported(h, this.options);
  }

  /**
   * Marks `cg` for removal once it has no tasks; on v2 the promise is on disk before this
   * returns. `writeFlag`, when given, writes the v1 flag file through the cgroup the request
   * opened and checked (pinned.ts) instead of by path.
   */
  mark(h: Hierarchy, cg: string, writeFlag?: (file: string, value: string) => void): void {
    if (driverFor(h).autoRemove === 'notify-on-release') {
      // Kept by the kernel itself, so it survives any restart of ours.
      if (writeFlag) writeFlag('notify_on_release', '1\n');
      else this.cgfs().writeFile(h, cg, 'notify_on_release', '1\n');
      this.releaseFlags?.claim(h, cg);
      return;
    }
    if (isHierarchyTop(h, cg)) return; // never a candidate for removal; the request layer refuses it
    const key = keyOf(h.primaryName, cg);
    if (this.marks.has(key)) return;
    this.batch(() => {
      this.marks.set(key, { hierarchy: h.primaryName, cgroup: cg });
      this.changed();
      this.arm(key);
      this.evaluate(key);
    });
  }

  /** Runs `fn` (several marks, a prune) with one state-file write at the end. */
  batch<T>(fn: () => T): T {
    this.batching++;
    try {
      return fn();
    } finally {
      this.batching--;
      if (this.batching === 0 && this.dirty) this.persist();
    }
  }

  /** Forgets the marks at and below `cg` after a request removed it; a marked parent may now go. */
  forget(h: Hierarchy, cg: string): void {
    this.dropSubtree(h.primaryName, cg);
    this.evaluateAncestors(h.primaryName, cg);
  }

  /** Re-reads the promises of an earlier run and arms them; what emptied meanwhile goes now. */
  restore(): number {
    let loaded: RemoveOnEmptyMark[];
    try {
      loaded = this.store.load();
    } catch (err) {
      this.log.error({ err }, 'cannot read the remove-on-empty state; earlier marks are lost');
      return 0;
    }
    for (const m of loaded) this.marks.set(keyOf(m.hierarchy, m.cgroup), m);
    this.batch(() => {
      for (const key of [...this.marks.keys()]) {
        this.arm(key);
        this.evaluate(key);
      }
    });
    return loaded.length;
  }

  /** After the layout changed: watches follow the hierarchies to where they are mounted now. */
  rebind(): void {
    for (const key of [...this.watches.keys()]) this.disarm(key);
    this.batch(() => {
      for (const key of [...this.marks.keys()]) {
        this.arm(key);
        this.evaluate(key);
      }
    });
  }

  get watchCount(): number {
    return this.watches.size;
  }

  get markCount(): number {
    return this.marks.size;
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.watches.keys()]) this.disarm(key);
  }

  private hierarchyOf(mark: RemoveOnEmptyMark): Hierarchy | undefined {
    const h = this.cgfs().layout.find(mark.hierarchy);
    return h !== undefined && driverFor(h).autoRemove === 'watch' ? h : undefined;
  }

  private arm(key: string): void {
    const mark = this.marks.get(key);
    if (!mark || this.watches.has(key) || this.closed) return;
    const h = this.hierarchyOf(mark);
    if (!h) return; // not mounted now; the mark waits in the state file until it is again
    try {
      // Shared with event watches of the same directory (dir-watch.ts); a failing watch
      // calls the listener once more, and evaluate() then finds the cgroup gone.
      this.watches.set(key, this.dirs.watch(this.cgfs().dir(h, mark.cgroup), () => this.schedule(key)));
    } catch {
      // gone already: evaluate() drops the mark
    }
  }

  private disarm(key: string): void {
    this.watches.get(key)?.();
    this.watches.delete(key);
  }

  /** Bursts of events (every cgroup file change shows in the directory) become one look. */
  private schedule(key: string): void {
    if (this.queued.has(key) || this.closed) return;
    this.queued.add(key);
    setImmediate(() => {
      this.queued.delete(key);
      if (!this.closed) this.batch(() => this.evaluate(key));
    });
  }

  private evaluate(key: string): void {
    const mark = this.marks.get(key);
    if (!mark) return;
    const h = this.hierarchyOf(mark);
    if (!h) return;
    const cgfs = this.cgfs();
    const cg = mark.cgroup;
    if (isHierarchyTop(h, cg)) return;
    if (!cgfs.isDirectory(h, cg)) {
      // Removed by someone else: the promise is void.
      this.dropSubtree(mark.hierarchy, cg);
      this.evaluateAncestors(mark.hierarchy, cg);
      return;
    }
    try {
      if (!isSubtreeEmpty(cgfs, h, cg)) return;
      removeSubtree(cgfs, h, cg);
    } catch (err) {
      // Busy again (a task arrived between the read and the rmdir): wait for the next event.
      this.log.debug({ cgroup: cgfs.describe(h, cg), err: (err as Error).message }, 'remove-on-empty waits');
      return;
    }
    this.log.info({ cgroup: cgfs.describe(h, cg) }, 'removed empty cgroup');
    this.dropSubtree(mark.hierarchy, cg);
    this.evaluateAncestors(mark.hierarchy, cg);
  }

  /** A marked ancestor may have been waiting only for this subtree to go. */
  private evaluateAncestors(hierarchy: string, cg: string): void {
    for (let up = parentOf(cg); ; up = parentOf(up)) {
      const key = keyOf(hierarchy, up);
      if (this.marks.has(key)) this.schedule(key);
      if (up === '/') break;
    }
  }

  private dropSubtree(hierarchy: string, top: string): void {
    for (const [key, mark] of this.marks) {
      if (mark.hierarchy !== hierarchy || !isAtOrBelow(mark.cgroup, top)) continue;
      this.marks.delete(key);
      this.disarm(key);
      this.changed();
    }
  }

  private changed(): void {
    this.dirty = true;
    if (this.batching === 0) this.persist();
  }

  private persist(): void {
    this.dirty = false;
    try {
      this.store.save([...this.marks.values()]);
    } catch (err) {
      // The marks still hold for this process; only a restart would lose them.
      this.log.error({ err }, 'cannot write the remove-on-empty state');
    }
  }
}
