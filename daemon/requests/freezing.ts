// Freeze, Thaw and Kill (cgmanager1): the whole subtree of one cgroup, through SetValue's
// checks and the driver's freeze/kill plans (freezer.state in the v1 freezer hierarchy,
// cgroup.freeze and cgroup.kill on v2). Each answers once the kernel has settled: frozen,
// thawed, or every task of the subtree gone.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import { waitUntil } from '../cgroupfs/freeze-kill';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import type { CgroupFiles } from '../cgroupfs/value-plans';
import { setValueIn } from './values';

/**
 * Where freezing happens: the v1 freezer hierarchy when one is mounted (hybrid hosts
 * freeze there), else the v2 hierarchy.
 */
export function freezerHierarchy(rt: Runtime): Hierarchy | undefined {
  const v1 = rt.layout.find('freezer');
  if (v1 && v1.version === 1) return v1;
  return rt.layout.hierarchies.find((h) => h.version === 2);
}

function requireFreezer(rt: Runtime): Hierarchy {
  const h = freezerHierarchy(rt);
  if (!h) throw new CgmError('NoSuchController', 'no freezer: neither a v1 freezer hierarchy nor cgroup v2 is mounted');
  return h;
}

type Action = 'freeze' | 'thaw' | 'kill';

/** The SetValue key and value for each action, by version (limit-translation.ts's action keys). */
function keyFor(h: Hierarchy, action: Action): [string, string] {
  if (action === 'kill') return ['cgroup.kill', '1'];
  if (h.version === 1) return ['freezer.state', action === 'freeze' ? 'FROZEN' : 'THAWED'];
  return ['cgroup.freeze', action === 'freeze' ? '1' : '0'];
}

export async function changeState(rt: Runtime, caller: Caller, cgroup: string, action: Action): Promise<void> {
  const h = requireFreezer(rt);
  const [key, value] = keyFor(h, action);
  if (action !== 'kill') return setValueIn(rt, caller, h, cgroup, key, value);
  // SIGKILL is sent; the tasks leave the cgroup as they exit (not when reaped). Waited for in
  // the cgroup that was checked and killed, not in whatever bears its name by then.
  const gone = (files: CgroupFiles, cg: string): Promise<void> =>
    waitUntil(async () => {
      try {
        return await files.isSubtreeEmpty();
      } catch (err) {
        if (err instanceof CgmError && err.code === 'LimitsExceeded') throw err;
        return true; // removed meanwhile: nothing left to kill
      }
    }, `killing ${rt.cgfs.describe(h, cg)}`);
  return setValueIn(rt, caller, h, cgroup, key, value, gone);
}
