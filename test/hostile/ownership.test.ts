// Ownership attacks of delegated uid 1000: Chown to itself or to another uid (refused: only root
// hands cgroups over), Chmod of every file of the delegated cgroup it does not own, SetValue of
// each of them, and the same done directly (write, chmod, chown) after the daemon said no. SPEC:
// Chown hands over only the directory and the task-membership files, so every other file of the
// cgroup it was given stays root's, whatever the attacker asks the daemon or the kernel.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason, titled, V2_LEAF } from '../helpers';
import { attackerPath } from '../helpers/attacker';
import { A, B, attackUnchanged, expectKernelRefused, expectRefused, startScene, type Scene } from './fixture';

const reason = skipReason({ cgroup2: true, named: 1 });

/** What Chown handed to A in each kind of hierarchy (v2: /sys/kernel/cgroup/delegate, where present). */
function handedOver(version: 1 | 2): Set<string> {
  if (version === 1) return new Set(['tasks', 'cgroup.procs']);
  const text = fs.readFileSync('/sys/kernel/cgroup/delegate', 'utf8');
  return new Set(text.split('\n').filter((l) => l !== ''));
}

/** SetValue refuses these keys by name (InvalidArgs) before it looks at owners. */
const UNSETTABLE = new Set(['tasks', 'cgroup.procs', 'cgroup.threads', 'release_agent', 'notify_on_release']);

describe.skipIf(reason !== undefined)(titled('ownership attacks from delegated uid 1000', reason), () => {
  let s: Scene;
  beforeAll(async () => {
    s = await startScene();
  });
  afterAll(async () => {
    await s?.stop();
  });

  const files = (label: string): string[] =>
    fs.readdirSync(s.env.fsPath(label, 'deleg'), { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);

  it('A owns exactly the directory and the task-membership files of the cgroup it was given', () => {
    for (const [label, base] of s.env.bases) {
      const owned = files(label).filter((f) => fs.statSync(s.env.fsPath(label, 'deleg', f)).uid === A);
      const allowed = handedOver(base.version);
      for (const f of owned) expect(allowed.has(f), `${label}: A owns ${f}`).toBe(true);
      expect(fs.statSync(s.env.fsPath(label, 'deleg')).uid, label).toBe(A);
    }
  });

  it.each([false, true])('Chmod and SetValue of every other file of the delegated cgroup are refused (scm: %s)', async (scm) => {
    for (const [label, base] of s.env.bases) {
      const allowed = handedOver(base.version);
      for (const f of files(label).filter((name) => !allowed.has(name))) {
        const chmod = await s.attacker.call('Chmod', [label, '', f, 0o666], scm);
        expectRefused(chmod, 'AccessDenied', scm, `Chmod ${label} ${f}`);
        const set = await s.attacker.call('SetValue', [label, '', f, '1'], scm);
        expectRefused(set, UNSETTABLE.has(f) ? 'InvalidArgs' : 'AccessDenied', scm, `SetValue ${label} ${f}`);
      }
    }
    expect(s.snapshot()).toEqual(s.baseline);
  });

  it('after the daemon said no, writing, chmodding and chowning those files directly fails too (the kernel)', async () => {
    for (const [label, base] of s.env.bases) {
      const allowed = handedOver(base.version);
      for (const f of files(label).filter((name) => !allowed.has(name))) {
        const file = attackerPath(s.env, label, 'deleg', f);
        const st = fs.statSync(s.env.fsPath(label, 'deleg', f));
        // A file root left writable for others would be the attacker's; there is none here.
        expect(st.mode & 0o002, `${label} ${f} is world-writable`).toBe(0);
        const write = await s.attacker.request({ op: 'write', path: file, value: '1' });
        expect(write, `write ${label} ${f}`).toMatchObject({ ok: false, code: 'EACCES' });
        expect(await s.attacker.request({ op: 'chmod', path: file, mode: 0o666 }), `chmod ${label} ${f}`).toMatchObject({ ok: false, code: 'EPERM' });
      }
      const tasks = attackerPath(s.env, label, 'deleg', base.version === 1 ? 'tasks' : 'cgroup.procs');
      expect(await s.attacker.request({ op: 'chown', path: tasks, uid: B, gid: B }), `chown ${label}`).toMatchObject({ ok: false, code: 'EPERM' });
      const parentProcs = attackerPath(s.env, label, '', base.version === 1 ? 'tasks' : 'cgroup.procs');
      expect(await s.attacker.request({ op: 'write', path: parentProcs, value: String(s.attacker.pid) }), `write parent ${label}`).toMatchObject({ ok: false });
    }
    expect(s.snapshot()).toEqual(s.baseline);
  });

  // Chown: only host root, or root of the caller's user namespace, hands cgroups over.
  const chowns: Array<[what: string, cg: string, uid: number]> = [
    ['its own cgroup to itself', '', A],
    ['its own cgroup to B', '', B],
    ['its own child to B', 'mine', B],
    ['its own child to root', 'mine', 0],
    ['root\'s cgroup in its subtree to itself', 'rootchild', A],
    ['a missing cgroup to itself', 'nothing', A],
  ];
  it.each(chowns)('plain Chown of %s is refused', async (_what, cg, uid) => {
    const reply = await attackUnchanged(s, () => s.attacker.call('Chown', ['all', cg, uid, uid]));
    expectRefused(reply, 'AccessDenied', false);
  });
  it.each(chowns)('ChownScm of %s is refused (by the daemon for its own ids, by the kernel for others)', async (_what, cg, uid) => {
    const reply = await attackUnchanged(s, () => s.attacker.call('Chown', ['all', cg, uid, uid], true));
    // The target ids travel as an SCM credential: claiming ids that are not ours is EPERM at sendmsg.
    if (uid === A) expectRefused(reply, 'AccessDenied', true);
    else expectKernelRefused(reply, 'EPERM');
  });

  it('the hidden v2 leaf of its cgroup is owned like the cgroup, and cannot be named', async () => {
    const leaf = s.env.fsPath('unified', `deleg/${V2_LEAF}`);
    if (fs.existsSync(leaf)) expect(fs.statSync(leaf).uid).toBe(A);
    for (const method of ['Chmod', 'Chown'] as const) {
      const args = method === 'Chmod' ? ['unified', V2_LEAF, '', 0o777] : ['unified', V2_LEAF, A, A];
      const reply = await attackUnchanged(s, () => s.attacker.call(method, args));
      expect(reply.ok, JSON.stringify(reply)).toBe(false);
    }
  });
});
