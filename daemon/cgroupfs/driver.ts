// One driver per hierarchy version, chosen once per hierarchy (like runc's fs/ and fs2/
// managers behind manager.New): task files, the hidden leaf, child preparation, populated
// checks, tree removal, delegation files, remove-on-empty, value translation and
// freeze/kill. Requests ask the driver and never branch on the version themselves.
// Drivers never log and never decide who may do what.
import type { CgroupFs } from './cgroupfs';
import type { Hierarchy } from './layout';
import type { CgroupFiles } from './value-plans';
import { V1_DRIVER } from './v1-driver';
import { V2_DRIVER } from './v2-driver';

/** What SetValue does, once the request has checked write access to every file in `files`. */
export interface SetPlan {
  /** the files the plan writes (every one needs the caller's write access) */
  readonly files: readonly string[];
  /** synchronous for plain writes; a promise where the kernel's state must settle (freeze, kill) */
  run(): void | Promise<void>;
}

/** What GetValue does, once the request has checked read access to every file in `files`. */
export interface GetPlan {
  readonly files: readonly string[];
  run(): string;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** the file listing a cgroup's tasks for GetTasks (v1 lists threads, as the original did) */
  readonly tasksFile: string;
  /** the file a pid is written to when moving a whole process */
  readonly moveFile: string;
  /** v2: tasks live in this hidden child so that every cgroup may enable controllers */
  readonly leaf: string | undefined;
  /** how remove-on-empty works: the kernel's notify_on_release (v1) or our own watch (v2) */
  readonly autoRemove: 'notify-on-release' | 'watch';
  /** files Chown hands over with the directory: only task membership (and v2 delegation) */
  delegateFiles(): readonly string[];
  /** where a task of `cg` is written: the cgroup itself, or its hidden leaf */
  taskHome(cg: string): string;
  /**
   * after `child` was made below `parent`: whatever the version needs before it is used (the
   * files of both as opened by Create, pinned.ts)
   */
  prepareChild(h: Hierarchy, parent: CgroupFiles, child: CgroupFiles): void;
  /** whether nothing runs anywhere in the subtree */
  isSubtreeEmpty(cgfs: CgroupFs, h: Hierarchy, cg: string): boolean;
  /** rmdir of the subtree, deepest first, a hidden leaf before its cgroup; throws at the first busy one */
  removeSubtree(cgfs: CgroupFs, h: Hierarchy, cg: string): void;
  /** GetValue of `key`: the key itself, or its translation when only the other version has it; files of `cg` through `files` */
  planGet(cgfs: CgroupFs, h: Hierarchy, cg: string, files: CgroupFiles, key: string, maxBytes: number): GetPlan;
  /**
   * SetValue of `key` (value with its trailing newline). Plain and translated keys go
   * through `files`; freeze and kill walk the subtree by path.
   */
  planSet(cgfs: CgroupFs, h: Hierarchy, cg: string, files: CgroupFiles, key: string, value: string): SetPlan;
}

export function driverFor(h: Hierarchy): CgroupDriver {
  return h.version === 2 ? V2_DRIVER : V1_DRIVER;
}
