// Rename races against what a request does after its check, beyond the single write that
// races.test.ts covers: the freezer's walk (Freeze, Kill) and Setup's rollback (tasks moved
// back, cgroups it made removed). As there, delegated uid 1000 swaps its own cgroup with
// root's `rootchild` (cgroup v1 lets the owner of a directory rename the cgroups in it) while
// the daemon sits in the hidden --test-check-pause window; the daemon must go on acting on
// what it checked, and root's cgroups and tasks must stay exactly as root left them.
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableV1Controllers, isAlive, skipReason, titled, type LongLived } from '../helpers';
import { Attacker, attackerPath, type AttackReply } from '../helpers/attacker';
import { A, startScene, type Scene } from './fixture';

const reason = skipReason({ cgroup2: true, named: 1 });
const PAUSE_MS = 300;
const NO = 0xffffffff;

describe.skipIf(reason !== undefined)(titled('rename races against acts after the check (freezer walk, Setup rollback)', reason), () => {
  let s: Scene;
  let swapper: Attacker;
  beforeAll(async () => {
    s = await startScene(['--test-check-pause', String(PAUSE_MS)], ['cpu', 'freezer']);
    swapper = await Attacker.onHost(s.env, A, 'deleg');
  }, 60_000);
  afterAll(async () => {
    await swapper?.stop();
    await s?.stop();
  });

  const swapOf = (label: string, a: string, b: string) =>
    ({ op: 'swap', a: attackerPath(s.env, label, `deleg/${a}`), b: attackerPath(s.env, label, `deleg/${b}`), tmp: attackerPath(s.env, label, 'deleg/swap-tmp'), ms: 0, times: 1 }) as const;

  /** Sends the request, swaps `a` and `b` while it sits in the check pause, waits for the reply, swaps back. */
  async function raced(label: string, a: string, b: string, request: () => Promise<AttackReply>): Promise<AttackReply> {
    const pending = request();
    await sleep(PAUSE_MS / 3);
    expect(await swapper.request(swapOf(label, a, b)), `${label} swap`).toMatchObject({ ok: true, swaps: 1 });
    const reply = await pending;
    expect(await swapper.request(swapOf(label, a, b)), `${label} swap back`).toMatchObject({ ok: true, swaps: 1 });
    return reply;
  }

  const freezerReason = availableV1Controllers(['freezer']).length === 0 ? 'no v1 freezer on this host' : undefined;

  it.skipIf(freezerReason !== undefined)('Kill of its own cgroup renamed under it kills its own tasks, never root\'s', async () => {
    const rootTask = await s.env.spawn(['sleep', '600'], { at: 'deleg/rootchild' });
    const ownTask = await s.env.spawn(['sleep', '600'], { uid: A, at: 'deleg/mine' });
    try {
      const reply = await raced('freezer', 'mine', 'rootchild', () => s.attacker.call('Kill', ['mine']));
      expect(reply.ok, JSON.stringify(reply)).toBe(true);
      expect(isAlive(rootTask.pid), "root's task in root's cgroup was killed").toBe(true);
      expect(fs.readFileSync(s.env.fsPath('freezer', 'deleg/rootchild', 'freezer.state'), 'utf8').trim()).toBe('THAWED');
      // It did kill what it checked: its own cgroup's task.
      for (let i = 0; i < 100 && isAlive(ownTask.pid); i++) await sleep(20);
      expect(isAlive(ownTask.pid)).toBe(false);
    } finally {
      fs.writeFileSync(s.env.fsPath('freezer', 'deleg/rootchild', 'freezer.state'), 'THAWED');
      await rootTask.stop();
      await ownTask.stop();
    }
  }, 60_000);

  it.skipIf(freezerReason !== undefined)('Freeze of its own cgroup renamed under it freezes its own, never root\'s', async () => {
    const rootTask = await s.env.spawn(['sleep', '600'], { at: 'deleg/rootchild' });
    try {
      const before = s.snapshot();
      const reply = await raced('freezer', 'mine', 'rootchild', () => s.attacker.call('Freeze', ['mine']));
      expect(reply.ok, JSON.stringify(reply)).toBe(true);
      expect(fs.readFileSync(s.env.fsPath('freezer', 'deleg/rootchild', 'freezer.state'), 'utf8').trim(), "root's cgroup frozen").toBe('THAWED');
      expect(fs.readFileSync(s.env.fsPath('freezer', 'deleg/mine', 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
      const thawed = await s.attacker.call('Thaw', ['mine']);
      expect(thawed.ok, JSON.stringify(thawed)).toBe(true);
      expect(s.snapshot()).toEqual(before);
    } finally {
      await s.attacker.call('Thaw', ['mine']);
      // Had the attack worked, root's cgroup is frozen: thaw it (as root) so its task can be stopped.
      fs.writeFileSync(s.env.fsPath('freezer', 'deleg/rootchild', 'freezer.state'), 'THAWED');
      await rootTask.stop();
    }
  }, 60_000);

  it("Setup's rollback moves a task back into the cgroup it came from, not into root's cgroup renamed to that name", async () => {
    const ownTask: LongLived = await s.env.spawn(['sleep', '600'], { uid: A, at: 'deleg/mine' });
    try {
      const before = s.snapshot();
      // The first pid is checked, held in the pause (the swap happens), moved; the second is
      // root's task and refused, so everything is undone.
      const reply = await raced(s.NAMED, 'mine', 'rootchild', () => s.attacker.call('Setup', [s.NAMED, 'x', NO, NO, [], [ownTask.pid, s.rootVictim.pid]]));
      expect(reply, JSON.stringify(reply)).toMatchObject({ ok: false, errorName: 'org.freedesktop.DBus.Error.AccessDenied' });
      expect(fs.readFileSync(s.env.fsPath(s.NAMED, 'deleg/rootchild', 'cgroup.procs'), 'utf8'), "task moved into root's cgroup").toBe('');
      expect(s.env.cgroupOf(ownTask.pid, s.NAMED)).toBe(s.abs(s.NAMED, 'deleg/mine'));
      expect(s.snapshot()).toEqual(before);
    } finally {
      await ownTask.stop();
    }
  }, 60_000);

  it("Setup's rollback removes the cgroups it made, not root's cgroups renamed to their names", async () => {
    const made = await s.env.dbusSend('Create', 'ss', [s.NAMED, 'deleg/rootchild/b']);
    expect(made.code, made.stderr).toBe(0);
    const ownTask = await s.env.spawn(['sleep', '600'], { uid: A, at: 'deleg' });
    try {
      const before = s.snapshot();
      const rootB = fs.statSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/b')).ino;
      const reply = await raced(s.NAMED, 'a', 'rootchild', () => s.attacker.call('Setup', [s.NAMED, 'a/b', NO, NO, [], [ownTask.pid, s.rootVictim.pid]]));
      expect(reply, JSON.stringify(reply)).toMatchObject({ ok: false, errorName: 'org.freedesktop.DBus.Error.AccessDenied' });
      expect(fs.existsSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/b')), "root's cgroup removed").toBe(true);
      expect(fs.statSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/b')).ino).toBe(rootB);
      expect(fs.existsSync(s.env.fsPath(s.NAMED, 'deleg/a/b')), 'the cgroup Setup made is gone').toBe(false);
      // What the rollback left: its own 'a' (renamed to 'rootchild' at the time, so not removed), A's.
      const left = s.snapshot();
      expect(Object.keys(left).filter((k) => !(k in before)).every((k) => k.includes('/deleg/a')), 'only A\'s own a is new').toBe(true);
      expect(Object.fromEntries(Object.entries(left).filter(([k]) => !k.includes('/deleg/a')))).toEqual(before);
    } finally {
      await ownTask.stop();
      for (const rel of ['deleg/a/b', 'deleg/a', 'deleg/rootchild/b']) {
        try {
          fs.rmdirSync(s.env.fsPath(s.NAMED, rel));
        } catch {
          // not there
        }
      }
    }
  }, 60_000);

  /** Makes `rel` (below the base) as root, in the named hierarchy only. */
  async function rootMakes(rel: string): Promise<void> {
    const made = await s.env.dbusSend('Create', 'ss', [s.NAMED, rel]);
    expect(made.code, made.stderr).toBe(0);
  }
  const rmdirQuietly = (rel: string): void => {
    try {
      fs.rmdirSync(s.env.fsPath(s.NAMED, rel));
    } catch {
      // not there
    }
  };
  const flagOf = (rel: string): string => fs.readFileSync(s.env.fsPath(s.NAMED, rel, 'notify_on_release'), 'utf8').trim();

  it("Remove of its own cgroup's child renamed under it removes its own, never root's", async () => {
    await rootMakes('deleg/rootchild/y');
    const made = await s.attacker.call('Create', [s.NAMED, 'mine/y']);
    expect(made.ok, JSON.stringify(made)).toBe(true);
    try {
      const rootY = fs.statSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/y')).ino;
      const before = s.snapshot();
      const reply = await raced(s.NAMED, 'mine', 'rootchild', () => s.attacker.call('Remove', [s.NAMED, 'mine/y', 1]));
      expect(reply.ok, JSON.stringify(reply)).toBe(true);
      expect(fs.existsSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/y')), "root's cgroup removed").toBe(true);
      expect(fs.statSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/y')).ino).toBe(rootY);
      expect(fs.existsSync(s.env.fsPath(s.NAMED, 'deleg/mine/y')), 'its own is removed').toBe(false);
      const left = s.snapshot();
      expect(Object.keys(before).filter((k) => !(k in left)).every((k) => k.includes('/deleg/mine/y')), 'only mine/y is gone').toBe(true);
    } finally {
      rmdirQuietly('deleg/mine/y');
      rmdirQuietly('deleg/rootchild/y');
    }
  }, 60_000);

  it("Prune of its own cgroup renamed under it prunes and marks its own, never root's", async () => {
    await rootMakes('deleg/rootchild/z');
    try {
      const rootZ = fs.statSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/z')).ino;
      const reply = await raced(s.NAMED, 'mine', 'rootchild', () => s.attacker.call('Prune', [s.NAMED, 'mine']));
      expect(reply.ok, JSON.stringify(reply)).toBe(true);
      expect(fs.existsSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/z')), "root's cgroup removed").toBe(true);
      expect(fs.statSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/z')).ino).toBe(rootZ);
      expect(flagOf('deleg/rootchild'), "root's cgroup marked to go").toBe('0');
      expect(flagOf('deleg/rootchild/z'), "root's cgroup marked to go").toBe('0');
    } finally {
      rmdirQuietly('deleg/rootchild/z');
      // Its own 'mine' may now be marked (it is A's to mark); back as the scene had it.
      if (fs.existsSync(s.env.fsPath(s.NAMED, 'deleg/mine'))) fs.writeFileSync(s.env.fsPath(s.NAMED, 'deleg/mine', 'notify_on_release'), '0');
    }
    expect(fs.existsSync(s.env.fsPath(s.NAMED, 'deleg/mine')), 'prune removed its own empty cgroup: the scene needs it').toBe(true);
  }, 60_000);
});

// Create walks its path one cgroup at a time: the parent it checked is the parent it makes the
// new cgroup in (and chowns it in), even if A renames its cgroups between that check and the mkdir.
describe.skipIf(reason !== undefined)(titled('rename races against Create\'s walk', reason), () => {
  let s: Scene;
  let swapper: Attacker;
  beforeAll(async () => {
    s = await startScene(['--test-create-check-pause', String(PAUSE_MS)]);
    swapper = await Attacker.onHost(s.env, A, 'deleg');
  }, 60_000);
  afterAll(async () => {
    await swapper?.stop();
    await s?.stop();
  });

  it("Create of a child of its own cgroup renamed under it makes it there, never in root's cgroup", async () => {
    const swap = { op: 'swap', a: attackerPath(s.env, s.NAMED, 'deleg/mine'), b: attackerPath(s.env, s.NAMED, 'deleg/rootchild'), tmp: attackerPath(s.env, s.NAMED, 'deleg/swap-tmp'), ms: 0, times: 1 } as const;
    const before = s.snapshot();
    const pending = s.attacker.call('Create', [s.NAMED, 'mine/x']);
    await sleep(PAUSE_MS / 3);
    expect(await swapper.request(swap)).toMatchObject({ ok: true, swaps: 1 });
    const reply = await pending;
    expect(await swapper.request(swap)).toMatchObject({ ok: true, swaps: 1 });
    try {
      expect(reply.ok, JSON.stringify(reply)).toBe(true);
      expect(fs.existsSync(s.env.fsPath(s.NAMED, 'deleg/rootchild/x')), "a cgroup made in root's cgroup").toBe(false);
      expect(fs.statSync(s.env.fsPath(s.NAMED, 'deleg/mine/x')).uid).toBe(A);
      const left = s.snapshot();
      expect(Object.keys(left).filter((k) => !(k in before)).every((k) => k.includes('/deleg/mine/x')), 'only mine/x is new').toBe(true);
      expect(Object.fromEntries(Object.entries(left).filter(([k]) => !k.includes('/deleg/mine/x')))).toEqual(before);
    } finally {
      for (const rel of ['deleg/mine/x', 'deleg/rootchild/x']) {
        try {
          fs.rmdirSync(s.env.fsPath(s.NAMED, rel));
        } catch {
          // not there
        }
      }
    }
  }, 60_000);
});
