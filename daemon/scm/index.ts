// The daemon's …Scm methods (reference §6): the D-Bus call is answered at once with an
// empty reply; the requestor's (and victim's) credentials then arrive over the passed
// datagram socket, translated by the kernel, and the result goes back the same way.
// The operations are the plain methods' own, with p = the connection's peer.
import { setPassCred, socketKind, closeFd, type Ucred } from '../../addon';
import { CgmError } from '../errors';
import type { CallContext, MethodHandler } from '../dbus/server';
import type { ServerConnection } from '../dbus/connection';
import { hasOneCredential } from '../dbus/interface';
import type { Runtime } from '../runtime';
import { Caller } from '../requests/caller';
import type { Operation } from '../requests';
import { allScmForms, credentialCount, encodeResult, failureDatagrams, plainArgsFrom, type ScmForm } from './shapes';
import { admitScmSocket, ScmConversation, type ConversationSpec, type ScmOutcome } from './conversation';
import type { OwnSocket } from './own-sockets';
import * as R from './results';

type Datagram = R.Datagram;

const pendingByConnection = new WeakMap<ServerConnection, number>();
// Each pending request holds an fd and a timer until its peer answers or times out; a uid
// with many connections must not multiply the per-connection cap into an fd exhaustion.
const pendingByUid = new Map<number, number>();

/** SPEC §2.4: only a datagram unix socket is accepted as the Scm channel; never one of our own. */
function acceptScmFd(fd: number): OwnSocket {
  let kind: ReturnType<typeof socketKind>;
  try {
    kind = socketKind(fd);
  } catch {
    throw new CgmError('InvalidArgs', 'sockfd is not a socket (an Scm call needs a datagram unix socket)');
  }
  if (kind.domain !== 'unix' || kind.type !== 'dgram') {
    throw new CgmError('InvalidArgs', `sockfd is a ${kind.domain} ${kind.type} socket; an Scm call needs a datagram unix socket`);
  }
  try {
    setPassCred(fd, true);
  } catch (err) {
    throw new CgmError('InvalidArgs', `Failed to set passcred: ${(err as Error).message}`);
  }
  return admitScmSocket(fd);
}

export interface ScmServerOptions {
  timeoutMs: number;
  maxPendingPerConnection: number;
  /** over all connections of one peer uid (default: unlimited) */
  maxPendingPerUid?: number;
}

/**
 * The server side of an Scm method, whatever answers it: the daemon runs the request,
 * cgproxy forwards it. `run` gets r (and v) from the socket and p, the connection's peer.
 */
export type ScmRun = (requestor: Ucred, proxy: Ucred, victim: Ucred | undefined, args: unknown[], extra: Ucred[]) => Datagram[] | Promise<Datagram[]>;

/** What the transport needs to know of an Scm method: how many credentials follow r's, and its failure encoding. */
export interface ScmTransportShape {
  needsVictim: boolean;
  /** the count of credentials after r's, from the call's arguments (without the fd); overrides needsVictim */
  credentials?(args: readonly unknown[]): number;
  failure(): Datagram[];
}

/** The transport shape of a table form. */
export function transportShape(form: ScmForm): ScmTransportShape {
  const { shape } = form;
  return {
    needsVictim: hasOneCredential(shape),
    credentials: (args) => credentialCount(shape, args),
    failure: () => failureDatagrams(shape.result),
  };
}

export function scmServerHandler(options: ScmServerOptions, shape: ScmTransportShape, run: ScmRun): MethodHandler {
  return (ctx: CallContext, args: unknown[]) => {
    const fd = ctx.takeFd(args[args.length - 1] as number);
    let own: OwnSocket | undefined;
    const opArgs = args.slice(0, -1);
    let credentials: number | undefined;
    try {
      try {
        credentials = shape.credentials?.(opArgs);
      } catch (err) {
        throw new CgmError('InvalidArgs', (err as Error).message);
      }
      const pending = pendingByConnection.get(ctx.connection) ?? 0;
      if (pending >= options.maxPendingPerConnection) {
        throw new CgmError('LimitsExceeded', `too many Scm requests waiting on this connection (limit ${options.maxPendingPerConnection})`);
      }
      const uidPending = pendingByUid.get(ctx.peer.uid) ?? 0;
      if (options.maxPendingPerUid !== undefined && uidPending >= options.maxPendingPerUid) {
        throw new CgmError('LimitsExceeded', `too many Scm requests waiting from uid ${ctx.peer.uid} (limit ${options.maxPendingPerUid})`);
      }
      own = acceptScmFd(fd);
      pendingByConnection.set(ctx.connection, pending + 1);
      pendingByUid.set(ctx.peer.uid, uidPending + 1);
    } catch (err) {
      own?.release();
      closeFd(fd);
      throw err;
    }
    const done = ctx.defer();
    const peer = ctx.peer;
    const failed = (error: unknown): ScmOutcome => {
      const named = error instanceof CgmError ? error : new CgmError('Failed', 'internal error (see the daemon log)');
      return { datagrams: [...shape.failure(), R.errorDetail(named.dbusName, named.message)], error };
    };
    const release = (): void => {
      pendingByConnection.set(ctx.connection, (pendingByConnection.get(ctx.connection) ?? 1) - 1);
      const left = (pendingByUid.get(peer.uid) ?? 1) - 1;
      if (left <= 0) pendingByUid.delete(peer.uid);
      else pendingByUid.set(peer.uid, left);
    };
    const spec: ConversationSpec = {
      needsVictim: shape.needsVictim,
      ...(credentials !== undefined ? { credentials } : {}),
      timeoutMs: options.timeoutMs,
      failure: (error) => failed(error).datagrams,
      refused: (cred, from) => {
        ctx.fields.reflected = { ...cred, from: from?.toString('latin1').replace(/\0/g, '@') };
      },
      run: (r, v, extra) => {
        ctx.fields.requestor = r;
        ctx.fields.proxy = peer;
        if (v && shape.needsVictim) ctx.fields.victim = v;
        else if (extra.length > 0) {
          // SetupScm may pass up to 1024: the log line names the first few and the count.
          ctx.fields.credentials = extra.slice(0, 8);
          ctx.fields.credentialCount = extra.length;
        }
        try {
          const result = run(r, peer, v, opArgs, extra);
          if (result instanceof Promise) return result.then((datagrams) => ({ datagrams }), failed);
          return { datagrams: result };
        } catch (error) {
          return failed(error);
        }
      },
      done: (error) => {
        release();
        done(error);
      },
    };
    try {
      new ScmConversation(fd, own, spec);
    } catch (err) {
      // openSocket failed (it closed the fd): the D-Bus call fails instead.
      release();
      done(err);
      throw new CgmError('Failed', `cannot watch the Scm socket: ${(err as Error).message}`);
    }
    return [];
  };
}

/**
 * A handler for every Scm form of the table whose plain twin has an operation: the
 * credentials become the plain arguments, the operation runs for r with p the peer, and
 * its reply values are written in the form's result encoding.
 */
export function createScmHandlers(rt: Runtime, operations: ReadonlyMap<string, Operation>): Array<[string, MethodHandler]> {
  const options = { timeoutMs: rt.options.scmTimeoutMs, maxPendingPerConnection: rt.options.maxPendingScm, maxPendingPerUid: rt.options.maxPendingScmPerUid };
  return allScmForms().flatMap((form): Array<[string, MethodHandler]> => {
    const op = operations.get(form.plain.name);
    if (!op) return [];
    return [
      [
        form.spec.name,
        scmServerHandler(options, transportShape(form), (r, p, _v, args, extra) => {
          const values = op(rt, new Caller(rt, r, p), plainArgsFrom(form, args, extra));
          return values instanceof Promise ? values.then((v) => encodeResult(form, v)) : encodeResult(form, values);
        }),
      ],
    ];
  });
}

