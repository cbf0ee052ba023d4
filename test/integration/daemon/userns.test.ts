// Root in a child user namespace (uid_map "0 100000 65536", so host uid 100000): it acts on
// cgroups whose owner is mapped into its namespace and is refused on those owned by host root
// or by uid 1000, with nothing changed on disk.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, okValues, sampleLimit, SELF_PID, skipReason, snapshotTrees, startTestDaemon, titled, type CallArg,
  type CallResult, type ClientOptions, type LongLived, type TestDaemon, type Tool,
} from '../../helpers';

const NS_HOST_UID = 100000;
const MAP = `0 ${NS_HOST_UID} 65536`;
const UNMAPPED = 4294967295;
const ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied';
const CONTROLLERS = availableV1Controllers(['cpu']);
const reason = skipReason({ cgroup2: true, named: 1, userns: true });

const owner = (file: string): [number, number] => {
  const st = fs.statSync(file);
  return [st.uid, st.gid];
};

describe.skipIf(reason !== undefined)(titled('root in a child user namespace', reason), () => {
  let env: TestDaemon;
  const ok = (r: CallResult): unknown[] => okValues(r, env);
  let nsVictim: LongLived;
  let rootVictim: LongLived;
  let uid5Victim: LongLived;
  /** a v1 hierarchy (cpu here) and its sample limit file */
  let V1: string;
  let KEY: string;
  // The container's root lives in 'ns', which host root made and handed to host uid 100000.
  const inNs: ClientOptions = { userns: { uidMap: MAP }, at: 'ns' };
  const nsRoot = (tool: Tool, method: string, sig: string, args: readonly CallArg[]): Promise<CallResult> =>
    env.call(tool, method, sig, args, inNs);

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: CONTROLLERS });
    V1 = env.primaryV1;
    KEY = sampleLimit(V1).key;
    ok(await env.dbusSend('Create', 'ss', ['all', 'ns/u1000']));
    ok(await env.dbusSend('Chown', 'ssii', ['all', 'ns', NS_HOST_UID, NS_HOST_UID]));
    ok(await env.dbusSend('Chown', 'ssii', ['all', 'ns/u1000', 1000, 1000]));
    // uid 5 of the namespace: mapped, but not the caller.
    ok(await env.dbusSend('Create', 'ss', ['all', 'ns/u5']));
    ok(await env.dbusSend('Chown', 'ssii', ['all', 'ns/u5', NS_HOST_UID + 5, NS_HOST_UID + 5]));
    [nsVictim, rootVictim, uid5Victim] = await Promise.all([
      env.spawn(['sleep', '600'], inNs),
      env.spawn(['sleep', '600'], { at: 'ns' }),
      env.spawn(['sleep', '600'], { userns: { uidMap: MAP, inside: { uid: 5, gid: 5 } }, at: 'ns' }),
    ]);
  });

  afterAll(async () => {
    await env?.stop();
  });

  it('the client really is uid 0 inside and host uid 100000 outside', async () => {
    const r = await env.run(['sh', '-c', 'id -u; cat /proc/self/uid_map'], inNs);
    expect(r.stdout.split('\n')[0]).toBe('0');
    expect(r.stdout.split('\n')[1]?.trim().split(/\s+/)).toEqual(['0', String(NS_HOST_UID), '65536']);
    expect(fs.readFileSync(`/proc/${nsVictim.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${NS_HOST_UID}\\s`, 'm'));
  });

  it('creates cgroups in the one it was given; they belong to its host uid', async () => {
    expect(ok(await nsRoot('gdbus', 'Create', 'ss', ['all', 'c1']))).toEqual([-1]);
    for (const h of env.labels) {
      const dir = env.fsPath(h, 'ns/c1');
      for (const f of ['', ...fs.readdirSync(dir)]) expect(owner(`${dir}/${f}`), `${h} ${f}`).toEqual([NS_HOST_UID, NS_HOST_UID]);
    }
  });

  it('sets limits in them and moves its own tasks there', async () => {
    const { value } = sampleLimit(V1);
    ok(await nsRoot('busctl', 'SetValue', 'ssss', [V1, 'c1', KEY, value]));
    expect(fs.readFileSync(env.fsPath(V1, 'ns/c1', KEY), 'utf8').trim()).toBe(value);
    ok(await nsRoot('dbus-send', 'MovePid', 'ssi', ['all', 'c1', nsVictim.pid]));
    expect(env.cgroupOf(nsVictim.pid, V1)).toBe(env.cgPath(V1, 'ns/c1'));
    expect(env.cgroupOf(nsVictim.pid, 'unified')).toBe(env.cgPath('unified', 'ns/c1/.cgm_leaf'));
    ok(await nsRoot('gdbus', 'MovePid', 'ssi', ['all', 'c1', SELF_PID]));
  });

  it('acts on a cgroup host root handed to its host uid, as the owner in its namespace', async () => {
    // 'ns' itself: the directory and task files were handed over, so root inside may create,
    // chmod its directory and remove children there.
    ok(await nsRoot('dbus-send', 'Create', 'ss', [V1, 'c2']));
    ok(await nsRoot('dbus-send', 'Chmod', 'sssi', [V1, '', '', 0o775]));
    expect(fs.statSync(env.fsPath(V1, 'ns')).mode & 0o777).toBe(0o775);
    expect(ok(await nsRoot('busctl', 'Remove', 'ssi', [V1, 'c2', 0]))).toEqual([1]);
  });

  it('as root of its namespace, overrides the mode bits of owners mapped into it (uid 5 inside)', async () => {
    // u5 is host uid 100005's, mode 0755: by its bits, 100000 could not create there.
    expect(fs.statSync(env.fsPath(V1, 'ns/u5')).mode & 0o777).toBe(0o755);
    ok(await nsRoot('busctl', 'Create', 'ss', ['all', 'u5/x']));
    expect(owner(env.fsPath(V1, 'ns/u5/x'))).toEqual([NS_HOST_UID, NS_HOST_UID]);
    expect(fs.readFileSync(`/proc/${uid5Victim.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${NS_HOST_UID + 5}\\s`, 'm'));
    ok(await nsRoot('dbus-send', 'MovePid', 'ssi', ['all', 'u5', uid5Victim.pid]));
    expect(env.cgroupOf(uid5Victim.pid, V1)).toBe(env.cgPath(V1, 'ns/u5'));
    const [rows] = ok(await nsRoot('gdbus', 'ListKeys', 'ss', [V1, 'u5'])) as [Array<[string, number, number, number]>];
    expect(rows.find((r) => r[0] === 'cgroup.procs')?.slice(1, 3)).toEqual([5, 5]);
  });

  it('sees owners in its own namespace in ListKeys: mapped ids translated, others as -1', async () => {
    const [rows] = ok(await nsRoot('dbus-send', 'ListKeys', 'ss', [V1, ''])) as [Array<[string, number, number, number]>];
    const byName = new Map(rows.map((r) => [r[0], r]));
    expect(byName.get('cgroup.procs')?.slice(1, 3)).toEqual([0, 0]);
    expect(byName.get('tasks')?.slice(1, 3)).toEqual([0, 0]);
    expect(byName.get(KEY)?.slice(1, 3)).toEqual([UNMAPPED, UNMAPPED]);
    const [own] = ok(await nsRoot('gdbus', 'ListKeys', 'ss', [V1, 'c1'])) as [Array<[string, number, number, number]>];
    for (const row of own) expect(row.slice(1, 3), row[0]).toEqual([0, 0]);
  });

  const refusals: Array<[string, Tool, string, string, () => CallArg[], string]> = [
    ['a limit of its own cgroup, owned by host root', 'dbus-send', 'SetValue', 'ssss', () => [V1, '', KEY, '2'], ACCESS_DENIED],
    ['making that limit writable', 'gdbus', 'Chmod', 'sssi', () => [V1, '', KEY, 0o666], ACCESS_DENIED],
    ['creating in a cgroup owned by uid 1000 (not mapped)', 'busctl', 'Create', 'ss', () => ['all', 'u1000/x'], ACCESS_DENIED],
    ['a limit in a cgroup owned by uid 1000', 'dbus-send', 'SetValue', 'ssss', () => [V1, 'u1000', KEY, '2'], ACCESS_DENIED],
    ['pruning the cgroup owned by uid 1000', 'gdbus', 'Prune', 'ss', () => [V1, 'u1000'], ACCESS_DENIED],
    ['moving a host-root process', 'busctl', 'MovePid', 'ssi', () => [V1, 'c1', rootVictim.pid], ACCESS_DENIED],
    ['moving its task into the cgroup owned by uid 1000', 'dbus-send', 'MovePid', 'ssi', () => [V1, 'u1000', nsVictim.pid], ACCESS_DENIED],
    ['reading outside its subtree', 'gdbus', 'GetValue', 'sss', () => [V1, env.cgPath(V1), KEY], ACCESS_DENIED],
    // Plain Chown needs the daemon's user namespace (reference §4.6): ids would be ambiguous.
    ['a plain Chown from another user namespace', 'dbus-send', 'Chown', 'ssii', () => [V1, 'c1', 0, 0], 'org.linuxcontainers.cgmanager.Error.WrongNamespace'],
  ];

  it.each(refusals)('refuses %s (%s) and changes nothing', async (_what, tool, method, sig, args, errorName) => {
    const dirs = [...env.bases.values()].map((b) => b.fsPath);
    const before = snapshotTrees(dirs);
    const r = await nsRoot(tool, method, sig, args());
    expect(r.ok, `${method} should have been refused`).toBe(false);
    expect(r.errorName, r.errorMessage).toBe(errorName);
    expect(snapshotTrees(dirs)).toEqual(before);
  });
});
