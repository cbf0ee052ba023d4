// A container inside a container, each level with its own cgproxy. The outer container
// (root = host uid 100000) is served as in proxy.test.ts. Its root makes 'nest' through
// its proxy and hands it to its uid 1000; the inner container maps its root to that uid
// (host 101000) and binds the directory its parent exposes for nesting, the parent's
// cgmanager.lower (the host daemon's socket as the parent sees it). The inner cgproxy
// therefore speaks to the host daemon directly, which bounds it at the inner container's
// cgroup: the same rules hold one level down. A container that binds its parent's *proxy*
// socket instead gets nothing done through its own proxy: that would be chained proxying,
// which the parent's proxy refuses (reference §4.7).
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, daemonErrors, DEFAULT_SNAPSHOT_VALUES, okValues, sampleLimit, skipReason, snapshotTrees, startTestDaemon, titled,
  type TestDaemon,
} from '../../helpers';
import {
  cgmErrorName, CONTAINER_LOWER_DIR, CONTAINER_UPPER_DIR, nsPids, okOutput, startContainer, type Container, type ContainerProcess,
} from '../../helpers/container';

const OUTER_ROOT = 100000;
const INNER_IN_OUTER = 1000;
const INNER_ROOT = OUTER_ROOT + INNER_IN_OUTER;
const UNMAPPED = 4294967295;
const ERR = 'org.freedesktop.DBus.Error.';
const reason = skipReason({ cgroup2: true, named: 1, userns: true });
const SNAPSHOT_VALUES = DEFAULT_SNAPSHOT_VALUES.filter((v) => v !== 'tasks');

const owner = (file: string): [number, number] => {
  const st = fs.statSync(file);
  return [st.uid, st.gid];
};

describe.skipIf(reason !== undefined)(titled('a container nested in a container, each with its own cgproxy', reason), () => {
  let env: TestDaemon;
  let outer: Container;
  let inner: Container;
  let outerWorker: ContainerProcess;
  let innerWorker: ContainerProcess;
  let innerProxy: ContainerProcess;
  let V1: string;
  let KEY: string;
  const snapshot = () => snapshotTrees([...env.bases.values()].map((b) => b.fsPath), SNAPSHOT_VALUES);
  const cgmIn = async (c: Container, ...args: string[]): Promise<string> => okOutput(await c.cgm(args), `${c.name}: cgm ${args.join(' ')}`);

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: availableV1Controllers(['cpu']) });
    V1 = env.primaryV1;
    KEY = sampleLimit(V1).key;
    okValues(await env.dbusSend('Create', 'ss', ['all', 'c1']), env);
    okValues(await env.dbusSend('Chown', 'ssii', ['all', 'c1', OUTER_ROOT, OUTER_ROOT]), env);
    outer = await startContainer(env, { name: 'outer', at: 'c1', uidMap: `0 ${OUTER_ROOT} 65536`, socketDir: env.dir });
    await outer.startProxy();
    outerWorker = await outer.spawn(['sleep', '600']);
    // The outer root prepares the nested container's cgroup through its own proxy.
    await cgmIn(outer, 'create', 'all', 'nest');
    await cgmIn(outer, 'chown', 'all', 'nest', String(INNER_IN_OUTER), String(INNER_IN_OUTER));
    await cgmIn(outer, 'create', 'all', 'other');
    inner = await startContainer(env, {
      name: 'inner',
      parent: outer,
      at: 'c1/nest',
      uidMap: `0 ${INNER_IN_OUTER} 1000`,
      socketDir: CONTAINER_LOWER_DIR,
    });
    innerProxy = await inner.startProxy();
    innerWorker = await inner.spawn(['sleep', '600']);
  });

  afterAll(async () => {
    await outer?.stop(); // stops the nested containers first
    await env?.stop();
  });

  it('the outer root handed nest to its uid 1000, which is host uid 101000', () => {
    expect(inner.hostRootUid).toBe(INNER_ROOT);
    for (const h of env.labels) {
      expect(owner(env.fsPath(h, 'c1/nest')), h).toEqual([INNER_ROOT, INNER_ROOT]);
      expect(owner(env.fsPath(h, 'c1/nest', 'cgroup.procs')), h).toEqual([INNER_ROOT, INNER_ROOT]);
    }
    expect(owner(env.fsPath(V1, 'c1/nest', KEY))).toEqual([OUTER_ROOT, OUTER_ROOT]);
    expect(env.cgroupOf(inner.initPid, V1)).toBe(env.cgPath(V1, 'c1/nest'));
    expect(fs.readFileSync(`/proc/${inner.initPid}/uid_map`, 'utf8').trim().split(/\s+/)).toEqual(['0', String(INNER_ROOT), '1000']);
    // The inner proxy took over the directory its parent exposed: the host daemon's socket.
    expect(fs.statSync(inner.hostPath(`${CONTAINER_LOWER_DIR}/sock`)).ino).toBe(fs.statSync(env.socket).ino);
    expect(innerProxy.stderr()).toMatch(/"how":"move-mount"/);
  });

  it('the inner root creates children, limits them and moves its own processes; the host sees it all', async () => {
    await cgmIn(inner, 'create', 'all', 'job');
    for (const h of env.labels) expect(owner(env.fsPath(h, 'c1/nest/job')), h).toEqual([INNER_ROOT, INNER_ROOT]);
    const { value } = sampleLimit(V1);
    await cgmIn(inner, 'setvalue', V1, 'job', KEY, value);
    expect(fs.readFileSync(env.fsPath(V1, 'c1/nest/job', KEY), 'utf8').trim()).toBe(value);
    await cgmIn(inner, 'movepid', 'all', 'job', String(innerWorker.nsPid));
    for (const h of env.labels) {
      expect(env.cgroupOf(innerWorker.hostPid, h), h).toBe(env.cgPath(h, h === 'unified' ? 'c1/nest/job/.cgm_leaf' : 'c1/nest/job'));
    }
    expect(await cgmIn(inner, 'gettasks', V1, 'job')).toBe(`${innerWorker.nsPid}\n`);
    expect(await cgmIn(inner, 'getpidcgroupabs', V1, String(innerWorker.nsPid))).toBe('/job\n');
    await cgmIn(inner, 'movepidabs', V1, '/', String(innerWorker.nsPid));
    expect(env.cgroupOf(innerWorker.hostPid, V1)).toBe(env.cgPath(V1, 'c1/nest'));
    await cgmIn(inner, 'movepid', V1, 'job', String(innerWorker.nsPid));
  });

  it('the inner root sees owners in its own namespace: the outer root and host root as 4294967295', async () => {
    const rows = new Map(
      (await cgmIn(inner, 'listkeys', V1)).split('\n').filter((l) => l !== '').map((l) => [l.split(' ')[0] as string, l.split(' ').slice(1, 3)]),
    );
    expect(rows.get('tasks')).toEqual(['0', '0']);
    expect(rows.get(KEY)).toEqual([String(UNMAPPED), String(UNMAPPED)]);
    const own = await cgmIn(inner, 'listkeys', V1, 'job');
    for (const line of own.split('\n').filter((l) => l !== '')) expect(line.split(' ').slice(1, 3), line).toEqual(['0', '0']);
  });

  const refusals: Array<[string, () => string[], string]> = [
    ['the limits of its own cgroup (the outer root owns them)', () => ['setvalue', V1, '', KEY, '2'], 'AccessDenied'],
    ['the outer container\'s cgroup, named from the root', () => ['getvalue', V1, env.cgPath(V1, 'c1'), KEY], 'AccessDenied'],
    ['a sibling the outer root made', () => ['setvalue', V1, env.cgPath(V1, 'c1/other'), KEY, '2'], 'AccessDenied'],
    ['listing the outer container', () => ['listchildren', V1, env.cgPath(V1, 'c1')], 'AccessDenied'],
    ['climbing out', () => ['create', 'all', '../escape'], 'InvalidArgs'],
    ['an outer process, by its host pid (not in its pid namespace)', () => ['movepid', V1, 'job', String(outerWorker.hostPid)], 'UnixProcessIdUnknown'],
    ['a uid outside its 1000 ids', () => ['chown', V1, 'job', '1000', '1000'], 'AccessDenied'],
    ['removing its own cgroup', () => ['remove', V1, ''], 'AccessDenied'],
  ];

  it.each(refusals)('the inner root is refused %s, and nothing changes', async (_what, args, error) => {
    const before = snapshot();
    const r = await inner.cgm(args());
    expect(r.code).toBe(1);
    expect(cgmErrorName(r), r.stderr).toBe(`${ERR}${error}`);
    expect(snapshot()).toEqual(before);
  });

  it('the outer process is out of the inner container\'s sight, even by its outer pid', async () => {
    const r = await inner.cgm(['getpidcgroupabs', V1, String(outerWorker.nsPid)]);
    // That number is either nobody in the inner pid namespace, or an inner task: never the outer one.
    if (r.code === 0) expect(inner.hostPidOf(outerWorker.nsPid)).toBeDefined();
    else expect(cgmErrorName(r)).toBe(`${ERR}UnixProcessIdUnknown`);
    expect(env.cgroupOf(outerWorker.hostPid, V1)).toBe(env.cgPath(V1, 'c1'));
  });

  it('the outer root still manages the nested container\'s cgroups from above', async () => {
    expect((await cgmIn(outer, 'listchildren', V1, 'nest')).split('\n')).toContain('job');
    // Its tasks as outer pids: the outer pid namespace sees the inner worker.
    const [, inOuter, inInner] = nsPids(innerWorker.hostPid);
    expect(inInner).toBe(innerWorker.nsPid);
    expect(await cgmIn(outer, 'gettasks', V1, 'nest/job')).toBe(`${String(inOuter)}\n`);
  });

  describe('a nested container that binds its parent\'s proxy socket instead', () => {
    let chain: Container;

    beforeAll(async () => {
      await cgmIn(outer, 'create', 'all', 'chain');
      await cgmIn(outer, 'chown', 'all', 'chain', String(INNER_IN_OUTER), String(INNER_IN_OUTER));
      chain = await startContainer(env, {
        name: 'chain',
        parent: outer,
        at: 'c1/chain',
        uidMap: `0 ${INNER_IN_OUTER} 1000`,
        socketDir: CONTAINER_UPPER_DIR,
      });
    });

    afterAll(async () => {
      await chain?.stop();
    });

    it('its own proxy starts, but every forwarded call is refused by the parent\'s proxy: no chained proxying', async () => {
      await chain.startProxy();
      await cgmIn(chain, 'ping');
      const before = snapshot();
      const r = await chain.cgm(['create', 'all', 'x']);
      expect(cgmErrorName(r), r.stderr).toBe(`${ERR}AccessDenied`);
      expect(r.stderr).toMatch(/chained proxying/);
      expect(snapshot()).toEqual(before);
    });
  });

  it('neither the daemon nor the inner proxy logged a fault of its own', () => {
    expect(daemonErrors(env)).toBe('');
    expect(innerProxy.stderr()).not.toMatch(/"level":"(error|fatal)"/);
  });
});
