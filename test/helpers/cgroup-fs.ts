// Direct kernel views the harness needs besides the daemon: which cgroup a process is in,
// creating and removing the test's own cgroup trees, and the file a task is placed through.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The hidden v2 child in which the daemon (and the harness) keep a cgroup's tasks. */
export const V2_LEAF = '.cgm_leaf';

/** A hierarchy as tests name it: a v1 controller ('cpu'), 'unified', or 'name=X'. */
export type HierarchyLabel = string;

export function isNamedLabel(label: HierarchyLabel): boolean {
  return label.startsWith('name=');
}

export function versionOf(label: HierarchyLabel): 1 | 2 {
  return label === 'unified' ? 2 : 1;
}

/** The `/proc/PID/cgroup` path of `pid` in the hierarchy `label`; undefined if it has none (or is gone). */
export function procCgroupPath(pid: number | 'self', label: HierarchyLabel): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const id = line.slice(0, first);
    const tokens = line.slice(first + 1, second).split(',').filter((t) => t !== '');
    const cg = line.slice(second + 1);
    if (label === 'unified' ? id === '0' && tokens.length === 0 : id !== '0' && tokens.includes(label)) return cg;
  }
  return undefined;
}

/** Joins hierarchy paths: ('/a', 'b/c') → '/a/b/c', ('/', '') → '/'. */
export function joinCg(base: string, rel: string): string {
  const parts = `${base}/${rel}`.split('/').filter((p) => p !== '');
  return `/${parts.join('/')}`;
}

/** The cgroup.procs a harness-placed task is written to: v2 uses the hidden leaf, created on demand like the daemon does. */
export function placementFile(dir: string, version: 1 | 2): string {
  if (version === 1) return path.join(dir, 'cgroup.procs');
  const leaf = path.join(dir, V2_LEAF);
  if (!fs.existsSync(leaf)) {
    const st = fs.statSync(dir);
    fs.mkdirSync(leaf);
    fs.chownSync(leaf, st.uid, st.gid);
    fs.chownSync(path.join(leaf, 'cgroup.procs'), st.uid, st.gid);
  }
  return path.join(leaf, 'cgroup.procs');
}

/**
 * A v1 cpuset cgroup starts with empty cpuset.cpus/mems and takes no task until both are set;
 * the harness's own base cgroups copy their parent's, as the daemon does for the cgroups it makes.
 * No-op elsewhere.
 */
export function seedCpusetDir(dir: string): void {
  for (const mask of ['cpuset.cpus', 'cpuset.mems']) {
    const file = path.join(dir, mask);
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8').trim() !== '') continue;
    const value = fs.readFileSync(path.join(path.dirname(dir), mask), 'utf8').trim();
    if (value !== '') fs.writeFileSync(file, value);
  }
}

/**
 * v2: enables for the children of the harness's own base cgroup every controller its parent
 * offers it, as a delegating runtime would, so that the daemon's cgroups below it carry real
 * controllers (in the UML v2 lane: cpu, io, memory, pids). Where the parent offers none (this
 * host's cgroup2), nothing changes.
 */
export function enableControllersForChildren(dir: string): void {
  const offered = fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/).filter((c) => c !== '');
  if (offered.length > 0) fs.writeFileSync(path.join(dir, 'cgroup.subtree_control'), offered.map((c) => `+${c}`).join(' '));
}

/** The pids listed in one cgroup's cgroup.procs ([] when unreadable). */
export function readProcs(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '').map(Number);
  } catch {
    return [];
  }
}

/** Every cgroup directory below `dir` (hidden ones included), deepest first, then `dir` itself. */
export function cgroupDirsDepthFirst(dir: string): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) if (e.isDirectory()) out.push(...cgroupDirsDepthFirst(path.join(dir, e.name)));
  out.push(dir);
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * rmdir of a whole cgroup tree, children first. A cgroup whose last task has just exited
 * can still be busy for a moment, so EBUSY is retried for up to `patienceMs`.
 * Returns the directories that could not be removed.
 */
export async function removeCgroupTree(dir: string, patienceMs = 3000): Promise<string[]> {
  const end = Date.now() + patienceMs;
  let left = cgroupDirsDepthFirst(dir);
  while (left.length > 0) {
    const failed: string[] = [];
    for (const d of left) {
      try {
        fs.rmdirSync(d);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') failed.push(d);
      }
    }
    if (failed.length === 0 || Date.now() >= end) return failed;
    left = failed;
    await sleep(25);
  }
  return [];
}

/**
 * SIGKILLs every task in a cgroup tree. Only for trees the harness itself made (a stale base of
 * an earlier, crashed run): nothing else is ever placed in them.
 */
export function killTasksInTree(dir: string): number {
  let killed = 0;
  for (const d of cgroupDirsDepthFirst(dir)) {
    for (const pid of readProcs(d)) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // already gone
      }
    }
  }
  return killed;
}
