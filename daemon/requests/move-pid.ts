// MovePid and MovePidAbs (reference §5.4). Every hierarchy is checked before any task
// moves; a write that fails part-way moves the task back where it was. The daemon
// writes as root, so it enforces containment itself: the victim must already sit
// inside the base (r's cgroup, or p's for MovePidAbs) and the target is always inside it.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import { assertPid, isUnder, mayMovePid } from '../policy';
import type { Runtime } from '../runtime';
import { processCgroup, readVictim, type Caller } from './caller';
import { assertAccess, assertCgroupArg, assertCgroupExists, resolveTarget } from './checks';
import { hierarchyList } from './hierarchies';

interface Move {
  h: Hierarchy;
  from: string;
  to: string;
}

/**
 * Where a task of cgroup `cg` is written: v1 the cgroup itself; v2 its hidden leaf, so
 * the cgroup may still enable controllers for children. A v2 root holds tasks itself.
 */
export function taskHome(rt: Runtime, h: Hierarchy, cg: string): string {
  return rt.cgfs.driver(h).taskHome(cg);
}

/** Creates the v2 leaf on first use, owned like its cgroup (reference §7.4). */
function ensureTaskHome(rt: Runtime, h: Hierarchy, cg: string): string {
  const home = taskHome(rt, h, cg);
  if (home === cg || rt.cgfs.isDirectory(h, home)) return home;
  const owner = rt.cgfs.stat(h, cg);
  if (rt.cgfs.mkdir(h, home) && owner) {
    rt.cgfs.chownAll(h, home, owner.uid, owner.gid);
    rt.cgfs.chmod(h, home, undefined, owner.mode & 0o7777);
  }
  return home;
}

export function movePid(rt: Runtime, caller: Caller, controller: string, cgroup: string, pid: number, abs: boolean): void {
  const hierarchies = hierarchyList(rt, controller);
  const form = abs ? 'movepidabs' : 'movepid';
  assertCgroupArg(cgroup, form);
  assertPid(pid);
  const victim = readVictim(pid);
  const decision = mayMovePid(caller.requestor, victim);
  if (!decision.allow) throw new CgmError('AccessDenied', decision.reason);

  const plan: Move[] = hierarchies.map((h) => {
    const { path, base } = resolveTarget(caller, h, cgroup, form);
    const from = processCgroup(rt, pid, h);
    if (!isUnder(from, base)) {
      throw new CgmError('AccessDenied', `process ${pid} is in ${rt.cgfs.describe(h, from)}, outside the caller's subtree ${base}`);
    }
    assertCgroupExists(rt, h, path);
    rt.claims.assertFree(h, path, `moving a task into ${rt.cgfs.describe(h, path)}`);
    assertAccess(rt, caller, h, path, undefined, 'read');
    // The v2 leaf's file is owned like the cgroup's own, so checking the cgroup's file
    // decides before anything is created.
    assertAccess(rt, caller, h, path, rt.cgfs.driver(h).moveFile, 'write');
    return { h, from, to: path };
  });

  const done: Move[] = [];
  try {
    for (const move of plan) {
      const home = ensureTaskHome(rt, move.h, move.to);
      rt.cgfs.writeFile(move.h, home, rt.cgfs.driver(move.h).moveFile, `${pid}\n`);
      done.push(move);
    }
  } catch (err) {
    for (const move of done.reverse()) {
      try {
        rt.cgfs.writeFile(move.h, taskHome(rt, move.h, move.from), rt.cgfs.driver(move.h).moveFile, `${pid}\n`);
      } catch {
        // best effort; the task may have exited
      }
    }
    throw err;
  }
}
