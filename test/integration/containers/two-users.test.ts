// The classic demonstration of user-namespaced containers: two users, each with a
// subordinate id range of their own (host uids 200000+ and 300000+), each running a
// container whose root is the first id of that range, in a cgroup host root handed to it.
// Each container runs cgproxy. Each manages its own cgroups and processes through the
// daemon; neither can see or change the other's.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, daemonErrors, DEFAULT_SNAPSHOT_VALUES, okValues, sampleLimit, skipReason, snapshotTrees, startTestDaemon, titled,
  type TestDaemon,
} from '../../helpers';
import { cgmErrorName, okOutput, startContainer, type Container, type ContainerProcess } from '../../helpers/container';

const ERR = 'org.freedesktop.DBus.Error.';
const reason = skipReason({ cgroup2: true, named: 1, userns: true });
const SNAPSHOT_VALUES = DEFAULT_SNAPSHOT_VALUES.filter((v) => v !== 'tasks');

interface Tenant {
  name: 'alice' | 'bob';
  rootUid: number;
  c: Container;
  worker: ContainerProcess;
}

describe.skipIf(reason !== undefined)(titled('two users\' containers side by side', reason), () => {
  let env: TestDaemon;
  let V1: string;
  let KEY: string;
  const tenants: Tenant[] = [];
  const snapshot = () => snapshotTrees([...env.bases.values()].map((b) => b.fsPath), SNAPSHOT_VALUES);
  const cgm = async (t: Tenant, ...args: string[]): Promise<string> => okOutput(await t.c.cgm(args), `${t.name}: cgm ${args.join(' ')}`);

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: availableV1Controllers(['cpu']) });
    V1 = env.primaryV1;
    KEY = sampleLimit(V1).key;
    const made = await Promise.all(
      (
        [
          ['alice', 200000],
          ['bob', 300000],
        ] as const
      ).map(async ([name, rootUid]): Promise<Tenant> => {
        okValues(await env.dbusSend('Create', 'ss', ['all', name]), env);
        okValues(await env.dbusSend('Chown', 'ssii', ['all', name, rootUid, rootUid]), env);
        const c = await startContainer(env, { name, at: name, uidMap: `0 ${rootUid} 65536`, socketDir: env.dir });
        await c.startProxy();
        const worker = await c.spawn(['sleep', '600']);
        return { name, rootUid, c, worker };
      }),
    );
    tenants.push(...made);
    // Each makes a child, limits it and moves its worker there.
    await Promise.all(
      tenants.map(async (t) => {
        await cgm(t, 'create', 'all', 'job');
        await cgm(t, 'setvalue', V1, 'job', KEY, sampleLimit(V1).value);
        await cgm(t, 'movepid', 'all', 'job', String(t.worker.nsPid));
      }),
    );
  });

  afterAll(async () => {
    await Promise.all(tenants.map((t) => t.c.stop()));
    await env?.stop();
  });

  const [A, B] = [0, 1];
  const pairs: Array<[number, number]> = [
    [A, B],
    [B, A],
  ];

  it('each manages its own: cgroups owned by its root uid, its worker moved, tasks as its own pids', async () => {
    for (const t of tenants) {
      for (const h of env.labels) expect(fs.statSync(env.fsPath(h, `${t.name}/job`)).uid, `${t.name} ${h}`).toBe(t.rootUid);
      expect(fs.readFileSync(env.fsPath(V1, `${t.name}/job`, KEY), 'utf8').trim()).toBe(sampleLimit(V1).value);
      expect(env.cgroupOf(t.worker.hostPid, V1)).toBe(env.cgPath(V1, `${t.name}/job`));
      expect(await cgm(t, 'gettasks', V1, 'job')).toBe(`${t.worker.nsPid}\n`);
      // Its own root cgroup holds only its own children.
      expect((await cgm(t, 'listchildren', V1)).split('\n').filter((l) => l !== '')).toEqual(['job']);
    }
  });

  it.each(pairs)('tenant %i cannot see the other\'s cgroups or processes', async (me, other) => {
    const t = tenants[me] as Tenant;
    const o = tenants[other] as Tenant;
    const theirs = env.cgPath(V1, `${o.name}/job`);
    const tries: Array<[string[], string]> = [
      [['listchildren', V1, env.cgPath(V1, o.name)], 'AccessDenied'],
      [['gettasks', V1, theirs], 'AccessDenied'],
      [['gettasksrecursive', V1, theirs], 'AccessDenied'],
      [['listkeys', V1, theirs], 'AccessDenied'],
      [['getvalue', V1, theirs, KEY], 'AccessDenied'],
      [['listchildren', V1, env.cgPath(V1)], 'AccessDenied'],
      // The other's worker is no process of this container: the kernel cannot even name it.
      [['getpidcgroupabs', V1, String(o.worker.hostPid)], 'UnixProcessIdUnknown'],
    ];
    for (const [args, error] of tries) {
      const r = await t.c.cgm(args);
      expect(r.code, `${t.name}: cgm ${args.join(' ')}`).toBe(1);
      expect(cgmErrorName(r), `${t.name}: cgm ${args.join(' ')}: ${r.stderr}`).toBe(`${ERR}${error}`);
      expect(r.stdout).toBe('');
    }
  });

  it.each(pairs)('tenant %i cannot change the other\'s cgroups or processes, and nothing changes', async (me, other) => {
    const t = tenants[me] as Tenant;
    const o = tenants[other] as Tenant;
    const theirs = env.cgPath(V1, `${o.name}/job`);
    const tries: Array<[string[], string]> = [
      [['setvalue', V1, theirs, KEY, '2'], 'AccessDenied'],
      [['movepid', V1, 'job', String(o.worker.hostPid)], 'UnixProcessIdUnknown'],
      [['movepidabs', V1, `/../${o.name}/job`, String(t.worker.nsPid)], 'InvalidArgs'],
      [['create', 'all', `../${o.name}/intruder`], 'InvalidArgs'],
      [['remove', V1, `../${o.name}/job`], 'InvalidArgs'],
      [['prune', V1, `../${o.name}`], 'InvalidArgs'],
      // Its own root's limits stay host root's, as do the other's.
      [['setvalue', V1, '', KEY, '2'], 'AccessDenied'],
    ];
    for (const [args, error] of tries) {
      const before = snapshot();
      const r = await t.c.cgm(args);
      expect(cgmErrorName(r), `${t.name}: cgm ${args.join(' ')}: ${r.stderr}`).toBe(`${ERR}${error}`);
      expect(snapshot(), `${t.name}: cgm ${args.join(' ')}`).toEqual(before);
    }
    expect(env.cgroupOf(o.worker.hostPid, V1)).toBe(env.cgPath(V1, `${o.name}/job`));
  });

  it('the same holds for a tenant that talks Scm to the host socket itself (it is its own proxy)', async () => {
    const t = tenants[A] as Tenant;
    const o = tenants[B] as Tenant;
    // The lower socket is the host's; cgm reaches it through the Scm route on its own.
    const lower = '/sys/fs/cgroup/cgmanager.lower/sock';
    const r = await t.c.cgm(['--socket', lower, 'getvalue', V1, env.cgPath(V1, `${o.name}/job`), KEY]);
    expect(cgmErrorName(r), r.stderr).toBe(`${ERR}AccessDenied`);
    expect(okOutput(await t.c.cgm(['--socket', lower, 'gettasks', V1, 'job']))).toBe(`${t.worker.nsPid}\n`);
  });

  it('the daemon logged no fault of its own', () => {
    expect(daemonErrors(env)).toBe('');
  });
});
