// A user-namespaced container served by cgproxy (reference §9): a new user namespace
// mapping 0 to host uid 100000 (65536 ids), new pid, mount and cgroup namespaces, a tmpfs
// over /sys/fs/cgroup and the host's socket directory bound at /sys/fs/cgroup/cgmanager.
// Host root created 'c1', handed it to uid 100000 and placed the container's init there.
// Inside, cgproxy moves the host socket aside and serves its own; container root uses
// `cgm` with plain calls, which the proxy forwards as Scm calls so that the kernel
// translates its pids and uids. Every allowed action is checked in the host's view of the
// cgroup filesystem; after every refusal nothing has changed.
import * as fs from 'node:fs';
import { API_VERSION } from '../../../daemon/dbus/interface';
import { slack } from '../../helpers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, daemonErrors, DEFAULT_SNAPSHOT_VALUES, okValues, sampleLimit, skipReason, snapshotTrees, startTestDaemon, titled, waitFor,
  type LongLived, type TestDaemon,
} from '../../helpers';
import {
  CGM_MAIN, cgmErrorName, CONTAINER_LOWER_DIR, CONTAINER_SOCKET, okOutput, PROXY_MAIN, startContainer, type Container, type ContainerProcess,
} from '../../helpers/container';
import { REPO_ROOT } from '../../helpers/requirements';

const ROOT_UID = 100000;
const MAP = `0 ${ROOT_UID} 65536`;
const UNMAPPED = 4294967295;
const ERR = 'org.freedesktop.DBus.Error.';
const SCM_CALL = `${REPO_ROOT}/dist/test/helpers/scm-call-main.js`;
const reason = skipReason({ cgroup2: true, named: 1, userns: true });
// Task lists of node processes change as they start threads; memberships are compared by process.
const SNAPSHOT_VALUES = DEFAULT_SNAPSHOT_VALUES.filter((v) => v !== 'tasks');

const owner = (file: string): [number, number] => {
  const st = fs.statSync(file);
  return [st.uid, st.gid];
};
const read = (file: string): string => fs.readFileSync(file, 'utf8').trim();

describe.skipIf(reason !== undefined)(titled('a container served by cgproxy', reason), () => {
  let env: TestDaemon;
  let c: Container;
  let proxy: ContainerProcess;
  let victim: ContainerProcess;
  let hostVictim: LongLived;
  let V1: string;
  let KEY: string;
  const cgm = async (...args: string[]): Promise<string> => okOutput(await c.cgm(args), `cgm ${args.join(' ')}`);
  const snapshot = () => snapshotTrees([...env.bases.values()].map((b) => b.fsPath), SNAPSHOT_VALUES);

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: availableV1Controllers(['cpu']) });
    V1 = env.primaryV1;
    KEY = sampleLimit(V1).key;
    // Host root makes the container's cgroup and a sibling, and hands the first to uid 100000.
    okValues(await env.dbusSend('Create', 'ss', ['all', 'c1']), env);
    okValues(await env.dbusSend('Chown', 'ssii', ['all', 'c1', ROOT_UID, ROOT_UID]), env);
    okValues(await env.dbusSend('Create', 'ss', ['all', 'sibling']), env);
    hostVictim = await env.spawn(['sleep', '600'], { at: 'sibling' });
    c = await startContainer(env, { name: 'c1', at: 'c1', uidMap: MAP, socketDir: env.dir });
    proxy = await c.startProxy();
    victim = await c.spawn(['sleep', '600']);
  });

  afterAll(async () => {
    await c?.stop();
    await env?.stop();
  });

  it('the proxy moved the host socket to cgmanager.lower and serves its own', async () => {
    expect(fs.statSync(c.hostPath(`${CONTAINER_LOWER_DIR}/sock`)).ino).toBe(fs.statSync(env.socket).ino);
    expect(fs.statSync(c.hostPath(CONTAINER_SOCKET)).isSocket()).toBe(true);
    expect(proxy.stderr()).toMatch(/"how":"move-mount"/);
    expect(c.hostRootUid).toBe(ROOT_UID);
    expect(victim.nsPid).toBeLessThan(100);
    // Ping and api_version are answered by the proxy itself.
    await cgm('ping');
    expect(await cgm('apiversion')).toBe(`${API_VERSION}\n`);
    expect(env.logLines().some((l) => l.method === 'Ping')).toBe(false);
    expect((await cgm('listcontrollers')).split('\n').filter((l) => l !== '').length).toBe(env.labels.length);
  });

  it('container root creates children; the host sees them owned by uid 100000', async () => {
    expect(await cgm('create', 'all', 'child')).toBe('');
    for (const h of env.labels) {
      const dir = env.fsPath(h, 'c1/child');
      for (const f of ['', ...fs.readdirSync(dir)]) expect(owner(`${dir}/${f}`), `${h} ${f}`).toEqual([ROOT_UID, ROOT_UID]);
    }
    expect(await cgm('create', 'all', 'child')).toBe('Path existed\n');
    expect((await cgm('listchildren', V1)).split('\n')).toContain('child');
    // cgm shares the proxy's namespaces, so it called plainly; the proxy forwarded the Scm
    // variant for it, and the daemon saw host uid 100000 as the requestor, the proxy as p.
    expect(await waitFor(() => proxy.stderr().includes('"method":"Create"'), 2000, 20)).toBe(true);
    expect(proxy.stderr()).not.toMatch(/"method":"CreateScm"/);
    expect(await waitFor(() => env.logLines().some((l) => l.method === 'CreateScm' && l.cgroup === 'child'), 2000, 20)).toBe(true);
    const line = env.logLines().find((l) => l.method === 'CreateScm' && l.cgroup === 'child');
    expect(line?.requestor).toMatchObject({ uid: ROOT_UID });
    expect(line?.proxy).toMatchObject({ pid: proxy.hostPid, uid: ROOT_UID });
  });

  it('sets limits in its children', async () => {
    const { value } = sampleLimit(V1);
    await cgm('setvalue', V1, 'child', KEY, value);
    expect(read(env.fsPath(V1, 'c1/child', KEY))).toBe(value);
    expect(await cgm('getvalue', V1, 'child', KEY)).toBe(`${value}\n`);
  });

  it('moves its own processes by their container pids, and reads tasks back as container pids', async () => {
    await cgm('movepid', 'all', 'child', String(victim.nsPid));
    for (const h of env.labels) {
      const expected = env.cgPath(h, h === 'unified' ? 'c1/child/.cgm_leaf' : 'c1/child');
      expect(env.cgroupOf(victim.hostPid, h), h).toBe(expected);
    }
    expect(await cgm('gettasks', V1, 'child')).toBe(`${victim.nsPid}\n`);
    expect(await cgm('gettasks', 'unified', 'child')).toBe(`${victim.nsPid}\n`);
    expect(await cgm('getpidcgroup', V1, String(victim.nsPid))).toBe('child\n');
    // Abs: from the proxy's cgroup, which is the container's.
    expect(await cgm('getpidcgroupabs', V1, String(victim.nsPid))).toBe('/child\n');
    // The whole container, as container pids. (While cgm runs, the host-side nsenter that
    // started it sits in the container's cgroup too; a task invisible in the container's
    // pid namespace arrives as 0, as in the original.)
    const all = (await cgm('gettasksrecursive', V1, '')).split('\n').filter((l) => l !== '' && l !== '0').map(Number);
    expect(all).toContain(victim.nsPid);
    expect(all).toContain(1);
    expect(all).toContain(proxy.nsPid);
    expect(all.every((p) => p < 1000)).toBe(true);
  });

  it('an "escape" with MovePidAbs to / lands at the container\'s root, not the host\'s', async () => {
    await cgm('movepidabs', V1, '/', String(victim.nsPid));
    expect(env.cgroupOf(victim.hostPid, V1)).toBe(env.cgPath(V1, 'c1'));
    await cgm('movepid', V1, 'child', String(victim.nsPid));
    expect(env.cgroupOf(victim.hostPid, V1)).toBe(env.cgPath(V1, 'c1/child'));
  });

  it('sees owners in its own user namespace: host root as 4294967295, itself as 0', async () => {
    const rows = (text: string): Map<string, string[]> => new Map(text.split('\n').filter((l) => l !== '').map((l) => [l.split(' ')[0] as string, l.split(' ').slice(1)]));
    const top = rows(await cgm('listkeys', V1));
    expect(top.get('tasks')?.slice(0, 2)).toEqual(['0', '0']);
    expect(top.get('cgroup.procs')?.slice(0, 2)).toEqual(['0', '0']);
    expect(top.get(KEY)?.slice(0, 2)).toEqual([String(UNMAPPED), String(UNMAPPED)]);
    const own = rows(await cgm('listkeys', V1, 'child'));
    for (const [name, [uid, gid]] of own) expect([uid, gid], name).toEqual(['0', '0']);
  });

  it('chowns a child to a uid of its own namespace (the host sees the mapped uid)', async () => {
    await cgm('create', V1, 'child/u5');
    await cgm('chown', V1, 'child/u5', '5', '5');
    expect(owner(env.fsPath(V1, 'c1/child/u5'))).toEqual([ROOT_UID + 5, ROOT_UID + 5]);
    expect(owner(env.fsPath(V1, 'c1/child/u5', 'tasks'))).toEqual([ROOT_UID + 5, ROOT_UID + 5]);
    await cgm('remove', V1, 'child/u5');
  });

  const sibling = (): string => env.cgPath(V1, 'sibling');
  const refusals: Array<[string, () => string[], string]> = [
    ['a limit of its own root cgroup (host root owns it)', () => ['setvalue', V1, '', KEY, '2'], `${ERR}AccessDenied`],
    ['making that limit writable', () => ['chmodfile', V1, '', KEY, '666'], `${ERR}AccessDenied`],
    ['removing its own root cgroup', () => ['remove', V1, ''], `${ERR}AccessDenied`],
    ['a sibling\'s limit, named from the hierarchy root', () => ['setvalue', V1, sibling(), KEY, '2'], `${ERR}AccessDenied`],
    ['reading a sibling', () => ['getvalue', V1, sibling(), KEY], `${ERR}AccessDenied`],
    ['listing the sibling\'s tasks', () => ['gettasks', V1, sibling()], `${ERR}AccessDenied`],
    ['listing the sibling\'s keys', () => ['listkeys', V1, sibling()], `${ERR}AccessDenied`],
    ['listing the host\'s root cgroup', () => ['listchildren', V1, '/'], `${ERR}AccessDenied`],
    ['creating above the container', () => ['create', 'all', '../escape'], `${ERR}InvalidArgs`],
    ['moving into a sibling through ..', () => ['movepidabs', V1, '/../sibling', String(victim.nsPid)], `${ERR}InvalidArgs`],
    ['moving a host process (not in its pid namespace)', () => ['movepid', V1, 'child', String(hostVictim.pid)], `${ERR}UnixProcessIdUnknown`],
    ['asking where a host process is', () => ['getpidcgroupabs', V1, String(hostVictim.pid)], `${ERR}UnixProcessIdUnknown`],
    ['handing a child to a uid outside its namespace', () => ['chown', V1, 'child', '70000', '70000'], `${ERR}AccessDenied`],
  ];

  it.each(refusals)('refuses %s, and nothing changes', async (_what, args, errorName) => {
    const before = snapshot();
    const r = await c.cgm(args());
    expect(r.code, r.stdout).toBe(1);
    expect(cgmErrorName(r), r.stderr).toBe(errorName);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(snapshot()).toEqual(before);
    expect(env.cgroupOf(hostVictim.pid, V1)).toBe(env.cgPath(V1, 'sibling'));
  });

  it('forwards an Scm call made to it for the caller itself, and refuses one for someone else (no chained proxying)', async () => {
    const call = async (extra: Record<string, unknown>): Promise<{ ok: boolean; name?: string; message?: string; value?: unknown }> => {
      const r = await c.exec([process.execPath, SCM_CALL, JSON.stringify({ socket: CONTAINER_SOCKET, method: 'ListChildrenScm', args: [V1, ''], ...extra })]);
      return JSON.parse(okOutput(r, 'scm-call')) as { ok: boolean; name?: string; message?: string };
    };
    const self = await call({});
    expect(self).toMatchObject({ ok: true, value: { kind: 'names' } });
    expect((self.value as { names: string[] }).names).toContain('child');
    // Container root may claim its init's pid, but the proxy speaks only for its peer.
    const chained = await call({ requestor: { pid: 1, uid: 0, gid: 0 } });
    expect(chained).toMatchObject({ ok: false, name: `${ERR}AccessDenied` });
    expect(chained.message).toMatch(/chained proxying/);
  });

  describe('suffixes of reference §4.4', () => {
    let mover: ContainerProcess;

    beforeAll(async () => {
      await cgm('create', 'all', 'init.scope');
      await cgm('create', 'all', 'system.slice/cgproxy.service');
      mover = await c.spawn(['sleep', '600']);
    });

    afterAll(async () => {
      await mover?.stop();
    });

    it('a requestor in <container>/init.scope moves tasks as if it sat at the container\'s root', async () => {
      // Without the chop, 'child' would be looked up below init.scope, which has none.
      const r = await c.cgm(['movepid', V1, 'child', String(mover.nsPid)], { at: 'c1/init.scope' });
      expect(r.code, r.stderr).toBe(0);
      expect(env.cgroupOf(mover.hostPid, V1)).toBe(env.cgPath(V1, 'c1/child'));
    });

    it('a proxy in <container>/system.slice/cgproxy.service bounds escapes and reads at the container\'s root', async () => {
      await proxy.stop();
      // A restarted proxy finds the host socket already moved aside and uses it.
      proxy = await c.startProxy([], { at: 'c1/system.slice/cgproxy.service' });
      expect(proxy.stderr()).not.toMatch(/moved the host socket aside/);
      expect(env.cgroupOf(proxy.hostPid, V1)).toBe(env.cgPath(V1, 'c1/system.slice/cgproxy.service'));
      await cgm('movepidabs', V1, '/', String(mover.nsPid));
      expect(env.cgroupOf(mover.hostPid, V1)).toBe(env.cgPath(V1, 'c1'));
      await cgm('movepidabs', V1, '/child', String(mover.nsPid));
      expect(env.cgroupOf(mover.hostPid, V1)).toBe(env.cgPath(V1, 'c1/child'));
      expect(await cgm('getpidcgroupabs', V1, String(mover.nsPid))).toBe('/child\n');
      // Reads are bounded by the container's root, not by the proxy's own cgroup.
      expect(await cgm('getvalue', V1, env.cgPath(V1, 'c1/child'), KEY)).toBe(`${sampleLimit(V1).value}\n`);
      const denied = await c.cgm(['getvalue', V1, env.cgPath(V1), KEY]);
      expect(cgmErrorName(denied), denied.stderr).toBe(`${ERR}AccessDenied`);
    });
  });

  describe('cgproxy start-up and the host daemon going away', () => {
    it('--check-master exits 0 when a manager answers, 1 when none does', async () => {
      const check = (socket: string, upstream: string) => c.exec([process.execPath, PROXY_MAIN, '--check-master', '--socket', socket, '--upstream', upstream]);
      expect((await check(CONTAINER_SOCKET, `${CONTAINER_LOWER_DIR}/sock`)).code).toBe(0);
      expect((await check('/nonexistent/sock', `${CONTAINER_LOWER_DIR}/sock`)).code).toBe(0);
      expect((await check(CONTAINER_SOCKET, '/nonexistent/sock')).code).toBe(0);
      expect((await check('/nonexistent/sock', '/nonexistent/lower')).code).toBe(1);
    });

    it('a second proxy refuses to start, and the first keeps serving', async () => {
      const r = await c.exec([process.execPath, PROXY_MAIN]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/already running/);
      await cgm('ping');
      await cgm('listchildren', V1);
    });

    it('the first call after the host daemon restarted succeeds', async () => {
      await env.stopDaemon();
      // The proxy notices at once (it keeps reading its idle upstream connection).
      expect(await waitFor(() => proxy.stderr().includes('lost the host daemon'), 3000, 10)).toBe(true);
      await env.restartDaemon();
      expect(await cgm('listchildren', V1)).toMatch(/child/);
    });

    it('while the daemon is down calls fail at once with Unavailable; Ping still answers', async () => {
      await env.stopDaemon();
      const started = Date.now();
      const r = await c.cgm(['getvalue', V1, 'child', KEY]);
      expect(r.code).toBe(1);
      expect(cgmErrorName(r), r.stderr).toBe('org.linuxcontainers.cgmanager.Error.Unavailable');
      // "At once": well before the proxy's reconnect timeout, on a slow guest too.
      expect(Date.now() - started).toBeLessThan(slack(3000));
      await cgm('ping');
      await env.restartDaemon();
      expect(await cgm('getvalue', V1, 'child', KEY)).toBe(`${sampleLimit(V1).value}\n`);
    });
  });

  it('neither the daemon nor the proxy logged a fault of its own', () => {
    expect(daemonErrors(env)).toBe('');
    expect(proxy.stderr()).not.toMatch(/"level":"(error|fatal)"/);
  });
});

describe.skipIf(reason !== undefined)(titled('a container with only the host\'s socket (no proxy)', reason), () => {
  let env: TestDaemon;
  let c: Container;
  let bare: Container;
  let fileBound: Container;
  let V1: string;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: availableV1Controllers(['cpu']) });
    V1 = env.primaryV1;
    okValues(await env.dbusSend('Create', 'ss', ['all', 'c2/init.scope']), env);
    okValues(await env.dbusSend('Chown', 'ssii', ['all', 'c2', ROOT_UID, ROOT_UID]), env);
    okValues(await env.dbusSend('Chown', 'ssii', ['all', 'c2/init.scope', ROOT_UID, ROOT_UID]), env);
    [c, bare, fileBound] = await Promise.all([
      startContainer(env, { name: 'c2', at: 'c2', uidMap: MAP, socketDir: env.dir }),
      startContainer(env, { name: 'empty', at: 'c2', uidMap: MAP }),
      startContainer(env, { name: 'file', at: 'c2', uidMap: MAP, socketFile: env.socket }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([c?.stop(), bare?.stop(), fileBound?.stop()]);
    await env?.stop();
  });

  it('cgm reaches the daemon through the Scm variants, with its pids and uids translated by the kernel', async () => {
    const victim = await c.spawn(['sleep', '600']);
    const cgm = async (...args: string[]): Promise<string> => okOutput(await c.cgm(args), `cgm ${args.join(' ')}`);
    await cgm('create', 'all', 'x');
    for (const h of env.labels) expect(owner(env.fsPath(h, 'c2/x')), h).toEqual([ROOT_UID, ROOT_UID]);
    await cgm('movepid', 'all', 'x', String(victim.nsPid));
    expect(env.cgroupOf(victim.hostPid, V1)).toBe(env.cgPath(V1, 'c2/x'));
    expect(await cgm('gettasks', V1, 'x')).toBe(`${victim.nsPid}\n`);
    expect(await cgm('getpidcgroup', V1, String(victim.nsPid))).toBe('x\n');
    const keys = await cgm('listkeys', V1, '');
    expect(keys).toMatch(new RegExp(`^${sampleLimit(V1).key} ${UNMAPPED} ${UNMAPPED} `, 'm'));
    expect(keys).toMatch(/^tasks 0 0 /m);
    // The daemon saw Scm calls whose requestor is the container's root (host uid 100000).
    expect(await waitFor(() => env.logLines().some((l) => l.method === 'CreateScm' && l.cgroup === 'x'), 2000, 20)).toBe(true);
    const created = env.logLines().find((l) => l.method === 'CreateScm' && l.cgroup === 'x');
    expect((created?.requestor as { uid: number } | undefined)?.uid).toBe(ROOT_UID);
    const refused = await c.cgm(['setvalue', V1, '', sampleLimit(V1).key, '2']);
    expect(cgmErrorName(refused), refused.stderr).toBe(`${ERR}AccessDenied`);
    // Talking Scm itself, cgm is its own proxy: an "escape" to / goes no higher than its
    // own cgroup, with /init.scope chopped (reference §4.4, §4.7).
    const r = await c.cgm(['movepidabs', V1, '/', String(victim.nsPid)], { at: 'c2/init.scope' });
    expect(r.code, r.stderr).toBe(0);
    expect(env.cgroupOf(victim.hostPid, V1)).toBe(env.cgPath(V1, 'c2'));
    await victim.stop();
  });

  it('a process in a user namespace of its own (same pid namespace) takes the Scm route too', async () => {
    const r = await env.run([process.execPath, CGM_MAIN, '--socket', env.socket, 'create', V1, 'viauserns'], { userns: { uidMap: MAP }, at: 'c2' });
    expect(r.code, r.stderr).toBe(0);
    expect(owner(env.fsPath(V1, 'c2/viauserns'))).toEqual([ROOT_UID, ROOT_UID]);
    expect(await waitFor(() => env.logLines().some((l) => l.cgroup === 'viauserns'), 2000, 20)).toBe(true);
    expect(env.logLines().find((l) => l.cgroup === 'viauserns')?.method).toBe('CreateScm');
  });

  it('cgproxy renames the socket directory aside when it is no mount point (only the socket file was bound)', async () => {
    const proxy = await fileBound.startProxy();
    expect(proxy.stderr()).toMatch(/"how":"rename"/);
    expect(fs.statSync(fileBound.hostPath(`${CONTAINER_LOWER_DIR}/sock`)).ino).toBe(fs.statSync(env.socket).ino);
    expect(okOutput(await fileBound.cgm(['listchildren', V1]))).toMatch(/^x$/m);
  });

  it('cgproxy --check-master: 0 where the host socket is bound, 1 where nothing is', async () => {
    expect((await c.exec([process.execPath, PROXY_MAIN, '--check-master'])).code).toBe(0);
    expect((await bare.exec([process.execPath, PROXY_MAIN, '--check-master'])).code).toBe(1);
    const r = await bare.exec([process.execPath, PROXY_MAIN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no cgmanager answers/);
  });
});
