// The cgroup v2 driver: tasks live in the hidden leaf (.cgm_leaf) so every cgroup may
// enable controllers for its children, a new child inherits its parent's
// subtree_control, populated comes from cgroup.events, remove-on-empty is our own watch,
// Chown hands over the kernel's delegate list, freezing is cgroup.freeze and killing
// cgroup.kill (with a fallback before Linux 5.14), and v1 key names are translated.
import * as fs from 'node:fs';
import type { CgroupFs } from './cgroupfs';
import type { CgroupDriver, SetPlan } from './driver';
import { removeSubtreeDirs } from './subtree-walk';
import { killByFreezing, setFreezerState } from './freeze-kill';
import { HIDDEN_LEAF, type Hierarchy } from './layout';
import { subtreeActionOf, type SubtreeAction } from './limit-translation';
import { planGetValue, planSetValue, type CgroupFiles } from './value-plans';

const V2_DELEGATE_FALLBACK = ['cgroup.procs', 'cgroup.threads', 'cgroup.subtree_control'];
let v2Delegate: readonly string[] | undefined;

/** The kernel's own list of files to chown when delegating (Documentation/admin-guide/cgroup-v2.rst, "Delegation"). */
function readV2DelegateFiles(): readonly string[] {
  if (v2Delegate) return v2Delegate;
  try {
    const names = fs.readFileSync('/sys/kernel/cgroup/delegate', 'utf8').split('\n').map((s) => s.trim()).filter((s) => s !== '' && !s.includes('/'));
    v2Delegate = names.length > 0 ? names : V2_DELEGATE_FALLBACK;
  } catch {
    v2Delegate = V2_DELEGATE_FALLBACK;
  }
  return v2Delegate;
}

function isFrozen(files: CgroupFiles): boolean {
  return /^frozen 1$/m.test(files.read('cgroup.events', 4096));
}

/**
 * Writes cgroup.freeze and waits for cgroup.events to agree ("frozen 1" is reported once every
 * task stopped), through `files` (the cgroup opened for the request's check), as v1 does.
 */
function setFrozen(cgfs: CgroupFs, h: Hierarchy, cg: string, files: CgroupFiles, frozen: boolean): Promise<void> {
  return setFreezerState(cgfs, h, cg, frozen, {
    write: (f) => files.write('cgroup.freeze', f ? '1\n' : '0\n'),
    isSettled: (f) => isFrozen(files) === f,
  });
}

function planAction(cgfs: CgroupFs, h: Hierarchy, cg: string, files: CgroupFiles, action: SubtreeAction): SetPlan {
  if (action.kind === 'freeze') return { files: ['cgroup.freeze'], run: () => setFrozen(cgfs, h, cg, files, action.frozen) };
  // cgroup.kill (Linux 5.14) kills the subtree atomically; before it, freeze-kill-thaw.
  if (files.exists('cgroup.kill')) return { files: ['cgroup.kill'], run: () => files.write('cgroup.kill', '1\n') };
  return {
    files: ['cgroup.freeze'],
    run: () => killByFreezing((frozen) => setFrozen(cgfs, h, cg, files, frozen), () => files.subtreePids()),
  };
}

export const V2_DRIVER: CgroupDriver = {
  version: 2,
  tasksFile: 'cgroup.procs',
  moveFile: 'cgroup.procs',
  leaf: HIDDEN_LEAF,
  autoRemove: 'watch',
  delegateFiles: readV2DelegateFiles,
  // A v2 root holds tasks itself (it may, and has no leaf).
  taskHome: (cg) => (cg === '/' ? cg : `${cg}/${HIDDEN_LEAF}`),
  /**
   * Enable in the child whatever the parent enables for its children, so controllers
   * reach every level a delegatee creates (reference §7.4). Tasks live in the hidden
   * leaf, so the no-internal-processes rule never blocks this.
   */
  prepareChild(h, parent, child) {
    let enabled: string[];
    try {
      enabled = parent.read('cgroup.subtree_control', 4096).split(/\s+/).filter((c) => c !== '');
    } catch {
      return;
    }
    if (enabled.length > 0) child.write('cgroup.subtree_control', enabled.map((c) => `+${c}`).join(' '));
  },
  isSubtreeEmpty: (cgfs, h, cg) => /^populated 0$/m.test(cgfs.readFile(h, cg, 'cgroup.events', 4096)),
  removeSubtree: (cgfs, h, cg) => removeSubtreeDirs(cgfs, h, cg, HIDDEN_LEAF),
  planGet: (cgfs, h, cg, files, key, maxBytes) => planGetValue(2, files, key, maxBytes),
  planSet(cgfs, h, cg, files, key, value) {
    const action = subtreeActionOf(key, value);
    if (action !== undefined) return planAction(cgfs, h, cg, files, action);
    return planSetValue(2, files, key, value);
  },
};
