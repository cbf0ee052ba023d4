// Subtree claims of sliced requests: what overlaps a claim (at, below, above) is Busy, what
// does not (a sibling, '/ab' next to '/a', another hierarchy) is free, and a release frees it.
import { describe, expect, it } from 'vitest';
import type { Hierarchy } from '../../../daemon/cgroupfs/layout';
import { SubtreeClaims } from '../../../daemon/requests/subtree-claims';

const hierarchy = (device: string, primaryName: string): Hierarchy => ({
  version: 1, controllers: [primaryName], mountPoint: `/sys/fs/cgroup/${primaryName}`, mountRoot: '/', label: primaryName,
  primaryName, names: [primaryName], device,
});
const MEMORY = hierarchy('0:30', 'memory');
const CPU = hierarchy('0:31', 'cpu');

describe('SubtreeClaims', () => {
  it.each<[string, Hierarchy, string, boolean, boolean]>([
    ['the claimed cgroup', MEMORY, '/a', false, true],
    ['a cgroup below it', MEMORY, '/a/b/c', false, true],
    ['a cgroup above it, when asked about below', MEMORY, '/', true, true],
    ['a cgroup above it, otherwise', MEMORY, '/', false, false],
    ['a sibling sharing a prefix', MEMORY, '/ab', true, false],
    ['the same path in another hierarchy', CPU, '/a', true, false],
  ])('%s', (_, h, cg, orBelow, busy) => {
    const claims = new SubtreeClaims();
    claims.claim(MEMORY, '/a', 'removing');
    const check = (): void => claims.assertFree(h, cg, `creating ${h.primaryName}:${cg}`, orBelow);
    if (busy) expect(check).toThrow(/^another request is removing memory:\/a; retry creating .* when it is done$/);
    else expect(check).not.toThrow();
  });

  it('refuses an overlapping claim and frees the subtree on release', () => {
    const claims = new SubtreeClaims();
    const release = claims.claim(MEMORY, '/a/b', 'pruning');
    expect(() => claims.claim(MEMORY, '/a', 'removing')).toThrow(expect.objectContaining({ code: 'Busy' }));
    expect(() => claims.claim(MEMORY, '/a/b/c', 'removing')).toThrow(/another request is pruning memory:\/a\/b/);
    expect(claims.size).toBe(1);
    release();
    expect(claims.size).toBe(0);
    claims.claim(MEMORY, '/a', 'removing');
  });
});
