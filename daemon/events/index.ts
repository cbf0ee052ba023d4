// The daemon's events: sources (sources.ts), who watches them (registry.ts), and the
// hooks the rest of the daemon calls: the release agent's spool (released, keepReleased)
// and the v1 freezer writes (frozenChanged). One per Runtime (runtime.events).
import type { ServerConnection } from '../dbus/connection';
import { INTERFACE1_NAME, OBJECT_PATH } from '../dbus/interface';
import type { CgroupFs } from '../cgroupfs/cgroupfs';
import { DirWatches } from '../cgroupfs/dir-watch';
import type { Hierarchy } from '../cgroupfs/layout';
import { ReleaseFlags } from '../cgroupfs/release-flags';
import type { Logger } from '../logger';
import type { CgroupEvent } from './parse';
import { WatchRegistry, type WatchLimits, type WatchOwner } from './registry';
import { EventSources } from './sources';

/** The signal of an event, as sent: member, signature and body (the cgroup name first). */
export function signalOf(name: string, e: CgroupEvent): { member: string; signature: string; body: unknown[] } {
  if (e.kind === 'emptied') return { member: 'Emptied', signature: 's', body: [name] };
  if (e.kind === 'oom') return { member: 'OOM', signature: 'st', body: [name, BigInt(e.count)] };
  return { member: 'Frozen', signature: 'sb', body: [name, e.frozen] };
}

export class EventHub {
  readonly dirs = new DirWatches();
  readonly flags: ReleaseFlags;
  readonly sources: EventSources;
  readonly registry: WatchRegistry;
  private readonly owners = new WeakMap<ServerConnection, WatchOwner>();

  constructor(cgfs: () => CgroupFs, private readonly log: Logger, limits?: WatchLimits) {
    this.flags = new ReleaseFlags(cgfs);
    this.sources = new EventSources(cgfs, this.dirs, this.flags, log);
    this.registry = new WatchRegistry((t, listener) => this.sources.subscribe(t.h, t.cg, t.kind, listener), limits);
  }

  /** The watch owner of a connection: its signals go to it, its watches end with it. */
  ownerOf(conn: ServerConnection): WatchOwner {
    let owner = this.owners.get(conn);
    if (!owner) {
      const made: WatchOwner = {
        uid: conn.peer.uid,
        signal: (name, e) => {
          const s = signalOf(name, e);
          this.log.debug({ conn: conn.id, signal: s.member, cgroup: name }, 'signal');
          conn.sendSignal(OBJECT_PATH, INTERFACE1_NAME, s.member, s.signature, s.body);
        },
      };
      this.owners.set(conn, made);
      conn.onClose(() => this.registry.removeOwner(made));
      owner = made;
    }
    return owner;
  }

  /** Hook for the release agent's spool (v1): `cg` of `h` emptied. */
  released(h: Hierarchy, cg: string): void {
    this.sources.released(h, cg);
  }

  /** Hook for the release agent's spool (v1): whether `cg` is only watched, not marked for removal. */
  keepReleased(h: Hierarchy, cg: string): boolean {
    return this.flags.keep(h, cg);
  }

  /** Hook for the daemon's settled freezer changes (freeze-kill.ts setFreezerState, through onFrozenChange). */
  frozenChanged(h: Hierarchy, cg: string): void {
    this.sources.frozenChanged(h, cg);
  }

  close(): void {
    this.sources.close();
    this.dirs.close();
  }
}
