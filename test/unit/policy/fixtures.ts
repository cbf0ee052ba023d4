// Shared requestors for the policy tables: host root, an unprivileged host user, and users of a
// child user namespace mapped as '0 100000 65536'.

import { parseIdMap } from '../../../daemon/proc/id-map';
import type { Decision, Requestor } from '../../../daemon/policy';

export const INITIAL_MAP = parseIdMap('0 0 4294967295\n');
export const CHILD_MAP = parseIdMap('0 100000 65536\n');

export const hostRoot: Requestor = { cred: { pid: 1, uid: 0, gid: 0 }, uidMap: INITIAL_MAP };
export const user1000: Requestor = { cred: { pid: 2000, uid: 1000, gid: 1000 }, uidMap: INITIAL_MAP };
export const user1001: Requestor = { cred: { pid: 2001, uid: 1001, gid: 1001 }, uidMap: INITIAL_MAP };
/** Root of a container: host uid 100000 is uid 0 inside. */
export const nsRoot: Requestor = { cred: { pid: 3000, uid: 100000, gid: 100000 }, uidMap: CHILD_MAP };
/** An ordinary user of the same container: host uid 101000 is uid 1000 inside. */
export const nsUser: Requestor = { cred: { pid: 3001, uid: 101000, gid: 101000 }, uidMap: CHILD_MAP };
/** Container root whose /proc/<pid>/uid_map could not be read: nothing is mapped. */
export const nsRootUnreadableMap: Requestor = { cred: { pid: 3002, uid: 100000, gid: 100000 }, uidMap: undefined };
/** Host root whose uid_map could not be read: still host root, but not "ns-root". */
export const hostRootUnreadableMap: Requestor = { cred: { pid: 4, uid: 0, gid: 0 }, uidMap: undefined };

/** A decision reduced to its verdict, for compact tables; a denial must carry a reason. */
export function verdict(decision: Decision): 'allow' | 'deny' {
  if (decision.allow) return 'allow';
  if (decision.reason.length === 0) throw new Error('a denial without a reason');
  return 'deny';
}
