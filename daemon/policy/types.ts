// The vocabulary of the permission policy: credentials, file ownership, access modes and decisions.
// Types and two constructors only; nothing here decides anything or performs I/O.

import type { IdMapRange } from '../proc/id-map';

/** Kernel-provided credentials (SO_PEERCRED or SCM_CREDENTIALS), already in the daemon's namespaces. */
export interface Cred {
  pid: number;
  uid: number;
  gid: number;
}

/** The task on whose behalf a request is made ("r" in reference §4). */
export interface Requestor {
  cred: Cred;
  /** r's user namespace uid_map as read from /proc/<r.pid>/uid_map by the daemon; undefined if unreadable. */
  uidMap: readonly IdMapRange[] | undefined;
}

/** What stat(2) said about a cgroup directory or file. */
export interface FileOwner {
  uid: number;
  gid: number;
  /** st_mode, file-type bits included. */
  mode: number;
}

/** The access modes of reference §4.2 (read-only, write-only, read-write). */
export type Access = 'read' | 'write' | 'readwrite';

/** The outcome of a policy check. A denial is an expected value, never an exception. */
export type Decision = { readonly allow: true } | { readonly allow: false; readonly reason: string };

export const allow: Decision = Object.freeze({ allow: true as const });

export function deny(reason: string): Decision {
  return { allow: false, reason };
}
