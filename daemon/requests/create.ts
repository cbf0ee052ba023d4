// Create (reference §5.5, SPEC §2.2): walks the path one component at a time, makes the
// missing cgroups owned wholly by the requestor, and on failure removes every cgroup
// this call made, in every hierarchy. Each mkdir is journalled first (create-journal.ts)
// so that a daemon killed half-way is rolled back at its next start.
import { constants } from 'node:fs';
import { CgmError } from '../errors';
import { childOf, type CgroupFs } from '../cgroupfs/cgroupfs';
import { HIDDEN_LEAF, type Hierarchy } from '../cgroupfs/layout';
import { MAX_NAME_BYTES, mayCreateAtDepth, quoteArg, type FileOwner } from '../policy';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertCgroupArg, assertOwnerAccess } from './checks';
import { forEachHierarchy, hierarchyList } from './hierarchies';

type Existed = 1 | -1;

/** A cgroup this call made (Setup removes them again on failure). */
export interface Made {
  h: Hierarchy;
  cg: string;
  /** the owner of the new cgroup's directory and every file in it, once made (undefined: not all alike) */
  owner?: { uid: number; gid: number };
}

/** Returns 1 if the cgroup already existed in any hierarchy, -1 if it was made everywhere. */
export function create(rt: Runtime, caller: Caller, controller: string, cgroup: string): Existed {
  const hierarchies = hierarchyList(rt, controller);
  if (cgroup === '') return -1; // the original's no-op: '' is the caller's own, existing cgroup
  assertCgroupArg(cgroup, 'relative');
  assertComponentLengths(cgroup);
  const made: Made[] = [];
  let index = 0;
  try {
    const results = forEachHierarchy(hierarchies, (h) => {
      if (index++ > 0) testOnlyPause(rt);
      return createIn(rt, caller, h, cgroup, made);
    });
    return results.includes(1) ? 1 : -1;
  } catch (err) {
    rollback(rt.cgfs, made);
    throw err;
  } finally {
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

function rollback(cgfs: CgroupFs, made: Made[]): void {
  for (const { h, cg } of made.reverse()) {
    try {
      cgfs.rmdir(h, cg);
    } catch {
      // it may have been populated meanwhile; leave it rather than kill anything
    }
  }
}

/**
 * Removes cgroups this daemon just made, newest first, each with the hidden v2 leaf a
 * move may have made in it (Setup's rollback, after its tasks went back). A cgroup that
 * was populated or given children meanwhile stays.
 */
export function removeMade(cgfs: CgroupFs, made: readonly Made[]): void {
  for (const { h, cg } of [...made].reverse()) {
    const leaf = cgfs.driver(h).leaf;
    try {
      if (leaf && cgfs.isDirectory(h, `${cg}/${leaf}`)) cgfs.rmdir(h, `${cg}/${leaf}`);
      cgfs.rmdir(h, cg);
    } catch {
      // it may have been populated meanwhile; leave it rather than kill anything
    }
  }
}

/**
 * Create's work in one hierarchy: each missing component of `arg` made (and pushed on
 * `made`), owned by the requestor. 1 when the cgroup already existed, -1 when made here.
 */
export function createIn(rt: Runtime, caller: Caller, h: Hierarchy, arg: string, made: Made[]): Existed {
  const { cgfs } = rt;
  let current = caller.requestorCgroup(h);
  // One lstat per path component: it answers "exists", "is a cgroup" and the access check
  // of that component, and again the write check when a child is made in it next.
  let currentOwner = cgfs.stat(h, current);
  if (!isDirectory(currentOwner)) throw new CgmError('FileNotFound', `cgroup ${cgfs.describe(h, current)} does not exist`);
  let existed: Existed = -1;
  for (const component of arg.split('/')) {
    if (component === '' || component === '.') continue;
    if (component === HIDDEN_LEAF) throw new CgmError('InvalidArgs', `cgroup name ${quoteArg(component)} is reserved`);
    const next = childOf(current, component);
    const owner = cgfs.stat(h, next);
    if (owner !== undefined) {
      if (!isDirectory(owner)) throw new CgmError('InvalidArgs', `${cgfs.describe(h, next)} is a file, not a cgroup`);
      assertOwnerAccess(rt, caller, h, next, undefined, owner, 'read');
      existed = 1;
      current = next;
      currentOwner = owner;
      continue;
    }
    assertOwnerAccess(rt, caller, h, current, undefined, currentOwner, 'readwrite');
    const depth = mayCreateAtDepth(next, rt.options.maxDepth);
    if (!depth.allow) throw new CgmError('LimitsExceeded', depth.reason);
    // Never inside a tree a sliced Remove or Prune is taking apart; never past the owner quota.
    rt.claims.assertFree(h, next, `creating ${cgfs.describe(h, next)}`);
    rt.quota.assertMayCreate(h, caller.r.uid);
    // Journalled first, so a daemon killed right after the mkdir still knows to undo it.
    rt.journal.intend(h, next, caller.r.uid, caller.r.gid);
    if (!cgfs.mkdir(h, next)) {
      rt.journal.existed();
      existed = 1; // made by someone else meanwhile
      current = next;
      currentOwner = cgfs.stat(h, next);
      continue;
    }
    const entry: Made = { h, cg: next };
    made.push(entry);
    cgfs.driver(h).prepareChild(cgfs, h, current, next);
    // The kernel gives a new cgroup and its files to whoever made them (us): a requestor we
    // run as (root, mostly) already owns everything, and 30-odd lchowns per hierarchy were
    // most of a root Create's time.
    const madeOwner = cgfs.stat(h, next);
    if (madeOwner === undefined || madeOwner.uid !== caller.r.uid || madeOwner.gid !== caller.r.gid) {
      const failed = cgfs.chownAll(h, next, caller.r.uid, caller.r.gid); // throws unless the directory itself was chowned
      if (madeOwner !== undefined && failed.length === 0) entry.owner = { uid: caller.r.uid, gid: caller.r.gid };
      // chown leaves a directory's mode as it was
      currentOwner = madeOwner ? { ...madeOwner, uid: caller.r.uid, gid: caller.r.gid } : cgfs.stat(h, next);
    } else {
      // The kernel gives the directory and all its files to the one who made them (cgroup_kn_set_ugid).
      entry.owner = { uid: madeOwner.uid, gid: madeOwner.gid };
      currentOwner = madeOwner;
    }
    existed = -1;
    current = next;
  }
  return existed;
}

function isDirectory(owner: FileOwner | undefined): boolean {
  return owner !== undefined && (owner.mode & constants.S_IFMT) === constants.S_IFDIR;
}
