// cgproxy's Watch: each client connection that watches gets an upstream connection of its
// own to the host daemon, on which its watches are made as WatchScm with the client's
// credentials (so the client's cgroup decides the base, and two clients' relative names
// can never be confused). The daemon's signals on it are relayed to that client unchanged.
// The upstream connection goes when the client leaves or unwatches everything; when the
// host daemon goes, the client's connection is closed, so it notices its watches are gone.
// Watching clients are capped (MAX_RELAYS): each holds a connection of the proxy's uid at
// the daemon, whose per-uid connection limit (default 256) the proxy must not exhaust.
import type { Ucred } from '../addon';
import { CgmError } from '../daemon/errors';
import type { ServerConnection } from '../daemon/dbus/connection';
import type { CallContext, MethodHandler } from '../daemon/dbus/server';
import { INTERFACE1_NAME, OBJECT_PATH } from '../daemon/dbus/interface';
import type { Logger } from '../daemon/logger';
import { scmServerHandler, type ScmServerOptions } from '../daemon/scm';
import * as R from '../daemon/scm/results';
import { PeerConnection } from '../client/connection';
import { callWatchScm, cgmanagerSignalBody } from '../client/watch';
import { asCgmError } from './forward';

/** client connections that may watch through this proxy at once */
export const MAX_RELAYS = 64;

export interface WatchRelayOptions extends ScmServerOptions {
  /** the host daemon's socket */
  upstreamSocket: string;
  log: Logger;
  maxRelays?: number;
}

interface Relay {
  upstream: Promise<PeerConnection>;
  names: Set<string>;
  closed: boolean;
}

function sameCred(a: Ucred, b: Ucred): boolean {
  return a.pid === b.pid && a.uid === b.uid && a.gid === b.gid;
}

export function createWatchRelayHandlers(options: WatchRelayOptions): Array<[string, MethodHandler]> {
  const relays = new Map<ServerConnection, Relay>();
  const maxRelays = options.maxRelays ?? MAX_RELAYS;

  const teardown = (client: ServerConnection, relay: Relay): void => {
    if (relay.closed) return;
    relay.closed = true;
    if (relays.get(client) === relay) relays.delete(client);
    relay.upstream.then((u) => u.destroy()).catch(() => undefined);
  };

  const relayFor = (client: ServerConnection): Relay => {
    const existing = relays.get(client);
    if (existing) return existing;
    if (relays.size >= maxRelays) throw new CgmError('LimitsExceeded', `${relays.size} clients watch through this proxy already (limit ${maxRelays})`);
    const relay: Relay = { names: new Set(), closed: false, upstream: undefined as unknown as Promise<PeerConnection> };
    relay.upstream = PeerConnection.open({ socketPath: options.upstreamSocket, timeoutMs: options.timeoutMs * 5, keepReading: true }).then(
      (u) => {
        if (relay.closed) {
          u.destroy();
          throw new CgmError('Unavailable', 'the client left');
        }
        u.onSignal((m) => {
          const body = cgmanagerSignalBody(m);
          if (body) client.sendSignal(OBJECT_PATH, INTERFACE1_NAME, m.member as string, m.signature, body);
        });
        u.onClose((reason) => {
          if (relay.closed) return;
          options.log.warn({ conn: client.id, reason: reason?.message }, 'lost the host daemon under a watching client; closing it');
          teardown(client, relay);
          client.close('lost the host daemon');
        });
        return u;
      },
      (err: unknown) => {
        teardown(client, relay);
        throw new CgmError('Unavailable', `the host cgmanager at ${options.upstreamSocket} cannot be reached: ${(err as Error).message}`);
      },
    );
    relay.upstream.catch(() => undefined);
    relays.set(client, relay);
    client.onClose(() => teardown(client, relay));
    return relay;
  };

  const watch = async (client: ServerConnection, requestor: Ucred, cgroup: string): Promise<void> => {
    const relay = relayFor(client);
    try {
      await callWatchScm(await relay.upstream, 'Watch', cgroup, requestor, options.timeoutMs);
    } catch (err) {
      if (relay.names.size === 0) teardown(client, relay);
      throw asCgmError(err);
    }
    relay.names.add(cgroup);
  };

  const unwatch = async (client: ServerConnection, requestor: Ucred, cgroup: string): Promise<void> => {
    const relay = relays.get(client);
    if (!relay || !relay.names.has(cgroup)) return; // not watched: nothing to do (as the daemon)
    relay.names.delete(cgroup);
    try {
      await callWatchScm(await relay.upstream, 'Unwatch', cgroup, requestor, options.timeoutMs);
    } catch (err) {
      throw asCgmError(err);
    } finally {
      if (relay.names.size === 0) teardown(client, relay);
    }
  };

  const scm = (op: (client: ServerConnection, r: Ucred, cgroup: string) => Promise<void>): MethodHandler => (ctx: CallContext, args: unknown[]) =>
    scmServerHandler(options, { needsVictim: false, failure: R.failed }, async (r, p, _v, [cg]) => {
      // Reference §4.7: a proxy speaks only for the process connected to it.
      if (!sameCred(r, p)) throw new CgmError('AccessDenied', 'chained proxying is not supported: cgproxy forwards only for the connected process itself');
      await op(ctx.connection, r, cg as string);
      return R.ok();
    })(ctx, args);

  return [
    ['Watch', async (ctx, [cg]) => (await watch(ctx.connection, ctx.peer, cg as string), [])],
    ['Unwatch', async (ctx, [cg]) => (await unwatch(ctx.connection, ctx.peer, cg as string), [])],
    ['WatchScm', scm(watch)],
    ['UnwatchScm', scm(unwatch)],
  ];
}
