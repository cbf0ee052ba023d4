// The daemon's …Scm methods (reference §6): the D-Bus call is answered at once with an
// empty reply; the requestor's (and victim's) credentials then arrive over the passed
// datagram socket, translated by the kernel, and the result goes back the same way.
// The operations are the plain methods' own, with p = the connection's peer.
import { setPassCred, socketKind, closeFd, type Ucred } from '../../addon';
import { CgmError } from '../errors';
import type { CallContext, MethodHandler } from '../dbus/server';
import type { ServerConnection } from '../dbus/connection';
import type { Runtime } from '../runtime';
import { Caller } from '../requests/caller';
import { createFair } from '../requests/create';
import { chmod, chown } from '../requests/ownership';
import { movePid } from '../requests/move-pid';
import { getPidCgroup } from '../requests/get-pid-cgroup';
import { getValue, setValue } from '../requests/values';
import { remove } from '../requests/remove';
import { getTasks, getTasksRecursive, listChildren, listKeys } from '../requests/listing';
import { prune, removeOnEmpty } from '../requests/auto-removal';
import { admitScmSocket, ScmConversation, type ConversationSpec, type ScmOutcome } from './conversation';
import type { OwnSocket } from './own-sockets';
import * as R from './results';

type Datagram = R.Datagram;

interface ScmMethod {
  /** a second credential follows the requestor's: the victim pid, or Chown's uid/gid */
  needsVictim: boolean;
  /** the operation; `args` are the D-Bus arguments without the fd */
  run(rt: Runtime, caller: Caller, args: unknown[], victim: Ucred | undefined): Datagram[] | Promise<Datagram[]>;
  failure(): Datagram[];
}

const s = (v: unknown): string => v as string;
const n = (v: unknown): number => v as number;
const victimOf = (v: Ucred | undefined): Ucred => v as Ucred;
/** R.ok(), once a settling operation (freeze, kill) has finished. */
const okWhenDone = (done: void | Promise<void>): Datagram[] | Promise<Datagram[]> => (done instanceof Promise ? done.then(() => R.ok()) : R.ok());

const SCM_METHODS: ReadonlyMap<string, ScmMethod> = new Map<string, ScmMethod>([
  ['GetPidCgroupScm', { needsVictim: true, failure: R.emptyDatagram, run: (rt, c, [ctl], v) => R.text(getPidCgroup(rt, c, s(ctl), victimOf(v).pid, false)) }],
  ['GetPidCgroupAbsScm', { needsVictim: true, failure: R.emptyDatagram, run: (rt, c, [ctl], v) => R.text(getPidCgroup(rt, c, s(ctl), victimOf(v).pid, true)) }],
  ['CreateScm', { needsVictim: false, failure: R.failed, run: async (rt, c, [ctl, cg]) => R.existedByte(await createFair(rt, c, s(ctl), s(cg))) }],
  // The uid and gid to chown to travel as the second credential, mapped by the kernel.
  ['ChownScm', { needsVictim: true, failure: R.failed, run: (rt, c, [ctl, cg], v) => (chown(rt, c, s(ctl), s(cg), victimOf(v).uid, victimOf(v).gid), R.ok()) }],
  ['ChmodScm', { needsVictim: false, failure: R.failed, run: (rt, c, [ctl, cg, file, mode]) => (chmod(rt, c, s(ctl), s(cg), s(file), n(mode)), R.ok()) }],
  ['MovePidScm', { needsVictim: true, failure: R.failed, run: (rt, c, [ctl, cg], v) => (movePid(rt, c, s(ctl), s(cg), victimOf(v).pid, false), R.ok()) }],
  ['MovePidAbsScm', { needsVictim: true, failure: R.failed, run: (rt, c, [ctl, cg], v) => (movePid(rt, c, s(ctl), s(cg), victimOf(v).pid, true), R.ok()) }],
  ['GetValueScm', { needsVictim: false, failure: R.emptyDatagram, run: (rt, c, [ctl, cg, key]) => R.text(getValue(rt, c, s(ctl), s(cg), s(key))) }],
  ['SetValueScm', { needsVictim: false, failure: R.failed, run: (rt, c, [ctl, cg, key, value]) => okWhenDone(setValue(rt, c, s(ctl), s(cg), s(key), s(value))) }],
  ['RemoveScm', { needsVictim: false, failure: R.failed, run: async (rt, c, [ctl, cg, recursive]) => R.existedByte(await remove(rt, c, s(ctl), s(cg), n(recursive))) }],
  ['GetTasksScm', { needsVictim: false, failure: R.countFailure, run: (rt, c, [ctl, cg]) => R.tasksPayload(getTasks(rt, c, s(ctl), s(cg))) }],
  ['GetTasksRecursiveScm', { needsVictim: false, failure: R.countFailure, run: async (rt, c, [ctl, cg]) => R.tasksPayload(await getTasksRecursive(rt, c, s(ctl), s(cg))) }],
  ['ListChildrenScm', { needsVictim: false, failure: R.countFailure, run: async (rt, c, [ctl, cg]) => R.childrenPayload(await listChildren(rt, c, s(ctl), s(cg))) }],
  ['RemoveOnEmptyScm', { needsVictim: false, failure: R.failed, run: (rt, c, [ctl, cg]) => (removeOnEmpty(rt, c, s(ctl), s(cg)), R.ok()) }],
  ['PruneScm', { needsVictim: false, failure: R.failed, run: async (rt, c, [ctl, cg]) => (await prune(rt, c, s(ctl), s(cg)), R.ok()) }],
  ['ListKeysScm', { needsVictim: false, failure: R.countFailure, run: (rt, c, [ctl, cg]) => R.keysPayload(listKeys(rt, c, s(ctl), s(cg))) }],
]);

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
export type ScmRun = (requestor: Ucred, proxy: Ucred, victim: Ucred | undefined, args: unknown[]) => Datagram[] | Promise<Datagram[]>;

export function scmServerHandler(options: ScmServerOptions, shape: { needsVictim: boolean; failure(): Datagram[] }, run: ScmRun): MethodHandler {
  return (ctx: CallContext, args: unknown[]) => {
    const fd = ctx.takeFd(args[args.length - 1] as number);
    let own: OwnSocket | undefined;
    try {
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
    const opArgs = args.slice(0, -1);
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
      timeoutMs: options.timeoutMs,
      failure: (error) => failed(error).datagrams,
      refused: (cred, from) => {
        ctx.fields.reflected = { ...cred, from: from?.toString('latin1').replace(/\0/g, '@') };
      },
      run: (r, v) => {
        ctx.fields.requestor = r;
        ctx.fields.proxy = peer;
        if (v && shape.needsVictim) ctx.fields.victim = v;
        try {
          const result = run(r, peer, v, opArgs);
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

/** The shape of each Scm method: whether a victim credential follows, and its failure encoding. */
export const SCM_SHAPES: ReadonlyMap<string, { needsVictim: boolean; failure(): Datagram[] }> = new Map(
  [...SCM_METHODS].map(([name, m]) => [name, { needsVictim: m.needsVictim, failure: m.failure }]),
);

export function createScmHandlers(rt: Runtime): Array<[string, MethodHandler]> {
  const options = { timeoutMs: rt.options.scmTimeoutMs, maxPendingPerConnection: rt.options.maxPendingScm, maxPendingPerUid: rt.options.maxPendingScmPerUid };
  return [...SCM_METHODS].map(([name, method]) => [
    name,
    scmServerHandler(options, method, (r, p, v, args) => method.run(rt, new Caller(rt, r, p), args, v)),
  ]);
}

