// Who owns which cgroups, per hierarchy: the count behind max-cgroups-per-uid (issue 12).
// It is derived from the tree itself (a uid owns a cgroup when it owns the directory, which is
// what Create and Chown hand out), so it survives restarts without a counter file that could
// drift. The daemon's own mkdir/chown/rmdir reach it through the CgroupFs observer, whatever
// request or automatic removal made them. What others do behind the daemon's back is caught
// two ways: a uid at its limit has its own cgroups re-checked (in slices) before its Create
// runs, so an rmdir by the owner never keeps it refused; and a background walk recounts
// everything every recount-interval seconds (a mkdir by the owner counts at the latest then).
import { CgmError } from '../errors';
import type { Logger } from '../logger';
import type { CgroupFs, CgroupObserver } from '../cgroupfs/cgroupfs';
import { HIDDEN_LEAF, type Hierarchy } from '../cgroupfs/layout';
import { Pacer, walkSubtree } from '../cgroupfs/walk';
import { isLimited, type QuotaLimits } from './limits';

interface Entry {
  uid: number;
  /** the recount during which it was last confirmed (or set by the daemon itself) */
  seen: number;
}

/** The owners of one hierarchy's cgroups, for the uids that are limited. */
class HierarchyOwners {
  readonly owners = new Map<string, Entry>();
  readonly byUid = new Map<number, Set<string>>();
  /** uid -> the re-check of its cgroups under way */
  readonly rechecks = new Map<number, Promise<void>>();
  generation = 0;
  recount: Promise<void> | undefined;

  set(cg: string, uid: number | undefined): void {
    const entry = this.owners.get(cg);
    if (entry && entry.uid === uid) {
      entry.seen = this.generation;
      return;
    }
    if (entry) this.delete(cg);
    if (uid === undefined) return;
    this.owners.set(cg, { uid, seen: this.generation });
    let paths = this.byUid.get(uid);
    if (!paths) this.byUid.set(uid, (paths = new Set()));
    paths.add(cg);
  }

  delete(cg: string): void {
    const entry = this.owners.get(cg);
    if (!entry) return;
    this.owners.delete(cg);
    const paths = this.byUid.get(entry.uid);
    paths?.delete(cg);
    if (paths?.size === 0) this.byUid.delete(entry.uid);
  }

  count(uid: number): number {
    return this.byUid.get(uid)?.size ?? 0;
  }
}

function isHiddenLeaf(cg: string): boolean {
  return cg.slice(cg.lastIndexOf('/') + 1) === HIDDEN_LEAF;
}

export class OwnerLedger implements CgroupObserver {
  private readonly hierarchies = new Map<string, HierarchyOwners>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** who owns what the daemon makes: its own euid, which never changes (read once, not per mkdir) */
  private readonly creator = process.geteuid?.() ?? 0;

  constructor(
    private readonly cgfs: () => CgroupFs,
    readonly limits: QuotaLimits,
    private readonly log: Logger,
  ) {}

  private of(h: Hierarchy): HierarchyOwners {
    let owners = this.hierarchies.get(h.device);
    if (!owners) this.hierarchies.set(h.device, (owners = new HierarchyOwners()));
    return owners;
  }

  /** The uid whose ownership is recorded: undefined for one the limits do not apply to. */
  private tracked(uid: number): number | undefined {
    return isLimited(this.limits, uid) ? uid : undefined;
  }

  // CgroupObserver: the daemon's own changes, as they happen.
  created(h: Hierarchy, cg: string): void {
    if (!isHiddenLeaf(cg)) this.of(h).set(cg, this.tracked(this.creator));
  }

  ownerChanged(h: Hierarchy, cg: string, uid: number): void {
    if (!isHiddenLeaf(cg)) this.of(h).set(cg, this.tracked(uid));
  }

  removed(h: Hierarchy, cg: string): void {
    this.of(h).delete(cg);
  }

  /** How many cgroups `uid` owns in h, as far as the ledger knows. */
  count(h: Hierarchy, uid: number): number {
    return this.hierarchies.get(h.device)?.count(uid) ?? 0;
  }

  /**
   * Refuses (LimitsExceeded, naming the limit and the count) when `uid` may not own one more
   * cgroup in h. Synchronous, so two Creates can never both take the last place.
   */
  assertMayCreate(h: Hierarchy, uid: number): void {
    if (!isLimited(this.limits, uid)) return;
    const max = this.limits.maxCgroupsPerUid;
    const count = this.count(h, uid);
    if (count < max) return;
    throw new CgmError('LimitsExceeded', `uid ${uid} already owns ${count} cgroups in ${h.label} (limit max-cgroups-per-uid=${max})`);
  }

  /**
   * Before a Create: where `uid` is at its limit, re-checks its cgroups on disk (in slices, one
   * lstat each) and drops those removed or handed over behind the daemon's back. Undefined, at
   * no cost, when the uid has room everywhere (the usual case).
   */
  recheckIfFull(hierarchies: readonly Hierarchy[], uid: number): Promise<void> | undefined {
    if (!isLimited(this.limits, uid)) return undefined;
    const pending: Promise<void>[] = [];
    for (const h of hierarchies) {
      if (this.count(h, uid) < this.limits.maxCgroupsPerUid) continue;
      const owners = this.of(h);
      let recheck = owners.rechecks.get(uid);
      if (!recheck) {
        recheck = this.recheckUid(h, owners, uid).finally(() => owners.rechecks.delete(uid));
        owners.rechecks.set(uid, recheck);
      }
      pending.push(recheck);
    }
    return pending.length > 0 ? Promise.all(pending).then(() => undefined) : undefined;
  }

  private async recheckUid(h: Hierarchy, owners: HierarchyOwners, uid: number): Promise<void> {
    const cgfs = this.cgfs();
    const pacer = new Pacer();
    let stale = 0;
    for (const cg of [...(owners.byUid.get(uid) ?? [])]) {
      if (this.recheck(cgfs, h, owners, cg)) stale++;
      const turn = pacer.pace();
      if (turn) await turn;
    }
    if (stale > 0) this.log.info({ hierarchy: h.label, uid, stale, count: owners.count(uid) }, 'quota count corrected');
  }

  /** Re-reads one entry's directory; true when the ledger was wrong about it. */
  private recheck(cgfs: CgroupFs, h: Hierarchy, owners: HierarchyOwners, cg: string): boolean {
    const before = owners.owners.get(cg)?.uid;
    const st = cgfs.isDirectory(h, cg) ? cgfs.stat(h, cg) : undefined;
    const now = st ? this.tracked(st.uid) : undefined;
    owners.set(cg, now);
    return now !== before;
  }

  /**
   * Counts the owners of every cgroup the daemon can see in h, in slices (it may be 100 000
   * cgroups on a busy host). Changes the daemon makes meanwhile are recorded as usual; entries
   * the walk did not confirm are re-checked at its end, so nothing stale survives it.
   */
  recount(h: Hierarchy): Promise<void> {
    const owners = this.of(h);
    owners.recount ??= this.walkOwners(h, owners).finally(() => {
      owners.recount = undefined;
    });
    return owners.recount;
  }

  private async walkOwners(h: Hierarchy, owners: HierarchyOwners): Promise<void> {
    const cgfs = this.cgfs();
    const generation = ++owners.generation;
    const pacer = new Pacer();
    const started = Date.now();
    let walked: number;
    try {
      walked = await walkSubtree(cgfs, h, h.mountRoot, { pacer, maxNodes: Number.POSITIVE_INFINITY }, (cg) => {
        const st = cgfs.stat(h, cg);
        owners.set(cg, st ? this.tracked(st.uid) : undefined);
      });
    } catch (err) {
      if (!this.closed) this.log.warn({ hierarchy: h.label, err: (err as Error).message }, 'cannot count cgroup owners');
      return;
    }
    let fixed = 0;
    for (const [cg, entry] of [...owners.owners]) {
      if (entry.seen < generation && this.recheck(cgfs, h, owners, cg)) fixed++;
      const turn = pacer.pace();
      if (turn) await turn;
    }
    this.log.debug({ hierarchy: h.label, walked, owned: owners.owners.size, fixed, ms: Date.now() - started }, 'cgroup owners counted');
  }

  /** Recounts every hierarchy of the current layout, one after the other. */
  async recountAll(): Promise<void> {
    for (const h of this.cgfs().layout.hierarchies) await this.recount(h);
  }

  /** After a layout change: forgets hierarchies no longer mounted, counts new ones. */
  rebind(): void {
    const layout = this.cgfs().layout;
    const devices = new Set(layout.hierarchies.map((h) => h.device));
    for (const device of [...this.hierarchies.keys()]) if (!devices.has(device)) this.hierarchies.delete(device);
    for (const h of layout.hierarchies) {
      if (!this.hierarchies.has(h.device)) void this.recount(h);
    }
  }

  /** Starts the periodic recount (recount-interval seconds; 0: never). */
  start(): void {
    const seconds = this.limits.recountIntervalS;
    if (seconds <= 0 || this.timer || this.closed) return;
    this.timer = setInterval(() => void this.recountAll(), seconds * 1000);
    this.timer.unref();
  }

  /** uid -> count per hierarchy label, for the start-up log line and tests. */
  summary(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const h of this.cgfs().layout.hierarchies) {
      const owners = this.hierarchies.get(h.device);
      if (!owners || owners.byUid.size === 0) continue;
      out[h.label] = Object.fromEntries([...owners.byUid].map(([uid, paths]) => [String(uid), paths.size]));
    }
    return out;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
