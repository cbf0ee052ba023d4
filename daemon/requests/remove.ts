// Remove (reference §5.10, SPEC §2.2): needs write access on the parent; a recursive
// remove first makes sure no task lives anywhere below, so it does not stop half-way
// through a tree because of a busy cgroup. Reports truthfully for lists: 1 if the
// cgroup existed (and was removed) in any hierarchy, -1 if it existed nowhere.
import { CgmError } from '../errors';
import { childOf, parentOf } from '../cgroupfs/cgroupfs';
import type { Hierarchy } from '../cgroupfs/layout';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertAccess, assertCgroupArg, resolveTarget } from './checks';
import { forEachHierarchy, hierarchyList } from './hierarchies';
import { taskHome } from './move-pid';

export function remove(rt: Runtime, caller: Caller, controller: string, cgroup: string, recursive: number): 1 | -1 {
  const hierarchies = hierarchyList(rt, controller);
  assertCgroupArg(cgroup, 'relative');
  const results = forEachHierarchy(hierarchies, (h) => removeIn(rt, caller, h, cgroup, recursive !== 0));
  return results.includes(1) ? 1 : -1;
}

function removeIn(rt: Runtime, caller: Caller, h: Hierarchy, arg: string, recursive: boolean): 1 | -1 {
  const { cgfs } = rt;
  const { path } = resolveTarget(caller, h, arg, 'relative');
  if (!cgfs.isDirectory(h, path)) return -1;
  if (path === h.mountRoot || path === '/') throw new CgmError('AccessDenied', `${cgfs.describe(h, path)} is the top of the hierarchy and cannot be removed`);
  assertAccess(rt, caller, h, parentOf(path), undefined, 'write');
  const children = cgfs.children(h, path);
  if (!recursive && children.length > 0) {
    throw new CgmError('NotEmpty', `${cgfs.describe(h, path)} has child cgroups (${children.slice(0, 3).join(', ')}${children.length > 3 ? ', …' : ''}); remove recursively`);
  }
  const busy = findTasks(rt, h, path);
  if (busy) throw new CgmError('Busy', `${cgfs.describe(h, busy.cg)} still has tasks (pid ${busy.pid})`);
  removeTree(rt, h, path);
  rt.autoRemove.forget(h, path);
  rt.deviceAcl.forget(h, path);
  return 1;
}

/** The first task found anywhere in the subtree, if any. */
function findTasks(rt: Runtime, h: Hierarchy, cg: string): { cg: string; pid: number } | undefined {
  const { cgfs } = rt;
  const file = cgfs.driver(h).moveFile;
  for (const where of [cg, taskHome(rt, h, cg)]) {
    if (!cgfs.isDirectory(h, where)) continue;
    const pids = cgfs.readPids(h, where, file);
    if (pids.length > 0 && pids[0] !== undefined) return { cg: where, pid: pids[0] };
  }
  for (const child of cgfs.children(h, cg)) {
    const found = findTasks(rt, h, childOf(cg, child));
    if (found) return found;
  }
  return undefined;
}

/** Depth-first rmdir: children, then the hidden leaf, then the cgroup itself. */
function removeTree(rt: Runtime, h: Hierarchy, cg: string): void {
  rt.cgfs.driver(h).removeSubtree(rt.cgfs, h, cg);
}
