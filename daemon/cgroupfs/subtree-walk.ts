// Walking a cgroup subtree: every cgroup below one (the hidden leaf included) and removing
// the subtree deepest first. Shared by both drivers; never logs.
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

/** The hierarchy paths of the subtree's cgroups, top first, hidden leaves included. */
export function subtreeOf(cgfs: CgroupFs, h: Hierarchy, cg: string, leaf: string | undefined): string[] {
  const out: string[] = [cg];
  const walk = (at: string): void => {
    let names: string[];
    try {
      names = cgfs.children(h, at);
    } catch {
      return; // vanished while we walked
    }
    if (leaf !== undefined && at !== '/' && cgfs.isDirectory(h, join(at, leaf))) out.push(join(at, leaf));
    for (const name of names) {
      out.push(join(at, name));
      walk(join(at, name));
    }
  };
  walk(cg);
  return out;
}
