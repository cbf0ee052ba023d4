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
import { assertCgroupArg, assertCgroupExists, assertPinnedAccess, resolveTarget, testOnlyCheckPause } from './checks';
import { relativeBelow } from '../cgroupfs/cgroupfs';
import { pinParentAndChild, type ParentAndChild } from './remove';
import { forEachHierarchy, forEachHierarchyAsync, hierarchyList } from './hierarchies';
import { taskHome } from './move-pid';

/**
 * The cgroup named, opened with its parent (pinned.ts) and checked for write access through
 * that opening: marks and removals then go through it, not through a name the caller may
 * have given another cgroup meanwhile (cgroup v1 rename). Close both when done.
 */
function writableCgroup(rt: Runtime, caller: Caller, h: Hierarchy, cgroup: string): { path: string } & ParentAndChild {
  const { path } = resolveTarget(caller, h, cgroup, 'relative');
  assertCgroupExists(rt, h, path);
  assertNotTop(rt, h, path);
  const pinned = pinParentAndChild(rt, h, path);
  try {
    assertPinnedAccess(rt, caller, h, path, pinned.top, undefined, 'write');
    testOnlyCheckPause(rt);
  } catch (err) {
    pinned.parent.close();
    pinned.top.close();
    throw err;
  }
  return { path, ...pinned };
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
      const { path, parent, top } = writableCgroup(rt, caller, h, cgroup);
      try {
        rt.autoRemove.mark(h, path, (file, value) => top.write(file, value));
      } finally {
        parent.close();
        top.close();
      }
    }),
  );
}

export async function prune(rt: Runtime, caller: Caller, controller: string, cgroup: string): Promise<void> {
  const hierarchies = hierarchyList(rt, controller);
  assertCgroupArg(cgroup, 'relative');
  const pacer = new Pacer();
  await forEachHierarchyAsync(hierarchies, async (h) => {
    const { path: top, ...pinned } = writableCgroup(rt, caller, h, cgroup);
    let release: (() => void) | undefined;
    try {
      release = rt.claims.claim(h, top, 'pruning');
      await pruneTree(rt, rt.cgfs, h, top, pacer, walkLimitFor(rt.options.limits, caller.r.uid), pinned);
    } finally {
      release?.();
      pinned.parent.close();
      pinned.top.close();
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
async function pruneTree(rt: Runtime, cgfs: CgroupFs, h: Hierarchy, top: string, pacer: Pacer, maxNodes: number, pinned: ParentAndChild): Promise<void> {
  const nodes = (await listSubtree(cgfs, h, top, { pacer, maxNodes })).reverse();
  const mark = rt.autoRemove.isSupported(h);
  let i = 0;
  while (i < nodes.length) {
    rt.autoRemove.batch(() => {
      do pruneOne(rt, cgfs, h, top, nodes[i++] as string, mark, pinned);
      while (i < nodes.length && !pacer.due);
    });
    if (i < nodes.length) await pacer.yieldNow();
  }
}

function pruneOne(rt: Runtime, cgfs: CgroupFs, h: Hierarchy, top: string, cg: string, mark: boolean, pinned: ParentAndChild): void {
  // Everything below the opened top is looked up below it (pinned.ts): renames inside the
  // subtree stay inside it, so nothing outside the cgroup checked is removed or marked.
  const rel = (at: string): string | undefined => (at === top ? undefined : relativeBelow(top, at));
  const below = (at: string, file?: string): string | undefined => {
    const r = rel(at);
    return r === undefined ? file : file === undefined ? r : `${r}/${file}`;
  };
  // A v2 mark may remove an empty cgroup at once, so children are handled (and emptied ones
  // removed) first and only what survives is marked; a v1 mark only sets notify_on_release.
  const cgRel = rel(cg);
  if (cgRel !== undefined && !pinned.top.isDirectory(cgRel)) return; // removed meanwhile
  // Busy cgroups stay (EBUSY); they are marked and go when their tasks exit.
  const home = taskHome(rt, h, cg);
  try {
    if (home !== cg && pinned.top.isDirectory(below(home) as string)) cgfs.rmdirBelow(h, pinned.top, top, home);
    if (cg === top) cgfs.rmdirIfSame(h, pinned.parent, pinned.top, cg);
    else cgfs.rmdirBelow(h, pinned.top, top, cg);
    rt.autoRemove.forget(h, cg);
    return;
  } catch {
    // still in use
  }
  if (!mark) return;
  try {
    rt.autoRemove.mark(h, cg, (file, value) => pinned.top.write(below(cg, file) as string, value));
  } catch (err) {
    rt.log.debug({ cgroup: cgfs.describe(h, cg), err: (err as Error).message }, 'prune could not mark');
  }
}
