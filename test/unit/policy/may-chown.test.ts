import { describe, expect, it } from 'vitest';
import { mayChown, type Decision, type Requestor } from '../../../daemon/policy';
import { hostRoot, hostRootUnreadableMap, nsRoot, nsRootUnreadableMap, nsUser, user1000 } from './fixtures';

describe('mayChown (reference §5.6)', () => {
  it.each<[string, Requestor, Decision]>([
    ['host root', hostRoot, { allow: true }],
    ['host root with unreadable uid_map', hostRootUnreadableMap, { allow: true }],
    ['container root (100000 -> 0)', nsRoot, { allow: true }],
    ['host user 1000', user1000, { allow: false, reason: 'Chown requested by non-root uid 1000' }],
    ['container user (101000 -> 1000)', nsUser, { allow: false, reason: 'Chown requested by non-root uid 101000' }],
    ['container root with unreadable uid_map', nsRootUnreadableMap, { allow: false, reason: 'Chown requested by non-root uid 100000' }],
  ])('%s', (_name, r, expected) => {
    expect(mayChown(r)).toEqual(expected);
  });
});
