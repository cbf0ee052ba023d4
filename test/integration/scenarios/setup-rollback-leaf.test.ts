// Setup's rollback on a cgroup2 hierarchy with the hidden leaf, beside a private named v1
// hierarchy: needs a cgroup2 mount (with or without controllers), so it runs on this host's
// controller-less cgroup2 and on v2 in the UML lane, not on the pure v1 layouts.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type CgmanagerClient } from '../../../client';
import { skipReason, startTestDaemon, titled, type TestDaemon } from '../../helpers';

const OWNER = { uid: 1000, gid: 1000 };

// This host's cgroup2 has no controllers, but it holds tasks in the hidden leaf like any v2
// hierarchy: a Setup that fails after moving a task puts the task back and removes the leaf
// and the cgroup it made (a private named v1 hierarchy beside it).
describe('Setup rollback on cgroup2 with the hidden leaf', () => {
  const reason = skipReason({ cgroup2: true, named: 1 });
  describe.skipIf(reason !== undefined)(titled('on a private cgroup2 mount', reason), () => {
    let env: TestDaemon;
    let client: CgmanagerClient;
    beforeAll(async () => {
      env = await startTestDaemon({ cgroup2: true, named: 1 });
      client = await connect({ socket: env.socket });
    }, 60_000);
    afterAll(async () => {
      await client?.close();
      await env?.stop();
    });

    it.each(['plain', 'scm'] as const)('moves the task back and removes leaf and cgroup (%s)', async (route) => {
      const c = await connect({ socket: env.socket, route });
      try {
        const task = await env.spawn(['sleep', '600']);
        const gone = await env.spawn(['sleep', '600']);
        await gone.stop();
        const name = `rb-${route}`;
        const before = new Map(env.labels.map((label) => [label, env.cgroupOf(task.pid, label)]));
        const err = await c.setup('all', `${env.baseName}/${name}`, { pids: [task.pid, gone.pid] }).then(() => undefined, (e: unknown) => e);
        expect(err).toMatchObject({ code: 'UnixProcessIdUnknown' });
        for (const label of env.labels) {
          expect(fs.existsSync(env.fsPath(label, name)), label).toBe(false);
          expect(env.cgroupOf(task.pid, label), label).toBe(before.get(label));
        }
        // Without the dead pid it works, and the task lands in the v2 leaf.
        const report = await c.setup('all', `${env.baseName}/${name}`, { pids: [task.pid] });
        expect(report.created.length).toBe(env.labels.length);
        expect(env.cgroupOf(task.pid, 'unified')).toBe(env.cgPath('unified', `${name}/.cgm_leaf`));
        const stats = await c.stats('unified', `${env.baseName}/${name}`);
        expect(stats).toMatchObject({ populated: true, frozen: false });
        expect(stats['cpu.usage_usec']).toBeGreaterThanOrEqual(0);
        await c.freeze(`${env.baseName}/${name}`);
        expect(fs.readFileSync(env.fsPath('unified', name, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
        await c.kill(`${env.baseName}/${name}`);
        expect((await task.result).signal).toBe('SIGKILL');
        expect(await c.stats('unified', `${env.baseName}/${name}`)).toMatchObject({ populated: false });
      } finally {
        await c.close();
      }
    });

    // Setup chowns through the cgroup it made and opened, without looking at each file first,
    // and makes the v2 leaf for the moved task from what that opening says after the chown.
    it('hands the new cgroup, its delegated files and the leaf made for its task to the owner', async () => {
      const task = await env.spawn(['sleep', '600']);
      const name = 'owned';
      const report = await client.setup('all', `${env.baseName}/${name}`, { owner: OWNER, pids: [task.pid] });
      expect(report.created.length).toBe(env.labels.length);
      const ownerOf = (label: (typeof env.labels)[number], file?: string): [number, number] => {
        const st = fs.statSync(env.fsPath(label, name, file));
        return [st.uid, st.gid];
      };
      const owner: [number, number] = [OWNER.uid, OWNER.gid];
      for (const label of env.labels) {
        expect(ownerOf(label), label).toEqual(owner);
        expect(ownerOf(label, 'cgroup.procs'), label).toEqual(owner);
        if (label === 'unified') {
          for (const file of ['cgroup.subtree_control', 'cgroup.threads', '.cgm_leaf', '.cgm_leaf/cgroup.procs']) expect(ownerOf(label, file), file).toEqual(owner);
          expect(env.cgroupOf(task.pid, label)).toBe(env.cgPath(label, `${name}/.cgm_leaf`));
          // what is not delegated stays root's
          expect(ownerOf(label, 'cgroup.max.depth')).toEqual([0, 0]);
        } else {
          expect(ownerOf(label, 'tasks'), label).toEqual(owner);
          expect(ownerOf(label, 'notify_on_release'), label).toEqual([0, 0]);
          expect(env.cgroupOf(task.pid, label)).toBe(env.cgPath(label, name));
        }
      }
      await task.stop();
    });
  });
});
