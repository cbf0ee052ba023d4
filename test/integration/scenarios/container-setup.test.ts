// cgmanager1 on a real layout (this host's v1 controllers natively; v2, and v1 co-mounted, in the UML lane):
// Setup makes, delegates, limits and populates a container's cgroup in one call and leaves
// nothing behind when any step fails; Stats reads its usage in v2's names; Freeze, Thaw and
// Kill act on the whole subtree and answer once the kernel has settled. Plain calls and the
// Scm forms (the client's 'scm' route) alike.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type CgmanagerClient } from '../../../client';
import { waitFor, type LongLived } from '../../helpers';
import { describeOnEachLayout, type Kind } from './scenario-layout';

const OWNER = { uid: 1000, gid: 1000 };

describeOnEachLayout('container setup in one call (cgmanager1)', (s, layout) => {
  let kinds: Kind[];
  let controllers: string;
  beforeAll(() => {
    kinds = (['memory', 'cpu', 'pids', 'freezer'] as const).filter((k) => s().has(k));
    controllers = layout === 'v1' ? kinds.join(',') : 'unified';
  });

  const rel = (name: string): string => `${s().env.baseName}/${name}`;
  /** v1 controllers may share a hierarchy (cpu,cpuacct; all in one): Setup works per hierarchy. */
  const sameHierarchy = (a: Kind, b: Kind): boolean => s().file(a, '', '') === s().file(b, '', '');
  const hierarchyCount = (): number => new Set(kinds.map((k) => s().file(k, '', ''))).size;
  const exists = (kind: Kind, name: string): boolean => fs.existsSync(s().file(kind, name, 'cgroup.procs'));
  /** where the kernel has the task, relative to the base ('' for the base itself) */
  const placeOf = (pid: number, kind: Kind): string | undefined => {
    const cg = s().env.cgroupOf(pid, s().label(kind));
    const base = s().env.cgPath(s().label(kind));
    if (cg === undefined || !cg.startsWith(base)) return cg;
    return cg.slice(base.length).replace(/^\//, '').replace(/(^|\/)\.cgm_leaf$/, '');
  };
  // The same limits on both versions, some in the other version's names (translated).
  const LIMITS = { 'memory.max': '64M', 'pids.max': '50', 'cpu.shares': '512' };
  const expectedApplied = (): Record<string, string> =>
    layout === 'v1'
      ? { 'memory.max': 'memory.limit_in_bytes', 'pids.max': 'pids.max', 'cpu.shares': 'cpu.shares' }
      : { 'memory.max': 'memory.max', 'pids.max': 'pids.max', 'cpu.shares': 'cpu.weight' };

  async function sleeper(): Promise<LongLived> {
    return s().env.spawn(['sleep', '600']);
  }

  describe.each(['plain', 'scm'] as const)('through the %s route', (route) => {
    let client: CgmanagerClient;
    beforeAll(async () => {
      client = await connect({ socket: s().env.socket, route });
    });
    afterAll(async () => {
      await client?.close();
    });
    const name = (n: string): string => `${n}-${route}`;

    it('makes, delegates, limits and populates the cgroup in every hierarchy, and reports it', async () => {
      const task = await sleeper();
      const c = name('c1');
      const report = await client.setup(controllers, rel(c), { owner: OWNER, limits: LIMITS, pids: [task.pid] });
      expect(report.existed).toEqual([]);
      expect(report.created.length).toBe(hierarchyCount());
      expect(report.applied).toEqual(expectedApplied());
      expect(report.moved).toEqual([task.pid]);
      for (const kind of kinds) {
        expect(exists(kind, c)).toBe(true);
        const st = fs.statSync(s().file(kind, c, 'cgroup.procs'));
        expect([st.uid, st.gid]).toEqual([OWNER.uid, OWNER.gid]);
        expect(fs.statSync(s().file(kind, c, '')).uid).toBe(OWNER.uid);
        expect(placeOf(task.pid, kind)).toBe(c);
      }
      expect(s().read('pids', c, 'pids.max')).toBe('50');
      expect(s().read('memory', c, layout === 'v1' ? 'memory.limit_in_bytes' : 'memory.max')).toBe(String(64 * 1024 * 1024));
      if (layout === 'v1') expect(s().read('cpu', c, 'cpu.shares')).toBe('512');
      else expect(Number(s().read('cpu', c, 'cpu.weight'))).toBe(1 + Math.floor(((512 - 2) * 9999) / 262142));
      // The scm route really went through the Scm form, with the owner and the pid as credentials.
      const method = route === 'scm' ? 'SetupScm' : 'Setup';
      expect(await waitFor(() => s().env.logLines().some((l) => l.method === method && l.cgroup === rel(c) && l.outcome === 'ok'), 2000, 20)).toBe(true);
      await task.stop();
    });

    it('reports the usage in v2 names; Freeze, Thaw and Kill settle before they answer', async () => {
      const task = await sleeper();
      const c = name('c2');
      await client.setup(controllers, rel(c), { pids: [task.pid] });
      const stats = await client.stats(controllers, rel(c));
      expect(stats.populated).toBe(true);
      expect(stats['pids.current']).toBeGreaterThanOrEqual(1);
      // A task moved in keeps its earlier memory charged elsewhere (v1), so 0 is possible.
      expect(stats['memory.current']).toBeGreaterThanOrEqual(0);
      expect(stats['memory.peak'] === undefined || stats['memory.peak'] >= (stats['memory.current'] ?? 0)).toBe(true);
      if (layout === 'v2') expect(stats['cpu.usage_usec']).toBeGreaterThanOrEqual(0);
      if (s().has('freezer')) {
        expect(stats.frozen).toBe(false);
        await client.freeze(rel(c));
        expect(layout === 'v1' ? s().read('freezer', c, 'freezer.state') : s().read('freezer', c, 'cgroup.events')).toMatch(layout === 'v1' ? /^FROZEN$/ : /^frozen 1$/m);
        expect((await client.stats(controllers, rel(c))).frozen).toBe(true);
        await client.thaw(rel(c));
        expect((await client.stats(controllers, rel(c))).frozen).toBe(false);
        await client.kill(rel(c));
        // Kill answers once the subtree is empty.
        expect((await client.stats(controllers, rel(c))).populated).toBe(false);
        expect((await task.result).signal).toBe('SIGKILL');
      } else {
        await task.stop();
      }
    });

    it('leaves nothing behind when a limit value is refused by the kernel', async () => {
      const task = await sleeper();
      const c = name('bad-value');
      const err = await client.setup(controllers, rel(c), { owner: OWNER, limits: { 'pids.max': 'lots' }, pids: [task.pid] }).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'InvalidArgs' });
      for (const kind of kinds) {
        expect(exists(kind, c)).toBe(false);
        expect(placeOf(task.pid, kind)).toBe('');
      }
      await task.stop();
    });

    it('names an unknown limit key, and leaves nothing behind', async () => {
      const c = name('bad-key');
      const err = await client.setup(controllers, rel(c), { limits: { 'pids.max': '10', 'memory.nosuch': '1' } }).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'InvalidArgs' });
      expect((err as Error).message).toContain('memory.nosuch');
      for (const kind of kinds) expect(exists(kind, c)).toBe(false);
    });

    it('on an existing cgroup, a failing move restores values, owners and tasks, and keeps the cgroup', async () => {
      const c = name('pre');
      await client.create(controllers, rel(c));
      await client.setValue(s().controller('pids'), rel(c), 'pids.max', '20');
      const task = await sleeper();
      // A pid that was just alive and now is not: the second move fails after everything else.
      const gone = await sleeper();
      await gone.stop();
      const err = await client
        .setup(controllers, rel(c), { owner: OWNER, limits: { 'pids.max': '30' }, pids: [task.pid, gone.pid] })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'UnixProcessIdUnknown' });
      expect(s().read('pids', c, 'pids.max')).toBe('20');
      for (const kind of kinds) {
        expect(exists(kind, c)).toBe(true);
        expect(fs.statSync(s().file(kind, c, '')).uid).toBe(0);
        expect(fs.statSync(s().file(kind, c, 'cgroup.procs')).uid).toBe(0);
        expect(placeOf(task.pid, kind)).toBe('');
      }
      // The same Setup without the dead pid succeeds and reports the cgroup as existing.
      const report = await client.setup(controllers, rel(c), { limits: { 'pids.max': '30' }, pids: [task.pid] });
      expect(report.created).toEqual([]);
      expect(report.existed.length).toBe(hierarchyCount());
      expect(s().read('pids', c, 'pids.max')).toBe('30');
      await task.stop();
      expect(await waitFor(() => placeOf(task.pid, 'pids') === undefined, 5000)).toBe(true);
    });
  });

  it('refuses a limit for a hierarchy the Setup does not name, before making anything', async () => {
    if (sameHierarchy('pids', 'memory')) return; // v2, or v1 with every controller co-mounted
    const err = await s().client.setup('pids', rel('wrong-h'), { limits: { 'memory.max': '1G' } }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'InvalidArgs' });
    expect(exists('pids', 'wrong-h')).toBe(false);
  });

  it('refuses freeze and kill keys as limits, and half-given owners', async () => {
    await expect(s().client.setup(controllers, rel('fk'), { limits: { 'cgroup.kill': '1' } })).rejects.toMatchObject({ code: 'InvalidArgs' });
    await expect(s().client.setup(controllers, rel('half'), { owner: { uid: 1000, gid: 0xffffffff } })).rejects.toMatchObject({ code: 'InvalidArgs' });
    // A leading '/' would mean "relative" to Create but "absolute" to SetValue: refused.
    await expect(s().client.setup(controllers, `/${rel('abs')}`, { limits: { 'pids.max': '5' } })).rejects.toMatchObject({ code: 'InvalidArgs' });
    for (const kind of kinds) expect(exists(kind, 'abs')).toBe(false);
    for (const kind of kinds) expect(exists(kind, 'fk') || exists(kind, 'half')).toBe(false);
  });
});
