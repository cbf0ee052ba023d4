// How one call of a plain method reaches the daemon. Every route takes the plain
// method's arguments and resolves with the plain method's reply values, so the typed
// client above it never changes.
//
// A caller outside the daemon's pid or user namespace must let the kernel translate its
// pids and uids, so its calls go out as `<Method>Scm` with one end of a socketpair and
// the credentials follow as SCM_CREDENTIALS datagrams (reference §6, scm-route.ts).
import { OBJECT_PATH, type MethodSpec } from '../daemon/dbus/interface';
import * as fs from 'node:fs';
import type { PeerConnection } from './connection';
import { ScmRoute } from './scm-route';

export interface CallRoute {
  readonly kind: 'plain' | 'scm';
  /** `spec` is always a plain method; `args` are already validated against it. */
  invoke(spec: MethodSpec, args: readonly unknown[], options?: RouteCallOptions): Promise<unknown[]>;
}

/** A call's own timeout and AbortSignal (client.ts's CallOptions, already checked). */
export interface RouteCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Sends the method itself: the daemon takes the caller's credentials from SO_PEERCRED. */
export class PlainRoute implements CallRoute {
  readonly kind = 'plain' as const;

  constructor(private readonly connection: PeerConnection) {}

  invoke(spec: MethodSpec, args: readonly unknown[], options: RouteCallOptions = {}): Promise<unknown[]> {
    return this.connection.call({
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      path: OBJECT_PATH,
      interface: spec.interface,
      member: spec.name,
      signature: spec.inSignature,
      body: [...args],
      replySignature: spec.outSignature,
    });
  }
}

function namespaceInode(pid: number | 'self', kind: 'pid' | 'user'): number | undefined {
  try {
    return fs.statSync(`/proc/${pid}/ns/${kind}`).ino;
  } catch {
    return undefined;
  }
}

function readUidMap(pid: number | 'self'): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Whether this process shares the daemon's pid and user namespaces. The kernel shows
 * us the daemon's pid as 0 when it lives in an ancestor pid namespace; otherwise the
 * namespace links of the two processes are compared. An unprivileged caller may not
 * read a root daemon's links; its uid_map is readable by anyone, though, and the kernel
 * shows the map of our own namespace relative to its parent but every other one relative
 * to ours, so the two texts differ unless the daemon is in our namespace or both maps are
 * the same identity (then the ids need no translating either). A daemon that is visible
 * in our pid namespace is taken to be in it.
 */
export function sharesNamespacesWith(peerPid: number): boolean {
  if (peerPid <= 0) return false;
  const ourUserNs = namespaceInode('self', 'user');
  if (ourUserNs === undefined) return true; // no namespace support
  const theirUserNs = namespaceInode(peerPid, 'user');
  if (theirUserNs === undefined) {
    const ours = readUidMap('self');
    if (ours === undefined || ours !== readUidMap(peerPid)) return false;
  } else if (theirUserNs !== ourUserNs) {
    return false;
  }
  const theirPidNs = namespaceInode(peerPid, 'pid');
  return theirPidNs === undefined || theirPidNs === namespaceInode('self', 'pid');
}

export type RoutePreference = 'auto' | 'plain' | 'scm';

/**
 * Picks the route for this process: plain calls when it shares the daemon's pid and
 * user namespaces (the daemon reads our credentials with SO_PEERCRED), the Scm
 * variants otherwise, so that the kernel translates our pids and uids.
 */
export function selectRoute(connection: PeerConnection, preference: RoutePreference = 'auto', timeoutMs = 5000): CallRoute {
  const plain = new PlainRoute(connection);
  const scm = preference === 'scm' || (preference === 'auto' && !sharesNamespacesWith(connection.peer.pid));
  return scm ? new ScmRoute(connection, plain, timeoutMs) : plain;
}
