// Watch and Unwatch (cgmanager1): the cgroup, relative to the requestor's own as in every
// method, followed in every hierarchy where an event source applies and the requestor may
// read it: the cgroup itself (as any read: existence, subtree bound, directory access) and
// the file the event comes from (as GetValue of that file). Each kind of event comes from
// one hierarchy, cgroup v2 first, then the v1 ones in ListControllers order, so that one
// change is one signal. Hierarchies where the requestor may not read are skipped silently;
// only when none is left is the call refused (with the first denial), so a watcher learns
// no more than GetValue would tell it.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import type { EventKind } from '../events/parse';
import type { WatchOwner, WatchTarget } from '../events/registry';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertAccess, assertCgroupArg } from './checks';
import { isDenial } from './hierarchies';
import { readableCgroup } from './values';

const KINDS: readonly EventKind[] = ['emptied', 'oom', 'frozen'];

function byPreference(hierarchies: readonly Hierarchy[]): Hierarchy[] {
  return [...hierarchies.filter((h) => h.version === 2), ...hierarchies.filter((h) => h.version === 1)];
}

/** The sources a watch of `cgroup` follows, checked for `caller`. */
export function watchTargets(rt: Runtime, caller: Caller, cgroup: string): WatchTarget[] {
  assertCgroupArg(cgroup, 'readable');
  const chosen = new Map<EventKind, WatchTarget>();
  let denied: CgmError | undefined;
  let found = false;
  for (const h of byPreference(rt.layout.hierarchies)) {
    if (KINDS.every((k) => chosen.has(k))) break;
    let cg: string;
    try {
      cg = readableCgroup(rt, caller, h, cgroup);
    } catch (err) {
      if (isDenial(err)) denied ??= err;
      else if (!(err instanceof CgmError) || (err.code !== 'FileNotFound' && err.code !== 'NoSuchController')) throw err;
      continue;
    }
    found = true;
    for (const [kind, file] of rt.events.sources.offers(h, cg)) {
      if (chosen.has(kind)) continue;
      try {
        assertAccess(rt, caller, h, cg, file, 'read');
        // v1 Emptied borrows notify_on_release, and the daemon's release agent removes what
        // empties under a flag that is no watch's (a cgroup renamed since the borrow is no
        // longer known as the watch's): only a watcher that may mark the cgroup itself
        // (RemoveOnEmpty: write access to its directory) may have the flag set for it.
        if (h.version === 1 && kind === 'emptied') assertAccess(rt, caller, h, cg, undefined, 'write');
      } catch (err) {
        if (isDenial(err)) denied ??= err;
        continue;
      }
      chosen.set(kind, { h, cg, kind });
    }
  }
  if (chosen.size > 0) return KINDS.flatMap((k) => chosen.get(k) ?? []);
  if (denied) throw denied;
  if (found) throw new CgmError('NotSupported', `no event source for cgroup ${JSON.stringify(cgroup)} in any hierarchy (v1 Emptied needs the daemon's release agent)`);
  throw new CgmError('FileNotFound', `cgroup ${JSON.stringify(cgroup)} does not exist in any hierarchy`);
}

/** Watch(cgroup): signals about it go to `owner` under the name it gave. */
export function watch(rt: Runtime, caller: Caller, owner: WatchOwner, cgroup: string): void {
  if (rt.events.registry.has(owner, cgroup)) return;
  rt.events.registry.add(owner, cgroup, watchTargets(rt, caller, cgroup));
}

/** Unwatch(cgroup): ends the watch of that name; not watching it is no error (it may have ended with its cgroup). */
export function unwatch(rt: Runtime, owner: WatchOwner, cgroup: string): void {
  assertCgroupArg(cgroup, 'readable');
  rt.events.registry.remove(owner, cgroup);
}
