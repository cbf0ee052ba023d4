// Remove (reference §5.10, SPEC §2.2): needs write access on the parent; a recursive
// remove first makes sure no task lives anywhere below, so it does not stop half-way
// through a tree because of a busy cgroup. Reports truthfully for lists: 1 if the
// cgroup existed (and was removed) in any hierarchy, -1 if it existed nowhere.
// A recursive remove walks and removes in slices (cgroupfs/walk.ts) so that a tree of
// 20 000 cgroups never stalls other clients; the subtree is claimed meanwhile.
import { CgmError } from '../errors';
import type { CgroupFs } from '../cgroupfs/cgroupfs';
import { parentOf } from '../cgroupfs/cgroupfs';
import type { Hierarchy } from '../cgroupfs/layout';
import { hasChildren, listSubtree, Pacer } from '../cgroupfs/walk';
import { walkLimitFor } from '../quota/limits';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertCgroupArg, assertPinnedAccess, pinCgroup, resolveTarget, testOnlyCheckPause } from './checks';
import type { PinnedCgroup } from '../cgroupfs/pinned';
import { forEachHierarchyAsync, hierarchyList } from './hierarchies';
import { taskHome } from './move-pid';

export async function remove(rt: Runtime, caller: Caller, controller: string, cgroup: string, recursive: number): Promise<1 | -1> {
  const hierarchies = hierarchyList(rt, controller);
  assertCgroupArg(cgroup, 'relative');
  const pacer = new Pacer();
  const results = await forEachHierarchyAsync(hierarchies, (h) => removeIn(rt, caller, h, cgroup, recursive !== 0, pacer));
  return results.includes(1) ? 1 : -1;
}

async function removeIn(rt: Runtime, caller: Caller, h: Hierarchy, arg: string, recursive: boolean, pacer: Pacer): Promise<1 | -1> {
  const { cgfs } = rt; // kept to the end, even if the layout is swapped meanwhile
  const { path } = resolveTarget(caller, h, arg, 'relative');
  if (!cgfs.isDirectory(h, path)) return -1;
  if (path === h.mountRoot || path === '/') throw new CgmError('AccessDenied', `${cgfs.describe(h, path)} is the top of the hierarchy and cannot be removed`);
  // The parent checked and the cgroup removed are opened once (pinned.ts), and every rmdir
  // goes through them: the caller renaming its cgroups during this (sliced, so long) call
  // cannot make it remove a cgroup outside the one it named.
  const pinned = pinParentAndChild(rt, h, path);
  let release: (() => void) | undefined;
  try {
    assertPinnedAccess(rt, caller, h, parentOf(path), pinned.parent, undefined, 'write');
    testOnlyCheckPause(rt);
    if (!recursive) {
      const child = hasChildren(cgfs, h, path);
      if (child !== undefined) throw new CgmError('NotEmpty', `${cgfs.describe(h, path)} has child cgroups (${child}, …); remove recursively`);
    }
    release = rt.claims.claim(h, path, 'removing');
    const nodes = await listSubtree(cgfs, h, path, { pacer, maxNodes: walkLimitFor(rt.options.limits, caller.r.uid) });
    const busy = await findTasks(rt, cgfs, h, nodes, pacer);
    if (busy) throw new CgmError('Busy', `${cgfs.describe(h, busy.cg)} still has tasks (pid ${busy.pid})`);
    await removeNodes(rt, cgfs, h, path, nodes.reverse(), pacer, pinned);
  } finally {
    release?.();
    pinned.parent.close();
    pinned.top.close();
  }
  rt.autoRemove.forget(h, path);
  rt.deviceAcl.forget(h, path);
  return 1;
}

/** The first task found in any of the cgroups (or their hidden leaves), if any. */
async function findTasks(rt: Runtime, cgfs: CgroupFs, h: Hierarchy, nodes: readonly string[], pacer: Pacer): Promise<{ cg: string; pid: number } | undefined> {
  const file = cgfs.driver(h).moveFile;
  for (const cg of nodes) {
    for (const where of [cg, taskHome(rt, h, cg)]) {
      let pids: number[];
      try {
        pids = cgfs.readPids(h, where, file);
      } catch {
        continue; // no leaf, or removed by someone else meanwhile
      }
      if (pids.length > 0 && pids[0] !== undefined) return { cg: where, pid: pids[0] };
    }
    const turn = pacer.pace();
    if (turn) await turn;
  }
  return undefined;
}

/**
 * rmdir of every cgroup, children before parents, the hidden leaf before its cgroup. One that
 * vanished meanwhile is fine; any other failure (a task moved in behind our back, a cgroup
 * made by someone else) stops the removal, and the error says how far it got.
 */
async function removeNodes(rt: Runtime, cgfs: CgroupFs, h: Hierarchy, top: string, deepestFirst: readonly string[], pacer: Pacer, pinned: ParentAndChild): Promise<void> {
  let removed = 0;
  for (const cg of deepestFirst) {
    const home = taskHome(rt, h, cg);
    try {
      if (home !== cg) rmdirIfThere(() => cgfs.rmdirBelow(h, pinned.top, top, home));
      rmdirIfThere(() => (cg === top ? cgfs.rmdirIfSame(h, pinned.parent, pinned.top, cg) : cgfs.rmdirBelow(h, pinned.top, top, cg)));
    } catch (err) {
      if (!(err instanceof CgmError) || removed === 0) throw err;
      throw new CgmError(err.code, `${err.message} (changed by someone else during the removal: ${removed} of the ${deepestFirst.length} cgroups of ${cgfs.describe(h, top)} were removed, the rest is still there)`);
    }
    removed++;
    const turn = pacer.pace();
    if (turn) await turn;
  }
}

function rmdirIfThere(rmdir: () => void): void {
  try {
    rmdir();
  } catch (err) {
    if (err instanceof CgmError && err.code === 'FileNotFound') return;
    throw err;
  }
}

/** A cgroup and its parent, both opened (the cgroup through the parent's opening). */
export interface ParentAndChild {
  parent: PinnedCgroup;
  top: PinnedCgroup;
}

/** Opens `cg`'s parent, then `cg` below that opening; FileNotFound when either is missing. */
export function pinParentAndChild(rt: Runtime, h: Hierarchy, cg: string): ParentAndChild {
  const parent = pinCgroup(rt, h, parentOf(cg));
  const top = rt.cgfs.pinChild(h, parent, parentOf(cg), cg.slice(cg.lastIndexOf('/') + 1));
  if (!top) {
    parent.close();
    throw new CgmError('FileNotFound', `cgroup ${rt.cgfs.describe(h, cg)} does not exist`);
  }
  return { parent, top };
}
