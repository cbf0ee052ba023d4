import { describe, expect, it } from 'vitest';
import { mayMovePid, type Requestor, type Victim } from '../../../daemon/policy';
import { hostRoot, hostRootUnreadableMap, nsRoot, nsRootUnreadableMap, nsUser, user1000, verdict } from './fixtures';

describe('mayMovePid (reference §4.3)', () => {
  it.each<[string, Requestor, Victim, 'allow' | 'deny']>([
    ['self', user1000, { pid: 2000, uid: 1000 }, 'allow'],
    ['self, even with an unreadable uid', user1000, { pid: 2000, uid: -1 }, 'allow'],
    ['host root, any task', hostRoot, { pid: 5000, uid: 1234 }, 'allow'],
    ['host root, root task', hostRoot, { pid: 1, uid: 0 }, 'allow'],
    ['host root, unreadable victim uid', hostRoot, { pid: 5000, uid: -1 }, 'allow'],
    ['host root with unreadable uid_map', hostRootUnreadableMap, { pid: 5000, uid: 1234 }, 'allow'],
    ['same uid', user1000, { pid: 5000, uid: 1000 }, 'allow'],
    ['other uid', user1000, { pid: 5000, uid: 1001 }, 'deny'],
    ['root task', user1000, { pid: 1, uid: 0 }, 'deny'],
    ['unreadable victim uid never matches', user1000, { pid: 5000, uid: -1 }, 'deny'],
    ['container root, its own uid', nsRoot, { pid: 5000, uid: 100000 }, 'allow'],
    ['container root, mapped victim 100500', nsRoot, { pid: 5000, uid: 100500 }, 'allow'],
    ['container root, last mapped victim 165535', nsRoot, { pid: 5000, uid: 165535 }, 'allow'],
    ['container root, victim 165536 just past the range', nsRoot, { pid: 5000, uid: 165536 }, 'deny'],
    ['container root, host-root victim', nsRoot, { pid: 5000, uid: 0 }, 'deny'],
    ['container root, host user 1000', nsRoot, { pid: 5000, uid: 1000 }, 'deny'],
    ['container root, unreadable victim uid', nsRoot, { pid: 5000, uid: -1 }, 'deny'],
    ['container root with unreadable uid_map, mapped victim', nsRootUnreadableMap, { pid: 5000, uid: 100500 }, 'deny'],
    ['container root with unreadable uid_map, same uid', nsRootUnreadableMap, { pid: 5000, uid: 100000 }, 'allow'],
    ['container user, other container uid', nsUser, { pid: 5000, uid: 100500 }, 'deny'],
    ['container user, same uid', nsUser, { pid: 5000, uid: 101000 }, 'allow'],
  ])('%s', (_name, r, victim, expected) => {
    expect(verdict(mayMovePid(r, victim))).toBe(expected);
  });

  it.each<[string, Victim, string]>([
    ['known owner', { pid: 5000, uid: 1001 }, 'uid 1000 may not move pid 5000, owned by uid 1001'],
    ['unreadable owner', { pid: 5000, uid: -1 }, 'uid 1000 may not move pid 5000, whose owner could not be read'],
  ])('explains the denial: %s', (_name, victim, reason) => {
    expect(mayMovePid(user1000, victim)).toEqual({ allow: false, reason });
  });
});
