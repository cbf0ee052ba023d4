// The daemon's handlers for the plain methods: each checks the namespace rule of
// reference §4.6, builds the caller from the connection's credentials (r = p) and runs
// the operation. The Scm variants run the same operations with r and v from the fd.
import { CgmError } from '../errors';
import type { CallContext, MethodHandler } from '../dbus/server';
import { mayCallPlain } from '../policy';
import { namespaceInode, type Runtime } from '../runtime';
import { Caller, sameNamespace } from './caller';
import { createFair } from './create';
import { chmod, chown } from './ownership';
import { movePid } from './move-pid';
import { getPidCgroup } from './get-pid-cgroup';
import { getValue, setValue } from './values';
import { remove } from './remove';
import { getTasks, getTasksRecursive, listChildren, listKeys } from './listing';
import { prune, removeOnEmpty } from './auto-removal';
import { createScmHandlers } from '../scm';
import { createWatchHandlers } from './watch-handlers';
import { setup, setupReportEntries } from './setup';
import { stats, statsEntries } from './stats';
import { changeState } from './freezing';

const s = (v: unknown): string => v as string;
const n = (v: unknown): number => v as number;
/** An empty reply, once a settling operation (freeze, kill) has finished. */
const noReply = (done: void | Promise<void>): unknown[] | Promise<unknown[]> => (done instanceof Promise ? done.then(() => []) : []);

/**
 * Whether a connection's peer is in the daemon's pid namespace, once known: a process never
 * changes its own pid namespace (setns and unshare change its children's), and the peer of a
 * connection is fixed. Its user namespace can change (setns), so that is looked at per call.
 */
const peerInOurPidNs = new WeakMap<object, boolean>();

function samePidNsAsPeer(rt: Runtime, ctx: CallContext): boolean {
  const known = peerInOurPidNs.get(ctx.connection);
  if (known !== undefined) return known;
  const ino = namespaceInode(ctx.peer.pid, 'pid');
  const same = rt.self.pidNs === undefined || ino === rt.self.pidNs;
  if (ino !== undefined) peerInOurPidNs.set(ctx.connection, same); // a failed stat is not an answer to keep
  return same;
}

/** Plain call: r = p = the connection's peer; `daemonAsProxy` for the Abs methods whose base is the hierarchy root. */
export function plainCaller(rt: Runtime, ctx: CallContext, daemonAsProxy = false): Caller {
  // Each getter looks only at its own namespace (Setup needs both, most methods one or none).
  const decision = mayCallPlain(ctx.spec.name, {
    get samePidNs() {
      return samePidNsAsPeer(rt, ctx);
    },
    get sameUserNs() {
      return sameNamespace(rt, ctx.peer.pid, 'user');
    },
  });
  if (!decision.allow) throw new CgmError('WrongNamespace', decision.reason);
  return new Caller(rt, ctx.peer, daemonAsProxy ? 'daemon' : ctx.peer, () => ctx.connection.peerCgroupText());
}

/** A method's work for a caller already established (plain: the peer; Scm: the credentials). */
export type Operation = (rt: Runtime, caller: Caller, args: unknown[]) => unknown[] | Promise<unknown[]>;

/** Every plain method that acts for a caller, by name; the Scm forms run the same ones. */
export const OPERATIONS: ReadonlyMap<string, Operation> = new Map<string, Operation>([
  ['GetPidCgroup', (rt, c, [ctl, pid]) => [getPidCgroup(rt, c, s(ctl), n(pid), false)]],
  ['GetPidCgroupAbs', (rt, c, [ctl, pid]) => [getPidCgroup(rt, c, s(ctl), n(pid), true)]],
  ['Create', (rt, c, [ctl, cg]) => {
    const existed = createFair(rt, c, s(ctl), s(cg));
    return typeof existed === 'number' ? [existed] : existed.then((e) => [e]);
  }],
  ['Chown', (rt, c, [ctl, cg, uid, gid]) => (chown(rt, c, s(ctl), s(cg), n(uid), n(gid)), [])],
  ['Chmod', (rt, c, [ctl, cg, file, mode]) => (chmod(rt, c, s(ctl), s(cg), s(file), n(mode)), [])],
  ['MovePid', (rt, c, [ctl, cg, pid]) => (movePid(rt, c, s(ctl), s(cg), n(pid), false), [])],
  ['MovePidAbs', (rt, c, [ctl, cg, pid]) => (movePid(rt, c, s(ctl), s(cg), n(pid), true), [])],
  ['GetValue', (rt, c, [ctl, cg, key]) => [getValue(rt, c, s(ctl), s(cg), s(key))]],
  ['SetValue', (rt, c, [ctl, cg, key, value]) => noReply(setValue(rt, c, s(ctl), s(cg), s(key), s(value)))],
  // Sliced (cgroupfs/walk.ts): these answer asynchronously and never stall other clients.
  ['Remove', async (rt, c, [ctl, cg, recursive]) => [await remove(rt, c, s(ctl), s(cg), n(recursive))]],
  ['GetTasks', (rt, c, [ctl, cg]) => [getTasks(rt, c, s(ctl), s(cg))]],
  ['GetTasksRecursive', async (rt, c, [ctl, cg]) => [await getTasksRecursive(rt, c, s(ctl), s(cg))]],
  ['ListChildren', async (rt, c, [ctl, cg]) => [await listChildren(rt, c, s(ctl), s(cg))]],
  ['RemoveOnEmpty', (rt, c, [ctl, cg]) => (removeOnEmpty(rt, c, s(ctl), s(cg)), [])],
  ['Prune', async (rt, c, [ctl, cg]) => (await prune(rt, c, s(ctl), s(cg)), [])],
  ['ListKeys', (rt, c, [ctl, cg]) => [listKeys(rt, c, s(ctl), s(cg))]],
  // cgmanager1
  ['Setup', async (rt, c, [ctls, cg, uid, gid, limits, pids]) => {
    const report = await setup(rt, c, { controllers: s(ctls), cgroup: s(cg), uid: n(uid), gid: n(gid), limits: limits as Array<[string, string]>, pids: pids as number[] });
    return [setupReportEntries(report)];
  }],
  ['Stats', async (rt, c, [ctls, cg]) => [statsEntries(await stats(rt, c, s(ctls), s(cg)))]],
  ['Freeze', async (rt, c, [cg]) => (await changeState(rt, c, s(cg), 'freeze'), [])],
  ['Thaw', async (rt, c, [cg]) => (await changeState(rt, c, s(cg), 'thaw'), [])],
  ['Kill', async (rt, c, [cg]) => (await changeState(rt, c, s(cg), 'kill'), [])],
]);

/** The Abs methods of a plain call measure from the hierarchy root: the daemon stands in for p. */
const DAEMON_AS_PROXY: ReadonlySet<string> = new Set(['GetPidCgroupAbs', 'MovePidAbs']);

export function createHandlers(rt: Runtime): Map<string, MethodHandler> {
  const plain: Array<[string, MethodHandler]> = [
    ['Ping', () => []],
    ['ListControllers', () => [rt.layout.listControllers()]],
    ...[...OPERATIONS].map(([name, op]): [string, MethodHandler] => [name, (ctx, args) => op(rt, plainCaller(rt, ctx, DAEMON_AS_PROXY.has(name)), args)]),
  ];
  return new Map([...plain, ...createScmHandlers(rt, OPERATIONS), ...createWatchHandlers(rt, plainCaller)]);
}
