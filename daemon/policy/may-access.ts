// The file-permission check of reference §4.2: may requestor r read or write a file with this owner and mode?
// Pure: the caller stats the file and reads r's uid_map; this never touches the filesystem and never throws.

import { hostIdToNs } from '../proc/id-map';
import { allow, deny, type Access, type Decision, type FileOwner, type Requestor } from './types';

const WANTED_BITS: Readonly<Record<Access, number>> = { read: 0o4, write: 0o2, readwrite: 0o6 };

/** uid 0 as the daemon sees it (credentials are kernel-translated into the daemon's user namespace). */
export function isHostRoot(r: Requestor): boolean {
  return r.cred.uid === 0;
}

/** "r is root in its userns" (reference §4.1): r's uid maps to 0 through r's own uid_map. */
export function isNsRoot(r: Requestor): boolean {
  return hostIdToNs(r.cred.uid, r.uidMap) === 0;
}

function describeBits(bits: number): string {
  return `${bits & 0o4 ? 'r' : '-'}${bits & 0o2 ? 'w' : '-'}${bits & 0o1 ? 'x' : '-'}`;
}

/**
 * Reference §4.2, evaluated in order: no file (stat failed) denies; host root allows; root of a user
 * namespace allows on any file whose owner is mapped into that namespace (whatever the bits, and
 * the group is not checked — unlike the kernel's capable_wrt_inode_uidgid, but as the original);
 * otherwise exactly one of the owner, primary-group or other bit sets decides, with no fall-through
 * (an owner with r-- cannot write even if "other" has rw-, as in the kernel's own check).
 * No supplementary groups, ACLs or search permission on parents (the original's "TODO").
 */
export function mayAccess(r: Requestor, file: FileOwner | undefined, access: Access): Decision {
  if (file === undefined) return deny('the file does not exist or could not be examined');
  if (isHostRoot(r)) return allow;
  if (isNsRoot(r) && hostIdToNs(file.uid, r.uidMap) !== undefined) return allow;

  const { uid, gid } = r.cred;
  let shift: number;
  let role: string;
  if (uid === file.uid) {
    shift = 6;
    role = 'owner';
  } else if (gid === file.gid) {
    shift = 3;
    role = 'group';
  } else {
    shift = 0;
    role = 'other';
  }
  const granted = (file.mode >> shift) & 0o7;
  const wanted = WANTED_BITS[access];
  if ((granted & wanted) === wanted) return allow;
  return deny(
    `uid ${uid} gid ${gid} needs ${access} access to a file owned by ${file.uid}:${file.gid} ` +
      `whose ${role} permissions are ${describeBits(granted)}`,
  );
}
