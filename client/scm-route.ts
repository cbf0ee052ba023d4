// Calls a plain method through its …Scm variant (reference §6): the plain arguments
// that name a pid or a uid/gid travel as SCM_CREDENTIALS instead, so the kernel
// translates them across pid and user namespaces. Used by the client when it is not in
// the daemon's namespaces, and by cgproxy for every forwarded call.
import type { Ucred } from '../addon';
import type { RouteCallOptions } from './route';
import { OBJECT_PATH, type MethodSpec } from '../daemon/dbus/interface';
import { credentialsFrom, replyForCaller, scmArgsFrom, scmFormOfPlain } from '../daemon/scm/shapes';
import type { PeerConnection } from './connection';
import { readApiVersion } from './api-version';
import { CgmanagerError, codeForDBusName } from './errors';
import type { CallRoute } from './route';
import { runScmExchange, ScmFailure, ScmTimeout, type ScmValue } from './scm-call';

/** The plain method's reply values from a decoded Scm result. */
function replyValues(value: ScmValue): unknown[] {
  switch (value.kind) {
    case 'status':
      return [];
    case 'existed':
      return [value.existed];
    case 'string':
      return [value.value];
    case 'tasks':
      return [value.pids];
    case 'names':
      return [value.names];
    case 'keys':
      return [value.keys.map((k) => [k.name, k.uid, k.gid, k.mode])];
    case 'body':
      return value.values;
  }
}

/** Whether a plain method has an Scm form in the table (Ping, ListControllers and Watch do not). */
export function hasScmVariant(method: string): boolean {
  return scmFormOfPlain(method) !== undefined;
}

/** This process's own credentials, the default requestor. */
export function ownCredentials(): Ucred {
  return { pid: process.pid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
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
  const form = scmFormOfPlain(plain.name);
  if (!form) throw new Error(`${plain.name} has no Scm variant`);
  const { spec, shape } = form;
  const socketPath = connection.socketPath;
  // A credential always names both ids: chown(2)'s -1 ("leave unchanged") has no Scm form.
  for (const src of shape.credentials) {
    if ('owner' in src && !src.optional && ((args[src.owner[0]] as number) < 0 || (args[src.owner[1]] as number) < 0)) {
      throw new CgmanagerError('InvalidArgs', `${plain.name} through an Scm call cannot leave the uid or gid unchanged (-1): name both`, { method: spec.name });
    }
  }
  const body = [...scmArgsFrom(shape, args), 0];
  let value: ScmValue;
  try {
    value = await runScmExchange({
      method: spec.name,
      requestor,
      credentials: credentialsFrom(shape, args, requestor, process.pid),
      timeoutMs,
      sendCall: (fd) =>
        connection.call({ path: OBJECT_PATH, interface: spec.interface, member: spec.name, signature: spec.inSignature, body, replySignature: '', fds: [fd] }),
      peerApiVersion: () => readApiVersion(connection, { timeoutMs }),
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
  return replyForCaller(shape, args, replyValues(value));
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
