// The cgroup v1 driver: tasks live in the cgroup itself, remove-on-empty is the kernel's
// notify_on_release, Chown hands over `tasks` and `cgroup.procs`, freezing is the freezer
// hierarchy's freezer.state, and v2 key names are translated (limit-translation.ts).
import { CgmError } from '../errors';
import type { CgroupFs } from './cgroupfs';
import type { CgroupDriver, SetPlan } from './driver';
import { removeSubtreeDirs } from './subtree-walk';
import { seedCpuset } from './cpuset-seed';
import { killByFreezing, setFreezerState } from './freeze-kill';
import type { Hierarchy } from './layout';
import { subtreeActionOf, type SubtreeAction } from './limit-translation';
import { planGetValue, planSetValue, type CgroupFiles } from './value-plans';

const FREEZER_STATE = 'freezer.state';

/** Writes FROZEN or THAWED and waits until the whole subtree has left FREEZING (Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst). */
// Written and read through `files` (the cgroup opened for the request's check): a rename of
// the cgroup after the check cannot make it freeze or kill another cgroup's tasks.
function setFrozen(cgfs: CgroupFs, h: Hierarchy, cg: string, files: CgroupFiles, frozen: boolean): Promise<void> {
  return setFreezerState(cgfs, h, cg, frozen, {
    write: (f) => files.write(FREEZER_STATE, f ? 'FROZEN\n' : 'THAWED\n'),
    isSettled: (f) => files.read(FREEZER_STATE, 64).trim() === (f ? 'FROZEN' : 'THAWED'),
  });
}

function planAction(cgfs: CgroupFs, h: Hierarchy, cg: string, files: CgroupFiles, key: string, action: SubtreeAction): SetPlan {
  if (!files.exists(FREEZER_STATE)) {
    throw new CgmError('FileNotFound', `no key ${key} in ${cgfs.describe(h, cg)}: on cgroup v1, freezing and killing go through the freezer hierarchy`);
  }
  if (action.kind === 'freeze') return { files: [FREEZER_STATE], run: () => setFrozen(cgfs, h, cg, files, action.frozen) };
  return {
    files: [FREEZER_STATE],
    run: () => killByFreezing((frozen) => setFrozen(cgfs, h, cg, files, frozen), () => files.subtreePids()),
  };
}

export const V1_DRIVER: CgroupDriver = {
  version: 1,
  tasksFile: 'tasks',
  moveFile: 'cgroup.procs',
  leaf: undefined,
  autoRemove: 'notify-on-release',
  // SPEC §2.2: both, as 0.41 did (0.42 forgot cgroup.procs).
  delegateFiles: () => ['tasks', 'cgroup.procs'],
  taskHome: (cg) => cg,
  // A new cpuset cgroup cannot take tasks until it has cpus and mems.
  prepareChild: (h, parent, child) => seedCpuset(h, parent, child),
  isSubtreeEmpty(cgfs, h, cg) {
    if (cgfs.readPids(h, cg, 'cgroup.procs').length > 0) return false;
    return cgfs.children(h, cg).every((child) => this.isSubtreeEmpty(cgfs, h, cg === '/' ? `/${child}` : `${cg}/${child}`));
  },
  removeSubtree: (cgfs, h, cg) => removeSubtreeDirs(cgfs, h, cg, undefined),
  planGet: (cgfs, h, cg, files, key, maxBytes) => planGetValue(1, files, key, maxBytes),
  planSet(cgfs, h, cg, files, key, value) {
    const action = subtreeActionOf(key, value);
    if (action !== undefined) return planAction(cgfs, h, cg, files, key, action);
    return planSetValue(1, files, key, value);
  },
};
