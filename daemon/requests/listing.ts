// The read-only listings (reference §5.11-5.13, §5.17): tasks of a cgroup or a subtree,
// child cgroups, and keys with owners presented in the requestor's user namespace.
// All are bounded by the caller's (or its proxy's) subtree; the hidden leaf never shows.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import { Pacer, readChildren, walkSubtree } from '../cgroupfs/walk';
import { walkLimitFor } from '../quota/limits';
import { hostIdToNs } from '../proc/id-map';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertUnderProxy, resolveTarget } from './checks';
import { forEachHierarchyAsync, hierarchyList, singleHierarchy } from './hierarchies';
import { taskHome } from './move-pid';
import { readableCgroup } from './values';
import { deviceKeyEntries } from './device-values';

/** Unmapped ids are shown as (uid_t)-1, as the kernel does (overflowuid aside). */
export const UNMAPPED_ID = 4294967295;

function sortedUnique(ids: Iterable<number>): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

/** Tasks of one cgroup: v1 its `tasks` (threads, as the original); v2 the cgroup and its leaf. */
function tasksOf(rt: Runtime, h: Hierarchy, cg: string): number[] {
  const { cgfs } = rt;
  const file = cgfs.driver(h).tasksFile;
  const home = taskHome(rt, h, cg);
  const pids = cgfs.readPids(h, cg, file);
  if (home !== cg && cgfs.isDirectory(h, home)) pids.push(...cgfs.readPids(h, home, file));
  return pids;
}

export function getTasks(rt: Runtime, caller: Caller, controller: string, cgroup: string): number[] {
  const h = singleHierarchy(rt, controller);
  const cg = readableCgroup(rt, caller, h, cgroup);
  return sortedUnique(tasksOf(rt, h, cg));
}

export async function getTasksRecursive(rt: Runtime, caller: Caller, controller: string, cgroup: string): Promise<number[]> {
  const hierarchies = hierarchyList(rt, controller);
  const all: number[] = [];
  const pacer = new Pacer();
  const maxNodes = walkLimitFor(rt.options.limits, caller.r.uid);
  await forEachHierarchyAsync(hierarchies, async (h) => {
    // The bound is a hard error even in lists (reference §5.12); a cgroup missing in one
    // of several hierarchies is skipped like a denial.
    const { path } = resolveTarget(caller, h, cgroup, 'readable');
    assertUnderProxy(rt, caller, h, path);
    let cg: string;
    try {
      cg = readableCgroup(rt, caller, h, cgroup);
    } catch (err) {
      if (hierarchies.length > 1 && err instanceof CgmError && err.code === 'FileNotFound') return;
      throw err;
    }
    const { cgfs } = rt;
    // Tasks of the subtree, in slices; descendants that vanish while we walk are skipped.
    all.push(...tasksOf(rt, h, cg));
    await walkSubtree(cgfs, h, cg, { pacer, maxNodes }, (node) => {
      if (node === cg) return;
      try {
        all.push(...tasksOf(rt, h, node));
      } catch {
        // removed meanwhile
      }
    });
  });
  return sortedUnique(all);
}

/** Child cgroups, read in slices: a cgroup may have thousands. */
export async function listChildren(rt: Runtime, caller: Caller, controller: string, cgroup: string): Promise<string[]> {
  const h = singleHierarchy(rt, controller);
  const cg = readableCgroup(rt, caller, h, cgroup);
  return readChildren(rt.cgfs, h, cg, new Pacer());
}

export type KeyRow = [name: string, uid: number, gid: number, mode: number];

export function listKeys(rt: Runtime, caller: Caller, controller: string, cgroup: string): KeyRow[] {
  const h = singleHierarchy(rt, controller);
  const cg = readableCgroup(rt, caller, h, cgroup);
  const uidMap = caller.uidMap;
  const gidMap = caller.gidMap;
  // Without both maps the original showed host ids unconverted (reference §5.17).
  const present = (id: number, map: typeof uidMap): number => (uidMap && gidMap ? (hostIdToNs(id, map) ?? UNMAPPED_ID) : id);
  return [...rt.cgfs.keys(h, cg), ...deviceKeyEntries(rt, h, cg)].map(({ name, owner }): KeyRow =>
    owner ? [name, present(owner.uid, uidMap), present(owner.gid, gidMap), owner.mode] : [name, UNMAPPED_ID, UNMAPPED_ID, 0],
  );
}
