// One inotify watch (fs.watch) per cgroup directory, shared by everyone who wants to hear
// of changes there: remove-on-empty and event watches both look at cgroup.events (and
// memory.events) of the same directories. kernfs reports a changed cgroup.events or
// memory.events as IN_MODIFY of that file, which a watch of the directory sees; removing
// the directory ends the watch ('rename', then the watcher closes).
import * as fs from 'node:fs';

export type DirListener = () => void;

interface Shared {
  watcher: fs.FSWatcher;
  listeners: Set<DirListener>;
}

export class DirWatches {
  private readonly byDir = new Map<string, Shared>();

  /**
   * Calls `listener` after changes in `dir` (bursts are the listener's to coalesce), and once
   * more if the watch fails (the directory went). Returns the function that stops it. Throws
   * (ENOENT, ENOSPC when inotify watches run out) when the directory cannot be watched.
   */
  watch(dir: string, listener: DirListener): () => void {
    let shared = this.byDir.get(dir);
    if (!shared) {
      const listeners = new Set<DirListener>();
      const watcher = fs.watch(dir, { persistent: false }, () => listeners.forEach((l) => l()));
      const entry: Shared = { watcher, listeners };
      watcher.on('error', () => {
        // Gone (or the watch broke): every listener hears of it once and looks for itself.
        if (this.byDir.get(dir) === entry) this.byDir.delete(dir);
        watcher.close();
        [...listeners].forEach((l) => l());
      });
      this.byDir.set(dir, entry);
      shared = entry;
    }
    const entry = shared;
    entry.listeners.add(listener);
    return () => {
      if (!entry.listeners.delete(listener) || entry.listeners.size > 0) return;
      if (this.byDir.get(dir) === entry) this.byDir.delete(dir);
      entry.watcher.close();
    };
  }

  close(): void {
    for (const entry of this.byDir.values()) entry.watcher.close();
    this.byDir.clear();
  }
}
