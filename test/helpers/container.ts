// Containers for the nested-container tests, built the way LXC builds an unprivileged one:
// a new user namespace (maps written by the test, no newuidmap), new pid, mount and cgroup
// namespaces, a tmpfs over /sys/fs/cgroup and the manager's socket directory bind-mounted at
// /sys/fs/cgroup/cgmanager. Host root places the init in the container's cgroup before the
// namespaces are made. A container may be built inside another one (its maps are then
// written from inside the parent's user namespace, as only a process there may).
//
// Everything is torn down by stop(): the init's stdin closes, the init exits, and the kernel
// kills whatever else lived in its pid namespace; the mounts go with the mount namespace.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { placementFile } from './cgroup-fs';
import { argvOf, CLIENT_ENV, runCommand, startCollecting, stopChild, waitExit, waitFor, type RunResult } from './processes';
import { REPO_ROOT } from './requirements';
import type { TestDaemon } from './test-daemon';
import { hostIdOf, releaseIntoUserns, usernsArgv } from './userns';

export const CGM_MAIN = path.join(REPO_ROOT, 'dist', 'client', 'cgm.js');
export const PROXY_MAIN = path.join(REPO_ROOT, 'dist', 'proxy', 'main.js');

/** Where a container finds the manager (daemon or proxy) and where cgproxy moves it. */
export const CONTAINER_SOCKET = '/sys/fs/cgroup/cgmanager/sock';
export const CONTAINER_UPPER_DIR = '/sys/fs/cgroup/cgmanager';
export const CONTAINER_LOWER_DIR = '/sys/fs/cgroup/cgmanager.lower';

const UNSHARE_FLAGS = ['--pid', '--fork', '--kill-child', '--mount', '--cgroup', '--mount-proc'] as const;

// The container's pid 1. The socket directory is first bind-mounted onto a staging
// directory, because the tmpfs about to cover /sys/fs/cgroup may hide it (a nested
// container binds a directory of its parent's /sys/fs/cgroup), then moved into place.
// mount -n: mount(8) cannot update /run/mount/utab from inside a user namespace.
const INIT = [
  'set -e',
  'if [ -n "$1" ]; then mount -n --bind "$1" "$2"; fi',
  'mount -n -t tmpfs -o mode=755,size=1m cgmt-container /sys/fs/cgroup',
  `if [ -n "$1" ]; then mkdir ${CONTAINER_UPPER_DIR}; mount -n --move "$2" ${CONTAINER_UPPER_DIR}; fi`,
  `if [ -n "$3" ]; then mkdir ${CONTAINER_UPPER_DIR}; : > ${CONTAINER_SOCKET}; mount -n --bind "$3" ${CONTAINER_SOCKET}; fi`,
  'echo ready',
  'read _ || true',
].join('\n');

// Places the shell in each cgroup.procs given, then execs the rest.
const PLACE = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@"';

export interface ContainerSpec {
  name: string;
  /** the cgroup its init starts in, relative to the test's bases (e.g. 'c1', 'c1/nest') */
  at: string;
  /** uid_map of its user namespace, in the ids of the parent's namespace ('0 100000 65536') */
  uidMap: string;
  gidMap?: string;
  /**
   * the directory bind-mounted at /sys/fs/cgroup/cgmanager: a host path, or for a nested
   * container a path inside its parent (e.g. the parent's cgmanager.lower). None: no socket.
   */
  socketDir?: string;
  /** instead of a directory, bind only this socket file (a host path) at /sys/fs/cgroup/cgmanager/sock */
  socketFile?: string;
  /** build it inside this container */
  parent?: Container;
}

export interface InContainerOptions {
  /** the cgroup the process starts in, relative to the test's bases (default: the container's own) */
  at?: string;
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** keep the process's stdin open (spawn only), for processes driven line by line */
  keepStdinOpen?: boolean;
}

export interface ContainerProcess {
  /** its pid as the host (and the daemon) sees it */
  hostPid: number;
  /** its pid inside the container */
  nsPid: number;
  child: ChildProcess;
  /** what it printed so far */
  stdout(): string;
  stderr(): string;
  result: Promise<RunResult>;
  /** stops it (SIGTERM, then SIGKILL) and waits for it */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface Container {
  readonly name: string;
  readonly spec: ContainerSpec;
  /** the host pid of the container's pid 1 */
  readonly initPid: number;
  /** the host uid of its root */
  readonly hostRootUid: number;
  /** runs a command inside as its root, to completion */
  exec(cmd: readonly string[], options?: InContainerOptions): Promise<RunResult>;
  /** starts a long-lived command inside as its root */
  spawn(cmd: readonly string[], options?: InContainerOptions): Promise<ContainerProcess>;
  /** runs `cgm` inside (default socket: /sys/fs/cgroup/cgmanager/sock) */
  cgm(args: readonly string[], options?: InContainerOptions): Promise<RunResult>;
  /** starts cgproxy inside and waits until it serves */
  startProxy(args?: readonly string[], options?: InContainerOptions): Promise<ContainerProcess>;
  /** the host pid of a process given by its pid inside the container */
  hostPidOf(nsPid: number): number | undefined;
  /** what host root sees of a file inside the container's mount namespace */
  hostPath(p: string): string;
  stop(): Promise<void>;
}

function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((s) => s !== '').map(Number);
  } catch {
    return [];
  }
}

function nsInode(pid: number, kind: 'user' | 'pid'): number | undefined {
  try {
    return fs.statSync(`/proc/${pid}/ns/${kind}`).ino;
  } catch {
    return undefined;
  }
}

/** The NSpid line of /proc/PID/status: the pid in each pid namespace, outermost first. */
export function nsPids(pid: number): number[] {
  try {
    const m = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1]?.trim().split(/\s+/).map(Number) ?? [];
  } catch {
    return [];
  }
}

/** Collects a child's output as it comes, for processes that never exit by themselves. */
function collect(child: ChildProcess): { stdout(): string; stderr(): string } {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { stdout: () => out, stderr: () => err };
}

class ContainerImpl implements Container {
  readonly name: string;
  readonly hostRootUid: number;
  initPid = -1;
  private init: { child: ChildProcess; result: Promise<RunResult> } | undefined;
  private readonly processes = new Set<ContainerProcess>();
  readonly children = new Set<ContainerImpl>();
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly env: TestDaemon,
    readonly spec: ContainerSpec,
  ) {
    this.name = spec.name;
    const inParent = hostIdOf(0, spec.uidMap);
    this.hostRootUid = spec.parent ? spec.parent.hostRootUid + inParent : inParent;
  }

  private placementFiles(at: string): string[] {
    return [...this.env.bases.values()].map((b) => placementFile(this.env.fsPath(b.label, at), b.version));
  }

  private placeArgv(at: string): string[] {
    const files = this.placementFiles(at);
    return ['sh', '-c', PLACE, 'sh', String(files.length), ...files];
  }

  /**
   * Moves helper processes we started (nsenter and unshare parents, which stay outside the
   * container's pid namespace) back to the test's bases, so that the container's cgroups
   * hold only the container's own tasks.
   */
  private moveToBases(pids: readonly number[]): void {
    for (const file of this.placementFiles('')) {
      for (const pid of pids) {
        try {
          fs.writeFileSync(file, `${pid}\n`);
        } catch {
          // it exited meanwhile
        }
      }
    }
  }

  private enterArgv(): string[] {
    return ['nsenter', '-t', String(this.initPid), '-U', '-p', '-m', '-C', '--'];
  }

  async start(): Promise<void> {
    const parent = this.spec.parent as ContainerImpl | undefined;
    const stage = path.join(this.env.dir, `stage-${this.name}`);
    fs.mkdirSync(stage, { recursive: true, mode: 0o755 });
    const userns = { uidMap: this.spec.uidMap, gidMap: this.spec.gidMap, unshareFlags: UNSHARE_FLAGS };
    const argv = [
      ...this.placeArgv(this.spec.at),
      ...(parent ? parent.enterArgv() : []),
      ...usernsArgv(userns),
      'sh', '-c', INIT, 'init', this.spec.socketDir ?? '', stage, this.spec.socketFile ?? '',
    ];
    const { child, result } = startCollecting(argv, { env: CLIENT_ENV, keepStdinOpen: true });
    this.init = { child, result };
    result.catch(() => undefined);
    const out = collect(child);
    try {
      if (parent) await this.releaseNested(child, parent);
      else await releaseIntoUserns(child, userns);
      const ready = await waitFor(() => out.stdout().includes('ready') || child.exitCode !== null, 10_000, 5);
      if (!ready || child.exitCode !== null) throw new Error(`container ${this.name} did not start: ${out.stderr().trim()}`);
      // The init is the child of the unshare process (which sits below nsenter when nested).
      const unshare = parent ? (childPids(child.pid as number)[0] as number) : (child.pid as number);
      const initPid = childPids(unshare)[0];
      if (initPid === undefined) throw new Error(`container ${this.name}: no init below pid ${unshare}`);
      this.initPid = initPid;
      this.moveToBases(parent ? [child.pid as number, unshare] : [unshare]);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Writes the maps of a nested container from inside its parent's user namespace, then lets it go on. */
  private async releaseNested(child: ChildProcess, parent: ContainerImpl): Promise<void> {
    const parentUserNs = nsInode(parent.initPid, 'user');
    let unshare: number | undefined;
    const entered = await waitFor(() => {
      unshare = childPids(child.pid as number)[0];
      if (unshare === undefined) return child.exitCode !== null;
      const ns = nsInode(unshare, 'user');
      return ns !== undefined && ns !== parentUserNs;
    }, 5000, 2);
    if (!entered || unshare === undefined || child.exitCode !== null) throw new Error(`container ${this.name} did not enter a new user namespace`);
    // Only a process in the parent user namespace may write them (user_namespaces(7)).
    const r = await runCommand([
      'nsenter', '-t', String(parent.initPid), '-U', '--', 'sh', '-c', 'echo "$1" > /proc/$3/uid_map && echo "$2" > /proc/$3/gid_map',
      'sh', this.spec.uidMap, this.spec.gidMap ?? this.spec.uidMap, String(unshare),
    ]);
    if (r.code !== 0) throw new Error(`container ${this.name}: cannot write its id maps: ${r.stderr.trim()}`);
    child.stdin?.write('\n');
  }

  private argv(cmd: readonly string[], options: InContainerOptions): string[] {
    return [...this.placeArgv(options.at ?? this.spec.at), ...this.enterArgv(), ...cmd];
  }

  exec(cmd: readonly string[], options: InContainerOptions = {}): Promise<RunResult> {
    return startCollecting(this.argv(cmd, options), {
      env: { ...CLIENT_ENV, ...options.env },
      timeoutMs: options.timeoutMs ?? 20_000,
      ...(options.input !== undefined ? { input: options.input } : {}),
    }).result;
  }

  cgm(args: readonly string[], options: InContainerOptions = {}): Promise<RunResult> {
    return this.exec([process.execPath, CGM_MAIN, ...args], options);
  }

  async spawn(cmd: readonly string[], options: InContainerOptions = {}): Promise<ContainerProcess> {
    const { child, result } = startCollecting(this.argv(cmd, options), {
      env: { ...CLIENT_ENV, ...options.env },
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(options.keepStdinOpen ? { keepStdinOpen: true } : {}),
    });
    result.catch(() => undefined);
    const out = collect(child);
    let hostPid: number | undefined;
    // nsenter forks into the pid namespace; its child execs the command.
    const started = await waitFor(() => {
      hostPid = childPids(child.pid as number).find((p) => {
        const a = argvOf(p);
        return a[0] === cmd[0] && a.length === cmd.length;
      });
      return hostPid !== undefined || child.exitCode !== null;
    }, 10_000, 2);
    if (!started || hostPid === undefined) {
      const r = await result.catch(() => undefined);
      throw new Error(`${cmd.join(' ')} did not start in ${this.name}: ${r?.stderr ?? out.stderr()}`);
    }
    const pid = hostPid;
    this.moveToBases([child.pid as number]);
    const handle: ContainerProcess = {
      hostPid: pid,
      nsPid: nsPids(pid).at(-1) ?? -1,
      child,
      stdout: out.stdout,
      stderr: out.stderr,
      result,
      stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
        this.processes.delete(handle);
        if (child.exitCode !== null || child.signalCode !== null) return;
        try {
          process.kill(pid, signal);
        } catch {
          // gone already
        }
        if (await waitExit(child, 3000)) return;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
        await stopChild(child, 'SIGKILL', 2000);
      },
    };
    this.processes.add(handle);
    return handle;
  }

  async startProxy(args: readonly string[] = [], options: InContainerOptions = {}): Promise<ContainerProcess> {
    const proxy = await this.spawn([process.execPath, PROXY_MAIN, '--log-level', 'debug', ...args], options);
    const serving = await waitFor(() => proxy.stderr().includes('"msg":"serving"') || proxy.child.exitCode !== null, 10_000, 5);
    if (!serving || proxy.child.exitCode !== null) {
      await proxy.stop();
      throw new Error(`cgproxy did not start in ${this.name}: ${proxy.stderr().trim()}`);
    }
    return proxy;
  }

  hostPidOf(nsPid: number): number | undefined {
    const pidNs = nsInode(this.initPid, 'pid');
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (nsPids(pid).at(-1) === nsPid && nsInode(pid, 'pid') === pidNs) return pid;
    }
    return undefined;
  }

  hostPath(p: string): string {
    return `/proc/${this.initPid}/root${p}`;
  }

  stop(): Promise<void> {
    this.stopped ??= this.teardown();
    return this.stopped;
  }

  private async teardown(): Promise<void> {
    await Promise.all([...this.children].map((c) => c.stop()));
    await Promise.all([...this.processes].map((p) => p.stop('SIGKILL')));
    const init = this.init;
    if (init) {
      init.child.stdin?.end();
      if (!(await waitExit(init.child, 3000))) {
        // The init is ours; with it the kernel ends everything in its pid namespace.
        if (this.initPid > 0) {
          try {
            process.kill(this.initPid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
        await stopChild(init.child, 'SIGKILL', 3000);
      }
    }
    (this.spec.parent as ContainerImpl | undefined)?.children.delete(this);
    fs.rmSync(path.join(this.env.dir, `stage-${this.name}`), { recursive: true, force: true });
  }
}

/** Builds and starts a container; stop it (or its parent) before the test daemon. */
export async function startContainer(env: TestDaemon, spec: ContainerSpec): Promise<Container> {
  const c = new ContainerImpl(env, spec);
  (spec.parent as ContainerImpl | undefined)?.children.add(c);
  await c.start();
  return c;
}

/** The stdout of a command that must have succeeded; otherwise throws with its stderr. */
export function okOutput(r: RunResult, what = 'command'): string {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${String(r.code ?? r.signal)}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The D-Bus error name cgm printed at the end of its failure line, e.g. 'org.freedesktop.DBus.Error.AccessDenied'. */
export function cgmErrorName(r: RunResult): string | undefined {
  return /\(([A-Za-z0-9_.]+)\)\s*$/.exec(r.stderr)?.[1];
}
