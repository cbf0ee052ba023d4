// v1 cpuset: a new cgroup starts with empty cpuset.cpus and cpuset.mems, and the kernel refuses
// to attach any task to it (ENOSPC) until both are set (Documentation/admin-guide/cgroup-v1/
// cpusets.rst, 1.4 and 2.). The original wrote 1 to cgroup.clone_children at the cpuset root
// (reference §7.3), but that is a host-wide setting in a cgroup the daemon did not create, so
// Create copies the parent's values into each cgroup it makes instead. v2 needs nothing: an
// empty cpuset.cpus there means "use the parent's".
import type { Hierarchy } from './layout';
import type { CgroupFiles } from './value-plans';

/** The two masks, in the order the kernel needs them (cpus then mems; either order works). */
const MASKS = ['cpus', 'mems'] as const;

/**
 * Copies cpuset.cpus and cpuset.mems from `parent` into the freshly made `child` where the child's
 * are empty (clone_children may have filled them already). A parent with empty masks (made
 * by someone else) is left as it is: the child must be a subset of it, so nothing can be
 * copied, and the kernel's ENOSPC on attach then tells the truth. Throws a CgmError when a
 * write fails, so that Create rolls the child back.
 */
export function seedCpuset(h: Hierarchy, parent: CgroupFiles, child: CgroupFiles): void {
  if (!h.controllers.includes('cpuset')) return;
  for (const mask of MASKS) {
    // The `noprefix` mount option (old cpuset-only setups) drops the `cpuset.` prefix.
    const file = child.exists(`cpuset.${mask}`) ? `cpuset.${mask}` : mask;
    if (child.read(file, 4096).trim() !== '') continue;
    const value = parent.read(file, 4096).trim();
    if (value !== '') child.write(file, value);
  }
}
