// Remove-on-empty: v1 marks cgroups with notify_on_release (the kernel runs the release
// agent), v2 watches cgroup.events and removes the cgroup once `populated 0`. Never
// kills a task; a cgroup that still has tasks simply stays.
import * as fs from 'node:fs';
import type { Logger } from '../logger';
import type { DaemonOptions } from '../options';
import { childOf, parentOf, type CgroupFs } from './cgroupfs';
import type { Hierarchy } from './layout';

interface Watch {
  h: Hierarchy;
  cg: string;
  watcher: fs.FSWatcher;
}

export class AutoRemover {
  private readonly watches = new Map<string, Watch>();

  constructor(
    private readonly cgfs: CgroupFs,
    private readonly options: Pick<DaemonOptions, 'mountDir' | 'allowAutoremovePremounted'>,
    private readonly log: Logger,
  ) {}

  /**
   * v2 always (inotify); v1 only where the daemon owns the release agent: hierarchies it
   * mounted itself, or premounted ones the administrator allowed (reference §8.2).
   */
  isSupported(h: Hierarchy): boolean {
    if (h.version === 2) return true;
    if (h.mountPoint === this.options.mountDir || h.mountPoint.startsWith(`${this.options.mountDir}/`)) return true;
    const allowed = this.options.allowAutoremovePremounted;
    return allowed.includes('all') || h.names.some((n) => allowed.includes(n));
  }

  /** Marks `cg` for removal once it has no tasks. */
  mark(h: Hierarchy, cg: string): void {
    if (h.version === 1) {
      this.cgfs.writeFile(h, cg, 'notify_on_release', '1\n');
      return;
    }
    const key = `${h.device}:${cg}`;
    if (this.watches.has(key)) return;
    const file = this.cgfs.path(h, cg, 'cgroup.events');
    const watcher = fs.watch(file, { persistent: false }, () => this.evaluate(key));
    watcher.on('error', () => this.drop(key));
    this.watches.set(key, { h, cg, watcher });
    this.evaluate(key);
  }

  /** Forgets a watch after the cgroup was removed by a request. */
  forget(h: Hierarchy, cg: string): void {
    const prefix = `${h.device}:${cg}`;
    for (const key of [...this.watches.keys()]) {
      if (key === prefix || key.startsWith(`${prefix}/`)) this.drop(key);
    }
  }

  get watchCount(): number {
    return this.watches.size;
  }

  private drop(key: string): void {
    const w = this.watches.get(key);
    if (!w) return;
    w.watcher.close();
    this.watches.delete(key);
  }

  private evaluate(key: string): void {
    const w = this.watches.get(key);
    if (!w) return;
    let events: string;
    try {
      events = this.cgfs.readFile(w.h, w.cg, 'cgroup.events', 4096);
    } catch {
      this.drop(key); // removed by someone else
      return;
    }
    if (!/^populated 0$/m.test(events)) return;
    const leaf = this.cgfs.flavour(w.h).leaf;
    try {
      if (leaf && this.cgfs.isDirectory(w.h, childOf(w.cg, leaf))) this.cgfs.rmdir(w.h, childOf(w.cg, leaf));
      this.cgfs.rmdir(w.h, w.cg);
    } catch (err) {
      // Busy again, or children that are not empty yet: wait for the next event.
      this.log.debug({ cgroup: this.cgfs.describe(w.h, w.cg), err: (err as Error).message }, 'remove-on-empty waits');
      return;
    }
    this.log.info({ cgroup: this.cgfs.describe(w.h, w.cg) }, 'removed empty cgroup');
    this.drop(key);
    // A marked parent may have been waiting only for this child to go.
    const parentKey = `${w.h.device}:${parentOf(w.cg)}`;
    if (this.watches.has(parentKey)) setImmediate(() => this.evaluate(parentKey));
  }

  close(): void {
    for (const key of [...this.watches.keys()]) this.drop(key);
  }
}
