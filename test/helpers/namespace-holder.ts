// The private cgroup layout of one test: a long-lived "holder" process in its own mount
// namespace with a tmpfs over /sys/fs/cgroup and exactly the hierarchies the test asked for.
import * as fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { runCommand, startCollecting, stopChild, waitExit, type RunResult } from './processes';
import { versionOf, type HierarchyLabel } from './cgroup-fs';

export const CGROUP_ROOT = '/sys/fs/cgroup';

export interface LayoutSpec {
  /** bare names of private named v1 hierarchies to create (`none,name=<name>`) */
  named: readonly string[];
  /** mount the (one, shared) cgroup2 hierarchy at /sys/fs/cgroup/unified */
  cgroup2: boolean;
  /** real v1 controllers to re-attach, one hierarchy each (e.g. cpu, memory) */
  controllers: readonly string[];
  /** a string that appears in the holder's command line, so a crashed run's holder can be found */
  marker: string;
}

export interface MountedHierarchy {
  label: HierarchyLabel;
  version: 1 | 2;
  /** where it is mounted inside the holder's namespace */
  mountPoint: string;
}

function mountCommands(spec: LayoutSpec): { hierarchies: MountedHierarchy[]; script: string[] } {
  const hierarchies: MountedHierarchy[] = [];
  const script: string[] = [];
  const add = (label: string, dir: string, mount: string): void => {
    const mountPoint = `${CGROUP_ROOT}/${dir}`;
    hierarchies.push({ label, version: versionOf(label), mountPoint });
    script.push(`mkdir ${mountPoint}`, `${mount} ${mountPoint}`);
  };
  for (const name of spec.named) add(`name=${name}`, name, `mount -t cgroup -o none,name=${name} cgroup`);
  // Controllers the host co-mounts (cpu,cpuacct; or all of them in one hierarchy) share one
  // mount here too: each is still its own label, naming the same mount point.
  const mountedAt = new Map<string, string>();
  for (const c of spec.controllers) {
    const options = v1MountOptions(c);
    const shared = mountedAt.get(options);
    if (shared !== undefined) hierarchies.push({ label: c, version: 1, mountPoint: shared });
    else {
      add(c, c, `mount -t cgroup -o ${options} cgroup`);
      mountedAt.set(options, `${CGROUP_ROOT}/${c}`);
    }
  }
  if (spec.cgroup2) add('unified', 'unified', `mount -t cgroup2${cgroup2Options()} cgroup2`);
  return { hierarchies, script };
}

/**
 * A v1 controller can only be mounted again with the same set its hierarchy has: where the
 * host co-mounts it (cpu,cpuacct), the private mount names them all. The test still calls the
 * hierarchy by the one controller it asked for.
 */
function v1MountOptions(controller: string, mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): string {
  const known = new Set(
    fs.readFileSync('/proc/cgroups', 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split('\t')[0]),
  );
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f[sep + 1] !== 'cgroup') continue;
    const options = (f[sep + 3] ?? '').split(',');
    if (!options.includes(controller)) continue;
    return options.filter((o) => known.has(o) || o.startsWith('name=')).join(',');
  }
  return controller;
}

/**
 * cgroup2 has one superblock: mounting it again without the options it has (nsdelegate,
 * memory_recursiveprot...) reconfigures it for everyone, the host included. So the private
 * mount repeats the options of an existing cgroup2 mount (` -o nsdelegate`, or '' if none).
 */
function cgroup2Options(mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): string {
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f[sep + 1] !== 'cgroup2') continue;
    const options = (f[sep + 3] ?? '').split(',').filter((o) => o !== 'rw' && o !== 'ro' && o !== '');
    return options.length > 0 ? ` -o ${options.join(',')}` : '';
  }
  return '';
}

/** cgroup mounts seen in a mountinfo text, as mount points. */
function cgroupMountPoints(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => {
      const sep = f.indexOf('-', 6);
      return sep > 0 && (f[sep + 1] === 'cgroup' || f[sep + 1] === 'cgroup2');
    })
    .map((f) => f[4] ?? '');
}

export class Holder {
  readonly root: string;

  private constructor(
    readonly pid: number,
    readonly hierarchies: readonly MountedHierarchy[],
    private readonly child: ChildProcess,
  ) {
    this.root = `/proc/${pid}/root`;
  }

  /**
   * Starts the holder and waits until its layout is mounted. Its shell waits on stdin, so it
   * also goes away by itself if the test process dies.
   */
  static async start(spec: LayoutSpec): Promise<Holder> {
    const { hierarchies, script } = mountCommands(spec);
    const body = [
      `: cgmt-holder ${spec.marker}`,
      'set -e',
      // Drop the host's cgroup mounts in this namespace, so the daemon's mountinfo shows only ours.
      `if mountpoint -q ${CGROUP_ROOT}; then umount -R ${CGROUP_ROOT}; fi`,
      `mount -t tmpfs -o mode=755,size=1m cgmt-holder ${CGROUP_ROOT}`,
      ...script,
      'echo ready',
      'read _ || true',
    ].join('\n');
    const { child, result } = startCollecting(['unshare', '-m', '--propagation', 'private', 'sh', '-c', body], { keepStdinOpen: true });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    const ready = await new Promise<boolean>((resolve) => {
      const onData = (): void => {
        if (stdout.includes('ready')) resolve(true);
      };
      child.stdout?.on('data', onData);
      void result.then(() => resolve(false), () => resolve(false));
    });
    if (!ready || child.pid === undefined) {
      const r: RunResult = await result.catch((e: Error) => ({ code: -1, signal: null, stdout: '', stderr: e.message, pid: -1 }));
      throw new Error(`cannot set up the private cgroup layout: ${r.stderr.trim() || `exit ${r.code}`}`);
    }
    const holder = new Holder(child.pid, hierarchies, child);
    // The daemon must see exactly our hierarchies: anything else would be host state in its layout.
    const seen = cgroupMountPoints(fs.readFileSync(`/proc/${child.pid}/mountinfo`, 'utf8')).sort();
    const expected = [...new Set(hierarchies.map((h) => h.mountPoint))].sort();
    if (JSON.stringify(seen) !== JSON.stringify(expected)) {
      await holder.stop();
      throw new Error(`private layout is not isolated: saw ${seen.join(' ')}, expected ${expected.join(' ')}`);
    }
    return holder;
  }

  /** The path, as seen from the host, of `nsPath` inside the holder's mount namespace. */
  hostPath(nsPath: string): string {
    return `${this.root}${nsPath}`;
  }

  mountPointOf(label: HierarchyLabel): string {
    const h = this.hierarchies.find((x) => x.label === label);
    if (!h) throw new Error(`hierarchy ${label} is not part of this layout`);
    return h.mountPoint;
  }

  /** argv prefix that runs a command inside the holder's mount namespace (same pid: no fork). */
  enterArgv(): string[] {
    return ['nsenter', `--mount=/proc/${this.pid}/ns/mnt`, '--'];
  }

  /** Runs a shell script inside the holder's mount namespace. */
  exec(script: string): Promise<RunResult> {
    return runCommand([...this.enterArgv(), 'sh', '-c', script]);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Ends the holder (its namespace goes with the last process in it). Idempotent. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.stdin?.end();
    if (await waitExit(this.child, 2000)) return;
    await stopChild(this.child, 'SIGKILL', 2000);
  }
}
