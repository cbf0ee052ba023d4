// Calls a plain method through its …Scm variant (reference §6): the plain arguments
// that name a pid or a uid/gid travel as SCM_CREDENTIALS instead, so the kernel
// translates them across pid and user namespaces. Used by the client when it is not in
// the daemon's namespaces, and by cgproxy for every forwarded call.
import type { Ucred } from '../addon';
import type { RouteCallOptions } from './route';
import { INTERFACE_NAME, METHODS_BY_NAME, OBJECT_PATH, type MethodSpec } from '../daemon/dbus/interface';
import type { PeerConnection } from './connection';
import { CgmanagerError, codeForDBusName } from './errors';
import type { CallRoute } from './route';
import { runScmExchange, ScmFailure, ScmTimeout, type ScmValue } from './scm-call';

interface ScmShape {
  /** indexes of the plain arguments that the Scm method keeps (the fd is appended) */
  keep: readonly number[];
  /** the second credential, built from the plain arguments and the requestor's credential */
  victim?: (args: readonly unknown[], requestor: Ucred) => Ucred;
  /** the plain method's reply values */
  reply(value: ScmValue): unknown[];
}

// The daemon uses only the victim's pid. Its uid and gid are the requestor's own, which
// the kernel lets anyone claim (cgproxy sends 0, which a caller that is not root in its
// user namespace may not: the kernel would refuse the whole credential with EPERM).
const pidVictim = (index: number) => (args: readonly unknown[], r: Ucred): Ucred => ({ pid: args[index] as number, uid: r.uid, gid: r.gid });

/** Chown's new owner travels as the victim credential; its pid is ours (ignored by the daemon). */
function chownVictim(args: readonly unknown[]): Ucred {
  const uid = args[2] as number;
  const gid = args[3] as number;
  // A credential always names both ids: chown(2)'s -1 ("leave unchanged") has no Scm form.
  if (uid < 0 || gid < 0) {
    throw new CgmanagerError('InvalidArgs', 'Chown through an Scm call cannot leave the uid or gid unchanged (-1): name both', { method: 'ChownScm' });
  }
  return { pid: process.pid, uid, gid };
}
const none = (): unknown[] => [];
const existed = (v: ScmValue): unknown[] => [v.kind === 'existed' ? v.existed : -1];
const text = (v: ScmValue): unknown[] => [v.kind === 'string' ? v.value : ''];
const pids = (v: ScmValue): unknown[] => [v.kind === 'tasks' ? v.pids : []];

const SHAPES: Readonly<Record<string, ScmShape>> = {
  GetPidCgroup: { keep: [0], victim: pidVictim(1), reply: text },
  GetPidCgroupAbs: { keep: [0], victim: pidVictim(1), reply: text },
  Create: { keep: [0, 1], reply: existed },
  Chown: { keep: [0, 1], victim: chownVictim, reply: none },
  Chmod: { keep: [0, 1, 2, 3], reply: none },
  MovePid: { keep: [0, 1], victim: pidVictim(2), reply: none },
  MovePidAbs: { keep: [0, 1], victim: pidVictim(2), reply: none },
  GetValue: { keep: [0, 1, 2], reply: text },
  SetValue: { keep: [0, 1, 2, 3], reply: none },
  Remove: { keep: [0, 1, 2], reply: existed },
  GetTasks: { keep: [0, 1], reply: pids },
  GetTasksRecursive: { keep: [0, 1], reply: pids },
  ListChildren: { keep: [0, 1], reply: (v) => [v.kind === 'names' ? v.names : []] },
  RemoveOnEmpty: { keep: [0, 1], reply: none },
  Prune: { keep: [0, 1], reply: none },
  ListKeys: { keep: [0, 1], reply: (v) => [v.kind === 'keys' ? v.keys.map((k) => [k.name, k.uid, k.gid, k.mode]) : []] },
};

/** Whether a plain method has an Scm variant (Ping and ListControllers do not). */
export function hasScmVariant(method: string): boolean {
  return method in SHAPES;
}

/** This process's own credentials, the default requestor. */
export function ownCredentials(): Ucred {
  return { pid: process.pid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

function scmSpec(plain: MethodSpec): MethodSpec {
  const found = METHODS_BY_NAME.get(`${plain.name}Scm`);
  if (!found) throw new Error(`no Scm variant of ${plain.name}`);
  return found;
}

function credentialError(err: unknown, method: string, socketPath: string): CgmanagerError | undefined {
  const errno = (err as { errno?: number }).errno;
  // The kernel refuses, at our end, credentials we may not claim or pids we cannot name.
  if (errno === 3) return new CgmanagerError('UnixProcessIdUnknown', `${method}: no such process in this pid namespace`, { method, socketPath, errno: 'ESRCH' });
  if (errno === 1 || errno === 22) return new CgmanagerError('AccessDenied', `${method}: the kernel refused to pass these credentials (errno ${errno})`, { method, socketPath });
  return undefined;
}

/**
 * Runs `plain(args)` as its Scm variant on `connection` for `requestor` and returns the
 * plain method's reply values. Failures are CgmanagerErrors carrying the daemon's error
 * name when it sent one.
 */
export async function invokeAsScm(connection: PeerConnection, plain: MethodSpec, args: readonly unknown[], requestor: Ucred, timeoutMs: number): Promise<unknown[]> {
  const shape = SHAPES[plain.name];
  if (!shape) throw new Error(`${plain.name} has no Scm variant`);
  const spec = scmSpec(plain);
  const body = [...shape.keep.map((i) => args[i]), 0];
  const socketPath = connection.socketPath;
  let value: ScmValue;
  try {
    value = await runScmExchange({
      method: spec.name,
      requestor,
      victim: shape.victim?.(args, requestor),
      timeoutMs,
      sendCall: (fd) =>
        connection.call({ path: OBJECT_PATH, interface: INTERFACE_NAME, member: spec.name, signature: spec.inSignature, body, replySignature: '', fds: [fd] }),
    });
  } catch (err) {
    if (err instanceof CgmanagerError) throw err;
    if (err instanceof ScmFailure) {
      const code = err.errorName ? codeForDBusName(err.errorName) : 'Failed';
      throw new CgmanagerError(code, err.message, { dbusName: err.errorName ?? 'org.freedesktop.DBus.Error.Failed', method: spec.name, socketPath });
    }
    if (err instanceof ScmTimeout) throw new CgmanagerError('NoReply', `${spec.name}: ${err.message}`, { method: spec.name, socketPath });
    throw credentialError(err, spec.name, socketPath) ?? err;
  }
  return shape.reply(value);
}

/** Sends every call that has an Scm variant that way, as this process. */
export class ScmRoute implements CallRoute {
  readonly kind = 'scm' as const;

  constructor(
    private readonly connection: PeerConnection,
    private readonly fallback: CallRoute,
    private readonly timeoutMs: number,
  ) {}

  invoke(spec: MethodSpec, args: readonly unknown[], options: RouteCallOptions = {}): Promise<unknown[]> {
    if (!hasScmVariant(spec.name)) return this.fallback.invoke(spec, args, options);
    const timeoutMs = options.timeoutMs === undefined || options.timeoutMs === 0 ? this.timeoutMs : options.timeoutMs;
    const call = invokeAsScm(this.connection, spec, args, ownCredentials(), timeoutMs);
    return options.signal ? abortable(call, options.signal, spec.name, this.connection.socketPath) : call;
  }
}

/**
 * Rejects with code 'Aborted' when `signal` fires first. The Scm exchange itself runs on
 * to its own end (its socketpair is closed then), as its steps cannot be recalled.
 */
function abortable<T>(call: Promise<T>, signal: AbortSignal, method: string, socketPath: string): Promise<T> {
  const aborted = (): CgmanagerError => new CgmanagerError('Aborted', `${method} to cgmanager at ${socketPath} was aborted`, { method, socketPath });
  if (signal.aborted) {
    call.catch(() => undefined);
    return Promise.reject(aborted());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(aborted());
    signal.addEventListener('abort', onAbort, { once: true });
    call.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
