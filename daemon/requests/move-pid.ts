// MovePid and MovePidAbs (reference §5.4). Every hierarchy is checked before any task
// moves; a write that fails part-way moves the task back where it was. The daemon
// writes as root, so it enforces containment itself: the victim must already sit
// inside the base (r's cgroup, or p's for MovePidAbs) and the target is always inside it.
// Each target is opened once and written through that opening (pinned.ts), so a cgroup
// renamed between the check and the write cannot redirect the task.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import type { PinnedCgroup } from '../cgroupfs/pinned';
import { assertPid, isHostRoot, isUnder, mayMovePid } from '../policy';
import type { Runtime } from '../runtime';
import { cgroupIn, processCgroupLines, readVictim, type Caller } from './caller';
import { assertCgroupArg, assertPinnedAccess, pinCgroup, pinFor, resolveTarget, testOnlyCheckPause, type OpenCgroups } from './checks';
import { hierarchyList } from './hierarchies';
import { HeldProcess } from '../proc/held-process';
import type { ProcCgroupLine } from '../proc/proc-cgroup';

interface Move {
  h: Hierarchy;
  to: string;
  /** the target cgroup, opened when it was checked: the write goes below this directory (pinned.ts) */
  pinned: PinnedCgroup;
  /** opened by this move (closed when it is done), not by the request around it (Setup) */
  own: boolean;
  /**
   * the task's cgroup as the kernel has it (with the v2 leaf when the task was in one), opened
   * at the same time: a move back goes there exactly, whatever bears its name by then
   */
  source: PinnedCgroup;
}

/**
 * Where a task of cgroup `cg` is written: v1 the cgroup itself; v2 its hidden leaf, so
 * the cgroup may still enable controllers for children. A v2 root holds tasks itself.
 */
export function taskHome(rt: Runtime, h: Hierarchy, cg: string): string {
  return rt.cgfs.driver(h).taskHome(cg);
}

/**
 * The file below the opened cgroup that a task is written to, creating the v2 leaf on
 * first use, owned like its cgroup (reference §7.4).
 */
function ensureTaskFile(rt: Runtime, move: Move): string {
  const driver = rt.cgfs.driver(move.h);
  if (!driver.leaf || move.to === '/') return driver.moveFile;
  const { pinned } = move;
  if (!pinned.isDirectory(driver.leaf) && pinned.mkdir(driver.leaf)) {
    const { uid, gid, mode } = pinned.owner;
    pinned.chown(driver.leaf, uid, gid);
    for (const name of pinned.readdir(driver.leaf)) {
      try {
        pinned.chown(`${driver.leaf}/${name}`, uid, gid);
      } catch {
        // as chownAll: a file that cannot be chowned stays root's
      }
    }
    pinned.chmod(driver.leaf, mode & 0o7777);
  }
  return `${driver.leaf}/${driver.moveFile}`;
}

export function movePid(rt: Runtime, caller: Caller, controller: string, cgroup: string, pid: number, abs: boolean): void {
  releaseMoves(movePidIn(rt, caller, hierarchyList(rt, controller), cgroup, pid, abs));
}

/**
 * Where a task was before a move: what moveBack() needs to undo it. `from` is held open
 * (pinned.ts) until moveBack() or releaseMoves(): on v1 the caller may rename its cgroups, and
 * a task put back by name could land in a root-owned cgroup swapped into that name.
 */
export interface DoneMove {
  readonly h: Hierarchy;
  /** the kernel's own cgroup of the task: on v2 the hidden leaf when the task was in one, else the cgroup itself */
  readonly from: PinnedCgroup;
  readonly pid: number;
}

/**
 * Source cgroups shared by many moves (Setup's pids): one opening per cgroup, by identity,
 * instead of one per pid and hierarchy; whoever made the map closes them (closeSources).
 */
export type SourcePins = Map<string, PinnedCgroup>;

export function closeSources(sources: SourcePins): void {
  for (const pinned of sources.values()) pinned.close();
  sources.clear();
}

/** Closes what moves made and not undone keep open. */
export function releaseMoves(moves: readonly DoneMove[]): void {
  for (const move of moves) move.from.close();
}

/**
 * The task's cgroup exactly as the kernel has it (processCgroup hides the v2 leaf, so a
 * task put back there would land in the leaf although it was in the cgroup itself).
 */
function exactCgroupIn(rt: Runtime, lines: ProcCgroupLine[], pid: number, h: Hierarchy, from: string): string {
  if (h.version !== 2) return from;
  const line = lines.find((l) => l.hierarchyId === 0 && l.controllers.length === 0);
  return line?.path ?? taskHome(rt, h, from);
}

/**
 * MovePid over hierarchies already resolved (Setup moves into the hierarchies it set up,
 * through the cgroups it opened: `open`); returns the moves made, for moveBack().
 */
export function movePidIn(
  rt: Runtime, caller: Caller, hierarchies: readonly Hierarchy[], cgroup: string, pid: number, abs: boolean,
  open?: OpenCgroups, sources?: SourcePins,
): DoneMove[] {
  const form = abs ? 'movepidabs' : 'movepid';
  assertCgroupArg(cgroup, form);
  assertPid(pid);
  // Held before anything is read about it, so that a pid reused meanwhile is noticed.
  const held = HeldProcess.hold(pid);
  const plan: Move[] = [];
  let done = false;
  try {
    const victim = readVictim(pid);
    const decision = mayMovePid(caller.requestor, victim);
    if (!decision.allow) throw new CgmError('AccessDenied', decision.reason);
    // Read once for all hierarchies: one consistent view of where the (held) task is.
    const lines = processCgroupLines(pid);
    for (const h of hierarchies) {
      const { path, base } = resolveTarget(caller, h, cgroup, form);
      const from = cgroupIn(rt, lines, pid, h);
      if (!isUnder(from, base)) {
        throw new CgmError('AccessDenied', `process ${pid} is in ${rt.cgfs.describe(h, from)}, outside the caller's subtree ${base}`);
      }
      rt.claims.assertFree(h, path, `moving a task into ${rt.cgfs.describe(h, path)}`);
      const exactFrom = exactCgroupIn(rt, lines, pid, h, from); // before the opens: a throw leaves nothing open
      let source = pinCgroup(rt, h, exactFrom);
      if (sources) {
        // Filed by identity (an unnamed one on its own), so the map closes every one of them.
        const key = source.identity ?? `unkeyed ${sources.size}`;
        const shared = sources.get(key);
        if (shared) source.close();
        else sources.set(key, source);
        source = shared ?? source;
      }
      let target: ReturnType<typeof pinFor>;
      try {
        target = pinFor(rt, h, path, open);
      } catch (err) {
        if (!sources) source.close();
        throw err;
      }
      const { pinned, own } = target;
      plan.push({ h, to: path, pinned, own, source });
      assertPinnedAccess(rt, caller, h, path, pinned, undefined, 'read');
      // The v2 leaf's file is owned like the cgroup's own, so checking the cgroup's file
      // decides before anything is created. Host root may write any file (as for values,
      // assertPinnedKeyAccess): no lstat for it; the write itself finds a missing one.
      if (!isHostRoot(caller.requestor)) assertPinnedAccess(rt, caller, h, path, pinned, rt.cgfs.driver(h).moveFile, 'write');
    }
    testOnlyCheckPause(rt);
    // Everything checked was about this process: write its pid only while it still lives
    // (a pid is reused only after the whole pid space has wrapped, not within one write).
    held.assertAlive();
    runPlan(rt, plan, pid);
    done = true;
    return plan.map(({ h, source }) => ({ h, from: source, pid }));
  } finally {
    for (const move of plan) {
      if (move.own) move.pinned.close();
      if (!done && !sources) move.source.close();
    }
    held.close();
  }
}

function runPlan(rt: Runtime, plan: Move[], pid: number): void {
  const done: Move[] = [];
  try {
    for (const move of plan) {
      move.pinned.write(ensureTaskFile(rt, move), `${pid}\n`);
      done.push(move);
    }
  } catch (err) {
    moveBack(rt, done.map(({ h, source }) => ({ h, from: source, pid })), false);
    throw err;
  }
}

/**
 * Puts tasks back where they were, newest move first, through the cgroups opened before the
 * move (best effort: a task may have exited). Closes them; runPlan's own undo leaves that to
 * movePidIn's finally, which closes every source of a move that failed.
 */
export function moveBack(rt: Runtime, moves: readonly DoneMove[], close = true): void {
  for (const move of [...moves].reverse()) {
    try {
      move.from.write(rt.cgfs.driver(move.h).moveFile, `${move.pid}\n`);
    } catch {
      // best effort; the task may have exited
    }
  }
  if (close) releaseMoves(moves);
}
