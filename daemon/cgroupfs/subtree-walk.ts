// Removing a cgroup subtree deepest first (the hidden leaf included). Shared by both drivers; never logs.
import type { CgroupFs } from './cgroupfs';
import type { Hierarchy } from './layout';

function join(cg: string, name: string): string {
  return cg === '/' ? `/${name}` : `${cg}/${name}`;
}

/** rmdir of the subtree, deepest first, the hidden leaf (if any) before its cgroup. Throws at the first busy one. */
export function removeSubtreeDirs(cgfs: CgroupFs, h: Hierarchy, cg: string, leaf: string | undefined): void {
  for (const child of cgfs.children(h, cg)) removeSubtreeDirs(cgfs, h, join(cg, child), leaf);
  if (leaf !== undefined && cg !== '/' && cgfs.isDirectory(h, join(cg, leaf))) cgfs.rmdir(h, join(cg, leaf));
  cgfs.rmdir(h, cg);
}
