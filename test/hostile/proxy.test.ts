// The attacker is root inside a container (user, pid, mount and cgroup namespaces; uid 0 is host
// uid 100000) that host root gave the cgroup `c1`, talking to cgproxy inside, which forwards
// every call to the host daemon as its Scm variant. Container root is root of its own user
// namespace, so it may Chown, but only cgroups whose owner is mapped into it: everything root
// made (the limits of c1, `c1/rootchild`), the prefix neighbour `c1b` and anything above c1 stay
// out of reach. Every method is attacked, plainly and as the Scm variant sent to the proxy;
// each refusal carries its named error and the host's tree is unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, okValues, sampleLimit, skipReason, snapshotTrees, startTestDaemon, titled, type Snapshot, type TestDaemon,
} from '../helpers';
import { Attacker } from '../helpers/attacker';
import { CONTAINER_SOCKET, startContainer, type Container } from '../helpers/container';
import { ERR, SNAPSHOT_VALUES, type ErrorKey } from './fixture';

const ROOT_UID = 100000;
const MAP = `0 ${ROOT_UID} 65536`;
const reason = skipReason({ cgroup2: true, named: 1, userns: true });

type Row = { what: string; method: string; args: () => unknown[]; error: ErrorKey };

describe.skipIf(reason !== undefined)(titled('container root attacking through cgproxy', reason), () => {
  let env: TestDaemon;
  let c: Container;
  let attacker: Attacker;
  let V1: string;
  let NAMED: string;
  let baseline: Snapshot;
  const snapshot = (): Snapshot => snapshotTrees([...env.bases.values()].map((b) => b.fsPath), SNAPSHOT_VALUES);

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: availableV1Controllers(['cpu']) });
    V1 = env.primaryV1;
    NAMED = env.named[0] as string;
    const ok = async (p: ReturnType<TestDaemon['dbusSend']>): Promise<unknown[]> => okValues(await p, env);
    await ok(env.dbusSend('Create', 'ss', ['all', 'c1']));
    await ok(env.dbusSend('Chown', 'ssii', ['all', 'c1', ROOT_UID, ROOT_UID]));
    await ok(env.dbusSend('Create', 'ss', ['all', 'c1/rootchild']));
    await ok(env.dbusSend('Create', 'ss', ['all', 'c1b']));
    c = await startContainer(env, { name: 'c1', at: 'c1', uidMap: MAP, socketDir: env.dir });
    await c.startProxy();
    attacker = await Attacker.inContainer(c, CONTAINER_SOCKET);
    const made = await attacker.call('Create', ['all', 'mine']);
    if (!made.ok) throw new Error(`container root cannot create: ${JSON.stringify(made)}`);
    baseline = snapshot();
  });

  afterAll(async () => {
    await attacker?.stop();
    await c?.stop();
    await env?.stop();
  });

  const limit = (): string => sampleLimit(V1).key;

  /** Every method that takes a cgroup, for the '..' rows (one row per method tries every spelling). */
  const CGROUP_METHODS: ReadonlyArray<[method: string, args: (cg: string) => unknown[]]> = [
    ['Create', (cg) => ['all', cg]],
    ['Chown', (cg) => ['all', cg, 0, 0]],
    ['Chmod', (cg) => ['all', cg, '', 0o777]],
    ['SetValue', (cg) => [V1, cg, limit(), '2']],
    ['GetValue', (cg) => [V1, cg, limit()]],
    ['Remove', (cg) => ['all', cg, 1]],
    ['ListChildren', (cg) => [NAMED, cg]],
    ['ListKeys', (cg) => [NAMED, cg]],
    ['GetTasks', (cg) => [NAMED, cg]],
    ['GetTasksRecursive', (cg) => ['all', cg]],
    ['Prune', (cg) => ['all', cg]],
    ['RemoveOnEmpty', (cg) => ['unified', cg]],
    ['MovePid', (cg) => ['all', cg, 1]],
    ['MovePidAbs', (cg) => ['all', cg, 1]],
  ];
  const DOT_DOTS = ['..', 'mine/..', 'mine/../..', './..', '//..', '/..', '../c1b', 'mine/../../c1b'];
  const rows: Row[] = [
    // Host paths, the prefix neighbour c1b, and the cgroup's parent.
    { what: 'GetValue of the prefix neighbour by its host path', method: 'GetValue', args: () => [V1, env.cgPath(V1, 'c1b'), limit()], error: 'AccessDenied' },
    { what: 'SetValue of the prefix neighbour by its host path', method: 'SetValue', args: () => [V1, env.cgPath(V1, 'c1b'), limit(), '2'], error: 'AccessDenied' },
    { what: 'ListKeys of the parent by its host path', method: 'ListKeys', args: () => [NAMED, env.cgPath(NAMED)], error: 'AccessDenied' },
    { what: 'GetTasks of the hierarchy root', method: 'GetTasks', args: () => [NAMED, '/'], error: 'AccessDenied' },
    // MovePidAbs is relative to the proxy's cgroup: the host path does not exist below c1.
    { what: 'MovePidAbs into the prefix neighbour by its host path', method: 'MovePidAbs', args: () => [NAMED, env.cgPath(NAMED, 'c1b'), 1], error: 'FileNotFound' },
    // Files root keeps: the limits of the cgroup it was given, and root's cgroup inside it.
    { what: 'SetValue of a limit of c1', method: 'SetValue', args: () => [V1, '', limit(), '2'], error: 'AccessDenied' },
    { what: 'SetValue of cgroup.kill of c1', method: 'SetValue', args: () => ['unified', '', 'cgroup.kill', '1'], error: 'AccessDenied' },
    { what: 'SetValue of cgroup.type of c1', method: 'SetValue', args: () => ['unified', '', 'cgroup.type', 'threaded'], error: 'AccessDenied' },
    { what: 'SetValue of a limit of root\'s cgroup in c1', method: 'SetValue', args: () => [V1, 'rootchild', limit(), '2'], error: 'AccessDenied' },
    { what: 'SetValue of tasks', method: 'SetValue', args: () => [NAMED, 'mine', 'tasks', '1'], error: 'InvalidArgs' },
    { what: 'SetValue of release_agent', method: 'SetValue', args: () => [NAMED, '', 'release_agent', '/bin/sh'], error: 'InvalidArgs' },
    { what: 'SetValue of notify_on_release', method: 'SetValue', args: () => [NAMED, '', 'notify_on_release', '1'], error: 'InvalidArgs' },
    { what: 'SetValue with a key ../tasks', method: 'SetValue', args: () => [NAMED, 'mine', '../tasks', '1'], error: 'InvalidArgs' },
    { what: 'Chmod of a limit of c1', method: 'Chmod', args: () => [V1, '', limit(), 0o666], error: 'AccessDenied' },
    { what: 'Chmod of cgroup.kill of c1', method: 'Chmod', args: () => ['unified', '', 'cgroup.kill', 0o666], error: 'AccessDenied' },
    { what: 'Chmod of root\'s cgroup in c1', method: 'Chmod', args: () => ['all', 'rootchild', '', 0o777], error: 'AccessDenied' },
    { what: 'Chown of root\'s cgroup in c1', method: 'Chown', args: () => ['all', 'rootchild', 0, 0], error: 'AccessDenied' },
    { what: 'Create in root\'s cgroup in c1', method: 'Create', args: () => ['all', 'rootchild/x'], error: 'AccessDenied' },
    { what: 'Prune of root\'s cgroup in c1', method: 'Prune', args: () => ['all', 'rootchild'], error: 'AccessDenied' },
    { what: 'Remove of c1 itself', method: 'Remove', args: () => ['all', '', 1], error: 'AccessDenied' },
  ];

  // Known issue (reported): the proxy waits only 100 ms for the daemon's error detail behind a
  // failure result (client/scm-call.ts DETAIL_WAIT_MS); on a loaded machine it sometimes misses
  // it and answers a bare Failed. The refusal and the unchanged tree still hold.
  const lostDetail = (reply: { errorName?: string; message?: string }): boolean =>
    reply.errorName === 'org.freedesktop.DBus.Error.Failed' && /Scm failed$/.test(reply.message ?? '');

  const dotDotRows = [false, true].flatMap((scm) => CGROUP_METHODS.map(([method, args]) => ({ method, args, scm })));
  it.each(dotDotRows)('$method (scm: $scm) refuses every spelling of ..', async ({ method, args, scm }) => {
    for (const cg of DOT_DOTS) {
      const reply = await attacker.call(method, args(cg), scm);
      const shown = `${method}(${JSON.stringify(cg)}) ${JSON.stringify(reply)}`;
      expect(reply.ok, shown).toBe(false);
      if (scm) expect(reply.scmFailure, shown).toBe(true);
      if (!lostDetail(reply)) expect(reply.errorName, shown).toBe(ERR.InvalidArgs);
    }
    expect(snapshot()).toEqual(baseline);
  });

  it.each([...rows.map((r) => ({ ...r, scm: false })), ...rows.map((r) => ({ ...r, scm: true }))])('$what (scm: $scm) is refused', async (row) => {
    const reply = await attacker.call(row.method, row.args(), row.scm);
    const shown = JSON.stringify(reply);
    expect(reply.ok, shown).toBe(false);
    if (row.scm) expect(reply.scmFailure, shown).toBe(true);
    if (!lostDetail(reply)) expect(reply.errorName, shown).toBe(ERR[row.error]);
    expect(snapshot(), `the host's tree changed after ${shown}`).toEqual(baseline);
  });

  it.each([false, true])('Chown to a uid not mapped into the container is refused (scm: %s)', async (scm) => {
    const reply = await attacker.call('Chown', ['all', 'mine', 70000, 70000], scm);
    expect(reply.ok, JSON.stringify(reply)).toBe(false);
    expect(snapshot()).toEqual(baseline);
  });

  it.each([false, true])('a host pid the container cannot see is no victim (scm: %s)', async (scm) => {
    // 99999 is beyond the few pids of the container's namespace.
    const reply = await attacker.call('MovePid', ['all', 'mine', 99999], scm);
    expect(reply.ok, JSON.stringify(reply)).toBe(false);
    expect(snapshot()).toEqual(baseline);
  });
});
