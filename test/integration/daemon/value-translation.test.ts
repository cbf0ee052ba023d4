// GetValue/SetValue with the other cgroup version's key names on real v1 controllers: the
// permission rules stay those of the file the translation writes (a delegatee cannot reach
// the limits of the cgroup it was given through a v2 name), a two-file translation that
// fails half-way puts the first file back, the real name wins, unknown keys stay FileNotFound.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableV1Controllers, okValues, skipReason, startTestDaemon, titled, type CallResult, type TestDaemon } from '../../helpers';

const UID = 1000;
const NEEDED = ['cpu', 'memory'];
const CONTROLLERS = availableV1Controllers(NEEDED);
const reason = CONTROLLERS.length < NEEDED.length
  ? `needs v1 hierarchies for ${NEEDED.join(', ')} (this host and uml-run --layout v1 have them)`
  : skipReason({ controllers: NEEDED });

const read = (file: string): string => fs.readFileSync(file, 'utf8').trim();

describe.skipIf(reason !== undefined)(titled('v2 key names on cgroup v1, with real permissions', reason), () => {
  let env: TestDaemon;
  const ok = (r: CallResult): unknown[] => okValues(r, env);
  const asDelegatee = { uid: UID, at: 'deleg' } as const;

  beforeAll(async () => {
    env = await startTestDaemon({ controllers: CONTROLLERS });
    ok(await env.dbusSend('Create', 'ss', ['all', 'deleg']));
    ok(await env.dbusSend('Chown', 'ssii', ['all', 'deleg', UID, UID]));
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('a delegatee cannot set the limits of the cgroup it was given through a translated name', async () => {
    const before = read(env.fsPath('cpu', 'deleg', 'cpu.shares'));
    for (const [controller, key, value] of [['cpu', 'cpu.weight', '50'], ['cpu', 'cpu.max', '10000 100000'], ['memory', 'memory.max', '64M']]) {
      const r = await env.dbusSend('SetValue', 'ssss', [controller as string, '', key as string, value as string], asDelegatee);
      expect(r.errorName, `${key}`).toBe('org.freedesktop.DBus.Error.AccessDenied');
    }
    expect(read(env.fsPath('cpu', 'deleg', 'cpu.shares'))).toBe(before);
    expect(read(env.fsPath('cpu', 'deleg', 'cpu.cfs_quota_us'))).toBe('-1');
  });

  it('but sets them, in v2 names, on the children it creates', async () => {
    ok(await env.dbusSend('Create', 'ss', ['all', 'kid'], asDelegatee));
    ok(await env.dbusSend('SetValue', 'ssss', ['cpu', 'kid', 'cpu.weight', '50'], asDelegatee));
    ok(await env.dbusSend('SetValue', 'ssss', ['cpu', 'kid', 'cpu.max', '50000 200000'], asDelegatee));
    ok(await env.dbusSend('SetValue', 'ssss', ['memory', 'kid', 'memory.max', '64M'], asDelegatee));
    // weight 50 is shares 2 + ⌈49 × 262142 / 9999⌉ = 1287
    expect(read(env.fsPath('cpu', 'deleg/kid', 'cpu.shares'))).toBe('1287');
    expect(read(env.fsPath('cpu', 'deleg/kid', 'cpu.cfs_quota_us'))).toBe('50000');
    expect(read(env.fsPath('cpu', 'deleg/kid', 'cpu.cfs_period_us'))).toBe('200000');
    expect(read(env.fsPath('memory', 'deleg/kid', 'memory.limit_in_bytes'))).toBe('67108864');
    const got = await Promise.all([
      env.dbusSend('GetValue', 'sss', ['cpu', 'kid', 'cpu.weight'], asDelegatee),
      env.dbusSend('GetValue', 'sss', ['cpu', 'kid', 'cpu.max'], asDelegatee),
      env.dbusSend('GetValue', 'sss', ['memory', 'kid', 'memory.max'], asDelegatee),
    ]);
    expect(got.map((r) => ok(r)[0])).toEqual(['50', '50000 200000', '67108864']);
  });

  it('a two-file translation refused half-way leaves the first file as it was', async () => {
    ok(await env.dbusSend('Create', 'ss', ['cpu', 'half']));
    // The period is accepted, the quota (below the kernel's 1 ms) is not: the period goes back.
    const r = await env.dbusSend('SetValue', 'ssss', ['cpu', 'half', 'cpu.max', '500 300000']);
    expect(r.errorName).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(read(env.fsPath('cpu', 'half', 'cpu.cfs_period_us'))).toBe('100000');
    expect(read(env.fsPath('cpu', 'half', 'cpu.cfs_quota_us'))).toBe('-1');
  });

  it('the real name is used as it is, and a key in neither vocabulary is FileNotFound', async () => {
    ok(await env.dbusSend('SetValue', 'ssss', ['cpu', 'half', 'cpu.shares', '300']));
    expect(read(env.fsPath('cpu', 'half', 'cpu.shares'))).toBe('300');
    const r = await env.dbusSend('SetValue', 'ssss', ['cpu', 'half', 'cpu.nonsense', '1']);
    expect(r.errorName).toBe('org.freedesktop.DBus.Error.FileNotFound');
    const g = await env.dbusSend('GetValue', 'sss', ['memory', 'deleg', 'memory.nonsense']);
    expect(g.errorName).toBe('org.freedesktop.DBus.Error.FileNotFound');
  });

  it('a value the formula cannot take is InvalidArgs and changes nothing', async () => {
    ok(await env.dbusSend('Create', 'ss', ['memory', 'noswap']));
    const r = await env.dbusSend('SetValue', 'ssss', ['memory', 'noswap', 'memory.swap.max', '0']);
    expect(r.errorName).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(r.errorMessage).toMatch(/needs a memory limit/);
  });
});
