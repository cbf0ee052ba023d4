// The client library against the real daemon in a private cgroup layout: every method's
// happy path and one named error, many concurrent calls on one connection, clean close,
// nothing listening, a client as uid 1000, and the README's example program.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason, startTestDaemon, titled, waitFor, type LongLived, type TestDaemon } from '../../helpers';
import { REPO_ROOT } from '../../helpers/requirements';
import { API_VERSION } from '../../../daemon/dbus/interface';
import { connect, isCgmanagerError, type CgmanagerClient, type CgmanagerErrorCode } from '../../../client';

const CLIENT_DIST = path.join(REPO_ROOT, 'dist', 'client', 'index.js');
const EXAMPLE = path.join(REPO_ROOT, 'dist', 'client', 'examples', 'delegate.js');
const RUNTIME_EXAMPLE = path.join(REPO_ROOT, 'dist', 'client', 'examples', 'run-container.js');
const NO_SUCH_PID = 2147483647;
const LEAF = '.cgm_leaf';

const reason =
  skipReason({ controllers: ['cpu', 'memory'], cgroup2: true, named: 1 }) ??
  (fs.existsSync(EXAMPLE) ? undefined : `the client is not built (${EXAMPLE}); run npx tsc -p tsconfig.json`);

const read = (file: string): string => fs.readFileSync(file, 'utf8').replace(/\n+$/, '');
const owner = (file: string): string => {
  const st = fs.statSync(file);
  return `${st.uid}:${st.gid}`;
};

async function failsWith(promise: Promise<unknown>, code: CgmanagerErrorCode, dbusName?: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isCgmanagerError(err), `expected a CgmanagerError ${code}, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  if (dbusName) expect((err as { dbusName: string }).dbusName).toBe(dbusName);
  expect((err as Error).message).not.toMatch(/\n\s+at /); // never a stack trace
}

describe.skipIf(reason !== undefined)(titled('client library against the real daemon', reason), () => {
  let env: TestDaemon;
  let client: CgmanagerClient;
  let N: string;
  let B: string; // the base cgroup's name, relative to this test process's own cgroups
  const sleepers: LongLived[] = [];
  const cg = (rel: string): string => `${B}/${rel}`;

  beforeAll(async () => {
    env = await startTestDaemon({
      named: 1,
      cgroup2: true,
      controllers: ['cpu', 'memory'],
      logLevel: 'debug',
      daemonArgs: (layout) => ['--allow-autoremove-premounted', layout.named[0] as string],
    });
    N = env.named[0] as string;
    B = path.basename(env.cgPath(N));
    client = await connect({ socket: env.socket });
  });

  afterAll(async () => {
    await client?.close();
    await env?.stop();
  });

  async function sleeper(): Promise<LongLived> {
    const s = await env.spawn(['sleep', '600']);
    sleepers.push(s);
    return s;
  }

  const accepted = (): number => env.logLines().filter((l) => l.msg === 'connection accepted').length;

  describe('every method: the happy path and one named error', () => {
    it('Ping, ListControllers, api_version (these cannot fail)', async () => {
      await expect(client.ping()).resolves.toBeUndefined();
      await expect(client.ping(-7)).resolves.toBeUndefined();
      const list = await client.listControllers();
      expect(list.map((e) => e.split(',')[0]).sort()).toEqual([...env.labels].sort());
      await expect(client.apiVersion()).resolves.toBe(API_VERSION);
    });

    it('Create', async () => {
      await expect(client.create(N, cg('a'))).resolves.toBe(false);
      expect(fs.statSync(env.fsPath(N, 'a')).isDirectory()).toBe(true);
      await expect(client.create(N, cg('a'))).resolves.toBe(true);
      await expect(client.create('all', cg('a'))).resolves.toBe(true); // existed in one of them
      for (const h of env.labels) expect(fs.existsSync(env.fsPath(h, 'a')), h).toBe(true);
      await failsWith(client.create('nosuchcontroller', cg('a')), 'NoSuchController', 'org.linuxcontainers.cgmanager.Error.NoSuchController');
    });

    it('Chown', async () => {
      await client.chown(N, cg('a'), 1000, 1001);
      expect(owner(env.fsPath(N, 'a'))).toBe('1000:1001');
      expect(owner(env.fsPath(N, 'a', 'cgroup.procs'))).toBe('1000:1001');
      await failsWith(client.chown(N, cg('missing'), 1, 1), 'FileNotFound', 'org.freedesktop.DBus.Error.FileNotFound');
    });

    it('Chmod', async () => {
      await client.chmod(N, cg('a'), 'notify_on_release', 0o600);
      expect(fs.statSync(env.fsPath(N, 'a', 'notify_on_release')).mode & 0o7777).toBe(0o600);
      await client.chmod(N, cg('a'), '', 0o750);
      expect(fs.statSync(env.fsPath(N, 'a')).mode & 0o7777).toBe(0o750);
      await failsWith(client.chmod(N, cg('a'), 'nofile', 0o600), 'FileNotFound');
    });

    it('SetValue and GetValue', async () => {
      await client.setValue('cpu', cg('a'), 'cpu.shares', '300');
      expect(read(env.fsPath('cpu', 'a', 'cpu.shares'))).toBe('300');
      await expect(client.getValue('cpu', cg('a'), 'cpu.shares')).resolves.toBe('300');
      await failsWith(client.setValue('cpu', cg('a'), 'cpu.shares', 'lots'), 'InvalidArgs', 'org.freedesktop.DBus.Error.InvalidArgs');
      await failsWith(client.getValue('cpu', cg('a'), 'no.such.key'), 'FileNotFound');
    });

    it('MovePid, MovePidAbs, GetPidCgroup, GetPidCgroupAbs', async () => {
      const victim = await sleeper();
      await client.create('all', cg('m'));
      await client.movePid('all', cg('m'), victim.pid);
      expect(env.cgroupOf(victim.pid, N)).toBe(env.cgPath(N, 'm'));
      expect(env.cgroupOf(victim.pid, 'unified')).toBe(env.cgPath('unified', `m/${LEAF}`));
      await expect(client.getPidCgroup(N, victim.pid)).resolves.toBe(cg('m'));
      await expect(client.getPidCgroup('unified', victim.pid)).resolves.toBe(cg('m'));
      await expect(client.getPidCgroupAbs('cpu', victim.pid)).resolves.toBe(env.cgPath('cpu', 'm'));
      await client.movePidAbs('cpu', env.cgPath('cpu', 'a'), victim.pid);
      expect(env.cgroupOf(victim.pid, 'cpu')).toBe(env.cgPath('cpu', 'a'));
      await failsWith(client.movePid(N, cg('m'), NO_SUCH_PID), 'UnixProcessIdUnknown', 'org.freedesktop.DBus.Error.UnixProcessIdUnknown');
      await failsWith(client.movePidAbs('cpu', `${env.cgPath('cpu')}/no-such-cgroup`, victim.pid), 'FileNotFound');
      await failsWith(client.getPidCgroup(N, NO_SUCH_PID), 'UnixProcessIdUnknown');
      await failsWith(client.getPidCgroupAbs(N, NO_SUCH_PID), 'UnixProcessIdUnknown');
    });

    it('GetTasks, GetTasksRecursive, ListChildren, ListKeys', async () => {
      const victim = sleepers[0] as LongLived;
      await expect(client.getTasks(N, cg('m'))).resolves.toEqual([victim.pid]);
      await expect(client.getTasks('unified', cg('m'))).resolves.toEqual([victim.pid]);
      await expect(client.getTasksRecursive('all', B)).resolves.toContain(victim.pid);
      const children = await client.listChildren('unified', B);
      expect([...children].sort()).toEqual(['a', 'm']);
      const keys = await client.listKeys(N, cg('a'));
      const dir = env.fsPath(N, 'a');
      const expected = fs.readdirSync(dir).filter((f) => fs.statSync(path.join(dir, f)).isFile());
      expect(keys.map((k) => k.name).sort()).toEqual(expected.sort());
      for (const k of keys) {
        const st = fs.statSync(path.join(dir, k.name));
        expect(k, k.name).toEqual({ name: k.name, uid: st.uid, gid: st.gid, mode: st.mode });
      }
      await failsWith(client.getTasks(N, cg('nonexistent')), 'FileNotFound');
      await failsWith(client.getTasksRecursive(N, cg('nonexistent')), 'FileNotFound');
      await failsWith(client.listChildren(N, cg('nonexistent')), 'FileNotFound');
      await failsWith(client.listKeys(N, cg('nonexistent')), 'FileNotFound');
    });

    it('Remove: true when it existed, false when not; NotEmpty and Busy are named', async () => {
      await client.create(N, cg('r/child'));
      await failsWith(client.remove(N, cg('r'), false), 'NotEmpty', 'org.linuxcontainers.cgmanager.Error.NotEmpty');
      await expect(client.remove(N, cg('r'), true)).resolves.toBe(true);
      expect(fs.existsSync(env.fsPath(N, 'r'))).toBe(false);
      await expect(client.remove(N, cg('r'), true)).resolves.toBe(false);
      await failsWith(client.remove(N, cg('m'), true), 'Busy', 'org.linuxcontainers.cgmanager.Error.Busy');
    });

    it('RemoveOnEmpty and Prune', async () => {
      await client.create(N, cg('p/q'));
      await client.removeOnEmpty(N, cg('p/q'));
      expect(read(env.fsPath(N, 'p/q', 'notify_on_release'))).toBe('1');
      await failsWith(client.removeOnEmpty('cpu', cg('a')), 'NotSupported', 'org.freedesktop.DBus.Error.NotSupported');
      await client.prune(N, cg('p'));
      expect(fs.existsSync(env.fsPath(N, 'p/q'))).toBe(false);
      await failsWith(client.prune(N, cg('nonexistent')), 'FileNotFound');
    });

    it('bad arguments are TypeErrors before anything is sent', async () => {
      await expect(client.movePid(N, cg('m'), 2 ** 32)).rejects.toThrow(TypeError);
      await expect(client.create(N, 'a\0b')).rejects.toThrow(/must not contain NUL bytes/);
    });
  });

  describe('one connection', () => {
    it('carries hundreds of concurrent calls, each matched to its own reply', async () => {
      const before = accepted();
      const victim = sleepers[0] as LongLived;
      const calls = Array.from({ length: 300 }, (_, i) => {
        switch (i % 5) {
          case 0:
            return client.getValue('cpu', cg('a'), 'cpu.shares').then((v) => expect(v).toBe('300'));
          case 1:
            return client.getTasks(N, cg('m')).then((t) => expect(t).toEqual([victim.pid]));
          case 2:
            return client.listChildren(N, cg('m')).then((c) => expect(c).toEqual([]));
          case 3:
            return failsWith(client.getValue('cpu', cg('a'), `missing.${i}`), 'FileNotFound');
          default:
            return client.getPidCgroup(N, victim.pid).then((p) => expect(p).toBe(cg('m')));
        }
      });
      await Promise.all(calls);
      expect(accepted()).toBe(before);
    });

    it('close() waits for calls in flight, then later calls fail with Closed', async () => {
      const closedBefore = env.logLines().filter((l) => l.msg === 'connection closed').length;
      const c = await connect({ socket: env.socket });
      const pending = [c.listControllers(), c.getValue('cpu', cg('a'), 'cpu.shares')];
      const closing = c.close();
      await failsWith(c.ping(), 'Closed');
      await expect(Promise.all(pending)).resolves.toHaveLength(2);
      await closing;
      expect(c.closed).toBe(true);
      // The daemon saw the connection end.
      expect(await waitFor(() => env.logLines().filter((l) => l.msg === 'connection closed').length > closedBefore, 5000)).toBe(true);
    });

    it('destroy() fails calls in flight with Closed', async () => {
      const c = await connect({ socket: env.socket });
      const pending = c.listControllers();
      c.destroy();
      await failsWith(pending, 'Closed');
    });
  });

  it('nothing listening: NotRunning with the socket path', async () => {
    const socket = path.join(env.dir, 'no-daemon-here');
    const err = await connect({ socket }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'CgmanagerError', code: 'NotRunning', errno: 'ENOENT', socketPath: socket });
    expect((err as Error).message).toContain(socket);
  });

  it('as uid 1000 in a separate process: AccessDenied by code, and the idle connection does not keep it alive', async () => {
    // Creating next to the base (owned by root) is refused; reading is allowed. No close() on purpose.
    const script = [
      `const { connect } = require(${JSON.stringify(CLIENT_DIST)});`,
      '(async () => {',
      `  const c = await connect({ socket: ${JSON.stringify(env.socket)} });`,
      '  const out = { own: await c.getPidCgroup("memory", process.pid) };',
      '  try { await c.create("memory", "denied"); out.create = "ok"; } catch (e) { out.create = e.code; out.name = e.dbusName; }',
      '  try { await c.chown("memory", "", 1000, 1000); out.chown = "ok"; } catch (e) { out.chown = e.code; }',
      '  out.tasks = (await c.getTasks("memory", "")).includes(process.pid);',
      '  console.log(JSON.stringify(out));',
      '})();',
    ].join('\n');
    const started = Date.now();
    const r = await env.run([process.execPath, '-e', script], { uid: 1000, timeoutMs: 15_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(JSON.parse(r.stdout)).toEqual({ own: '/', create: 'AccessDenied', name: 'org.freedesktop.DBus.Error.AccessDenied', chown: 'AccessDenied', tasks: true });
    expect(fs.existsSync(env.fsPath('memory', 'denied'))).toBe(false);
  });

  it("the README's example program: create, delegate, limit memory, move a pid", async () => {
    const victim = await sleeper();
    const r = await env.run([process.execPath, EXAMPLE, 'delegated', '1000', '1000', '67108864', String(victim.pid)], {
      env: { CGMANAGER_SOCKET: env.socket },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`created delegated: owner 1000:1000, memory.limit_in_bytes=67108864, tasks ${victim.pid}\n`);
    for (const h of env.labels) {
      expect(owner(env.fsPath(h, 'delegated')), h).toBe('1000:1000');
      expect(env.cgroupOf(victim.pid, h), h).toBe(h === 'unified' ? env.cgPath(h, `delegated/${LEAF}`) : env.cgPath(h, 'delegated'));
    }
    expect(read(env.fsPath('memory', 'delegated', 'memory.limit_in_bytes'))).toBe('67108864');
    expect(owner(env.fsPath('memory', 'delegated', 'memory.limit_in_bytes'))).toBe('0:0');
    const denied = await env.run([process.execPath, EXAMPLE, 'delegated', '1000', '1000', '1', String(victim.pid)], {
      uid: 1000,
      env: { CGMANAGER_SOCKET: env.socket },
    });
    expect(denied.code).toBe(1);
    expect(denied.stdout).toBe('');
    expect(denied.stderr).toMatch(/^delegate: .+ \(AccessDenied\)\n$/);
  });

  it("the README's runtime example: a container with memory and CPU limits, its payload moved in before it runs, removed after", async () => {
    const payload = 'cat /proc/self/cgroup; exit 3';
    const r = await env.run([process.execPath, RUNTIME_EXAMPLE, 'ctr1', '67108864', '512', '--', 'sh', '-c', payload], { env: { CGMANAGER_SOCKET: env.socket } });
    expect(r.code, r.stderr).toBe(3); // the payload's status
    const [pidLine, ...rest] = r.stderr.split('\n');
    expect(rest).toEqual(['']);
    expect(pidLine).toMatch(/^run-container: ctr1: pid \d+, memory\.limit_in_bytes=67108864, cpu\.shares=512$/);
    // The payload saw itself in ctr1 in every hierarchy from its first instruction.
    const seen = new Map(r.stdout.trim().split('\n').map((l) => {
      const [, controllers = '', cgroup = ''] = l.split(':');
      return [controllers === '' ? 'unified' : controllers, cgroup] as const;
    }));
    for (const h of env.labels) {
      const entry = [...seen].find(([controllers]) => controllers === h || controllers.split(',').includes(h));
      expect(entry?.[1], h).toBe(h === 'unified' ? env.cgPath(h, `ctr1/${LEAF}`) : env.cgPath(h, 'ctr1'));
    }
    for (const h of env.labels) expect(fs.existsSync(env.fsPath(h, 'ctr1')), h).toBe(false);
    const usage = await env.run([process.execPath, RUNTIME_EXAMPLE, 'ctr1'], { env: { CGMANAGER_SOCKET: env.socket } });
    expect(usage).toMatchObject({ code: 1, stdout: '' });
  });
});
