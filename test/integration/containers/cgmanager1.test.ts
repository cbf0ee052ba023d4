// cgmanager1 (Setup, Stats, Freeze, Thaw, Kill) from inside a user-namespaced container
// served by cgproxy (as proxy.test.ts): container root runs cgm with plain calls, the proxy
// forwards the Scm forms, and the kernel translates the container's pids and uids. Host
// root made 'c1', handed it to uid 100000 and placed the container's init there. Every
// effect is checked in the host's view of the files; refusals change nothing.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableV1Controllers, DEFAULT_SNAPSHOT_VALUES, okValues, skipReason, snapshotTrees, startTestDaemon, titled, waitFor, type TestDaemon } from '../../helpers';
import { cgmErrorName, okOutput, startContainer, type Container, type ContainerProcess } from '../../helpers/container';

const ROOT_UID = 100000;
const MAP = `0 ${ROOT_UID} 65536`;
const ERR = 'org.freedesktop.DBus.Error.';
const reason = skipReason({ cgroup2: true, named: 1, userns: true });

describe.skipIf(reason !== undefined)(titled('cgmanager1 through cgproxy in a container', reason), () => {
  let env: TestDaemon;
  let c: Container;
  let victim: ContainerProcess;
  /** the hierarchies of this layout that hold pids.max and the freezer, when the host has them as v1 */
  let pidsH: string | undefined;
  let freezerH: string;
  const cgm = async (...args: string[]): Promise<string> => okOutput(await c.cgm(args), `cgm ${args.join(' ')}`);
  const owner = (file: string): [number, number] => {
    const st = fs.statSync(file);
    return [st.uid, st.gid];
  };
  // Task lists of node processes change as they start threads; memberships are compared by process.
  const snapshot = () => snapshotTrees([...env.bases.values()].map((b) => b.fsPath), DEFAULT_SNAPSHOT_VALUES.filter((v) => v !== 'tasks'));

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: availableV1Controllers(['pids', 'freezer']) });
    pidsH = env.controllers.find((h) => h === 'pids');
    freezerH = env.controllers.find((h) => h === 'freezer') ?? 'unified';
    okValues(await env.dbusSend('Create', 'ss', ['all', 'c1']), env);
    okValues(await env.dbusSend('Chown', 'ssii', ['all', 'c1', ROOT_UID, ROOT_UID]), env);
    c = await startContainer(env, { name: 'c1', at: 'c1', uidMap: MAP, socketDir: env.dir });
    await c.startProxy();
    victim = await c.spawn(['sleep', '600']);
  });

  afterAll(async () => {
    await c?.stop();
    await env?.stop();
  });

  it('Setup makes, delegates, limits and populates a child by container pid and uid', async () => {
    const limit = pidsH ? ['--limit', 'pids.max=20'] : [];
    const out = await cgm('setup', 'all', 'ct', '--owner', '1000:1000', ...limit, '--pid', String(victim.nsPid), '--json');
    const report = JSON.parse(out) as { created: string[]; existed: string[]; applied: Record<string, string>; moved: number[] };
    expect(report.created.length).toBe(env.labels.length);
    expect(report.moved).toEqual([victim.nsPid]);
    if (pidsH) expect(report.applied).toEqual({ 'pids.max': 'pids.max' });
    for (const h of env.labels) {
      // uid 1000 of the container is host uid 101000; the directory and task files are its.
      expect(owner(env.fsPath(h, 'c1/ct')), h).toEqual([ROOT_UID + 1000, ROOT_UID + 1000]);
      expect(owner(env.fsPath(h, 'c1/ct', 'cgroup.procs')), h).toEqual([ROOT_UID + 1000, ROOT_UID + 1000]);
      expect(env.cgroupOf(victim.hostPid, h), h).toBe(env.cgPath(h, h === 'unified' ? 'c1/ct/.cgm_leaf' : 'c1/ct'));
    }
    if (pidsH) expect(fs.readFileSync(env.fsPath(pidsH, 'c1/ct', 'pids.max'), 'utf8').trim()).toBe('20');
    // The daemon saw SetupScm for host uid 100000, with the proxy as p.
    expect(await waitFor(() => env.logLines().some((l) => l.method === 'SetupScm' && l.cgroup === 'ct' && l.outcome === 'ok'), 2000, 20)).toBe(true);
    const line = env.logLines().find((l) => l.method === 'SetupScm' && l.cgroup === 'ct');
    expect(line?.requestor).toMatchObject({ uid: ROOT_UID });
  });

  it('Stats, Freeze, Thaw through the proxy', async () => {
    const stats = JSON.parse(await cgm('stats', 'all', 'ct', '--json')) as Record<string, unknown>;
    expect(stats.populated).toBe(true);
    if (pidsH) expect(stats['pids.current']).toBe(1);
    expect(await cgm('freeze', 'ct')).toBe('');
    const frozen = (): boolean =>
      freezerH === 'unified'
        ? /^frozen 1$/m.test(fs.readFileSync(env.fsPath('unified', 'c1/ct', 'cgroup.events'), 'utf8'))
        : fs.readFileSync(env.fsPath(freezerH, 'c1/ct', 'freezer.state'), 'utf8').trim() === 'FROZEN';
    expect(frozen()).toBe(true);
    expect(await cgm('stats', freezerH, 'ct')).toMatch(/^frozen true$/m);
    expect(await cgm('thaw', 'ct')).toBe('');
    expect(frozen()).toBe(false);
  });

  it('refuses a pid outside the container and a uid it cannot name, leaving nothing behind', async () => {
    const before = snapshot();
    // A pid that does not exist in the container's pid namespace: the kernel refuses to send it.
    const r1 = await c.cgm(['setup', 'all', 'bad1', '--pid', '999999']);
    expect(cgmErrorName(r1), r1.stderr).toBe(`${ERR}UnixProcessIdUnknown`);
    // uid 70000 is unmapped in the container: the kernel refuses the owner credential.
    const r2 = await c.cgm(['setup', 'all', 'bad2', '--owner', '70000:70000']);
    expect(cgmErrorName(r2)).toBe(`${ERR}AccessDenied`);
    // Outside its delegation: the host's sibling of c1 is out of reach.
    const r3 = await c.cgm(['setup', 'all', '../escape']);
    expect(cgmErrorName(r3), r3.stderr).toBe(`${ERR}InvalidArgs`);
    // Freezing or killing the host's view above the container is refused too.
    const r4 = await c.cgm(['kill', '..']);
    expect(r4.code, r4.stderr).toBe(1);
    expect(snapshot()).toEqual(before);
  });

  it('Kill ends every task of the child and answers once it is empty', async () => {
    expect(await cgm('kill', 'ct')).toBe('');
    expect(await waitFor(() => env.cgroupOf(victim.hostPid, freezerH) === undefined, 5000, 20)).toBe(true);
    expect(JSON.parse(await cgm('stats', 'all', 'ct', '--json'))).toMatchObject({ populated: false });
  });
});
