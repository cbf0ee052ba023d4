// cgproxy's handlers (reference §9.4): every plain call is forwarded to the host daemon
// as its Scm variant with the caller's credentials; Scm calls made to the proxy are
// forwarded only for the connected peer itself (no chained proxying); Ping and
// api_version are answered here, ListControllers is forwarded as it is.
import type { Ucred } from '../addon';
import { CgmError, ERROR_NAMES } from '../daemon/errors';
import type { CallContext, MethodHandler } from '../daemon/dbus/server';
import { ALL_METHODS, OBJECT_PATH, type MethodSpec } from '../daemon/dbus/interface';
import { mayCallPlain } from '../daemon/policy';
import { scmServerHandler, transportShape, type ScmServerOptions } from '../daemon/scm';
import { encodeResult, plainArgsFrom, scmForm, type ScmForm } from '../daemon/scm/shapes';
import * as R from '../daemon/scm/results';
import { namespaceInode } from '../daemon/runtime';
import { CgmanagerError } from '../client/errors';
import { hasScmVariant, invokeAsScm } from '../client/scm-route';
import type { PeerConnection } from '../client/connection';
import type { Upstream } from './upstream';

export interface ForwardOptions extends ScmServerOptions {
  upstream: Upstream;
}

/** A client error from upstream, as the named error our own client should see. */
function asCgmError(err: unknown): CgmError {
  if (err instanceof CgmError) return err;
  if (err instanceof CgmanagerError) {
    const code = err.dbusName ? ERROR_NAMES.get(err.dbusName) : undefined;
    if (code) return new CgmError(code, err.message);
    if (err.code === 'UnixProcessIdUnknown' || err.code === 'AccessDenied') return new CgmError(err.code, err.message);
    if (err.code === 'NoReply') return new CgmError('Timeout', err.message);
    return new CgmError('Unavailable', err.message);
  }
  return new CgmError('Failed', (err as Error)?.message ?? String(err));
}

function sameCred(a: Ucred, b: Ucred): boolean {
  return a.pid === b.pid && a.uid === b.uid && a.gid === b.gid;
}

const self = { pidNs: namespaceInode('self', 'pid'), userNs: namespaceInode('self', 'user') };

/** The front-end's namespace rule, evaluated against the proxy's own namespaces (reference §9.4). */
function assertPlainAllowed(ctx: CallContext): void {
  const pid = ctx.peer.pid;
  const decision = mayCallPlain(ctx.spec.name, {
    get samePidNs() {
      return self.pidNs === undefined || namespaceInode(pid, 'pid') === self.pidNs;
    },
    get sameUserNs() {
      return self.userNs === undefined || namespaceInode(pid, 'user') === self.userNs;
    },
  });
  if (!decision.allow) throw new CgmError('WrongNamespace', decision.reason);
}

/** Methods that change nothing, so that sending one twice is harmless. */
const READ_ONLY: ReadonlySet<string> = new Set(['GetPidCgroup', 'GetPidCgroupAbs', 'GetValue', 'GetTasks', 'GetTasksRecursive', 'ListChildren', 'ListKeys', 'ListControllers', 'Stats']);

/**
 * Runs one upstream call of the plain method `plain`. The upstream connection notices a
 * daemon that leaves as soon as it closes the socket; a call caught in that very moment
 * fails with Disconnected, and a read-only one is sent once more on a fresh connection
 * (a change is not: it may have been carried out).
 */
async function callUpstream(options: ForwardOptions, plain: MethodSpec, run: (connection: PeerConnection) => Promise<unknown[]>): Promise<unknown[]> {
  for (let attempt = 0; ; attempt++) {
    const connection = await options.upstream.get();
    try {
      return await run(connection);
    } catch (err) {
      const lost = err instanceof CgmanagerError && err.code === 'Disconnected' && connection.isClosed;
      if (!lost || attempt > 0 || !READ_ONLY.has(plain.name)) throw asCgmError(err);
    }
  }
}

function forwardPlain(options: ForwardOptions, spec: MethodSpec): MethodHandler {
  return async (ctx, args) => {
    assertPlainAllowed(ctx);
    return callUpstream(options, spec, (connection) => {
      if (!hasScmVariant(spec.name)) {
        return connection.call({ path: OBJECT_PATH, interface: spec.interface, member: spec.name, signature: spec.inSignature, body: args, replySignature: spec.outSignature });
      }
      return invokeAsScm(connection, spec, args, ctx.peer, options.timeoutMs);
    });
  };
}

/** Re-encodes an upstream Scm result (as plain reply values) for our own Scm client. */
export function encodeForScmClient(scmName: string, values: unknown[]): R.Datagram[] {
  const form = scmForm(scmName);
  if (!form) throw new Error(`no Scm shape for ${scmName}`);
  return encodeResult(form, values);
}

function forwardScm(options: ForwardOptions, form: ScmForm): MethodHandler {
  const { plain } = form;
  return scmServerHandler(options, transportShape(form), async (r, p, _v, args, extra) => {
    // Reference §4.7: a proxy speaks only for the process connected to it.
    if (!sameCred(r, p)) throw new CgmError('AccessDenied', 'chained proxying is not supported: cgproxy forwards only for the connected process itself');
    const values = await callUpstream(options, plain, (connection) => invokeAsScm(connection, plain, plainArgsFrom(form, args, extra), r, options.timeoutMs));
    return encodeResult(form, values);
  });
}

/** Watch and Unwatch (and their Scm forms) come with the events work: not forwarded here. */
const NOT_FORWARDED: ReadonlySet<string> = new Set(['Watch', 'WatchScm', 'Unwatch', 'UnwatchScm']);

export function createForwardingHandlers(options: ForwardOptions): Map<string, MethodHandler> {
  const handlers = new Map<string, MethodHandler>();
  handlers.set('Ping', () => []);
  for (const spec of ALL_METHODS) {
    if (spec.name === 'Ping' || NOT_FORWARDED.has(spec.name)) continue;
    if (!spec.scm) {
      handlers.set(spec.name, forwardPlain(options, spec));
      continue;
    }
    const form = scmForm(spec.name);
    if (form) handlers.set(spec.name, forwardScm(options, form));
  }
  return handlers;
}
