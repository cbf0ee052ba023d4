// How one call of a plain method reaches the daemon. Every route takes the plain
// method's arguments and resolves with the plain method's reply values, so the typed
// client above it never changes.
//
// Extension point for the Scm variants (DESIGN.md, "client"): a caller outside the
// daemon's pid or user namespace must let the kernel translate its pids and uids, so
// the call goes out as `<Method>Scm` with one end of a socketpair, and the requestor
// (and victim) credentials follow as SCM_CREDENTIALS datagrams (reference §6). That
// work item adds a ScmRoute next to PlainRoute and makes selectRoute() pick it after
// comparing /proc/self/ns/{pid,user} with the daemon's (the connection already
// negotiates unix fds and the addon socket can send credentials).
import { INTERFACE_NAME, OBJECT_PATH, type MethodSpec } from '../daemon/dbus/interface';
import type { PeerConnection } from './connection';

export interface CallRoute {
  readonly kind: 'plain' | 'scm';
  /** `spec` is always a plain method; `args` are already validated against it. */
  invoke(spec: MethodSpec, args: readonly unknown[]): Promise<unknown[]>;
}

/** Sends the method itself: the daemon takes the caller's credentials from SO_PEERCRED. */
export class PlainRoute implements CallRoute {
  readonly kind = 'plain' as const;

  constructor(private readonly connection: PeerConnection) {}

  invoke(spec: MethodSpec, args: readonly unknown[]): Promise<unknown[]> {
    return this.connection.call({
      path: OBJECT_PATH,
      interface: INTERFACE_NAME,
      member: spec.name,
      signature: spec.inSignature,
      body: [...args],
      replySignature: spec.outSignature,
    });
  }
}

/** Picks the route for this process. Plain only, until the Scm work item lands. */
export function selectRoute(connection: PeerConnection): CallRoute {
  return new PlainRoute(connection);
}
