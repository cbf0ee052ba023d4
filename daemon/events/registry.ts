// Who watches what: per connection, the cgroup names it gave Watch, each with the sources
// (hierarchy, cgroup, kind) chosen for it, and the signals that go back. Bounded, so that
// no client can make the daemon hold unbounded state (README "Events"): a connection may
// hold MAX_WATCHES_PER_CONNECTION names, a uid MAX_WATCHES_PER_UID over all its
// connections, the daemon MAX_WATCHES in all; beyond, Watch fails with LimitsExceeded.
// A watch ends with Unwatch, with its connection, or when every cgroup it follows is gone.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import type { CgroupEvent, EventKind } from './parse';
import type { SourceEvent, SourceListener } from './sources';

export const MAX_WATCHES_PER_CONNECTION = 64;
export const MAX_WATCHES_PER_UID = 1024;
export const MAX_WATCHES = 16384;

export interface WatchLimits {
  perConnection: number;
  perUid: number;
  total: number;
}

export const DEFAULT_WATCH_LIMITS: WatchLimits = { perConnection: MAX_WATCHES_PER_CONNECTION, perUid: MAX_WATCHES_PER_UID, total: MAX_WATCHES };

/** One source a watch follows: each kind comes from one hierarchy (README "Events"). */
export interface WatchTarget {
  h: Hierarchy;
  /** hierarchy-absolute */
  cg: string;
  kind: EventKind;
}

/** A connection that watches: its peer's uid (for the caps) and where its signals go. */
export interface WatchOwner {
  readonly uid: number;
  signal(name: string, event: CgroupEvent): void;
}

export type Subscribe = (target: WatchTarget, listener: SourceListener) => () => void;

interface Watch {
  stops: Map<EventKind, () => void>;
}

export class WatchRegistry {
  private readonly byOwner = new Map<WatchOwner, Map<string, Watch>>();
  private readonly perUid = new Map<number, number>();
  private total = 0;

  constructor(
    private readonly subscribe: Subscribe,
    private readonly limits: WatchLimits = DEFAULT_WATCH_LIMITS,
  ) {}

  /** Whether `owner` watches `name` now. */
  has(owner: WatchOwner, name: string): boolean {
    return this.byOwner.get(owner)?.has(name) ?? false;
  }

  /**
   * Watches `name` for `owner` through `targets` (the request chose and checked them).
   * Watching a name twice changes nothing. Throws LimitsExceeded over a cap, or what a
   * source throws when it cannot start (nothing is kept then).
   */
  add(owner: WatchOwner, name: string, targets: readonly WatchTarget[]): void {
    const mine = this.byOwner.get(owner);
    if (mine?.has(name)) return;
    const count = mine?.size ?? 0;
    if (count >= this.limits.perConnection) throw new CgmError('LimitsExceeded', `this connection watches ${count} cgroups already (limit ${this.limits.perConnection})`);
    const uidCount = this.perUid.get(owner.uid) ?? 0;
    if (uidCount >= this.limits.perUid) throw new CgmError('LimitsExceeded', `uid ${owner.uid} watches ${uidCount} cgroups already (limit ${this.limits.perUid})`);
    if (this.total >= this.limits.total) throw new CgmError('LimitsExceeded', `the daemon watches ${this.total} cgroups already (limit ${this.limits.total})`);
    const watch: Watch = { stops: new Map() };
    try {
      for (const t of targets) {
        watch.stops.set(t.kind, this.subscribe(t, (e) => this.deliver(owner, name, watch, t.kind, e)));
      }
    } catch (err) {
      watch.stops.forEach((stop) => stop());
      throw err;
    }
    const map = mine ?? new Map<string, Watch>();
    map.set(name, watch);
    this.byOwner.set(owner, map);
    this.perUid.set(owner.uid, uidCount + 1);
    this.total++;
  }

  private deliver(owner: WatchOwner, name: string, watch: Watch, kind: EventKind, e: SourceEvent): void {
    if (this.byOwner.get(owner)?.get(name) !== watch) return;
    if (e.kind !== 'gone') return owner.signal(name, e);
    // That cgroup was removed: its source is closed; the watch ends with its last one.
    watch.stops.delete(kind);
    if (watch.stops.size === 0) this.remove(owner, name);
  }

  /** Ends the watch of `name`; false when there was none. */
  remove(owner: WatchOwner, name: string): boolean {
    const mine = this.byOwner.get(owner);
    const watch = mine?.get(name);
    if (!mine || !watch) return false;
    mine.delete(name);
    if (mine.size === 0) this.byOwner.delete(owner);
    const left = (this.perUid.get(owner.uid) ?? 1) - 1;
    if (left <= 0) this.perUid.delete(owner.uid);
    else this.perUid.set(owner.uid, left);
    this.total--;
    for (const stop of watch.stops.values()) stop();
    return true;
  }

  /** The connection went: all its watches end. */
  removeOwner(owner: WatchOwner): void {
    for (const name of [...(this.byOwner.get(owner)?.keys() ?? [])]) this.remove(owner, name);
  }

  get size(): number {
    return this.total;
  }
}
