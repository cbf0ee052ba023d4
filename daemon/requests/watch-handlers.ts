// The D-Bus handlers of Watch, Unwatch and their Scm forms. Kept apart from the other
// handlers because they need the calling connection (signals go to it, its watches end
// with it). WatchScm: the requestor's credential (from the passed socket) decides the base
// cgroup and the permissions; the signals still go to the calling connection (cgproxy's
// upstream connection for that client).
import type { CallContext, MethodHandler } from '../dbus/server';
import type { Runtime } from '../runtime';
import { scmServerHandler } from '../scm';
import * as R from '../scm/results';
import { Caller } from './caller';
import { watch, unwatch } from './watch';

const s = (v: unknown): string => v as string;

export function createWatchHandlers(rt: Runtime, plainCaller: (rt: Runtime, ctx: CallContext) => Caller): Array<[string, MethodHandler]> {
  const options = { timeoutMs: rt.options.scmTimeoutMs, maxPendingPerConnection: rt.options.maxPendingScm, maxPendingPerUid: rt.options.maxPendingScmPerUid };
  const shape = { needsVictim: false, failure: R.failed };
  // scmServerHandler's run knows the credentials, not the connection: one handler per call binds it.
  const scm = (run: (ctx: CallContext, caller: Caller, cgroup: string) => void): MethodHandler => (ctx, args) =>
    scmServerHandler(options, shape, (r, p, _v, [cg]) => {
      run(ctx, new Caller(rt, r, p), s(cg));
      return R.ok();
    })(ctx, args);
  return [
    ['Watch', (ctx, [cg]) => (watch(rt, plainCaller(rt, ctx), rt.events.ownerOf(ctx.connection), s(cg)), [])],
    ['Unwatch', (ctx, [cg]) => (unwatch(rt, rt.events.ownerOf(ctx.connection), s(cg)), [])],
    ['WatchScm', scm((ctx, caller, cg) => watch(rt, caller, rt.events.ownerOf(ctx.connection), cg))],
    ['UnwatchScm', scm((ctx, _caller, cg) => unwatch(rt, rt.events.ownerOf(ctx.connection), cg))],
  ];
}
