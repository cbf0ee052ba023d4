// Watch through cgproxy in a user-namespaced container: each watching client gets its own
// upstream connection on which the proxy calls WatchScm with the client's credentials, so
// a name is relative to that client's cgroup; the daemon's signals come back to the right
// client unchanged; the upstream connection goes when the client unwatches everything or
// leaves; a name outside the client's subtree is refused.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { okValues, skipReason, startTestDaemon, titled, waitFor, type TestDaemon } from '../../helpers';
import { CONTAINER_SOCKET, startContainer, type Container, type ContainerProcess } from '../../helpers/container';
import { REPO_ROOT } from '../../helpers/requirements';

const ROOT_UID = 100000;
const MAP = `0 ${ROOT_UID} 65536`;
const WATCH_MAIN = `${REPO_ROOT}/dist/test/helpers/watch-main.js`;
const reason = skipReason({ cgroup2: true, named: 1, userns: true });

interface Line {
  ready?: boolean;
  error?: string;
  code?: string;
  type?: string;
  cgroup?: string;
}

const lines = (p: ContainerProcess): Line[] =>
  p
    .stdout()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line);

describe.skipIf(reason !== undefined)(titled('Watch through cgproxy', reason), () => {
  let env: TestDaemon;
  let c: Container;
  let proxy: ContainerProcess;
  const host = async (method: string, sig: string, args: Array<string | number>): Promise<void> => void okValues(await env.dbusSend(method, sig, args), env);
  const watcher = (cgroups: string[], count: number, at?: string): Promise<ContainerProcess> =>
    c.spawn([process.execPath, WATCH_MAIN, JSON.stringify({ socket: CONTAINER_SOCKET, cgroups, count })], at === undefined ? {} : { at });
  const ready = (p: ContainerProcess): Promise<boolean> => waitFor(() => lines(p).some((l) => l.ready || l.error) || p.child.exitCode !== null, 10_000, 10);
  const upstreamCount = (): number => env.logLines().filter((l) => l.msg === 'connection accepted').length - env.logLines().filter((l) => l.msg === 'connection closed').length;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, logLevel: 'debug' });
    await host('Create', 'ss', ['all', 'c1']);
    // Two cgroups of the container, each with its own 'x', for two clients.
    for (const rel of ['c1/p/x', 'c1/q/x']) await host('Create', 'ss', ['all', rel]);
    await host('Chown', 'ssii', ['all', 'c1', ROOT_UID, ROOT_UID]);
    c = await startContainer(env, { name: 'c1', at: 'c1', uidMap: MAP, socketDir: env.dir });
    proxy = await c.startProxy();
  });

  afterAll(async () => {
    await c?.stop();
    await env?.stop();
  });

  it('two clients watching the same relative name each hear only of their own cgroup, and upstream connections follow them', async () => {
    const before = upstreamCount();
    const a = await watcher(['x'], 1, 'c1/p');
    const b = await watcher(['x'], 1, 'c1/q');
    expect(await ready(a)).toBe(true);
    expect(await ready(b)).toBe(true);
    expect(lines(a)[0], a.stderr()).toMatchObject({ ready: true });
    expect(lines(b)[0], b.stderr()).toMatchObject({ ready: true });
    // Each watching client holds one connection of the proxy's at the daemon.
    expect(await waitFor(() => upstreamCount() === before + 2, 5000)).toBe(true);
    const inP = await c.spawn(['sleep', '600'], { at: 'c1/p/x' });
    await inP.stop('SIGKILL');
    expect(await waitFor(() => lines(a).length >= 2, 10_000)).toBe(true);
    expect(lines(a)[1]).toEqual({ type: 'emptied', cgroup: 'x' });
    await new Promise((r) => setTimeout(r, 300));
    expect(lines(b)).toHaveLength(1); // q/x did not empty
    // a got its one event and left: its upstream connection went with it.
    expect(await waitFor(() => a.child.exitCode !== null && upstreamCount() === before + 1, 5000)).toBe(true);
    await b.stop('SIGKILL');
    expect(await waitFor(() => upstreamCount() === before, 5000)).toBe(true);
    // The daemon saw WatchScm for each client, with the client's credentials.
    await new Promise((r) => setTimeout(r, 150));
    const scm = env.logLines().filter((l) => l.method === 'WatchScm');
    expect(scm.length).toBeGreaterThanOrEqual(2);
    expect(scm.every((l) => (l.requestor as { uid: number }).uid === ROOT_UID)).toBe(true);
  });

  it('a name outside the client\'s subtree is refused with the daemon\'s error', async () => {
    const p = await watcher(['/'], 1);
    expect(await ready(p)).toBe(true);
    expect(lines(p)[0]).toMatchObject({ code: 'AccessDenied' });
    expect(proxy.child.exitCode).toBeNull();
    expect(fs.existsSync(env.fsPath('unified', 'c1'))).toBe(true);
  });
});
