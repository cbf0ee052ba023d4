// The daemon's handlers for the plain methods: each checks the namespace rule of
// reference §4.6, builds the caller from the connection's credentials (r = p) and runs
// the operation. The Scm variants run the same operations with r and v from the fd.
import { CgmError } from '../errors';
import type { CallContext, MethodHandler } from '../dbus/server';
import { mayCallPlain } from '../policy';
import type { Runtime } from '../runtime';
import { Caller, sameNamespaces } from './caller';
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

const s = (v: unknown): string => v as string;
const n = (v: unknown): number => v as number;
/** An empty reply, once a settling operation (freeze, kill) has finished. */
const noReply = (done: void | Promise<void>): unknown[] | Promise<unknown[]> => (done instanceof Promise ? done.then(() => []) : []);

/** Plain call: r = p = the connection's peer; `daemonAsProxy` for the Abs methods whose base is the hierarchy root. */
export function plainCaller(rt: Runtime, ctx: CallContext, daemonAsProxy = false): Caller {
  const decision = mayCallPlain(ctx.spec.name, {
    get samePidNs() {
      return sameNamespaces(rt, ctx.peer.pid).samePidNs;
    },
    get sameUserNs() {
      return sameNamespaces(rt, ctx.peer.pid).sameUserNs;
    },
  });
  if (!decision.allow) throw new CgmError('WrongNamespace', decision.reason);
  return new Caller(rt, ctx.peer, daemonAsProxy ? 'daemon' : ctx.peer, () => ctx.connection.peerCgroupText());
}

export function createHandlers(rt: Runtime): Map<string, MethodHandler> {
  const plain: Array<[string, MethodHandler]> = [
    ['Ping', () => []],
    ['ListControllers', () => [rt.layout.listControllers()]],
    ['GetPidCgroup', (ctx, [c, pid]) => [getPidCgroup(rt, plainCaller(rt, ctx), s(c), n(pid), false)]],
    ['GetPidCgroupAbs', (ctx, [c, pid]) => [getPidCgroup(rt, plainCaller(rt, ctx, true), s(c), n(pid), true)]],
    ['Create', (ctx, [c, cg]) => {
      const existed = createFair(rt, plainCaller(rt, ctx), s(c), s(cg));
      return typeof existed === 'number' ? [existed] : existed.then((e) => [e]);
    }],
    ['Chown', (ctx, [c, cg, uid, gid]) => (chown(rt, plainCaller(rt, ctx), s(c), s(cg), n(uid), n(gid)), [])],
    ['Chmod', (ctx, [c, cg, file, mode]) => (chmod(rt, plainCaller(rt, ctx), s(c), s(cg), s(file), n(mode)), [])],
    ['MovePid', (ctx, [c, cg, pid]) => (movePid(rt, plainCaller(rt, ctx), s(c), s(cg), n(pid), false), [])],
    ['MovePidAbs', (ctx, [c, cg, pid]) => (movePid(rt, plainCaller(rt, ctx, true), s(c), s(cg), n(pid), true), [])],
    ['GetValue', (ctx, [c, cg, key]) => [getValue(rt, plainCaller(rt, ctx), s(c), s(cg), s(key))]],
    ['SetValue', (ctx, [c, cg, key, value]) => noReply(setValue(rt, plainCaller(rt, ctx), s(c), s(cg), s(key), s(value)))],
    // Sliced (cgroupfs/walk.ts): these answer asynchronously and never stall other clients.
    ['Remove', async (ctx, [c, cg, recursive]) => [await remove(rt, plainCaller(rt, ctx), s(c), s(cg), n(recursive))]],
    ['GetTasks', (ctx, [c, cg]) => [getTasks(rt, plainCaller(rt, ctx), s(c), s(cg))]],
    ['GetTasksRecursive', async (ctx, [c, cg]) => [await getTasksRecursive(rt, plainCaller(rt, ctx), s(c), s(cg))]],
    ['ListChildren', async (ctx, [c, cg]) => [await listChildren(rt, plainCaller(rt, ctx), s(c), s(cg))]],
    ['RemoveOnEmpty', (ctx, [c, cg]) => (removeOnEmpty(rt, plainCaller(rt, ctx), s(c), s(cg)), [])],
    ['Prune', async (ctx, [c, cg]) => (await prune(rt, plainCaller(rt, ctx), s(c), s(cg)), [])],
    ['ListKeys', (ctx, [c, cg]) => [listKeys(rt, plainCaller(rt, ctx), s(c), s(cg))]],
  ];
  return new Map([...plain, ...createScmHandlers(rt), ...createWatchHandlers(rt, plainCaller)]);
}
