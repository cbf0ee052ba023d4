// Who may hand a cgroup over with Chown at all (reference §5.6); the per-cgroup rw check is mayAccess.
// Pure: decides on credentials and r's uid_map only; it never inspects the target ids.

import { isHostRoot, isNsRoot } from './may-access';
import { allow, deny, type Decision, type Requestor } from './types';

/**
 * Reference §5.6: only host root or root of its own user namespace may chown, checked before anything
 * else. No rule on the target uid/gid, exactly as the original: plain Chown is only accepted from the
 * daemon's user namespace (namespaces.ts), where ns-root is host root and every id is nameable; for
 * ChownScm the kernel has already refused ids the sending proxy cannot name (unmapped in its
 * namespace), so the ids arrive translated and mapped.
 */
export function mayChown(r: Requestor): Decision {
  if (isHostRoot(r) || isNsRoot(r)) return allow;
  return deny(`Chown requested by non-root uid ${r.cred.uid}`);
}
