// Setup (cgmanager1): a container's cgroup in one call. In every named hierarchy it
// creates the cgroup (Create's rules, quotas and journal), hands it to uid:gid (Chown's
// policy), writes the limits (SetValue's checks and the driver's v1/v2 translation), then
// moves the pids (MovePid's policy): limits before pids, so no process ever runs unlimited
// in it. Any failure undoes everything this call did, newest first (tasks back where they
// were, values and owners restored, the cgroups it made removed), and reports the error of
// the step that failed.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import { translationOf, subtreeActionOf } from '../cgroupfs/limit-translation';
import { assertPid, assertSettableKey, quoteArg } from '../policy';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertCgroupArg, resolveTarget, type OpenCgroup } from './checks';
import { assertComponentLengths, closeWalk, createAndOpen, newWalk, removeMade } from './create';
import { hierarchyList } from './hierarchies';
import { closeSources, moveBack, movePidIn, type SourcePins } from './move-pid';
import { chownAll } from './ownership';
import { setLimitIn } from './values';

/** uid and gid 0xffffffff (both) mean "do not chown". */
export const NO_OWNER = 0xffffffff;
/** More limits or pids than these in one Setup is a mistake, not a container. */
export const MAX_SETUP_LIMITS = 256;
export const MAX_SETUP_PIDS = 1024;

export interface SetupRequest {
  controllers: string;
  cgroup: string;
  uid: number;
  gid: number;
  limits: ReadonlyArray<readonly [string, string]>;
  pids: readonly number[];
}

/** What Setup did (the a{sv} report; see setupReportEntries). */
export interface SetupReport {
  /** hierarchies (ListControllers labels) where Setup made the cgroup */
  created: string[];
  /** hierarchies where it already existed */
  existed: string[];
  /** each requested key and the file(s) actually written, comma-separated (translation) */
  applied: Array<[string, string]>;
  /** the pids moved, in the order given */
  moved: number[];
}

/** The report as D-Bus a{sv} entries (dbus-next's [signature, value] variants). */
export function setupReportEntries(report: SetupReport): Array<[string, [string, unknown]]> {
  return [
    ['created', ['as', report.created]],
    ['existed', ['as', report.existed]],
    ['applied', ['a{ss}', report.applied]],
    ['moved', ['ai', report.moved]],
  ];
}

/** Controller names a key may be filed under: its own prefix, then those of its translations' files. */
function controllerCandidates(key: string): string[] {
  const names = [key.split('.')[0] as string];
  for (const version of [1, 2] as const) {
    for (const file of translationOf(key, version)?.writes ?? []) names.push(file.split('.')[0] as string);
  }
  return [...new Set(names)];
}

/** The hierarchy, among those Setup works in, whose controller the key's prefix names. */
export function hierarchyOfLimit(rt: Runtime, hierarchies: readonly Hierarchy[], key: string): Hierarchy {
  assertSettableKey(key);
  // Freeze and kill have their own calls; a container must not start frozen by a limit.
  let action: unknown;
  try {
    action = subtreeActionOf(key, '');
  } catch {
    action = true;
  }
  if (action !== undefined) throw new CgmError('InvalidArgs', `limit ${quoteArg(key)} is not a limit: use Freeze, Thaw or Kill`);
  for (const name of controllerCandidates(key)) {
    if (name === 'cgroup') continue; // cgroup.* core files are no controller's
    const h = rt.layout.find(name);
    if (h && hierarchies.includes(h)) return h;
  }
  throw new CgmError('InvalidArgs', `limit ${quoteArg(key)} names no controller among the hierarchies being set up`);
}

function validate(rt: Runtime, req: SetupRequest): { hierarchies: Hierarchy[]; chown: boolean; limitHierarchies: Hierarchy[]; pids: number[] } {
  const hierarchies = hierarchyList(rt, req.controllers);
  if (req.cgroup === '') throw new CgmError('InvalidArgs', "Setup needs a cgroup name (it sets up a child of the caller's cgroup)");
  // Relative only (MovePid's form): every step must name the same cgroup, and GetValue's
  // readable form would take a leading '/' as hierarchy-absolute where Create does not.
  assertCgroupArg(req.cgroup, 'movepid');
  assertComponentLengths(req.cgroup);
  const noUid = req.uid === NO_OWNER;
  const noGid = req.gid === NO_OWNER;
  if (noUid !== noGid) throw new CgmError('InvalidArgs', 'Setup takes both uid and gid, or 0xffffffff for both (no chown)');
  if (req.limits.length > MAX_SETUP_LIMITS) throw new CgmError('LimitsExceeded', `at most ${MAX_SETUP_LIMITS} limits in one Setup`);
  if (req.pids.length > MAX_SETUP_PIDS) throw new CgmError('LimitsExceeded', `at most ${MAX_SETUP_PIDS} pids in one Setup`);
  const seen = new Set<string>();
  for (const [key] of req.limits) {
    if (seen.has(key)) throw new CgmError('InvalidArgs', `limit ${quoteArg(key)} is given twice`);
    seen.add(key);
  }
  const limitHierarchies = req.limits.map(([key]) => hierarchyOfLimit(rt, hierarchies, key));
  for (const pid of req.pids) assertPid(pid);
  // Refused rather than merged, so that `moved` is always exactly the pids given.
  if (new Set(req.pids).size !== req.pids.length) throw new CgmError('InvalidArgs', 'a pid is given twice');
  return { hierarchies, chown: !noUid, limitHierarchies, pids: [...req.pids] };
}

interface Undoable {
  undo(): void;
  release(): void;
}

/** Synchronous from the first mkdir to the last write: no other request sees it half done. */
function setupNow(rt: Runtime, caller: Caller, req: SetupRequest): SetupReport {
  const { hierarchies, chown, limitHierarchies, pids } = validate(rt, req);
  const report: SetupReport = { created: [], existed: [], applied: [], moved: [] };
  const walk = newWalk();
  const madeHere = new Set<Hierarchy>();
  const steps: Undoable[] = [];
  // Each hierarchy's cgroup as Create's walk opened and checked it: every later step checks
  // and acts through that one opening (pinned.ts), as each classic call does through its own.
  // The walk owns them (closeWalk).
  const open = new Map<Hierarchy, OpenCgroup>();
  const sources: SourcePins = new Map();
  try {
    for (const h of hierarchies) {
      const { existed, path: reached, dir } = createAndOpen(rt, caller, h, req.cgroup, walk);
      if (existed === 1) report.existed.push(h.label);
      else {
        report.created.push(h.label);
        madeHere.add(h);
      }
      // The steps name the cgroup by its resolved path; a walk that reached another (never
      // expected) leaves each step to open its own.
      const { path } = resolveTarget(caller, h, req.cgroup, 'relative');
      if (path !== reached) continue;
      const filesOwner = existed === 1 ? undefined : walk.made.find((m) => m.h === h && m.cg === path)?.owner;
      open.set(h, { path, pinned: dir, filesOwner });
    }
    if (chown) steps.push(chownAll(rt, caller, hierarchies, req.cgroup, req.uid, req.gid, open));
    req.limits.forEach(([key, value], i) => {
      const h = limitHierarchies[i] as Hierarchy;
      // A cgroup made here goes away on failure; only an existing one needs its values back.
      const done = setLimitIn(rt, caller, h, req.cgroup, key, value, !madeHere.has(h), open);
      steps.push(done);
      report.applied.push([key, done.files.join(',')]);
    });
    for (const pid of pids) {
      // Each task goes back, on failure, to the cgroup it was taken from, opened before the move.
      const moves = movePidIn(rt, caller, hierarchies, req.cgroup, pid, false, open, sources);
      steps.push({ undo: () => moveBack(rt, moves, false), release: () => undefined });
      report.moved.push(pid);
    }
  } catch (err) {
    for (const step of steps.reverse()) step.undo();
    removeMade(rt.cgfs, walk.made);
    throw err;
  } finally {
    closeSources(sources);
    closeWalk(walk);
    // Done or rolled back: a later start has nothing of this call to undo.
    rt.journal.finish();
  }
  for (const step of steps) step.release();
  return report;
}

/**
 * Setup for the handlers: like Create, a requestor at its quota first has its cgroups
 * re-checked (in slices); the Setup itself then runs in one go.
 */
export function setup(rt: Runtime, caller: Caller, req: SetupRequest): SetupReport | Promise<SetupReport> {
  let hierarchies: Hierarchy[];
  try {
    hierarchies = hierarchyList(rt, req.controllers);
  } catch {
    hierarchies = []; // setupNow reports it
  }
  const recheck = rt.quota.recheckIfFull(hierarchies, caller.r.uid);
  return recheck ? recheck.then(() => setupNow(rt, caller, req)) : setupNow(rt, caller, req);
}
