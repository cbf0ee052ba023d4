// Who may move which task (reference §4.3, `may_move_pid`).
// Pure: the caller reads the victim's uid from /proc/<pid>/status; this never reads /proc itself.

import { hostIdToNs } from '../proc/id-map';
import { isHostRoot, isNsRoot } from './may-access';
import { allow, deny, type Decision, type Requestor } from './types';

/** The task to be moved ("v"); uid is the real uid from /proc/<pid>/status, -1 if unreadable. */
export interface Victim {
  pid: number;
  uid: number;
}

/**
 * Reference §4.3: r may move itself; host root may move anyone; anyone may move a task of its own
 * real uid; root of a user namespace may move tasks whose uid is mapped into that namespace.
 * An unreadable victim uid (-1) never matches. Whether v sits in r's subtree is checked by the caller.
 */
export function mayMovePid(r: Requestor, victim: Victim): Decision {
  if (r.cred.pid === victim.pid) return allow;
  if (isHostRoot(r)) return allow;
  if (victim.uid !== -1 && victim.uid === r.cred.uid) return allow;
  if (isNsRoot(r) && hostIdToNs(victim.uid, r.uidMap) !== undefined) return allow;
  const whose = victim.uid === -1 ? 'whose owner could not be read' : `owned by uid ${victim.uid}`;
  return deny(`uid ${r.cred.uid} may not move pid ${victim.pid}, ${whose}`);
}
