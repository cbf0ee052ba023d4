// Freeze and Kill never reach the daemon itself: root freezing or killing a cgroup whose
// subtree holds the daemon is refused (AccessDenied), the freezer stays THAWED and the daemon
// keeps serving. Without the rule the daemon froze itself on v1 (its kill is freeze, SIGKILL,
// thaw) and could neither answer nor thaw. The test moves the daemon it started into a v1
// freezer cgroup below the test's own, and puts it back.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableV1Controllers, isAlive, okValues, startTestDaemon, titled, type TestDaemon } from '../../helpers';

const reason = availableV1Controllers(['freezer']).length === 0 ? 'no v1 freezer hierarchy on this host' : undefined;

describe.skipIf(reason !== undefined)(titled('Freeze and Kill of the cgroup that holds the daemon', reason), () => {
  let env: TestDaemon;
  let home: string;
  let before: string;
  const state = (): string => fs.readFileSync(env.fsPath('freezer', 'home', 'freezer.state'), 'utf8').trim();
  beforeAll(async () => {
    env = await startTestDaemon({ controllers: ['freezer'] });
    await okValues(await env.dbusSend('Create', 'ss', ['freezer', 'home']), env);
    home = env.fsPath('freezer', 'home', 'cgroup.procs');
    before = env.fsPath('freezer', '', 'cgroup.procs');
    fs.writeFileSync(home, String(env.daemonPid));
  }, 60_000);
  afterAll(async () => {
    if (env) {
      // Whatever happened: thawed, and the daemon back where it started, before it is stopped.
      fs.writeFileSync(env.fsPath('freezer', 'home', 'freezer.state'), 'THAWED');
      fs.writeFileSync(before, String(env.daemonPid));
      await env.stop();
    }
  });

  it.each([
    ['Freeze of its cgroup', 'org.linuxcontainers.cgmanager1.Freeze', 's', ['home']],
    ['Freeze of the cgroup above it', 'org.linuxcontainers.cgmanager1.Freeze', 's', ['']],
    ['Kill of its cgroup', 'org.linuxcontainers.cgmanager1.Kill', 's', ['home']],
    ['SetValue freezer.state FROZEN', 'SetValue', 'ssss', ['freezer', 'home', 'freezer.state', 'FROZEN']],
    ['SetValue cgroup.kill 1', 'SetValue', 'ssss', ['freezer', 'home', 'cgroup.kill', '1']],
  ] as const)('%s is AccessDenied and the daemon goes on', async (_what, method, signature, args) => {
    const r = await env.dbusSend(method, signature, [...args], { timeoutMs: 15_000 });
    expect(r.errorName, JSON.stringify(r)).toBe('org.freedesktop.DBus.Error.AccessDenied');
    expect(r.errorMessage).toContain('holds the daemon itself');
    expect(state()).toBe('THAWED');
    expect(isAlive(env.daemonPid)).toBe(true);
    expect((await env.dbusSend('Ping', 'i', [0])).code).toBe(0);
  });

  it('Thaw of it is allowed (it never hurts)', async () => {
    const r = await env.dbusSend('org.linuxcontainers.cgmanager1.Thaw', 's', ['home']);
    expect(r.code, JSON.stringify(r)).toBe(0);
  });
});
