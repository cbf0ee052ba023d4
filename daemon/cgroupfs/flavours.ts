// What differs between cgroup v1 and v2, as data (STYLE: differences live in a table,
// not in ternaries at call sites). Read by cgroupfs.ts only.
import * as fs from 'node:fs';
import { HIDDEN_LEAF } from './layout';

export interface Flavour {
  /** the file listing a cgroup's tasks for GetTasks (v1 lists threads, as the original did) */
  readonly tasksFile: string;
  /** the file a pid is written to when moving a whole process */
  readonly moveFile: string;
  /** files Chown hands over with the directory: only task membership (and v2 delegation) */
  delegateFiles(): readonly string[];
  /** v2: tasks live in this hidden child so that every cgroup may enable controllers */
  readonly leaf: string | undefined;
  /** v2: Create copies the parent's enabled controllers into the child */
  readonly inheritsSubtreeControl: boolean;
}

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

export const FLAVOURS: Readonly<Record<1 | 2, Flavour>> = {
  1: {
    tasksFile: 'tasks',
    moveFile: 'cgroup.procs',
    // SPEC §2.2: both, as 0.41 did (0.42 forgot cgroup.procs).
    delegateFiles: () => ['tasks', 'cgroup.procs'],
    leaf: undefined,
    inheritsSubtreeControl: false,
  },
  2: {
    tasksFile: 'cgroup.procs',
    moveFile: 'cgroup.procs',
    delegateFiles: readV2DelegateFiles,
    leaf: HIDDEN_LEAF,
    inheritsSubtreeControl: true,
  },
};
