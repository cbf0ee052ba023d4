// Chown and Chmod (reference §5.6, §5.7). Chown hands over only the directory and the
// task-membership (v2: delegation) files, so a delegatee can create and limit children
// but never change the limits of the cgroup it was given. A failure part-way restores
// the owners and modes this call changed.
import { CgmError } from '../errors';
import { constants } from 'node:fs';
import type { PinnedCgroup } from '../cgroupfs/pinned';
import type { Hierarchy } from '../cgroupfs/layout';
import { assertChmodFile, assertIdArg, assertMode, mayChown, quoteArg } from '../policy';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertCgroupArg, assertPinnedAccess, pinCgroup, pinFor, resolveTarget, testOnlyCheckPause, type OpenCgroups } from './checks';
import { forEachHierarchy, hierarchyList } from './hierarchies';

const { S_IFMT, S_IFREG } = constants;

/** What this call changed, through the opened cgroup it changed it in (pinned.ts). */
interface Previous {
  pinned: PinnedCgroup;
  file: string | undefined;
  uid: number;
  gid: number;
  mode: number;
}

function remember(pinned: PinnedCgroup, file: string | undefined, log: Previous[]): boolean {
  const owner = pinned.stat(file);
  if (!owner) return false;
  log.push({ pinned, file, uid: owner.uid, gid: owner.gid, mode: owner.mode & 0o7777 });
  return true;
}

function restore(log: Previous[], what: 'owner' | 'mode'): void {
  for (const p of log.reverse()) {
    try {
      if (what === 'owner') p.pinned.chown(p.file, p.uid, p.gid);
      else p.pinned.chmod(p.file, p.mode);
    } catch {
      // best effort: the original state may no longer exist
    }
  }
}

/** Chown's policy and argument checks, before anything is looked up. */
function assertChownRequest(caller: Caller, cgroup: string, uid: number, gid: number): void {
  const decision = mayChown(caller.requestor);
  if (!decision.allow) throw new CgmError('AccessDenied', decision.reason);
  assertCgroupArg(cgroup, 'relative');
  assertIdArg(uid, 'uid');
  assertIdArg(gid, 'gid');
}

export function chown(rt: Runtime, caller: Caller, controller: string, cgroup: string, uid: number, gid: number): void {
  const hierarchies = hierarchyList(rt, controller);
  assertChownRequest(caller, cgroup, uid, gid);
  const changed: Previous[] = [];
  const pins: PinnedCgroup[] = [];
  try {
    forEachHierarchy(hierarchies, (h) => chownIn(rt, caller, h, cgroup, uid, gid, changed, pins));
  } catch (err) {
    restore(changed, 'owner');
    throw err;
  } finally {
    for (const p of pins) p.close();
  }
}

/** A Chown that can still be undone: `undo` restores every owner it changed; either call ends it. */
export interface ChownDone {
  undo(): void;
  release(): void;
}

/**
 * Chown of `cgroup` in every one of `hierarchies` (Setup: each must succeed), with Chown's
 * policy and checks, through the cgroups Setup opened (`open`); any it opens itself stay
 * opened until undo() or release().
 */
export function chownAll(rt: Runtime, caller: Caller, hierarchies: readonly Hierarchy[], cgroup: string, uid: number, gid: number, open?: OpenCgroups): ChownDone {
  assertChownRequest(caller, cgroup, uid, gid);
  const changed: Previous[] = [];
  const pins: PinnedCgroup[] = [];
  const release = (): void => {
    for (const p of pins.splice(0)) p.close();
  };
  try {
    for (const h of hierarchies) chownIn(rt, caller, h, cgroup, uid, gid, changed, pins, open);
  } catch (err) {
    restore(changed, 'owner');
    release();
    throw err;
  }
  return {
    undo: () => {
      restore(changed, 'owner');
      release();
    },
    release,
  };
}

function chownIn(rt: Runtime, caller: Caller, h: Hierarchy, arg: string, uid: number, gid: number, changed: Previous[], pins: PinnedCgroup[], open?: OpenCgroups): void {
  const { cgfs } = rt;
  const { path } = resolveTarget(caller, h, arg, 'relative');
  // Checked and changed through one opened directory: a rename meanwhile cannot redirect it.
  const { pinned, own, filesOwner } = pinFor(rt, h, path, open);
  if (own) pins.push(pinned);
  assertPinnedAccess(rt, caller, h, path, pinned, undefined, 'readwrite');
  testOnlyCheckPause(rt);
  remember(pinned, undefined, changed);
  pinned.chown(undefined, uid, gid);
  const driver = cgfs.driver(h);
  for (const file of driver.delegateFiles()) {
    if (filesOwner !== undefined) {
      // A cgroup this request just made: every file's owner is known, so no lstat before each
      // chown; a file that is not there (memory.* without memory enabled) fails it with ENOENT.
      try {
        pinned.chown(file, uid, gid);
      } catch (err) {
        if (pinned.stat(file) === undefined) continue;
        throw err;
      }
      changed.push({ pinned, file, uid: filesOwner.uid, gid: filesOwner.gid, mode: 0 }); // mode: only a Chmod restores it
      continue;
    }
    // Not every delegatable file exists in every cgroup (memory.* without memory enabled).
    if (remember(pinned, file, changed)) pinned.chown(file, uid, gid);
  }
  if (driver.leaf && pinned.isDirectory(driver.leaf)) {
    const leafFile = `${driver.leaf}/${driver.moveFile}`;
    remember(pinned, driver.leaf, changed);
    pinned.chown(driver.leaf, uid, gid);
    if (remember(pinned, leafFile, changed)) pinned.chown(leafFile, uid, gid);
  }
}

export function chmod(rt: Runtime, caller: Caller, controller: string, cgroup: string, file: string, mode: number): void {
  const hierarchies = hierarchyList(rt, controller);
  assertCgroupArg(cgroup, 'relative');
  assertChmodFile(file);
  assertMode(mode);
  const changed: Previous[] = [];
  const pins: PinnedCgroup[] = [];
  try {
    forEachHierarchy(hierarchies, (h) => {
      const { cgfs } = rt;
      const { path } = resolveTarget(caller, h, cgroup, 'relative');
      const pinned = pinCgroup(rt, h, path);
      pins.push(pinned);
      const target = file === '' ? undefined : file;
      const owner = pinned.stat(target);
      if (target !== undefined && (!owner || (owner.mode & S_IFMT) !== S_IFREG)) {
        throw new CgmError('FileNotFound', `no file ${quoteArg(target)} in ${cgfs.describe(h, path)}`);
      }
      assertPinnedAccess(rt, caller, h, path, pinned, target, 'readwrite');
      testOnlyCheckPause(rt);
      remember(pinned, target, changed);
      pinned.chmod(target, mode);
    });
  } catch (err) {
    restore(changed, 'mode');
    throw err;
  } finally {
    for (const p of pins) p.close();
  }
}
