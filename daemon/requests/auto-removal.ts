// RemoveOnEmpty and Prune (reference §5.14, §5.15): both need write access to the
// cgroup itself. Prune removes empty subtrees at once and marks busy ones to go when
// their last task exits. No task is ever killed. Prune works in slices (cgroupfs/walk.ts).
import { CgmError } from '../errors';
import type { CgroupFs } from '../cgroupfs/cgroupfs';
import { isHierarchyTop } from '../cgroupfs/auto-remove';
import type { Hierarchy } from '../cgroupfs/layout';
import { listSubtree, Pacer } from '../cgroupfs/walk';
import { walkLimitFor } from '../quota/limits';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertAccess, assertCgroupArg, assertCgroupExists, resolveTarget } from './checks';
import { forEachHierarchy, forEachHierarchyAsync, hierarchyList } from './hierarchies';
import { taskHome } from './move-pid';

function writableCgroup(rt: Runtime, caller: Caller, h: Hierarchy, cgroup: string): string {
  const { path } = resolveTarget(caller, h, cgroup, 'relative');
  assertCgroupExists(rt, h, path);
  assertAccess(rt, caller, h, path, undefined, 'write');
  return path;
}

export function removeOnEmpty(rt: Runtime, caller: Caller, controller: string, cgroup: string): void {
  const hierarchies = hierarchyList(rt, controller);
  assertCgroupArg(cgroup, 'relative');
  const supported = hierarchies.filter((h) => rt.autoRemove.isSupported(h));
  if (supported.length === 0) {
    const names = hierarchies.map((h) => h.label).join(' ');
    throw new CgmError('NotSupported', `remove-on-empty is not available on ${names || 'these hierarchies'}: the daemon does not own their release agent (see --allow-autoremove-premounted)`);
  }
  // One state-file write for the whole list; it is on disk before the reply goes out.
  rt.autoRemove.batch(() =>
    forEachHierarchy(supported, (h) => {
      const path = writableCgroup(rt, caller, h, cgroup);
      assertNotTop(rt, h, path);
      rt.autoRemove.mark(h, path);
    }),
  );
}

export async function prune(rt: Runtime, caller: Caller, controller: string, cgroup: string): Promise<void> {
  const hierarchies = hierarchyList(rt, controller);
  assertCgroupArg(cgroup, 'relative');
  const pacer = new Pacer();
  await forEachHierarchyAsync(hierarchies, async (h) => {
    const top = writableCgroup(rt, caller, h, cgroup);
    assertNotTop(rt, h, top);
    const release = rt.claims.claim(h, top, 'pruning');
    try {
      await pruneTree(rt, rt.cgfs, h, top, pacer, walkLimitFor(rt.options.limits, caller.r.uid));
    } finally {
      release();
    }
  });
}

/** The top of a hierarchy (or of what the daemon sees of it) is never removed, now or later. */
function assertNotTop(rt: Runtime, h: Hierarchy, path: string): void {
  if (isHierarchyTop(h, path)) throw new CgmError('AccessDenied', `${rt.cgfs.describe(h, path)} is the top of the hierarchy and cannot be removed`);
}

/**
 * Walks the subtree in slices, then visits it children first: empty cgroups are removed,
 * busy ones (EBUSY, or a child that stays) marked to go when their tasks exit. One state-file
 * write per slice.
 */
async function pruneTree(rt: Runtime, cgfs: CgroupFs, h: Hierarchy, top: string, pacer: Pacer, maxNodes: number): Promise<void> {
  const nodes = (await listSubtree(cgfs, h, top, { pacer, maxNodes })).reverse();
  const mark = rt.autoRemove.isSupported(h);
  let i = 0;
  while (i < nodes.length) {
    rt.autoRemove.batch(() => {
      do pruneOne(rt, cgfs, h, nodes[i++] as string, mark);
      while (i < nodes.length && !pacer.due);
    });
    if (i < nodes.length) await pacer.yieldNow();
  }
}

function pruneOne(rt: Runtime, cgfs: CgroupFs, h: Hierarchy, cg: string, mark: boolean): void {
  // A v2 mark may remove an empty cgroup at once, so children are handled (and emptied ones
  // removed) first and only what survives is marked; a v1 mark only sets notify_on_release.
  if (!cgfs.isDirectory(h, cg)) return; // removed meanwhile
  // Busy cgroups stay (EBUSY); they are marked and go when their tasks exit.
  const home = taskHome(rt, h, cg);
  try {
    if (home !== cg && cgfs.isDirectory(h, home)) cgfs.rmdir(h, home);
    cgfs.rmdir(h, cg);
    rt.autoRemove.forget(h, cg);
    return;
  } catch {
    // still in use
  }
  if (!mark) return;
  try {
    rt.autoRemove.mark(h, cg);
  } catch (err) {
    rt.log.debug({ cgroup: cgfs.describe(h, cg), err: (err as Error).message }, 'prune could not mark');
  }
}
