// Create (reference §5.5, SPEC §2.2): walks the path one component at a time, makes the
// missing cgroups owned wholly by the requestor, and on failure removes every cgroup
// this call made, in every hierarchy. Each mkdir is journalled first (create-journal.ts)
// so that a daemon killed half-way is rolled back at its next start.
import { constants } from 'node:fs';
import { CgmError } from '../errors';
import { childOf, parentOf, type CgroupFs } from '../cgroupfs/cgroupfs';
import type { PinnedCgroup } from '../cgroupfs/pinned';
import { HIDDEN_LEAF, type Hierarchy } from '../cgroupfs/layout';
import { MAX_NAME_BYTES, mayCreateAtDepth, quoteArg, type FileOwner } from '../policy';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertCgroupArg, assertPinnedAccess, pinCgroup } from './checks';
import { forEachHierarchy, hierarchyList } from './hierarchies';

type Existed = 1 | -1;

/**
 * A cgroup this call made (removed again on failure), with the directory it was made in and
 * itself, both opened (pinned.ts): on cgroup v1 the caller may rename the cgroups of a
 * directory it owns, and a removal by path could then remove a root-owned cgroup swapped
 * into the made one's name.
 */
export interface Made {
  h: Hierarchy;
  cg: string;
  parent: PinnedCgroup;
  name: string;
  dir: PinnedCgroup;
  /** the owner of the new cgroup's directory and every file in it, once made (undefined: not all alike) */
  owner?: { uid: number; gid: number };
}

/** Everything a Create (or Setup) walk opened, closed when the call ends (closeWalk). */
export interface Walk {
  made: Made[];
  opened: PinnedCgroup[];
}

export function newWalk(): Walk {
  return { made: [], opened: [] };
}

export function closeWalk(walk: Walk): void {
  for (const p of walk.opened.splice(0)) p.close();
}

/** Returns 1 if the cgroup already existed in any hierarchy, -1 if it was made everywhere. */
export function create(rt: Runtime, caller: Caller, controller: string, cgroup: string): Existed {
  const hierarchies = hierarchyList(rt, controller);
  if (cgroup === '') return -1; // the original's no-op: '' is the caller's own, existing cgroup
  assertCgroupArg(cgroup, 'relative');
  assertComponentLengths(cgroup);
  const walk = newWalk();
  let index = 0;
  try {
    const results = forEachHierarchy(hierarchies, (h) => {
      if (index++ > 0) testOnlyPause(rt);
      return createIn(rt, caller, h, cgroup, walk);
    });
    return results.includes(1) ? 1 : -1;
  } catch (err) {
    removeMade(rt.cgfs, walk.made);
    throw err;
  } finally {
    closeWalk(walk);
    // Done or rolled back: a later start has nothing of this call to undo.
    rt.journal.finish();
  }
}

/**
 * Create for the handlers: a requestor at its quota somewhere first has its cgroups re-checked
 * (ledger.ts, in slices), so that cgroups it removed behind the daemon's back make room. The
 * Create itself stays synchronous: two of them can never both take the last place.
 */
export function createFair(rt: Runtime, caller: Caller, controller: string, cgroup: string): Existed | Promise<Existed> {
  let hierarchies: Hierarchy[];
  try {
    hierarchies = hierarchyList(rt, controller);
  } catch {
    hierarchies = []; // create() reports it
  }
  const recheck = rt.quota.recheckIfFull(hierarchies, caller.r.uid);
  return recheck ? recheck.then(() => create(rt, caller, controller, cgroup)) : create(rt, caller, controller, cgroup);
}

/**
 * --test-create-pause (hidden, tests only): blocks the whole daemon between two
 * hierarchies, so that a test can SIGKILL it with a Create half done.
 */
function testOnlyPause(rt: Runtime): void {
  const ms = rt.options.testCreatePauseMs;
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * cgroupfs (kernfs) accepts names longer than NAME_MAX, which most tools cannot handle; refuse
 * them before anything is made in any hierarchy (SPEC §2.5: name length is a limit).
 */
export function assertComponentLengths(cgroup: string): void {
  for (const component of cgroup.split('/')) {
    if (Buffer.byteLength(component, 'utf8') > MAX_NAME_BYTES) {
      throw new CgmError('InvalidArgs', `cgroup name ${quoteArg(component)} is longer than ${MAX_NAME_BYTES} bytes`);
    }
  }
}

/**
 * Removes cgroups this call made, newest first, each with the hidden v2 leaf a move may have
 * made in it (Create's and Setup's rollback, after the tasks went back). A cgroup that was
 * populated or given children meanwhile stays. Each is removed through the directory it was
 * made in, and only while its name there still names the directory that was made: renaming
 * within that directory needs write access to it, which already lets the renamer remove any
 * empty cgroup in it itself, so what is left of the window gives it nothing.
 */
export function removeMade(cgfs: CgroupFs, made: readonly Made[]): void {
  for (const m of [...made].reverse()) {
    const leaf = cgfs.driver(m.h).leaf;
    try {
      if (leaf && m.dir.isDirectory(leaf)) m.dir.rmdir(leaf);
      const now = cgfs.pinChild(m.h, m.parent, parentOf(m.cg), m.name);
      const same = now !== undefined && now.identity !== undefined && now.identity === m.dir.identity;
      now?.close();
      if (same) cgfs.rmdirIn(m.h, m.parent, parentOf(m.cg), m.name);
    } catch {
      // it may have been populated meanwhile; leave it rather than kill anything
    }
  }
}

/**
 * Create's work in one hierarchy: each missing component of `arg` made (and pushed on
 * `walk.made`), owned by the requestor. 1 when the cgroup already existed, -1 when made here.
 */
export function createIn(rt: Runtime, caller: Caller, h: Hierarchy, arg: string, walk: Walk): Existed {
  return createAndOpen(rt, caller, h, arg, walk).existed;
}

/**
 * createIn, also giving the cgroup the walk reached (its path, and the opening the walk checked
 * it through, which stays open until closeWalk): Setup's later steps act through it.
 */
export function createAndOpen(rt: Runtime, caller: Caller, h: Hierarchy, arg: string, walk: Walk): { existed: Existed; path: string; dir: PinnedCgroup } {
  const { cgfs } = rt;
  let current = caller.requestorCgroup(h);
  // Each directory of the walk is opened once and looked into only through its opening
  // (pinned.ts): a cgroup the caller renames meanwhile cannot make the walk continue into,
  // create in, or chown something it did not check.
  let dir = pinCgroup(rt, h, current);
  walk.opened.push(dir);
  const openChild = (name: string, cg: string): PinnedCgroup => {
    const child = cgfs.pinChild(h, dir, current, name);
    if (!child) throw new CgmError('FileNotFound', `cgroup ${cgfs.describe(h, cg)} does not exist`);
    walk.opened.push(child);
    return child;
  };
  let existed: Existed = -1;
  for (const component of arg.split('/')) {
    if (component === '' || component === '.') continue;
    if (component === HIDDEN_LEAF) throw new CgmError('InvalidArgs', `cgroup name ${quoteArg(component)} is reserved`);
    const next = childOf(current, component);
    const owner = dir.stat(component);
    if (owner !== undefined) {
      // The one lstat of the name answers "exists" and "is a cgroup"; the access check is made
      // on the directory then opened (O_DIRECTORY: a file swapped in meanwhile is not opened).
      if (!isDirectory(owner)) throw new CgmError('InvalidArgs', `${cgfs.describe(h, next)} is a file, not a cgroup`);
      const child = openChild(component, next);
      assertPinnedAccess(rt, caller, h, next, child, undefined, 'read');
      existed = 1;
      [dir, current] = [child, next];
      continue;
    }
    assertPinnedAccess(rt, caller, h, current, dir, undefined, 'readwrite');
    const depth = mayCreateAtDepth(next, rt.options.maxDepth);
    if (!depth.allow) throw new CgmError('LimitsExceeded', depth.reason);
    // Never inside a tree a sliced Remove or Prune is taking apart; never past the owner quota.
    rt.claims.assertFree(h, next, `creating ${cgfs.describe(h, next)}`);
    rt.quota.assertMayCreate(h, caller.r.uid);
    testOnlyCreateCheckPause(rt);
    // Journalled first, so a daemon killed right after the mkdir still knows to undo it.
    rt.journal.intend(h, next, caller.r.uid, caller.r.gid);
    if (!cgfs.mkdirIn(h, dir, current, component)) {
      rt.journal.existed();
      existed = 1; // made by someone else meanwhile
      [dir, current] = [openChild(component, next), next];
      continue;
    }
    const child = openChild(component, next);
    const made: Made = { h, cg: next, parent: dir, name: component, dir: child };
    walk.made.push(made);
    cgfs.driver(h).prepareChild(h, dir.files(), child.files());
    // The kernel gives a new cgroup and its files to whoever made them (us): a requestor we
    // run as (root, mostly) already owns everything, and 30-odd lchowns per hierarchy were
    // most of a root Create's time.
    const madeOwner = child.owner;
    if (madeOwner.uid !== caller.r.uid || madeOwner.gid !== caller.r.gid) {
      // throws unless the directory itself was chowned (and then child.owner follows it)
      const failed = cgfs.chownAllIn(child, caller.r.uid, caller.r.gid);
      if (failed.length === 0) made.owner = { uid: caller.r.uid, gid: caller.r.gid };
    } else {
      // The kernel gives the directory and all its files to the one who made them (cgroup_kn_set_ugid).
      made.owner = { uid: madeOwner.uid, gid: madeOwner.gid };
    }
    existed = -1;
    [dir, current] = [child, next];
  }
  return { existed, path: current, dir };
}

function isDirectory(owner: FileOwner | undefined): boolean {
  return owner !== undefined && (owner.mode & constants.S_IFMT) === constants.S_IFDIR;
}

/** --test-create-check-pause (hidden, tests only): as --test-check-pause, between a parent's check and the mkdir. */
function testOnlyCreateCheckPause(rt: Runtime): void {
  const ms = rt.options.testCreateCheckPauseMs;
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
