// Snapshots of cgroup trees (directories, owners, modes, chosen values, memberships) so a test can
// assert that a refused request changed nothing on disk.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface SnapshotEntry {
  kind: 'dir' | 'file';
  uid: number;
  gid: number;
  mode: number;
  /** content of the files named in `values` */
  value?: string;
}

export type Snapshot = Record<string, SnapshotEntry>;

/** Files whose content is part of a snapshot by default: memberships and the limits tests set. */
export const DEFAULT_SNAPSHOT_VALUES: readonly string[] = [
  'cgroup.procs', 'tasks', 'cpu.shares', 'memory.limit_in_bytes', 'cgroup.max.descendants', 'cgroup.max.depth',
  'notify_on_release', 'cgroup.clone_children', 'cgroup.subtree_control',
];

function readValue(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    return `<${(err as NodeJS.ErrnoException).code ?? 'error'}>`;
  }
}

function walk(dir: string, values: ReadonlySet<string>, out: Snapshot): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return;
  }
  out[dir] = { kind: 'dir', uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      walk(p, values, out);
      continue;
    }
    const fst = fs.lstatSync(p);
    const entry: SnapshotEntry = { kind: 'file', uid: fst.uid, gid: fst.gid, mode: fst.mode & 0o7777 };
    if (values.has(e.name)) entry.value = readValue(p);
    out[p] = entry;
  }
}

/** Everything below each of `dirs`, recursively (hidden `.cgm_leaf` children included). */
export function snapshotTrees(dirs: readonly string[], values: readonly string[] = DEFAULT_SNAPSHOT_VALUES): Snapshot {
  const out: Snapshot = {};
  const set = new Set(values);
  for (const d of dirs) walk(d, set, out);
  return out;
}
