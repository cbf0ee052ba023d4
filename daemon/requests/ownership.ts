// Chown and Chmod (reference §5.6, §5.7). Chown hands over only the directory and the
// task-membership (v2: delegation) files, so a delegatee can create and limit children
// but never change the limits of the cgroup it was given. A failure part-way restores
// the owners and modes this call changed.
import { CgmError } from '../errors';
import type { CgroupFs } from '../cgroupfs/cgroupfs';
import type { Hierarchy } from '../cgroupfs/layout';
import { assertChmodFile, assertIdArg, assertMode, mayChown, quoteArg } from '../policy';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertAccess, assertCgroupArg, assertCgroupExists, resolveTarget } from './checks';
import { forEachHierarchy, hierarchyList } from './hierarchies';

interface Previous {
  h: Hierarchy;
  cg: string;
  file: string | undefined;
  uid: number;
  gid: number;
  mode: number;
}

function remember(cgfs: CgroupFs, h: Hierarchy, cg: string, file: string | undefined, log: Previous[]): boolean {
  const owner = cgfs.stat(h, cg, file);
  if (!owner) return false;
  log.push({ h, cg, file, uid: owner.uid, gid: owner.gid, mode: owner.mode & 0o7777 });
  return true;
}

function restore(cgfs: CgroupFs, log: Previous[], what: 'owner' | 'mode'): void {
  for (const p of log.reverse()) {
    try {
      if (what === 'owner') cgfs.chown(p.h, p.cg, p.file, p.uid, p.gid);
      else cgfs.chmod(p.h, p.cg, p.file, p.mode);
    } catch {
      // best effort: the original state may no longer exist
    }
  }
}

export function chown(rt: Runtime, caller: Caller, controller: string, cgroup: string, uid: number, gid: number): void {
  const hierarchies = hierarchyList(rt, controller);
  const decision = mayChown(caller.requestor);
  if (!decision.allow) throw new CgmError('AccessDenied', decision.reason);
  assertCgroupArg(cgroup, 'relative');
  assertIdArg(uid, 'uid');
  assertIdArg(gid, 'gid');
  const changed: Previous[] = [];
  try {
    forEachHierarchy(hierarchies, (h) => chownIn(rt, caller, h, cgroup, uid, gid, changed));
  } catch (err) {
    restore(rt.cgfs, changed, 'owner');
    throw err;
  }
}

function chownIn(rt: Runtime, caller: Caller, h: Hierarchy, arg: string, uid: number, gid: number, changed: Previous[]): void {
  const { cgfs } = rt;
  const { path } = resolveTarget(caller, h, arg, 'relative');
  assertCgroupExists(rt, h, path);
  assertAccess(rt, caller, h, path, undefined, 'readwrite');
  remember(cgfs, h, path, undefined, changed);
  cgfs.chown(h, path, undefined, uid, gid);
  const driver = cgfs.driver(h);
  for (const file of driver.delegateFiles()) {
    // Not every delegatable file exists in every cgroup (memory.* without memory enabled).
    if (remember(cgfs, h, path, file, changed)) cgfs.chown(h, path, file, uid, gid);
  }
  const leaf = driver.taskHome(path);
  if (leaf !== path && cgfs.isDirectory(h, leaf)) {
    remember(cgfs, h, leaf, undefined, changed);
    cgfs.chown(h, leaf, undefined, uid, gid);
    if (remember(cgfs, h, leaf, driver.moveFile, changed)) cgfs.chown(h, leaf, driver.moveFile, uid, gid);
  }
}

export function chmod(rt: Runtime, caller: Caller, controller: string, cgroup: string, file: string, mode: number): void {
  const hierarchies = hierarchyList(rt, controller);
  assertCgroupArg(cgroup, 'relative');
  assertChmodFile(file);
  assertMode(mode);
  const changed: Previous[] = [];
  try {
    forEachHierarchy(hierarchies, (h) => {
      const { cgfs } = rt;
      const { path } = resolveTarget(caller, h, cgroup, 'relative');
      assertCgroupExists(rt, h, path);
      const target = file === '' ? undefined : file;
      if (target !== undefined && !cgfs.fileExists(h, path, target)) {
        throw new CgmError('FileNotFound', `no file ${quoteArg(target)} in ${cgfs.describe(h, path)}`);
      }
      assertAccess(rt, caller, h, path, target, 'readwrite');
      remember(cgfs, h, path, target, changed);
      cgfs.chmod(h, path, target, mode);
    });
  } catch (err) {
    restore(rt.cgfs, changed, 'mode');
    throw err;
  }
}
