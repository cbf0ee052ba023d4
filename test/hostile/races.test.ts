// Rename races of delegated uid 1000 against the daemon's checks. cgroup v1 lets the owner of a
// directory rename the cgroups in it (only within the same parent; cgroup2 refuses rename
// altogether), so A can swap the names of its own child `mine` and root's `rootchild` while a
// request that names `mine` sits between its permission check and its write. The daemon runs
// here with the hidden --test-check-pause, which holds every SetValue, Chmod, Chown and MovePid
// in exactly that window, so the race is won every time it is tried rather than once in a
// million: the write must still land on the cgroup that was checked (A's), and root's cgroup
// must stay exactly as root left it.
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason, titled, type LongLived } from '../helpers';
import { Attacker, attackerPath } from '../helpers/attacker';
import { A, startScene, type Scene } from './fixture';

const reason = skipReason({ cgroup2: true, named: 1 });
const PAUSE_MS = 300;

describe.skipIf(reason !== undefined)(titled('rename races of uid 1000 against the daemon', reason), () => {
  let s: Scene;
  let swapper: Attacker;
  let ownTask: LongLived;
  beforeAll(async () => {
    s = await startScene(['--test-check-pause', String(PAUSE_MS)]);
    swapper = await Attacker.onHost(s.env, A, 'deleg');
    ownTask = await s.env.spawn(['sleep', '600'], { uid: A, at: 'deleg' });
  });
  afterAll(async () => {
    await swapper?.stop();
    await s?.stop();
  });

  it('rename is confined: not across parents, not of the delegated cgroup itself, not at all on cgroup2', async () => {
    const before = s.snapshot();
    const at = (label: string, rel: string): string => attackerPath(s.env, label, rel);
    for (const label of new Set([s.NAMED, s.V1])) {
      // Out of its subtree: the kernel wants write access to the base too (EACCES), and cgroup1 refuses other parents.
      const out = await swapper.request({ op: 'swap', a: at(label, 'deleg/mine'), b: at(label, 'delegb'), tmp: at(label, 'stolen'), ms: 0, times: 1 });
      expect(out, label).toMatchObject({ ok: false, swaps: 0 });
      const self = await swapper.request({ op: 'swap', a: at(label, 'deleg'), b: at(label, 'delegb'), tmp: at(label, 'deleg2'), ms: 0, times: 1 });
      expect(self, label).toMatchObject({ ok: false, code: 'EACCES', swaps: 0 });
    }
    const v2 = await swapper.request({ op: 'swap', a: at('unified', 'deleg/mine'), b: at('unified', 'deleg/rootchild'), tmp: at('unified', 'deleg/tmp'), ms: 0, times: 1 });
    expect(v2).toMatchObject({ ok: false, code: 'EPERM', swaps: 0 });
    expect(s.snapshot()).toEqual(before);
  });

  type Race = { method: string; args: (label: string, key: string) => unknown[] };
  const races: Race[] = [
    { method: 'SetValue', args: (label, key) => [label, 'mine', key, label.startsWith('name=') ? '1' : '1024'] },
    { method: 'Chmod', args: (label, key) => [label, 'mine', key, 0o666] },
    { method: 'MovePid', args: (label) => [label, 'mine', ownTask.pid] },
  ];
  const labels = (): string[] => [...new Set([s.NAMED, s.V1])];
  const keyOf = (label: string): string => (label.startsWith('name=') ? 'cgroup.clone_children' : 'cpu.shares');

  it.each(races)('$method checked on A\'s cgroup and renamed under it acts on A\'s cgroup, never on root\'s', async ({ method, args }) => {
    for (const label of labels()) {
      const key = keyOf(label);
      const dir = (rel: string): string => s.env.fsPath(label, `deleg/${rel}`);
      const rootIno = fs.statSync(dir('rootchild')).ino;
      const rootBefore = { value: fs.readFileSync(`${dir('rootchild')}/${key}`, 'utf8'), mode: fs.statSync(`${dir('rootchild')}/${key}`).mode };
      const swap = { op: 'swap', a: attackerPath(s.env, label, 'deleg/mine'), b: attackerPath(s.env, label, 'deleg/rootchild'), tmp: attackerPath(s.env, label, 'deleg/swap-tmp'), ms: 0, times: 1 } as const;
      let won = false;
      // The request must reach its check before the swap; under heavy load it may not, and is then refused: try again.
      for (let attempt = 0; attempt < 5 && !won; attempt++) {
        const request = s.attacker.call(method, args(label, key));
        await sleep(PAUSE_MS / 3);
        expect(await swapper.request(swap), `${label} swap`).toMatchObject({ ok: true, swaps: 1 });
        const reply = await request;
        // While swapped, 'mine' names root's cgroup; swap back before looking.
        expect(await swapper.request(swap), `${label} swap back`).toMatchObject({ ok: true, swaps: 1 });
        expect(fs.statSync(dir('rootchild')).ino).toBe(rootIno);
        won = reply.ok;
      }
      expect(won, `${method} on ${label} never passed its check before the swap`).toBe(true);
      const rootAfter = { value: fs.readFileSync(`${dir('rootchild')}/${key}`, 'utf8'), mode: fs.statSync(`${dir('rootchild')}/${key}`).mode };
      expect(rootAfter, `root's ${label} cgroup after ${method}`).toEqual(rootBefore);
      expect(fs.readFileSync(`${dir('rootchild')}/cgroup.procs`, 'utf8'), `tasks moved into root's ${label} cgroup`).toBe('');
      for (const f of fs.readdirSync(dir('rootchild'))) expect(fs.statSync(`${dir('rootchild')}/${f}`).uid, f).toBe(0);
      // ...and it did act, on A's own cgroup, which it had checked.
      if (method === 'SetValue') expect(fs.readFileSync(`${dir('mine')}/${key}`, 'utf8').trim()).toBe(label.startsWith('name=') ? '1' : '1024');
      if (method === 'Chmod') expect(fs.statSync(`${dir('mine')}/${key}`).mode & 0o777).toBe(0o666);
      if (method === 'MovePid') expect(s.env.cgroupOf(ownTask.pid, label)).toBe(s.abs(label, 'deleg/mine'));
    }
  }, 60_000);

  // Pid reuse: the victim exits between the check and the write. The daemon holds it by a pidfd
  // taken before the check, so it notices the exit itself instead of writing a pid that a new
  // process might own by then (the kernel's ESRCH would only catch the case without reuse).
  it('a victim that exits between the check and the write: UnixProcessIdUnknown, nothing moves', async () => {
    const victim = await s.env.spawn(['sleep', '600'], { uid: A, at: 'deleg' });
    const before = s.snapshot();
    const request = s.attacker.call('MovePid', [s.NAMED, 'mine', victim.pid]);
    await sleep(PAUSE_MS / 3);
    await victim.stop();
    const reply = await request;
    expect(reply, JSON.stringify(reply)).toMatchObject({ ok: false, errorName: 'org.freedesktop.DBus.Error.UnixProcessIdUnknown' });
    expect(JSON.stringify(reply)).toContain(`process ${victim.pid} exited during the call`);
    const after = s.snapshot();
    // The victim left its member lists by exiting; nothing else changed, and it was never in 'mine'.
    const pid = String(victim.pid);
    const without = (x: typeof before): typeof before =>
      Object.fromEntries(Object.entries(x).map(([k, e]) => [k, e.value === undefined ? e : { ...e, value: e.value.split('\n').filter((l) => l !== pid).join('\n') }]));
    expect(without(after)).toEqual(without(before));
  });
});
