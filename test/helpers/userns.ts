// Identities for client processes: another host uid (setpriv), or root of a fresh child user
// namespace whose uid/gid maps the test writes itself (no newuidmap, no /etc/subuid needed).
import * as fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { waitFor } from './processes';

export interface UidGid {
  uid: number;
  gid: number;
}

export interface UsernsOptions {
  /** uid_map text written for the namespace, e.g. '0 100000 65536' */
  uidMap: string;
  /** gid_map text; defaults to uidMap */
  gidMap?: string;
  /** the ids inside the namespace (default 0:0, i.e. host uid 100000 for the map above) */
  inside?: UidGid;
  /** more unshare(1) flags for later layers (e.g. --cgroup); --fork flags change the waiting pid */
  unshareFlags?: readonly string[];
}

/** argv prefix that runs a command as host uid/gid, with no supplementary groups. Works without a passwd entry. */
export function setprivArgv(ids: UidGid): string[] {
  return ['setpriv', `--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups'];
}

/** The host id that namespace id `nsId` maps to under `mapText` (uid_map syntax). */
export function hostIdOf(nsId: number, mapText: string): number {
  for (const line of mapText.split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
    if (inside === undefined || outside === undefined || count === undefined || Number.isNaN(count)) continue;
    if (inside <= nsId && nsId < inside + count) return outside + nsId - inside;
  }
  throw new Error(`id ${nsId} is not mapped by ${JSON.stringify(mapText)}`);
}

/**
 * argv prefix for a process that becomes, say, root of a new user namespace. It first takes the
 * host ids that the inside ids will map to, then unshares and waits for one line on stdin (sent
 * once the test has written the maps) before exec'ing the command. The exec after the maps
 * exist is what makes it uid 0 with full capabilities inside: capabilities are recomputed at
 * execve against the namespace's root, which is unmapped until then (capabilities(7)).
 * unshare without --fork keeps the pid, so the map writer knows whom to map.
 */
export function usernsArgv(options: UsernsOptions): string[] {
  const inside = options.inside ?? { uid: 0, gid: 0 };
  const host = { uid: hostIdOf(inside.uid, options.uidMap), gid: hostIdOf(inside.gid, options.gidMap ?? options.uidMap) };
  return [...setprivArgv(host), 'unshare', '--user', ...(options.unshareFlags ?? []), 'sh', '-c', 'read _ && exec "$@"', 'sh'];
}

function userNsOf(pid: number | 'self'): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/user`);
  } catch {
    return undefined;
  }
}

/**
 * Writes the maps of the process started with usernsArgv once it is in its new namespace, then
 * lets it go on. Throws if it never got there (it exited, or unshare failed).
 */
export async function releaseIntoUserns(child: ChildProcess, options: UsernsOptions): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) throw new Error('process has no pid');
  const ours = userNsOf('self');
  const moved = await waitFor(() => {
    const ns = userNsOf(pid);
    return ns === undefined || ns !== ours;
  }, 5000, 2);
  const ns = userNsOf(pid);
  if (!moved || ns === undefined) throw new Error(`process ${pid} did not enter a new user namespace`);
  // As root in the parent namespace we may write any map (user_namespaces(7), "Defining user and group ID mappings").
  fs.writeFileSync(`/proc/${pid}/uid_map`, `${options.uidMap}\n`);
  fs.writeFileSync(`/proc/${pid}/gid_map`, `${options.gidMap ?? options.uidMap}\n`);
  child.stdin?.write('\n');
}
