// Restarts lose nothing: remove-on-empty marks made before a SIGTERM or a SIGKILL still remove
// their cgroups afterwards (v1 through notify_on_release and the agents' spool, v2 through the
// state file), what emptied while the daemon was down goes at the next start, and clients see
// a clear error and reconnect with the library's helper.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { okValues, skipReason, startTestDaemon, titled, waitFor, type CallArg, type TestDaemon } from '../../helpers';
import { connect } from '../../../client/client';
import { ReconnectingClient } from '../../../client/reconnect';
import { CgmanagerError } from '../../../client/errors';
import { filesIn, killDaemon, releaseAgentSkipReason, stateDirOf } from './lifecycle';

const reason = skipReason({ cgroup2: true, named: 1 }) ?? releaseAgentSkipReason();

describe.skipIf(reason !== undefined)(titled('restarts', reason), () => {
  let env: TestDaemon;
  let N: string;
  const call = async (method: string, sig: string, args: readonly CallArg[]): Promise<unknown[]> => okValues(await env.dbusSend(method, sig, args), env);
  const exists = (label: string, rel: string): boolean => fs.existsSync(env.fsPath(label, rel));
  const both = (): string[] => [N, 'unified'];

  beforeAll(async () => {
    env = await startTestDaemon({
      named: 1,
      cgroup2: true,
      daemonArgs: (layout) => ['--allow-autoremove-premounted', layout.named[0] as string, '--autoremove-premounted-set-release-agent'],
    });
    N = env.named[0] as string;
  });

  afterAll(async () => {
    await env?.stop();
  });

  it('SIGTERM: marks made before a restart remove their cgroups when the tasks exit after it', async () => {
    await call('Create', 'ss', ['all', 'term/a']);
    const task = await env.spawn(['sleep', '600'], { at: 'term/a' });
    await call('RemoveOnEmpty', 'ss', ['all', 'term/a']);
    const state = JSON.parse(fs.readFileSync(path.join(stateDirOf(env), 'remove-on-empty.json'), 'utf8')) as { removeOnEmpty: unknown[] };
    expect(state.removeOnEmpty).toEqual([{ hierarchy: 'unified', cgroup: env.cgPath('unified', 'term/a') }]);
    expect(await env.stopDaemon()).toEqual({ code: 0, signal: null });
    await env.restartDaemon();
    expect(env.logLines().filter((l) => l.msg === 'serving').at(-1)).toMatchObject({ removeOnEmpty: 1 });
    for (const h of both()) expect(exists(h, 'term/a'), h).toBe(true);
    await task.stop();
    for (const h of both()) expect(await waitFor(() => !exists(h, 'term/a'), 5000, 20), h).toBe(true);
  });

  it('SIGKILL: what emptied while the daemon was down goes at its next start', async () => {
    await call('Create', 'ss', ['all', 'kill/a']);
    const task = await env.spawn(['sleep', '600'], { at: 'kill/a' });
    await call('RemoveOnEmpty', 'ss', ['all', 'kill/a']);
    const pending = path.join(stateDirOf(env), 'pending-releases');
    await killDaemon(env);
    await task.stop();
    // The kernel ran the agent, which spooled the release for a daemon that is not there.
    expect(await waitFor(() => filesIn(pending).some((f) => f.endsWith('.release')), 5000, 20), 'the agent should spool the release').toBe(true);
    for (const h of both()) expect(exists(h, 'kill/a'), h).toBe(true);
    await env.restartDaemon();
    for (const h of both()) expect(exists(h, 'kill/a'), h).toBe(false);
    expect(filesIn(pending)).toEqual([]);
    const serving = env.logLines().filter((l) => l.msg === 'serving').at(-1);
    expect(serving).toMatchObject({ releasedWhileDown: 1 });
  });

  it('a client holding a connection gets a clear error; the reconnecting client carries on', async () => {
    const held = await connect({ socket: env.socket, route: 'plain' });
    const rc = new ReconnectingClient({ socket: env.socket, route: 'plain' });
    try {
      await held.ping();
      expect(await rc.run((c) => c.listControllers())).toEqual(expect.arrayContaining([N]));
      await env.stopDaemon();
      await env.restartDaemon();
      const lost = await held.ping().then(() => undefined, (e: unknown) => e);
      expect(lost).toBeInstanceOf(CgmanagerError);
      expect((lost as CgmanagerError).code).toBe('Disconnected');
      expect((lost as CgmanagerError).message).toMatch(/lost the connection to cgmanager|connection .* is closed/);
      // The cut-off call fails clearly (it might have reached the daemon); the next one reconnects.
      await expect(rc.run((c) => c.ping())).rejects.toMatchObject({ code: 'Disconnected' });
      expect(await rc.run((c) => c.listControllers())).toEqual(expect.arrayContaining([N]));
      expect(rc.connectCount).toBe(2);
      // Calls that are safe to repeat may ask for it: across a SIGKILL and a restart that is still under way.
      await killDaemon(env);
      const restarted = new Promise((r) => setTimeout(r, 200)).then(() => env.restartDaemon());
      expect(await rc.run((c) => c.listControllers(), { retry: true })).toEqual(expect.arrayContaining([N]));
      await restarted;
      expect(rc.connectCount).toBe(3);
    } finally {
      held.destroy();
      await rc.close();
    }
  });
});
