import { describe, expect, it } from 'vitest';
import { isHostRoot, isNsRoot, mayAccess, type Access, type FileOwner, type Requestor } from '../../../daemon/policy';
import {
  hostRoot,
  hostRootUnreadableMap,
  nsRoot,
  nsRootUnreadableMap,
  nsUser,
  user1000,
  user1001,
  verdict,
} from './fixtures';

const REG = 0o100000;
const DIR = 0o040000;
const file = (uid: number, gid: number, perms: number, type = REG): FileOwner => ({ uid, gid, mode: type | perms });

describe('mayAccess (reference §4.2)', () => {
  it.each<[string, Requestor, FileOwner | undefined, Access, 'allow' | 'deny']>([
    // 1. stat failed: denied to everyone, host root included.
    ['stat failed, host root', hostRoot, undefined, 'read', 'deny'],
    ['stat failed, user', user1000, undefined, 'read', 'deny'],
    ['stat failed, container root', nsRoot, undefined, 'read', 'deny'],

    // 2. host root: every file, whatever the bits.
    ['host root, root file with no bits, readwrite', hostRoot, file(0, 0, 0o000), 'readwrite', 'allow'],
    ['host root, user file with no bits, write', hostRoot, file(1000, 1000, 0o000), 'write', 'allow'],
    ['host root, unmapped-looking owner', hostRoot, file(4294967295, 4294967295, 0o000), 'read', 'allow'],
    ['host root with unreadable uid_map is still host root', hostRootUnreadableMap, file(1000, 1000, 0o000), 'write', 'allow'],

    // 4. owner bits decide for the owner.
    ['owner rw-, read', user1000, file(1000, 1000, 0o600), 'read', 'allow'],
    ['owner rw-, write', user1000, file(1000, 1000, 0o600), 'write', 'allow'],
    ['owner rw-, readwrite', user1000, file(1000, 1000, 0o600), 'readwrite', 'allow'],
    ['owner r--, read', user1000, file(1000, 1000, 0o400), 'read', 'allow'],
    ['owner r--, write', user1000, file(1000, 1000, 0o400), 'write', 'deny'],
    ['owner r--, readwrite', user1000, file(1000, 1000, 0o400), 'readwrite', 'deny'],
    ['owner -w-, read', user1000, file(1000, 1000, 0o200), 'read', 'deny'],
    ['owner -w-, write', user1000, file(1000, 1000, 0o200), 'write', 'allow'],
    ['owner --x only, read', user1000, file(1000, 1000, 0o100), 'read', 'deny'],
    ['owner dir rwx, readwrite', user1000, file(1000, 1000, 0o755, DIR), 'readwrite', 'allow'],
    ['owner r-- other rw-: no fall-through, write', user1000, file(1000, 0, 0o406), 'write', 'deny'],
    ['owner r-- group rw-: no fall-through, write', user1000, file(1000, 1000, 0o460), 'write', 'deny'],
    ['owner --- other rw-: no fall-through, read', user1000, file(1000, 0, 0o006), 'read', 'deny'],
    ['setuid/sticky bits are irrelevant', user1000, file(1000, 1000, 0o7400), 'read', 'allow'],

    // 5. primary-group bits decide for a non-owner in the file's group.
    ['group r--, read', user1000, file(0, 1000, 0o640), 'read', 'allow'],
    ['group r--, write', user1000, file(0, 1000, 0o640), 'write', 'deny'],
    ['group rw-, readwrite', user1000, file(0, 1000, 0o660), 'readwrite', 'allow'],
    ['group --- other rw-: no fall-through, read', user1000, file(0, 1000, 0o606), 'read', 'deny'],
    ['group --- owner rw- (owner is someone else)', user1000, file(0, 1000, 0o600), 'read', 'deny'],

    // 6. other bits for everyone else.
    ['other r--, read', user1000, file(0, 0, 0o644), 'read', 'allow'],
    ['other r--, write', user1000, file(0, 0, 0o644), 'write', 'deny'],
    ['other rw-, readwrite', user1000, file(0, 0, 0o666), 'readwrite', 'allow'],
    ['other ---, read', user1000, file(0, 0, 0o660), 'read', 'deny'],
    ['other user\'s private file', user1001, file(1000, 1000, 0o600), 'read', 'deny'],
    ['other user\'s world-writable file', user1001, file(1000, 1000, 0o666), 'write', 'allow'],

    // 3. root of a child user namespace (map '0 100000 65536') over mapped owners, whatever the bits.
    ['container root, own file 100000, no bits', nsRoot, file(100000, 100000, 0o000), 'readwrite', 'allow'],
    ['container root, mapped owner 100500, no bits', nsRoot, file(100500, 100500, 0o000), 'write', 'allow'],
    ['container root, last mapped owner 165535', nsRoot, file(165535, 0, 0o000), 'write', 'allow'],
    ['container root, mapped owner but unmapped group', nsRoot, file(100500, 0, 0o000), 'readwrite', 'allow'],
    // ... and over unmapped owners only the ordinary bits apply to uid 100000.
    ['container root, host-root file 0644, read', nsRoot, file(0, 0, 0o644), 'read', 'allow'],
    ['container root, host-root file 0644, write', nsRoot, file(0, 0, 0o644), 'write', 'deny'],
    ['container root, host-root file 0600, read', nsRoot, file(0, 0, 0o600), 'read', 'deny'],
    ['container root, unmapped owner 1000, write', nsRoot, file(1000, 1000, 0o644), 'write', 'deny'],
    ['container root, owner 165536 just past the range', nsRoot, file(165536, 165536, 0o600), 'read', 'deny'],
    ['container root, owner 99999 just before the range', nsRoot, file(99999, 99999, 0o600), 'read', 'deny'],
    ['container root, host-root file, group is its gid', nsRoot, file(0, 100000, 0o640), 'read', 'allow'],
    ['container root, host-root file, group r-- write', nsRoot, file(0, 100000, 0o640), 'write', 'deny'],
    ['container root, delegated dir (owner 100000, 0755)', nsRoot, file(100000, 100000, 0o755, DIR), 'readwrite', 'allow'],

    // Not ns-root: a container user gets only the bits, even on mapped owners.
    ['container user, container-root file 0644, write', nsUser, file(100000, 100000, 0o644), 'write', 'deny'],
    ['container user, container-root file 0644, read', nsUser, file(100000, 100000, 0o644), 'read', 'allow'],
    ['container user, own file 0600', nsUser, file(101000, 101000, 0o600), 'readwrite', 'allow'],

    // Unreadable uid_map: not ns-root, so only the bits apply.
    ['unreadable map, mapped-looking owner, no other bits', nsRootUnreadableMap, file(100500, 100500, 0o600), 'read', 'deny'],
    ['unreadable map, own file by owner bits', nsRootUnreadableMap, file(100000, 100000, 0o600), 'readwrite', 'allow'],
    ['unreadable map, own file with owner r--', nsRootUnreadableMap, file(100000, 100000, 0o400), 'write', 'deny'],
  ])('%s', (_name, r, target, access, expected) => {
    expect(verdict(mayAccess(r, target, access))).toBe(expected);
  });

  it('names the requestor, the access and the deciding bits in a denial', () => {
    const decision = mayAccess(user1000, file(1000, 0, 0o406), 'write');
    expect(decision).toEqual({
      allow: false,
      reason: 'uid 1000 gid 1000 needs write access to a file owned by 1000:0 whose owner permissions are r--',
    });
  });
});

describe('isHostRoot / isNsRoot (reference §4.1)', () => {
  it.each<[string, Requestor, boolean, boolean]>([
    ['host root', hostRoot, true, true],
    ['host root, unreadable map', hostRootUnreadableMap, true, false],
    ['host user 1000', user1000, false, false],
    ['container root (100000 -> 0)', nsRoot, false, true],
    ['container user (101000 -> 1000)', nsUser, false, false],
    ['container root, unreadable map', nsRootUnreadableMap, false, false],
  ])('%s', (_name, r, hostRootExpected, nsRootExpected) => {
    expect(isHostRoot(r)).toBe(hostRootExpected);
    expect(isNsRoot(r)).toBe(nsRootExpected);
  });
});
