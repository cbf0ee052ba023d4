// startTestDaemon: the real daemon on a real socket inside a private cgroup layout, a base cgroup
// per hierarchy for the test, client runners that start processes inside those bases, and cleanup.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Holder } from './namespace-holder';
import { enableControllersForChildren, joinCg, placementFile, procCgroupPath, removeCgroupTree, seedCpusetDir, type HierarchyLabel } from './cgroup-fs';
import { cleanStaleLeftovers, destroyNamedHierarchy, hostCgroupMounts, newRunId, PREFIX } from './leftovers';
import { argvOf, CLIENT_ENV, startCollecting, stopChild, waitFor, type RunResult } from './processes';
import { DAEMON_MAIN, staleBuild } from './requirements';
import { parseToolResult, SELF_PID, toolArgv, toolEnv, type CallArg, type CallResult, type Tool } from './dbus-tools';
import { releaseIntoUserns, setprivArgv, usernsArgv, type UsernsOptions } from './userns';

export interface TestDaemonSpec {
  /** how many private named v1 hierarchies (name=cgmt_…) */
  named?: number;
  /** mount cgroup2 at /sys/fs/cgroup/unified */
  cgroup2?: boolean;
  /** real v1 controllers to re-attach (each must already be a v1 hierarchy on the host) */
  controllers?: readonly string[];
  /** more daemon options, e.g. ['--max-message-size', '65536'], or a function of the layout's names */
  daemonArgs?: readonly string[] | ((layout: { named: readonly HierarchyLabel[] }) => readonly string[]);
  logLevel?: string;
  /** how to start the daemon instead of `node dist/daemon/main.js`, e.g. an installed `cgmanager` bin */
  daemonCommand?: readonly string[];
}

export interface Base {
  label: HierarchyLabel;
  version: 1 | 2;
  /** the base cgroup as seen from the host (through the holder's root) */
  fsPath: string;
  /** the base cgroup's hierarchy path, as in /proc/PID/cgroup */
  cgPath: string;
}

export interface ClientOptions {
  /** run as this host uid (and gid, default the same) via setpriv */
  uid?: number;
  gid?: number;
  /** run as root of a fresh child user namespace with these maps (after uid/gid, if given) */
  userns?: UsernsOptions;
  /**
   * where the process starts: a cgroup relative to the bases ('' = the bases themselves, the
   * default), per hierarchy if a record (missing labels: the base), or false to stay in the
   * test's own cgroups.
   */
  at?: string | Readonly<Record<string, string>> | false;
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface LongLived {
  pid: number;
  child: ChildProcess;
  result: Promise<RunResult>;
  stop(): Promise<void>;
}

export interface TestDaemon {
  readonly socket: string;
  readonly dir: string;
  readonly logFile: string;
  readonly holderPid: number;
  readonly daemonPid: number;
  /**
   * the base cgroups' own name. The test process itself sits in the parent of every base, so a
   * Create(`${baseName}/x`) from the test process (e.g. a RawClient) lands in the bases too.
   */
  readonly baseName: string;
  /** every hierarchy label of the layout: the named ones, then the controllers, then 'unified' */
  readonly labels: readonly HierarchyLabel[];
  /** 'name=cgmt_…' labels of the private named hierarchies */
  readonly named: readonly HierarchyLabel[];
  /** the real v1 controllers of the layout (those the host had) */
  readonly controllers: readonly HierarchyLabel[];
  /** a v1 hierarchy to use where any will do: the first real controller, else the first named one */
  readonly primaryV1: HierarchyLabel;
  readonly bases: ReadonlyMap<HierarchyLabel, Base>;
  /** host path of cgroup `rel` below the base of `label` (and of `file` in it) */
  fsPath(label: HierarchyLabel, rel?: string, file?: string): string;
  /** hierarchy path of cgroup `rel` below the base of `label` */
  cgPath(label: HierarchyLabel, rel?: string): string;
  /** host path of a hierarchy-absolute cgroup path */
  absFsPath(label: HierarchyLabel, cg: string, file?: string): string;
  /** what the kernel says about `pid` in `label` (/proc/PID/cgroup) */
  cgroupOf(pid: number, label: HierarchyLabel): string | undefined;
  /** runs a command to completion as a client process */
  run(cmd: readonly string[], options?: ClientOptions): Promise<RunResult>;
  /** starts a long-lived client process (e.g. a victim to move); stopped by stop() at the latest */
  spawn(cmd: readonly string[], options?: ClientOptions): Promise<LongLived>;
  /** one method call with a real client tool; `method` is 'Create' or 'org.freedesktop.DBus.Peer.Ping' */
  call(tool: Tool, method: string, signature: string, args: readonly CallArg[], options?: ClientOptions): Promise<CallResult>;
  gdbus(method: string, signature: string, args: readonly CallArg[], options?: ClientOptions): Promise<CallResult>;
  busctl(method: string, signature: string, args: readonly CallArg[], options?: ClientOptions): Promise<CallResult>;
  dbusSend(method: string, signature: string, args: readonly CallArg[], options?: ClientOptions): Promise<CallResult>;
  /** the daemon's JSON log lines so far */
  logLines(): Array<Record<string, unknown>>;
  /** SIGTERMs the daemon and waits for it; what it exited with */
  stopDaemon(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** starts the daemon again on the same socket (after stopDaemon) */
  restartDaemon(): Promise<void>;
  /** runs another daemon process in the same namespace to completion (e.g. one that must refuse to start) */
  runOtherDaemon(args: readonly string[], timeoutMs?: number): Promise<RunResult>;
  /** stops the daemon and everything else, removes every cgroup and mount; idempotent */
  stop(): Promise<void>;
}

// Places the shell in each cgroup.procs given, then replaces @SELF@ in the remaining arguments
// with its pid (which the final command keeps, since everything after is exec'd).
const WRAPPER = [
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done',
  'm=$#',
  `while [ "$m" -gt 0 ]; do a=$1; shift; case $a in *${SELF_PID}*) a="\${a%%${SELF_PID}*}$$\${a#*${SELF_PID}}";; esac; set -- "$@" "$a"; m=$((m-1)); done`,
  'exec "$@"',
].join('\n');

const NO_DIST_HINT = 'run `npx tsc -p tsconfig.json` first';

export async function startTestDaemon(spec: TestDaemonSpec = {}): Promise<TestDaemon> {
  const stale = staleBuild();
  if (stale !== undefined) throw new Error(`dist is older than ${stale}: ${NO_DIST_HINT}`);
  await cleanStaleLeftovers();
  const runId = newRunId();
  const dir = path.join(os.tmpdir(), `${PREFIX}-${runId}`);
  fs.mkdirSync(dir, { mode: 0o755 });
  fs.chmodSync(dir, 0o755); // other uids must reach the socket
  const env = new Env(dir, runId, spec);
  try {
    await env.start();
  } catch (err) {
    await env.stop().catch(() => undefined); // the next run's stale cleanup gets what this misses
    throw err;
  }
  return env;
}

/** A base of a real hierarchy as reached through the host's own mount of it. */
function hostPathOf(b: Base): string | undefined {
  if (b.label.startsWith('name=')) return undefined;
  const m = hostCgroupMounts().find((x) => x.label === b.label || x.controllers.includes(b.label));
  return m && path.join(m.mountPoint, b.cgPath);
}

class Env implements TestDaemon {
  readonly socket: string;
  readonly logFile: string;
  readonly baseName: string;
  readonly namedNames: string[];
  private holder: Holder | undefined;
  private daemon: ChildProcess | undefined;
  private daemonOutput: Promise<RunResult> | undefined;
  private readonly longLived = new Set<LongLived>();
  private readonly baseMap = new Map<HierarchyLabel, Base>();
  private stopped: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    runId: string,
    private readonly spec: TestDaemonSpec,
  ) {
    this.socket = path.join(dir, 'sock');
    this.logFile = path.join(dir, 'daemon.log');
    this.baseName = `${PREFIX}-${runId}`;
    this.namedNames = Array.from({ length: spec.named ?? 0 }, (_, i) => `${PREFIX}_${runId.replace('-', '_')}_${i}`);
  }

  get holderPid(): number {
    return this.holder?.pid ?? -1;
  }

  get daemonPid(): number {
    return this.daemon?.pid ?? -1;
  }

  get labels(): HierarchyLabel[] {
    return [...this.baseMap.keys()];
  }

  get named(): HierarchyLabel[] {
    return this.namedNames.map((n) => `name=${n}`);
  }

  get controllers(): HierarchyLabel[] {
    return this.labels.filter((l) => l !== 'unified' && !l.startsWith('name='));
  }

  get primaryV1(): HierarchyLabel {
    const v1 = this.controllers[0] ?? this.named[0];
    if (v1 === undefined) throw new Error('this layout has no v1 hierarchy');
    return v1;
  }

  get bases(): ReadonlyMap<HierarchyLabel, Base> {
    return this.baseMap;
  }

  async start(): Promise<void> {
    this.holder = await Holder.start({
      named: this.namedNames,
      cgroup2: this.spec.cgroup2 ?? false,
      controllers: this.spec.controllers ?? [],
      marker: this.dir,
    });
    const made = new Set<string>();
    for (const h of this.holder.hierarchies) {
      // Named hierarchies are new: everyone sits at their root. Real ones: below our own cgroup.
      const own = h.label.startsWith('name=') ? '/' : procCgroupPath('self', h.label);
      if (own === undefined) throw new Error(`the test process has no cgroup in ${h.label}`);
      const cgPath = joinCg(own, this.baseName);
      const fsPath = this.holder.hostPath(joinCg(h.mountPoint, cgPath));
      // Co-mounted controllers are one hierarchy under several labels: one base.
      if (!made.has(fsPath)) {
        fs.mkdirSync(fsPath);
        made.add(fsPath);
        if (h.version === 1) seedCpusetDir(fsPath);
        else enableControllersForChildren(fsPath);
      }
      this.baseMap.set(h.label, { label: h.label, version: h.version, fsPath, cgPath });
    }
    await this.startDaemon();
  }

  private daemonArgv(args: readonly string[]): string[] {
    const daemon = this.spec.daemonCommand ?? [process.execPath, DAEMON_MAIN];
    return [...(this.holder as Holder).enterArgv(), ...daemon, ...args];
  }

  private async startDaemon(): Promise<void> {
    const extra = typeof this.spec.daemonArgs === 'function' ? this.spec.daemonArgs({ named: this.named }) : (this.spec.daemonArgs ?? []);
    const argv = this.daemonArgv([
      '--socket', this.socket, '--log-file', this.logFile, '--log-level', this.spec.logLevel ?? 'info', ...extra,
    ]);
    const servingBefore = this.logText().split('"msg":"serving"').length;
    const { child, result } = startCollecting(argv, { env: { PATH: CLIENT_ENV.PATH } });
    this.daemon = child;
    this.daemonOutput = result;
    const ready = await waitFor(() => child.exitCode !== null || this.logText().split('"msg":"serving"').length > servingBefore, 15_000, 10);
    if (!ready || child.exitCode !== null) {
      const out = await Promise.race([result, new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]);
      throw new Error(`daemon did not start: ${out?.stderr.trim() ?? '(still running)'}\n${this.logText()}`);
    }
  }

  async stopDaemon(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.daemon) await stopChild(this.daemon, 'SIGTERM', 5000);
    const r = await this.daemonOutput;
    return { code: r?.code ?? null, signal: r?.signal ?? null };
  }

  restartDaemon(): Promise<void> {
    if (this.daemon && this.daemon.exitCode === null && this.daemon.signalCode === null) throw new Error('the daemon is still running');
    return this.startDaemon();
  }

  runOtherDaemon(args: readonly string[], timeoutMs = 10_000): Promise<RunResult> {
    return startCollecting(this.daemonArgv(args), { env: { PATH: CLIENT_ENV.PATH }, timeoutMs }).result;
  }

  private logText(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  logLines(): Array<Record<string, unknown>> {
    return this.logText()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  private base(label: HierarchyLabel): Base {
    const b = this.baseMap.get(label);
    if (!b) throw new Error(`hierarchy ${label} is not part of this layout (have ${this.labels.join(', ')})`);
    return b;
  }

  fsPath(label: HierarchyLabel, rel = '', file?: string): string {
    const p = path.join(this.base(label).fsPath, rel);
    return file === undefined ? p.replace(/\/$/, '') : path.join(p, file);
  }

  cgPath(label: HierarchyLabel, rel = ''): string {
    return joinCg(this.base(label).cgPath, rel);
  }

  absFsPath(label: HierarchyLabel, cg: string, file?: string): string {
    const holder = this.holder as Holder;
    const p = holder.hostPath(joinCg(holder.mountPointOf(label), cg));
    return file === undefined ? p : path.join(p, file);
  }

  cgroupOf(pid: number, label: HierarchyLabel): string | undefined {
    return procCgroupPath(pid, label);
  }

  /** The cgroup.procs files a client is placed through, per `at`. */
  private placement(at: ClientOptions['at']): string[] {
    if (at === false) return [];
    // One file per hierarchy: labels of co-mounted controllers share one, where a cgroup named
    // for any of them in `at` wins over the base.
    const byBase = new Map<string, string>();
    for (const b of this.baseMap.values()) {
      const named = typeof at === 'string' ? at : at?.[b.label];
      if (named === undefined && byBase.has(b.fsPath)) continue;
      const rel = named ?? '';
      const dir = this.fsPath(b.label, rel);
      if (!fs.existsSync(dir)) throw new Error(`cannot start a client in ${b.label}:${this.cgPath(b.label, rel)}: no such cgroup`);
      byBase.set(b.fsPath, placementFile(dir, b.version));
    }
    return [...byBase.values()];
  }

  private argvFor(cmd: readonly string[], options: ClientOptions): string[] {
    const files = this.placement(options.at);
    const ids = options.uid === undefined ? [] : setprivArgv({ uid: options.uid, gid: options.gid ?? options.uid });
    const ns = options.userns ? usernsArgv(options.userns) : [];
    return ['sh', '-c', WRAPPER, 'sh', String(files.length), ...files, ...ids, ...ns, ...cmd];
  }

  private begin(cmd: readonly string[], options: ClientOptions): { child: ChildProcess; result: Promise<RunResult>; ready: Promise<void> } {
    const userns = options.userns;
    const { child, result } = startCollecting(this.argvFor(cmd, options), {
      env: { ...CLIENT_ENV, ...options.env },
      timeoutMs: options.timeoutMs ?? 20_000,
      keepStdinOpen: userns !== undefined,
      ...(userns === undefined && options.input !== undefined ? { input: options.input } : {}),
    });
    const ready = userns
      ? releaseIntoUserns(child, userns).then(() => {
          if (options.input !== undefined) child.stdin?.write(options.input);
          child.stdin?.end();
        })
      : Promise.resolve();
    return { child, result, ready };
  }

  async run(cmd: readonly string[], options: ClientOptions = {}): Promise<RunResult> {
    const { child, result, ready } = this.begin(cmd, options);
    try {
      await ready;
    } catch (err) {
      child.kill('SIGKILL');
      await result.catch(() => undefined);
      throw err;
    }
    return result;
  }

  async spawn(cmd: readonly string[], options: ClientOptions = {}): Promise<LongLived> {
    const { child, result, ready } = this.begin(cmd, { timeoutMs: 600_000, ...options });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`cannot start ${cmd.join(' ')}`);
    const handle: LongLived = {
      pid,
      child,
      result,
      stop: async () => {
        await stopChild(child, 'SIGKILL', 2000);
        this.longLived.delete(handle);
      },
    };
    this.longLived.add(handle);
    result.catch(() => undefined);
    await ready;
    // Placed once the wrappers have exec'd the real command (same argv[0] and argument count).
    const isCommand = (argv: string[]): boolean => argv[0] === cmd[0] && argv.length === cmd.length;
    const started = await waitFor(() => isCommand(argvOf(pid)) || child.exitCode !== null, 5000, 2);
    if (!started || child.exitCode !== null) {
      const r = await result.catch(() => undefined);
      throw new Error(`${cmd.join(' ')} did not start: ${r?.stderr ?? ''}`);
    }
    return handle;
  }

  async call(tool: Tool, method: string, signature: string, args: readonly CallArg[], options: ClientOptions = {}): Promise<CallResult> {
    const r = await this.run(toolArgv(tool, this.socket, method, signature, args), { ...options, env: { ...toolEnv(tool), ...options.env } });
    return parseToolResult(tool, r);
  }

  gdbus(method: string, signature: string, args: readonly CallArg[], options?: ClientOptions): Promise<CallResult> {
    return this.call('gdbus', method, signature, args, options);
  }

  busctl(method: string, signature: string, args: readonly CallArg[], options?: ClientOptions): Promise<CallResult> {
    return this.call('busctl', method, signature, args, options);
  }

  dbusSend(method: string, signature: string, args: readonly CallArg[], options?: ClientOptions): Promise<CallResult> {
    return this.call('dbus-send', method, signature, args, options);
  }

  stop(): Promise<void> {
    this.stopped ??= this.teardown();
    return this.stopped;
  }

  private async teardown(): Promise<void> {
    const problems: string[] = [];
    await Promise.all([...this.longLived].map((l) => l.stop()));
    if (this.daemon) await stopChild(this.daemon, 'SIGTERM', 5000);
    await this.daemonOutput?.catch(() => undefined);
    const removed = new Set<string>();
    for (const b of this.baseMap.values()) {
      // Through the holder while it lives; else, for real hierarchies, through the host's mounts
      // (named ones are emptied by destroyNamedHierarchy below). Co-mounted labels share a base.
      const dir = this.holder?.alive ? b.fsPath : hostPathOf(b);
      if (dir === undefined || removed.has(dir)) continue;
      removed.add(dir);
      const left = await removeCgroupTree(dir);
      if (left.length > 0) problems.push(`could not remove ${left.join(', ')}`);
    }
    await this.holder?.stop();
    for (const name of this.namedNames) {
      if (!(await destroyNamedHierarchy(name, this.dir))) problems.push(`named hierarchy ${name} is still there`);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`cleanup incomplete: ${problems.join('; ')}`);
  }
}

