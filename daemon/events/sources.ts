// Where events come from, one source per (hierarchy, cgroup, kind), shared by every watch
// that wants it and closed with the last one:
//   v2  Emptied, Frozen: cgroup.events (populated 1→0, frozen changes), by inotify
//       OOM: memory.events (oom / oom_kill rise), by inotify
//   v1  Emptied: the release agent (notify_on_release, borrowed: release-flags.ts), where
//       the daemon owns the hierarchy's release agent
//       OOM: memory.oom_control registered in cgroup.event_control with an eventfd
//       Frozen: none from the kernel; the daemon's own freezer.state writes (frozenChanged)
// Every source also watches its directory and its parent's (where a removal shows): when
// the cgroup is removed it sends Emptied if it has not since the cgroup was last seen
// populated, then 'gone', and closes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openEventCounter, type EventCounter } from '../../addon';
import type { Logger } from '../logger';
import { isAtOrBelow, type CgroupFs } from '../cgroupfs/cgroupfs';
import type { DirWatches } from '../cgroupfs/dir-watch';
import type { Hierarchy } from '../cgroupfs/layout';
import type { ReleaseFlags } from '../cgroupfs/release-flags';
import {
  stateFromCgroupEvents,
  stateFromFreezerState,
  stateFromMemoryEvents,
  stateFromOomControl,
  transitions,
  type CgroupEvent,
  type EventKind,
  type EventState,
} from './parse';

export type SourceEvent = CgroupEvent | { kind: 'gone' };
export type SourceListener = (event: SourceEvent) => void;

/** How long a v1 OOM notification waits for the kill it announces to be counted (the kernel notifies first). */
const OOM_SETTLE_MS = [5, 10, 20, 40];

/** The file whose read permission each kind needs (as GetValue of that file), per version. */
function fileFor(h: Hierarchy, kind: EventKind): string {
  if (h.version === 2) return kind === 'oom' ? 'memory.events' : 'cgroup.events';
  if (kind === 'oom') return 'memory.oom_control';
  if (kind === 'frozen') return 'freezer.state';
  return 'cgroup.procs';
}

abstract class Source {
  readonly listeners = new Set<SourceListener>();
  /** whether Emptied was sent since the cgroup was last seen populated */
  protected emptiedSent = false;
  private stopDirWatch: (() => void) | undefined;
  private queued = false;
  closed = false;

  constructor(
    protected readonly hub: EventSources,
    readonly key: string,
    readonly h: Hierarchy,
    readonly cg: string,
    readonly kind: EventKind,
  ) {}

  protected get cgfs(): CgroupFs {
    return this.hub.cgfs();
  }

  start(): void {
    const dir = this.cgfs.dir(this.h, this.cg);
    const own = this.hub.dirs.watch(dir, () => this.schedule());
    // cgroupfs reports no IN_DELETE_SELF when a cgroup is removed, but its parent hears of the
    // rmdir (IN_DELETE): a removal, by the daemon or anyone else, is noticed there.
    let parent: (() => void) | undefined;
    try {
      parent = this.hub.dirs.watch(path.dirname(dir), () => this.schedule());
    } catch {
      // the top of what the daemon sees: it is never removed
    }
    this.stopDirWatch = () => {
      own();
      parent?.();
    };
  }

  /** Bursts of inotify events become one look, after the current turn. */
  protected schedule(): void {
    if (this.queued || this.closed) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      if (this.closed) return;
      if (!this.cgfs.isDirectory(this.h, this.cg)) return this.gone();
      this.look();
    });
  }

  /** Re-reads after a change in the directory. */
  protected look(): void {}

  emit(event: CgroupEvent): void {
    if (this.closed || event.kind !== this.kind) return;
    if (event.kind === 'emptied') this.emptiedSent = true;
    for (const l of [...this.listeners]) l(event);
  }

  /** The cgroup was removed: a last Emptied if due, then the watches of it end. */
  gone(): void {
    if (this.closed) return;
    if (this.kind === 'emptied' && !this.emptiedSent) this.emit({ kind: 'emptied' });
    const listeners = [...this.listeners];
    this.hub.drop(this);
    for (const l of listeners) l({ kind: 'gone' });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopDirWatch?.();
    this.stopDirWatch = undefined;
    this.release();
  }

  protected release(): void {}
}

/** A source that compares readings of its kind's file (fileFor): the last one is kept from the start. */
abstract class ReadingSource extends Source {
  protected state: EventState = {};
  /** the most of the file read */
  protected readonly maxBytes: number = 4096;

  protected abstract parse(text: string): EventState;

  /** The file now; undefined when it cannot be read (the cgroup may be gone). */
  protected read(): EventState | undefined {
    try {
      return this.parse(this.cgfs.readFile(this.h, this.cg, fileFor(this.h, this.kind), this.maxBytes));
    } catch {
      return undefined;
    }
  }

  override start(): void {
    super.start();
    this.state = this.read() ?? {};
  }
}

/** v2: one of cgroup.events or memory.events, re-read on every inotify event of the directory. */
class V2Source extends ReadingSource {
  protected parse(text: string): EventState {
    return this.kind === 'oom' ? stateFromMemoryEvents(text) : stateFromCgroupEvents(text);
  }

  protected override look(): void {
    const now = this.read();
    if (!now) return this.gone();
    const before = this.state;
    this.state = now;
    if (now.populated === true) this.emptiedSent = false;
    for (const e of transitions(before, now)) this.emit(e);
  }
}

/** v1 Emptied: the release agent's spool entries (released()), with the flag borrowed meanwhile. */
class V1EmptiedSource extends Source {
  private borrowed = false;

  override start(): void {
    this.hub.flags.borrow(this.h, this.cg);
    this.borrowed = true;
    super.start();
  }

  protected override release(): void {
    if (this.borrowed) this.hub.flags.giveBack(this.h, this.cg);
    this.borrowed = false;
  }
}

/** v1 Frozen: freezer.state, re-read when the daemon itself changed it at or above the cgroup. */
class V1FrozenSource extends ReadingSource {
  protected override readonly maxBytes = 64;

  protected parse(text: string): EventState {
    return stateFromFreezerState(text);
  }

  refresh(): void {
    const now = this.read();
    if (!now) return this.schedule();
    const before = this.state;
    this.state = now;
    for (const e of transitions(before, now)) this.emit(e);
  }
}

/** v1 OOM: an eventfd registered for memory.oom_control (Documentation/admin-guide/cgroup-v1/memory.rst §10). */
class V1OomSource extends ReadingSource {
  private counter: EventCounter | undefined;
  private settling = false;

  protected parse(text: string): EventState {
    return stateFromOomControl(text);
  }

  override start(): void {
    super.start();
    const counter = openEventCounter(() => this.woken());
    this.counter = counter;
    let controlFd: number | undefined;
    try {
      controlFd = fs.openSync(this.cgfs.path(this.h, this.cg, 'memory.oom_control'), fs.constants.O_RDONLY);
      // The kernel keeps the eventfd; the control file's fd only names the file during the write.
      this.cgfs.writeFile(this.h, this.cg, 'cgroup.event_control', `${counter.fd} ${controlFd}\n`);
    } finally {
      if (controlFd !== undefined) fs.closeSync(controlFd);
    }
  }

  // The kernel signals before the OOM killer runs, and once more when the cgroup is removed:
  // wait briefly for oom_kill to rise, then report whatever it says.
  private woken(): void {
    if (this.settling || this.closed) return;
    this.settling = true;
    const before = this.state;
    const attempt = (i: number): void => {
      if (this.closed) return;
      const now = this.read();
      if (!now) {
        this.settling = false;
        return this.gone();
      }
      const delay = OOM_SETTLE_MS[i];
      if ((now.oomKill ?? 0) <= (before.oomKill ?? 0) && delay !== undefined) {
        setTimeout(() => attempt(i + 1), delay).unref();
        return;
      }
      this.settling = false;
      this.state = now;
      if (!this.cgfs.isDirectory(this.h, this.cg)) return this.gone();
      this.emit({ kind: 'oom', count: now.oomKill ?? 0 });
    };
    attempt(0);
  }

  protected override release(): void {
    this.counter?.close(); // closing the eventfd unregisters it
    this.counter = undefined;
  }
}

export class EventSources {
  private readonly sources = new Map<string, Source>();
  /** whether the daemon's release agent serves `h` (daemon.ts sets it once the agents are installed) */
  v1EmptiedAvailable: (h: Hierarchy) => boolean = () => false;

  constructor(
    readonly cgfs: () => CgroupFs,
    readonly dirs: DirWatches,
    readonly flags: ReleaseFlags,
    private readonly log: Logger,
  ) {}

  /**
   * What `h` can report about existing cgroup `cg`, each kind with the file that gates it
   * (the watcher needs read access to it, as for GetValue of that file).
   */
  offers(h: Hierarchy, cg: string): Map<EventKind, string> {
    const cgfs = this.cgfs();
    const out = new Map<EventKind, string>();
    const has = (file: string): boolean => cgfs.fileExists(h, cg, file);
    if (h.version === 2) {
      const events = has('cgroup.events');
      if (events) out.set('emptied', 'cgroup.events');
      // The root has no cgroup.freeze (and no frozen line); kernels before 5.2 have neither.
      if (events && has('cgroup.freeze')) out.set('frozen', 'cgroup.events');
      if (has('memory.events')) out.set('oom', 'memory.events');
      return out;
    }
    if (this.v1EmptiedAvailable(h) && cg !== '/' && cg !== h.mountRoot) out.set('emptied', fileFor(h, 'emptied'));
    if (h.controllers.includes('memory') && has('memory.oom_control') && has('cgroup.event_control')) out.set('oom', 'memory.oom_control');
    if (h.controllers.includes('freezer') && has('freezer.state')) out.set('frozen', 'freezer.state');
    return out;
  }

  /** Starts (or joins) the source of `kind` for `cg` in `h`; returns the function that leaves it. Throws when it cannot start. */
  subscribe(h: Hierarchy, cg: string, kind: EventKind, listener: SourceListener): () => void {
    const key = `${h.primaryName}:${cg}:${kind}`;
    let source = this.sources.get(key);
    if (!source) {
      const made = this.make(key, h, cg, kind);
      try {
        made.start();
      } catch (err) {
        made.close(); // what it set up before failing (directory watches, a borrowed flag)
        throw err;
      }
      this.sources.set(key, made);
      source = made;
    }
    const joined = source;
    joined.listeners.add(listener);
    return () => {
      if (!joined.listeners.delete(listener) || joined.listeners.size > 0) return;
      this.drop(joined);
    };
  }

  private make(key: string, h: Hierarchy, cg: string, kind: EventKind): Source {
    if (h.version === 2) return new V2Source(this, key, h, cg, kind);
    if (kind === 'oom') return new V1OomSource(this, key, h, cg, kind);
    if (kind === 'frozen') return new V1FrozenSource(this, key, h, cg, kind);
    return new V1EmptiedSource(this, key, h, cg, kind);
  }

  /** @internal a source that ended (removed cgroup, last listener gone) */
  drop(source: Source): void {
    if (this.sources.get(source.key) === source) this.sources.delete(source.key);
    source.close();
  }

  /** The release agent spooled `cg` of `h` (v1): it has emptied. */
  released(h: Hierarchy, cg: string): void {
    this.sources.get(`${h.primaryName}:${cg}:emptied`)?.emit({ kind: 'emptied' });
  }

  /**
   * The daemon wrote freezer.state of `cg` (v1): every watched cgroup at or below it may
   * have changed (a child of a frozen cgroup reads FROZEN too).
   */
  frozenChanged(h: Hierarchy, cg: string): void {
    for (const s of this.sources.values()) {
      if (!(s instanceof V1FrozenSource) || s.h.primaryName !== h.primaryName) continue;
      if (isAtOrBelow(s.cg, cg)) s.refresh();
    }
  }

  close(): void {
    for (const s of [...this.sources.values()]) this.drop(s);
    this.log.debug({}, 'event sources closed');
  }
}
