// cgmanager1 from delegated uid 1000, plain and Scm: Setup, Stats, Freeze, Thaw and Kill
// aimed outside its delegation (the parent, the prefix neighbour, root's child inside its
// subtree, root's task) are refused with their named error, and a refused Setup leaves
// nothing behind (the cgroups it made removed, nothing moved or chowned). What it owns
// wholly it may set up, freeze and stat.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, skipReason, titled } from '../helpers';
import { attackUnchanged, expectKernelRefused, expectRefused, startScene, type ErrorKey, type Scene } from './fixture';

const reason = skipReason({ cgroup2: true, named: 1 });
const NO = 0xffffffff;

type Row = { what: string; method: string; args: (s: Scene) => unknown[]; error: ErrorKey; scmKernel?: true };

const setup = (cg: string, extra: { uid?: number; gid?: number; limits?: Array<[string, string]>; pids?: (s: Scene) => number[] } = {}): Pick<Row, 'method' | 'args'> => ({
  method: 'Setup',
  args: (s) => ['all', cg, extra.uid ?? NO, extra.gid ?? NO, extra.limits ?? [], extra.pids?.(s) ?? []],
});

const rows: Row[] = [
  { what: 'Setup of a path with ..', ...setup('../delegb/x'), error: 'InvalidArgs' },
  { what: "Setup below root's child inside its subtree", ...setup('rootchild/x'), error: 'AccessDenied' },
  // Its limits stay root's: Setup writes them with the caller's access, as SetValue does.
  { what: "Setup (limits) of root's child inside its subtree", ...setup('rootchild', { limits: [['cpu.shares', '512']] }), error: 'AccessDenied' },
  // Each of these makes a cgroup first, then is refused: the cgroup must be gone again.
  { what: 'Setup that chowns (non-root): the new cgroup is removed again', ...setup('mine-chown', { uid: 1000, gid: 1000 }), error: 'AccessDenied' },
  { what: "Setup that moves root's task: the new cgroup is removed again", ...setup('mine-move', { pids: (s) => [s.rootVictim.pid] }), error: 'AccessDenied', scmKernel: true },
  { what: "Setup that moves uid 2000's task", ...setup('mine-move2', { pids: (s) => [s.victimB.pid] }), error: 'AccessDenied', scmKernel: true },
  { what: 'Stats of the parent (absolute)', method: 'Stats', args: (s) => ['all', s.abs(s.NAMED)], error: 'AccessDenied' },
  { what: 'Stats of the prefix neighbour (absolute)', method: 'Stats', args: (s) => [s.NAMED, s.abs(s.NAMED, 'delegb')], error: 'AccessDenied' },
  { what: 'Freeze of its delegated cgroup (cgroup.freeze is root\'s)', method: 'Freeze', args: () => [''], error: 'AccessDenied' },
  { what: "Freeze of root's child", method: 'Freeze', args: () => ['rootchild'], error: 'AccessDenied' },
  { what: 'Freeze of the prefix neighbour (absolute)', method: 'Freeze', args: (s) => [s.abs('unified', 'delegb')], error: 'AccessDenied' },
  { what: 'Thaw of the parent', method: 'Thaw', args: () => ['..'], error: 'InvalidArgs' },
  { what: 'Kill of its delegated cgroup, with root\'s task in it', method: 'Kill', args: () => [''], error: 'AccessDenied' },
  { what: "Kill of root's child", method: 'Kill', args: () => ['rootchild'], error: 'AccessDenied' },
  { what: 'Kill of the prefix neighbour (absolute)', method: 'Kill', args: (s) => [s.abs('unified', 'delegb')], error: 'AccessDenied' },
];

describe.skipIf(reason !== undefined)(titled('cgmanager1 calls from delegated uid 1000', reason), () => {
  let s: Scene;
  beforeAll(async () => {
    s = await startScene();
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  describe.each([false, true])('scm: %s', (scm) => {
    it.each(rows)('$what is refused, and nothing changes', async (row) => {
      const reply = await attackUnchanged(s, () => s.attacker.call(row.method, row.args(s), scm));
      // A pid the attacker may not name as a credential: the kernel refuses before the daemon is asked.
      if (scm && row.scmKernel) expectKernelRefused(reply, 'EPERM', row.what);
      else expectRefused(reply, row.error, scm, row.what);
      expect(isAlive(s.rootVictim.pid) && isAlive(s.victimB.pid)).toBe(true);
    });
  });

  it('what it owns wholly it may set up, stat, freeze and thaw (and a failed Setup there changes nothing)', async () => {
    const made = await s.attacker.call('Setup', ['all', 'mine/ok', NO, NO, [], [s.ownOutside.pid]]);
    // Its own task outside its delegation cannot be moved in: refused, and mine/ok is gone again.
    expectRefused(made, 'AccessDenied', false);
    expect(s.snapshot()).toEqual(s.baseline);
    const good = await s.attacker.call('Setup', ['all', 'mine/ok', NO, NO, [], []]);
    expect(good.ok, JSON.stringify(good)).toBe(true);
    const stats = await s.attacker.call('Stats', ['all', 'mine/ok'], true);
    expect(stats.ok, JSON.stringify(stats)).toBe(true);
    for (const method of ['Freeze', 'Thaw']) {
      const r = await s.attacker.call(method, ['mine/ok']);
      expect(r.ok, `${method} ${JSON.stringify(r)}`).toBe(true);
    }
    const removed = await s.attacker.call('Remove', ['all', 'mine/ok', 0]);
    expect(removed.ok, JSON.stringify(removed)).toBe(true);
    expect(s.snapshot()).toEqual(s.baseline);
  });
});
