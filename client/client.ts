// The typed, promise-based cgmanager client: one async function per plain method of the
// interface table (daemon/dbus/interface.ts), argument checks before anything is sent,
// and results in the exact D-Bus types. One connection carries any number of
// concurrent calls.
import { API_VERSION, METHODS_BY_NAME, type MethodSpec } from '../daemon/dbus/interface';
import { defaultSocketPath } from '../daemon/socket-path';
import { assertArgs } from './arguments';
import { PeerConnection } from './connection';
import { readApiVersion } from './api-version';
import { selectRoute, type CallRoute, type RoutePreference } from './route';
import { CgroupWatch, WatchSet, type WatchOptions } from './watch';

export interface ConnectOptions {
  /** Socket path. Default: $CGMANAGER_SOCKET, else the daemon's default for this host. */
  socket?: string;
  /** ms to wait for authentication and for each reply; 0 waits forever. Default 25000 (libdbus's). */
  timeoutMs?: number;
  /**
   * 'auto' (default): the …Scm variants when this process is not in the daemon's pid or
   * user namespace (the kernel then translates our pids and uids), plain calls otherwise.
   * 'plain' or 'scm' force one way.
   */
  route?: RoutePreference;
  /** gives up connecting when it fires (code 'Aborted') */
  signal?: AbortSignal;
}

/** Per-call options, the last argument of every method. */
export interface CallOptions {
  /** ms to wait for this reply instead of the client's timeoutMs; 0 waits forever (code 'NoReply' when it passes) */
  timeoutMs?: number;
  /** fails the call with code 'Aborted' when it fires; the daemon may still carry it out */
  signal?: AbortSignal;
}

/** One file of a cgroup as ListKeys reports it (D-Bus `(suuu)`). */
export interface KeyInfo {
  name: string;
  /** owner in the caller's user namespace; 4294967295 when unmapped there */
  uid: number;
  gid: number;
  /** the full st_mode including the file-type bits, e.g. 0o100644 */
  mode: number;
}

/** What Setup is to do besides creating the cgroup. */
export interface SetupSpec {
  /** hand the cgroup to this uid:gid (as Chown); omitted: no chown */
  owner?: { uid: number; gid: number };
  /** key → value, in either cgroup version's names (e.g. 'memory.max': '256M') */
  limits?: Record<string, string>;
  /** processes to move in, after the limits */
  pids?: number[];
}

/** Setup's report (D-Bus a{sv}). */
export interface SetupReport {
  /** hierarchies (ListControllers entries) where the cgroup was made */
  created: string[];
  /** hierarchies where it already existed */
  existed: string[];
  /** each requested key → the file(s) written, comma-separated (a translated key names its files) */
  applied: Record<string, string>;
  moved: number[];
}

/** Stats' answer (D-Bus a{sv}); counters as numbers (exact below 2^53). */
export interface CgroupStats {
  'memory.current'?: number;
  'memory.peak'?: number;
  'cpu.usage_usec'?: number;
  'pids.current'?: number;
  populated?: boolean;
  frozen?: boolean;
}

type VariantDict = Array<[string, [string, unknown]]>;

const NO_OWNER = 0xffffffff;

function dictGet(dict: VariantDict, key: string): unknown {
  return dict.find(([k]) => k === key)?.[1][1];
}

export function setupReportFrom(dict: VariantDict): SetupReport {
  return {
    created: (dictGet(dict, 'created') as string[] | undefined) ?? [],
    existed: (dictGet(dict, 'existed') as string[] | undefined) ?? [],
    applied: Object.fromEntries((dictGet(dict, 'applied') as Array<[string, string]> | undefined) ?? []),
    moved: (dictGet(dict, 'moved') as number[] | undefined) ?? [],
  };
}

export function statsFrom(dict: VariantDict): CgroupStats {
  const out: Record<string, number | boolean> = {};
  for (const [key, [, value]] of dict) out[key] = typeof value === 'bigint' ? Number(value) : (value as number | boolean);
  return out as CgroupStats;
}

export const DEFAULT_TIMEOUT_MS = 25_000;

/** Connects to the daemon (or a proxy) and authenticates: one round trip. */
export async function connect(options: ConnectOptions = {}): Promise<CgmanagerClient> {
  const socketPath = options.socket ?? defaultSocketPath();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof socketPath !== 'string' || socketPath === '') throw new TypeError('connect: socket must be a non-empty path');
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0) throw new TypeError(`connect: timeoutMs must be a non-negative integer, got ${String(timeoutMs)}`);
  const connection = await PeerConnection.open({ socketPath, timeoutMs, signal: options.signal });
  const route = options.route ?? 'auto';
  if (route !== 'auto' && route !== 'plain' && route !== 'scm') throw new TypeError(`connect: route must be 'auto', 'plain' or 'scm', got ${String(route)}`);
  return new CgmanagerClient(connection, await selectRoute(connection, route, Math.min(timeoutMs || 5000, 5000)));
}

// Node 20 defines Symbol.asyncDispose (as Symbol.for('nodejs.asyncDispose')); older
// runtimes and other hosts get the same registered symbol, so `await using` works there
// too with a transpiler, and the method below is never keyed by `undefined`.
(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol.for('nodejs.asyncDispose');

function checkCallOptions(method: string, options: CallOptions | undefined): CallOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new TypeError(`${method}: options must be an object`);
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 0)) throw new TypeError(`${method}: timeoutMs must be a non-negative integer, got ${String(timeoutMs)}`);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError(`${method}: signal must be an AbortSignal`);
  return { timeoutMs, signal };
}

function spec(name: string): MethodSpec {
  const found = METHODS_BY_NAME.get(name);
  if (!found || found.scm) throw new Error(`no plain method ${name} in the interface table`);
  return found;
}

function assertBoolean(method: string, name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${method}: ${name} must be a boolean, got ${typeof value}`);
}

export class CgmanagerClient {
  private watchSet: WatchSet | undefined;

  /** @internal use connect() */
  constructor(
    private readonly connection: PeerConnection,
    private readonly routeImpl: CallRoute,
  ) {}

  get socketPath(): string {
    return this.connection.socketPath;
  }

  /** Whether the connection is closed (by close(), destroy() or the daemon). */
  get closed(): boolean {
    return this.connection.isClosed;
  }

  /** 'plain' or 'scm': how calls reach the daemon (see ConnectOptions.route). */
  get route(): 'plain' | 'scm' {
    return this.routeImpl.kind;
  }

  private async invoke(name: string, args: readonly unknown[], options: CallOptions | undefined): Promise<unknown[]> {
    const method = spec(name);
    assertArgs(method, args);
    return this.routeImpl.invoke(method, args, checkCallOptions(name, options));
  }

  /** Ping(junk:i): does nothing; proves the daemon answers. */
  async ping(junk = 0, options?: CallOptions): Promise<void> {
    await this.invoke('Ping', [junk], options);
  }

  /** GetPidCgroup(controller, pid) → `/` or a path relative to the caller's cgroup, without a leading `/`. */
  async getPidCgroup(controller: string, pid: number, options?: CallOptions): Promise<string> {
    const [output] = await this.invoke('GetPidCgroup', [controller, pid], options);
    return output as string;
  }

  /** GetPidCgroupAbs(controller, pid) → `/` or a path with a leading `/` (from the hierarchy root, or the proxy's cgroup). */
  async getPidCgroupAbs(controller: string, pid: number, options?: CallOptions): Promise<string> {
    const [output] = await this.invoke('GetPidCgroupAbs', [controller, pid], options);
    return output as string;
  }

  /**
   * Create(controller, cgroup) → existed:i. Resolves true when the daemon answered 1 (the
   * cgroup already existed, in any of the named hierarchies), false when it answered -1
   * (it was created everywhere, or the cgroup was '').
   */
  async create(controller: string, cgroup: string, options?: CallOptions): Promise<boolean> {
    const [existed] = await this.invoke('Create', [controller, cgroup], options);
    return existed === 1;
  }

  /** Chown(controller, cgroup, uid, gid): hands the directory and its task files to uid:gid (-1 leaves one unchanged). */
  async chown(controller: string, cgroup: string, uid: number, gid: number, options?: CallOptions): Promise<void> {
    await this.invoke('Chown', [controller, cgroup, uid, gid], options);
  }

  /** Chmod(controller, cgroup, file, mode): file '' means the cgroup directory itself. */
  async chmod(controller: string, cgroup: string, file: string, mode: number, options?: CallOptions): Promise<void> {
    await this.invoke('Chmod', [controller, cgroup, file, mode], options);
  }

  /** MovePid(controller, cgroup, pid): cgroup relative to the caller's own. */
  async movePid(controller: string, cgroup: string, pid: number, options?: CallOptions): Promise<void> {
    await this.invoke('MovePid', [controller, cgroup, pid], options);
  }

  /** MovePidAbs(controller, cgroup, pid): cgroup from the hierarchy root (or the proxy's cgroup). */
  async movePidAbs(controller: string, cgroup: string, pid: number, options?: CallOptions): Promise<void> {
    await this.invoke('MovePidAbs', [controller, cgroup, pid], options);
  }

  /** GetValue(controller, cgroup, key) → the file's content without trailing newlines. */
  async getValue(controller: string, cgroup: string, key: string, options?: CallOptions): Promise<string> {
    const [value] = await this.invoke('GetValue', [controller, cgroup, key], options);
    return value as string;
  }

  /** SetValue(controller, cgroup, key, value). */
  async setValue(controller: string, cgroup: string, key: string, value: string, options?: CallOptions): Promise<void> {
    await this.invoke('SetValue', [controller, cgroup, key, value], options);
  }

  /**
   * Remove(controller, cgroup, recursive:i) → existed:i. `recursive` is sent as 1 or 0.
   * Resolves true when the daemon answered 1 (it existed and was removed), false for -1
   * (it did not exist, which is not an error).
   */
  async remove(controller: string, cgroup: string, recursive: boolean, options?: CallOptions): Promise<boolean> {
    assertBoolean('Remove', 'recursive', recursive);
    const [existed] = await this.invoke('Remove', [controller, cgroup, recursive ? 1 : 0], options);
    return existed === 1;
  }

  /** GetTasks(controller, cgroup) → pids, ascending, in the daemon's pid namespace. */
  async getTasks(controller: string, cgroup: string, options?: CallOptions): Promise<number[]> {
    const [pids] = await this.invoke('GetTasks', [controller, cgroup], options);
    return pids as number[];
  }

  /** GetTasksRecursive(controller, cgroup) → pids of the whole subtree, ascending. */
  async getTasksRecursive(controller: string, cgroup: string, options?: CallOptions): Promise<number[]> {
    const [pids] = await this.invoke('GetTasksRecursive', [controller, cgroup], options);
    return pids as number[];
  }

  /** ListChildren(controller, cgroup) → names of the child cgroups (unsorted). */
  async listChildren(controller: string, cgroup: string, options?: CallOptions): Promise<string[]> {
    const [names] = await this.invoke('ListChildren', [controller, cgroup], options);
    return names as string[];
  }

  /** RemoveOnEmpty(controller, cgroup): remove the cgroup once its last task leaves. */
  async removeOnEmpty(controller: string, cgroup: string, options?: CallOptions): Promise<void> {
    await this.invoke('RemoveOnEmpty', [controller, cgroup], options);
  }

  /** Prune(controller, cgroup): remove empty descendants now, the busy ones when they empty. */
  async prune(controller: string, cgroup: string, options?: CallOptions): Promise<void> {
    await this.invoke('Prune', [controller, cgroup], options);
  }

  /** ListControllers() → one entry per hierarchy, e.g. 'cpu,cpuacct', 'name=systemd', 'unified,memory,pids'. */
  async listControllers(options?: CallOptions): Promise<string[]> {
    const [entries] = await this.invoke('ListControllers', [], options);
    return entries as string[];
  }

  /** ListKeys(controller, cgroup) → the files of the cgroup with owner and mode. */
  async listKeys(controller: string, cgroup: string, options?: CallOptions): Promise<KeyInfo[]> {
    const [rows] = await this.invoke('ListKeys', [controller, cgroup], options);
    return (rows as Array<[string, number, number, number]>).map(([name, uid, gid, mode]) => ({ name, uid, gid, mode }));
  }

  /**
   * Setup (cgmanager1, api_version 14): the container's cgroup in one call. In every
   * hierarchy of `controllers` ('all' or a comma list) it creates `cgroup` (relative to the
   * caller's own), hands it to `owner` (omit: no chown), writes `limits` (either version's
   * key names; each goes to the hierarchy its controller prefix names) and moves `pids`.
   * On any failure nothing of it is left and the failing step's error is thrown.
   */
  async setup(controllers: string, cgroup: string, spec: SetupSpec = {}, options?: CallOptions): Promise<SetupReport> {
    if (typeof spec !== 'object' || spec === null) throw new TypeError('Setup: the third argument must be an object ({ owner, limits, pids })');
    const { owner, limits = {}, pids = [] } = spec;
    if (owner !== undefined && (typeof owner !== 'object' || owner === null)) throw new TypeError('Setup: owner must be { uid, gid }');
    if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) throw new TypeError('Setup: limits must be an object of key → value strings');
    const uid = owner ? owner.uid : NO_OWNER;
    const gid = owner ? owner.gid : NO_OWNER;
    const [report] = await this.invoke('Setup', [controllers, cgroup, uid, gid, Object.entries(limits), pids], options);
    return setupReportFrom(report as VariantDict);
  }

  /** Stats (cgmanager1): usage of `cgroup` in v2's names on any layout; absent keys are what the layout lacks. */
  async stats(controllers: string, cgroup: string, options?: CallOptions): Promise<CgroupStats> {
    const [entries] = await this.invoke('Stats', [controllers, cgroup], options);
    return statsFrom(entries as VariantDict);
  }

  /** Freeze (cgmanager1): freezes the subtree (v1 freezer hierarchy, or v2); resolves once every task is frozen. */
  async freeze(cgroup: string, options?: CallOptions): Promise<void> {
    await this.invoke('Freeze', [cgroup], options);
  }

  /** Thaw (cgmanager1): the reverse of freeze; resolves once thawed. */
  async thaw(cgroup: string, options?: CallOptions): Promise<void> {
    await this.invoke('Thaw', [cgroup], options);
  }

  /** Kill (cgmanager1): SIGKILLs every task of the subtree (cgroup.kill, or freeze-kill-thaw); resolves once they are gone. */
  async kill(cgroup: string, options?: CallOptions): Promise<void> {
    await this.invoke('Kill', [cgroup], options);
  }

  /** The `api_version` property (Properties.Get), for feature detection. */
  async apiVersion(options?: CallOptions): Promise<number> {
    return readApiVersion(this.connection, checkCallOptions('apiVersion', options));
  }

  /**
   * Watch(cgroup): the cgroup's events ('emptied', 'oom', 'frozen') as they happen, until the
   * loop ends: breaking out (or return, throw, close(), or `options.signal`) unwatches it.
   * The cgroup is relative to the caller's own, as for every method. The daemon is asked at
   * once: `await w.ready` before starting what is to be watched (it rejects with the
   * daemon's error, e.g. AccessDenied or FileNotFound, and so does the loop). A lost
   * connection ends the loop with that error; close() of the client ends it quietly. While
   * a watch runs, the connection keeps the process alive. README "Events" says what fires where.
   *
   *     const w = cgm.watch('c1'); await w.ready; start();
   *     for await (const e of w) if (e.type === 'emptied') break;
   */
  watch(cgroup: string, options: WatchOptions = {}): CgroupWatch {
    if (typeof cgroup !== 'string') throw new TypeError(`watch: cgroup must be a string, got ${typeof cgroup}`);
    if (typeof options !== 'object' || options === null) throw new TypeError('watch: options must be an object');
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('watch: signal must be an AbortSignal');
    this.watchSet ??= new WatchSet(this.connection, this.routeImpl);
    const watches = this.watchSet;
    return new CgroupWatch(this.connection, watches, cgroup, options);
  }

  /** Waits for calls in flight, then closes the connection. Later calls fail with code 'Closed'. */
  close(): Promise<void> {
    return this.connection.close();
  }

  /** `await using cgm = await connect()` closes the client (as close()) when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Closes at once; calls in flight fail with code 'Closed'. */
  destroy(): void {
    this.connection.destroy();
  }
}

/** The api_version this client was written against. */
export const CLIENT_API_VERSION = API_VERSION;
