// The watch registry: a name is one watch however often it is watched, each watch holds its
// sources until Unwatch, its connection going, or all its cgroups gone; the caps per
// connection, per uid and in all are LimitsExceeded and keep nothing; a source that cannot
// start leaves nothing behind.
import { describe, expect, it } from 'vitest';
import { WatchRegistry, type WatchOwner, type WatchTarget } from '../../../daemon/events/registry';
import type { SourceListener } from '../../../daemon/events/sources';
import type { CgroupEvent } from '../../../daemon/events/parse';
import type { Hierarchy } from '../../../daemon/cgroupfs/layout';
import { CgmError } from '../../../daemon/errors';

const h = { primaryName: 'memory', version: 1 } as Hierarchy;
const target = (cg: string, kind: WatchTarget['kind'] = 'oom'): WatchTarget => ({ h, cg, kind });

function fixture(limits = { perConnection: 2, perUid: 3, total: 4 }, failOn?: string) {
  const live = new Map<string, Set<SourceListener>>();
  const registry = new WatchRegistry((t, listener) => {
    if (t.cg === failOn) throw new CgmError('FileNotFound', 'gone');
    const key = `${t.cg}:${t.kind}`;
    const set = live.get(key) ?? new Set();
    set.add(listener);
    live.set(key, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) live.delete(key);
    };
  }, limits);
  const owner = (uid: number): WatchOwner & { got: Array<[string, CgroupEvent]> } => {
    const got: Array<[string, CgroupEvent]> = [];
    return { uid, got, signal: (name, e) => got.push([name, e]) };
  };
  const fire = (cg: string, kind: string, e: Parameters<SourceListener>[0]): void => [...(live.get(`${cg}:${kind}`) ?? [])].forEach((l) => l(e));
  return { registry, live, owner, fire };
}

const limitsExceeded = (f: () => void): void => {
  expect(f).toThrowError(expect.objectContaining({ code: 'LimitsExceeded' }) as Error);
};

describe('watch registry', () => {
  it('signals go to the owner under the name it gave; a second watch of a name is the same watch', () => {
    const { registry, owner, fire, live } = fixture();
    const a = owner(1000);
    registry.add(a, 'c1', [target('/lxc/c1', 'oom'), target('/lxc/c1', 'frozen')]);
    registry.add(a, 'c1', [target('/lxc/c1', 'oom')]);
    expect(registry.size).toBe(1);
    fire('/lxc/c1', 'oom', { kind: 'oom', count: 3 });
    expect(a.got).toEqual([['c1', { kind: 'oom', count: 3 }]]);
    expect(registry.remove(a, 'c1')).toBe(true);
    expect(registry.remove(a, 'c1')).toBe(false);
    expect(live.size).toBe(0);
  });

  it('caps per connection, per uid and in all; a refused watch holds nothing', () => {
    const { registry, owner, live } = fixture();
    const a = owner(1000);
    const b = owner(1000);
    const c = owner(0);
    registry.add(a, 'x', [target('/x')]);
    registry.add(a, 'y', [target('/y')]);
    limitsExceeded(() => registry.add(a, 'z', [target('/z')]));
    registry.add(b, 'x', [target('/x')]);
    limitsExceeded(() => registry.add(b, 'y', [target('/y')])); // uid 1000 holds 3
    registry.add(c, 'q', [target('/q')]);
    limitsExceeded(() => registry.add(c, 'r', [target('/r')])); // 4 in all
    expect(registry.size).toBe(4);
    expect([...live.keys()].sort()).toEqual(['/q:oom', '/x:oom', '/y:oom']);
    registry.removeOwner(a);
    expect(registry.size).toBe(2);
    registry.add(b, 'y', [target('/y')]); // room again
  });

  it('a source that cannot start leaves nothing subscribed', () => {
    const { registry, owner, live } = fixture(undefined, '/bad');
    const a = owner(0);
    expect(() => registry.add(a, 'w', [target('/ok', 'oom'), target('/bad', 'frozen')])).toThrowError(/gone/);
    expect(live.size).toBe(0);
    expect(registry.size).toBe(0);
  });

  it('a watch ends when every cgroup it follows is gone', () => {
    const { registry, owner, fire, live } = fixture();
    const a = owner(0);
    registry.add(a, 'w', [target('/w', 'emptied'), target('/w2', 'oom')]);
    fire('/w', 'emptied', { kind: 'gone' });
    expect(registry.has(a, 'w')).toBe(true);
    fire('/w2', 'oom', { kind: 'gone' });
    expect(registry.has(a, 'w')).toBe(false);
    expect(registry.size).toBe(0);
    expect(a.got).toEqual([]);
    live.clear();
  });
});
