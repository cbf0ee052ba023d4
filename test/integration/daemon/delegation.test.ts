// Delegation to a real unprivileged uid (1000, via setpriv): root creates and chowns a cgroup,
// uid 1000 creates children, limits them and moves its own tasks; everything else it tries is
// refused with a named error, and a snapshot shows that nothing changed on disk.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, okValues, sampleLimit, SELF_PID, skipReason, snapshotTrees, startTestDaemon, titled, type CallArg,
  type CallResult, type LongLived, type TestDaemon, type Tool,
} from '../../helpers';

const UID = 1000;
const ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied';
const INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs';
const CONTROLLERS = availableV1Controllers(['cpu', 'memory']);
const reason = skipReason({ cgroup2: true, named: 1 });

const owner = (file: string): [number, number] => {
  const st = fs.statSync(file);
  return [st.uid, st.gid];
};
const read = (file: string): string => fs.readFileSync(file, 'utf8').trim();

describe.skipIf(reason !== undefined)(titled('delegation to uid 1000', reason), () => {
  let env: TestDaemon;
  const ok = (r: CallResult): unknown[] => okValues(r, env);
  let rootVictim: LongLived;
  let ownVictim: LongLived;
  let ownOutside: LongLived;
  // Two hierarchies to aim refusals at: a v1 one (cpu here) and another one (memory here).
  let V1: string;
  let OTHER: string;
  const limit = (h: string): string => sampleLimit(h).key;
  // uid 1000 lives in its delegated cgroup 'deleg' in every hierarchy.
  const asDelegatee = { uid: UID, at: 'deleg' } as const;
  const user = (tool: Tool, method: string, sig: string, args: readonly CallArg[]): Promise<CallResult> =>
    env.call(tool, method, sig, args, asDelegatee);

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: CONTROLLERS });
    V1 = env.primaryV1;
    OTHER = env.labels.find((h) => h !== V1) as string;
    ok(await env.dbusSend('Create', 'ss', ['all', 'deleg']));
    ok(await env.dbusSend('Chown', 'ssii', ['all', 'deleg', UID, UID]));
    ok(await env.dbusSend('Create', 'ss', ['all', 'sibling']));
    // A cgroup root makes inside the delegated one stays root's.
    ok(await env.dbusSend('Create', 'ss', ['all', 'deleg/rootchild']));
    [rootVictim, ownVictim, ownOutside] = await Promise.all([
      env.spawn(['sleep', '600'], { at: 'deleg' }),
      env.spawn(['sleep', '600'], asDelegatee),
      // uid 1000's own process, but outside the subtree it was given
      env.spawn(['sleep', '600'], { uid: UID, at: '' }),
    ]);
  });

  afterAll(async () => {
    await env?.stop();
  });

  it('the delegatee gets the directory and the task files, not the limits', () => {
    for (const h of env.labels) {
      expect(owner(env.fsPath(h, 'deleg')), h).toEqual([UID, UID]);
      expect(owner(env.fsPath(h, 'deleg', 'cgroup.procs')), h).toEqual([UID, UID]);
    }
    for (const h of env.labels) expect(owner(env.fsPath(h, 'deleg', limit(h))), h).toEqual([0, 0]);
  });

  it('uid 1000 creates children it owns wholly, and sets limits in them', async () => {
    expect(ok(await user('gdbus', 'Create', 'ss', ['all', 'child']))).toEqual([-1]);
    for (const h of env.labels) {
      const dir = env.fsPath(h, 'deleg/child');
      for (const f of ['', ...fs.readdirSync(dir)]) expect(owner(`${dir}/${f}`), `${h} ${f}`).toEqual([UID, UID]);
    }
    for (const h of env.labels) {
      const { key, value } = sampleLimit(h);
      ok(await user('dbus-send', 'SetValue', 'ssss', [h, 'child', key, value]));
      expect(read(env.fsPath(h, 'deleg/child', key)), `${h} ${key}`).toBe(value);
    }
  });

  it('uid 1000 moves its own processes into its children', async () => {
    ok(await user('busctl', 'MovePid', 'ssi', ['all', 'child', ownVictim.pid]));
    for (const h of env.labels) {
      const expected = env.cgPath(h, h === 'unified' ? 'deleg/child/.cgm_leaf' : 'deleg/child');
      expect(env.cgroupOf(ownVictim.pid, h), h).toBe(expected);
    }
    // and itself (the calling process is the victim)
    ok(await user('gdbus', 'MovePid', 'ssi', ['all', 'child', SELF_PID]));
    ok(await user('dbus-send', 'GetPidCgroup', 'si', [V1, ownVictim.pid]));
  });

  // Every refusal: [what, tool, method, signature, args (may depend on env), error name].
  const refusals: Array<[string, Tool, string, string, () => CallArg[], string]> = [
    ['changing a limit of the cgroup it was given', 'dbus-send', 'SetValue', 'ssss', () => [V1, '', limit(V1), '100'], ACCESS_DENIED],
    ['changing a limit of the cgroup it was given in another hierarchy', 'gdbus', 'SetValue', 'ssss', () => [OTHER, '', limit(OTHER), '1'], ACCESS_DENIED],
    ['making a limit of the cgroup it was given writable', 'busctl', 'Chmod', 'sssi', () => [V1, '', limit(V1), 0o666], ACCESS_DENIED],
    ['chowning anything (not root)', 'dbus-send', 'Chown', 'ssii', () => [V1, 'child', UID, UID], ACCESS_DENIED],
    ['moving a root-owned process', 'busctl', 'MovePid', 'ssi', () => [V1, 'child', rootVictim.pid], ACCESS_DENIED],
    ['moving a root-owned process with MovePidAbs', 'dbus-send', 'MovePidAbs', 'ssi', () => [V1, env.cgPath(V1, 'deleg/child'), rootVictim.pid], ACCESS_DENIED],
    ['pulling its own process in from outside its subtree', 'dbus-send', 'MovePid', 'ssi', () => ['all', 'child', ownOutside.pid], ACCESS_DENIED],
    ['moving its own process into a sibling', 'gdbus', 'MovePidAbs', 'ssi', () => [V1, env.cgPath(V1, 'sibling'), ownVictim.pid], ACCESS_DENIED],
    ['setting a limit in a sibling (absolute path)', 'dbus-send', 'SetValue', 'ssss', () => [V1, env.cgPath(V1, 'sibling'), limit(V1), '2'], ACCESS_DENIED],
    ['creating in root\'s cgroup inside its own', 'gdbus', 'Create', 'ss', () => ['all', 'rootchild/x'], ACCESS_DENIED],
    ['setting a limit in root\'s cgroup inside its own', 'dbus-send', 'SetValue', 'ssss', () => [V1, 'rootchild', limit(V1), '2'], ACCESS_DENIED],
    ['pruning root\'s cgroup inside its own', 'busctl', 'Prune', 'ss', () => [V1, 'rootchild'], ACCESS_DENIED],
    ['escaping with ..', 'dbus-send', 'Create', 'ss', () => ['all', '../escape'], INVALID_ARGS],
    ['escaping with .. in a read', 'busctl', 'GetValue', 'sss', () => [V1, '..', limit(V1)], INVALID_ARGS],
    ['escaping with .. in a move', 'gdbus', 'MovePid', 'ssi', () => [V1, 'child/../..', ownVictim.pid], INVALID_ARGS],
    ['an absolute MovePid target', 'dbus-send', 'MovePid', 'ssi', () => [V1, '/', ownVictim.pid], INVALID_ARGS],
    ['reading above its subtree (absolute path)', 'dbus-send', 'GetValue', 'sss', () => [V1, env.cgPath(V1), limit(V1)], ACCESS_DENIED],
    // (never the real root as a write target: a bug there would change host state)
    ['setting a limit above its subtree (absolute path)', 'gdbus', 'SetValue', 'ssss', () => [V1, env.cgPath(V1), limit(V1), '2'], ACCESS_DENIED],
    ['listing the tasks of the hierarchy root', 'busctl', 'GetTasks', 'ss', () => [OTHER, '/'], ACCESS_DENIED],
    ['listing the keys of the hierarchy root', 'dbus-send', 'ListKeys', 'ss', () => [OTHER, '/'], ACCESS_DENIED],
    ['a key with a slash', 'dbus-send', 'SetValue', 'ssss', () => [V1, 'child', `../${limit(V1)}`, '2'], INVALID_ARGS],
    ['a key with a slash in a read', 'gdbus', 'GetValue', 'sss', () => [V1, 'child', `../../${limit(V1)}`], INVALID_ARGS],
  ];

  it.each(refusals)('refuses %s (%s) and changes nothing', async (_what, tool, method, sig, args, errorName) => {
    const dirs = [...env.bases.values()].map((b) => b.fsPath);
    const before = snapshotTrees(dirs);
    const r = await user(tool, method, sig, args());
    expect(r.ok, `${method} should have been refused`).toBe(false);
    expect(r.errorName, r.errorMessage).toBe(errorName);
    expect(snapshotTrees(dirs)).toEqual(before);
  });

  it('root can still do what uid 1000 may not, so the refusals were about the caller', async () => {
    const { key, value } = sampleLimit(V1);
    ok(await env.dbusSend('SetValue', 'ssss', [V1, 'deleg', key, value]));
    expect(read(env.fsPath(V1, 'deleg', key))).toBe(value);
    ok(await env.dbusSend('MovePid', 'ssi', [V1, 'deleg/child', rootVictim.pid]));
    expect(env.cgroupOf(rootVictim.pid, V1)).toBe(env.cgPath(V1, 'deleg/child'));
  });
});
