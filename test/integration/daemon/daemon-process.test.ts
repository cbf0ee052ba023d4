// The daemon as a process: its log (a line per request, denials at warn), 50 clients at once,
// refusing to start beside a running instance, and its socket on SIGTERM and when stale.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableV1Controllers, RawClient, sampleLimit, skipReason, startTestDaemon, titled, type TestDaemon } from '../../helpers';
import { closeFd, listenUnix } from '../../../addon';

const CONTROLLERS = availableV1Controllers(['cpu']);
const reason = skipReason({ cgroup2: true, named: CONTROLLERS.length === 0 ? 1 : 0 });

describe.skipIf(reason !== undefined)(titled('the daemon process', reason), () => {
  let env: TestDaemon;
  /** a v1 hierarchy (cpu here, else a named one) and a writable file in it */
  let V1: string;
  let KEY: string;

  beforeAll(async () => {
    env = await startTestDaemon({ cgroup2: true, controllers: CONTROLLERS, named: CONTROLLERS.length === 0 ? 1 : 0 });
    V1 = env.primaryV1;
    KEY = sampleLimit(V1).key;
  });

  afterAll(async () => {
    await env?.stop();
  });

  it('logs each request at info and each denial at warn, with method, cgroup and requestor', async () => {
    const done = await env.dbusSend('Create', 'ss', [V1, 'logged']);
    expect(done.ok).toBe(true);
    const denied = await env.dbusSend('SetValue', 'ssss', [V1, 'logged', KEY, '2'], { uid: 1000 });
    expect(denied.errorName).toBe('org.freedesktop.DBus.Error.AccessDenied');
    const lines = env.logLines();
    const byPid = (pid: number): Record<string, unknown> | undefined =>
      lines.find((l) => (l.requestor as { pid?: number } | undefined)?.pid === pid);
    expect(byPid(done.pid)).toMatchObject({
      level: 'info', msg: 'request completed', method: 'Create', controller: V1, cgroup: 'logged',
      requestor: { pid: done.pid, uid: 0, gid: 0 }, outcome: 'ok',
    });
    expect(byPid(denied.pid)).toMatchObject({
      level: 'warn', msg: 'request denied', method: 'SetValue', controller: V1, cgroup: 'logged', key: KEY,
      requestor: { pid: denied.pid, uid: 1000, gid: 1000 }, outcome: 'AccessDenied',
    });
    expect(byPid(denied.pid)?.reason).toContain(KEY);
  });

  it('serves 50 connections in parallel, each making a few calls', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => RawClient.connect(env.socket)));
    try {
      // The test process sits in the parent of the bases: `${baseName}/…` is below them.
      const results = await Promise.all(
        clients.map(async (c, i) => {
          const cg = `${env.baseName}/c${i}`;
          const steps = [
            await c.call('Ping', 'i', [i]),
            await c.call('Create', 'ss', ['all', cg]),
            await c.call('GetValue', 'sss', [V1, cg, KEY]),
            await c.call('ListChildren', 'ss', ['unified', env.baseName]),
            await c.call('Remove', 'ssi', ['all', cg, 0]),
          ];
          return steps.map((s) => (s.ok ? s.values : s.errorName));
        }),
      );
      results.forEach((steps, i) => {
        expect(steps, `client ${i}`).toEqual([[], [-1], [expect.any(String)], [expect.arrayContaining([`c${i}`])], [1]]);
      });
      for (const h of env.labels) expect(fs.readdirSync(env.fsPath(h)).filter((n) => /^c\d+$/.test(n)), h).toEqual([]);
    } finally {
      clients.forEach((c) => c.close());
    }
    // Real client processes at the same time too.
    const pings = await Promise.all(Array.from({ length: 20 }, (_, i) => env.dbusSend('GetValue', 'sss', [V1, 'logged', KEY], { timeoutMs: 30_000 }).then((r) => [i, r.ok])));
    expect(pings.filter(([, ok]) => !ok)).toEqual([]);
  });

  it('a second daemon on the same socket refuses to start (exit 1) and the first keeps serving', async () => {
    const second = await env.runOtherDaemon(['--socket', env.socket, '--log-level', 'silent']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/another instance/);
    expect(fs.existsSync(env.socket)).toBe(true);
    expect((await env.busctl('Ping', 'i', [0])).ok).toBe(true);
  });

  it('removes its socket on SIGTERM, and replaces a stale socket file when it starts', async () => {
    expect(await env.stopDaemon()).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(env.socket)).toBe(false);
    // A socket file nobody listens on, as a crashed daemon leaves it.
    closeFd(listenUnix(env.socket, 1));
    expect(fs.statSync(env.socket).isSocket()).toBe(true);
    expect((await env.dbusSend('Ping', 'i', [0])).ok).toBe(false);
    await env.restartDaemon();
    expect((await env.gdbus('Ping', 'i', [0])).ok).toBe(true);
  });
});
