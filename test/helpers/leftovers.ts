// Naming of everything the harness creates (cgmt-<owner pid>-<random>), the teardown of private
// named hierarchies, and the removal of what crashed earlier runs left behind.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cmdlineOf, allPids, isAlive, runCommand } from './processes';
import { killTasksInTree, procCgroupPath, removeCgroupTree } from './cgroup-fs';

/** Prefix of every cgroup, directory and named hierarchy the harness creates. */
export const PREFIX = 'cgmt';

/** A fresh run id: the owner pid makes stale runs recognisable once that process is gone. */
export function newRunId(): string {
  return `${process.pid}-${randomBytes(3).toString('hex')}`;
}

const RUN_DIR = new RegExp(`^${PREFIX}-(\\d+)-[0-9a-f]+$`);
const NAMED = new RegExp(`^${PREFIX}_(\\d+)_[0-9a-f]+_\\d+$`);

function ownerGone(match: RegExpExecArray | null): boolean {
  return match !== null && !isAlive(Number(match[1]));
}

/** Names of the named v1 hierarchies the calling process sees in /proc/self/cgroup. */
export function namedHierarchies(): string[] {
  return fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .flatMap((line) => line.split(':')[1]?.split(',') ?? [])
    .filter((t) => t.startsWith('name='))
    .map((t) => t.slice(5));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Destroys a named v1 hierarchy that is no longer mounted anywhere we hold. The kernel keeps a
 * hierarchy alive while a removed child is still being released, so it is mounted again (in a
 * throw-away mount namespace), emptied, and unmounted until it is gone from /proc/self/cgroup
 * (DESIGN.md). `killTasks` is only for stale hierarchies of crashed runs, whose tasks were ours.
 */
export async function destroyNamedHierarchy(name: string, scratchDir: string, options: { killTasks?: boolean } = {}): Promise<boolean> {
  const mnt = path.join(scratchDir, `mnt-${name}`);
  fs.mkdirSync(mnt, { recursive: true });
  const kill = options.killTasks
    ? `for f in $(find "$1" -mindepth 2 -name cgroup.procs); do for p in $(cat "$f"); do kill -9 "$p" 2>/dev/null; done; done; sleep 0.1;`
    : '';
  const script = `mount -t cgroup -o none,name=${name} cgroup "$1" || exit 1; ${kill} find "$1" -mindepth 1 -depth -type d -exec rmdir {} \\; 2>/dev/null; umount "$1"`;
  try {
    for (let attempt = 0; attempt < 40; attempt++) {
      // Release of the last child and of the hierarchy itself happen asynchronously.
      for (let i = 0; i < 10 && namedHierarchies().includes(name); i++) await sleep(attempt === 0 ? 5 : 20);
      if (!namedHierarchies().includes(name)) return true;
      await runCommand(['unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh', mnt]);
    }
    return !namedHierarchies().includes(name);
  } finally {
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}

const V1_CONTROLLERS = new Set([
  'blkio', 'cpu', 'cpuacct', 'cpuset', 'debug', 'devices', 'freezer', 'hugetlb', 'memory', 'misc',
  'net_cls', 'net_prio', 'perf_event', 'pids', 'rdma',
]);

export interface CgroupMount {
  mountPoint: string;
  /** a label procCgroupPath understands: 'unified', a controller, or 'name=X' */
  label: string;
  /** every controller of the mount (co-mounted ones too) */
  controllers: string[];
}

/** The host's cgroup mounts of whole hierarchies, one label each. */
export function hostCgroupMounts(): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f[3] !== '/') continue;
    const fsType = f[sep + 1];
    const mountPoint = f[4] ?? '';
    if (fsType === 'cgroup2') out.push({ mountPoint, label: 'unified', controllers: [] });
    if (fsType !== 'cgroup') continue;
    const options = (f[sep + 3] ?? '').split(',');
    const controllers = options.filter((o) => V1_CONTROLLERS.has(o));
    const label = controllers[0] ?? options.find((o) => o.startsWith('name='));
    if (label) out.push({ mountPoint, label, controllers });
  }
  return out;
}

let cleaned: Promise<void> | undefined;

/**
 * Removes what earlier runs whose owner process is gone left behind: their daemons and holders
 * (recognised by the run directory in their command line), their base cgroups under our own
 * cgroup in every host hierarchy (their tasks were placed there by the harness), their named
 * hierarchies, and their run directories. Runs of live processes are never touched. Once per process.
 */
export function cleanStaleLeftovers(): Promise<void> {
  cleaned ??= (async () => {
    const tmp = os.tmpdir();
    const staleDirs = fs.readdirSync(tmp).filter((n) => ownerGone(RUN_DIR.exec(n))).map((n) => path.join(tmp, n));
    if (staleDirs.length > 0) {
      for (const pid of allPids()) {
        const cmd = cmdlineOf(pid);
        if (staleDirs.some((d) => cmd.includes(d))) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
    }
    for (const m of hostCgroupMounts()) {
      const own = procCgroupPath('self', m.label);
      if (own === undefined) continue;
      const dir = path.join(m.mountPoint, own);
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names.filter((x) => ownerGone(RUN_DIR.exec(x)))) {
        killTasksInTree(path.join(dir, n));
        await removeCgroupTree(path.join(dir, n));
      }
    }
    const scratch = path.join(tmp, `${PREFIX}-${newRunId()}`);
    fs.mkdirSync(scratch);
    try {
      for (const name of namedHierarchies().filter((n) => ownerGone(NAMED.exec(n)))) {
        await destroyNamedHierarchy(name, scratch, { killTasks: true });
      }
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
    for (const d of staleDirs) fs.rmSync(d, { recursive: true, force: true });
  })();
  return cleaned;
}
