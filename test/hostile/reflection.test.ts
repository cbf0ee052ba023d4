// Reflected credentials (issue 8): an attacker passes an Scm socket wired so that the
// daemon (or cgproxy) would read back a datagram it wrote itself and take its own
// credentials (pid, uid 0) or a result's (a task's pid with uid 0) as the requestor's or
// victim's. Every wiring is refused with ReflectedCredentials and nothing changes on
// disk. The attacker is a real process (test/hostile/reflect-attacker.py): uid 1000
// delegated `deleg` against the daemon, and root of a user-namespaced container against
// its cgproxy.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SNAPSHOT_VALUES, okValues, skipReason, snapshotTrees, startTestDaemon, titled, waitFor, type LongLived, type TestDaemon,
} from '../helpers';
import { startContainer, type Container, type ContainerProcess } from '../helpers/container';
import { REPO_ROOT } from '../helpers/requirements';
import type { RunResult } from '../helpers';

const ATTACKER = path.join(REPO_ROOT, 'test', 'hostile', 'reflect-attacker.py');
const REFLECTED = 'org.linuxcontainers.cgmanager.Error.ReflectedCredentials';
const SCM_TIMEOUT_MS = 800;
const reason = skipReason({ named: 1, userns: true });
// The attacker itself sits in a cgroup of the tree while it runs: memberships are checked
// by process (the root-owned task stays where it was), the rest of the tree by snapshot.
const SNAPSHOT_VALUES = DEFAULT_SNAPSHOT_VALUES.filter((v) => v !== 'tasks' && v !== 'cgroup.procs');

/** What an attacker may get back: kicks and failure results ('1' is also a success byte, but a success would show on disk). */
function assertOnlyKicksAndRefusals(received: AttackReport['received']): void {
  for (const d of received) {
    if (d.data === '1' || d.data === '0') continue;
    expect(d.data, 'an error detail naming the refusal').toBe(`cgmanager.error\n${REFLECTED}\nthe Scm credentials were sent by cgmanager itself (a reflected socket)`);
  }
}

interface Call {
  method: string;
  signature: string;
  args: unknown[];
}

interface AttackReport {
  replies: Array<{ ok: boolean; name?: string }>;
  received: Array<{ data: string; cred: { pid: number; uid: number; gid: number } | null }>;
}

function parseReport(r: RunResult): AttackReport {
  expect(r.code, `attacker failed: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as AttackReport;
}

const deniedLines = (lines: Array<Record<string, unknown>>): Array<Record<string, unknown>> =>
  lines.filter((l) => l.msg === 'request denied' && l.outcome === 'ReflectedCredentials');

/** The attacks; `ctl` is the hierarchy, `victimPid` a root-owned task the attacker must not move. */
function scenarios(ctl: string, victimPid: () => number): Array<{ name: string; calls: () => Call[]; reflectedAtCall: number[] }> {
  const create: Call = { method: 'CreateScm', signature: 'ssh', args: [ctl, 'red_escape'] };
  const chmod: Call = { method: 'ChmodScm', signature: 'sssih', args: [ctl, '', 'tasks', 0o777] };
  const movePid: Call = { method: 'MovePidAbsScm', signature: 'ssh', args: [ctl, '/'] };
  void victimPid;
  return [
    // Refused when the fd arrives: its peer is itself.
    { name: 'self', calls: () => [create], reflectedAtCall: [0] },
    // The second end's peer is the first, which the daemon holds.
    { name: 'pair', calls: () => [movePid, create], reflectedAtCall: [1] },
    { name: 'pair', calls: () => [chmod, chmod], reflectedAtCall: [1] },
    // Connected to each other only after both arrived: refused when the datagram is read.
    { name: 'reconnect', calls: () => [movePid, create], reflectedAtCall: [] },
  ];
}

describe.skipIf(reason !== undefined)(titled('reflected Scm credentials against the daemon', reason), () => {
  let env: TestDaemon;
  let N: string;
  let rootTask: LongLived;
  const hierarchy = (): Record<string, unknown> => snapshotTrees([env.absFsPath(N, '/')], SNAPSHOT_VALUES);

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, daemonArgs: ['--scm-timeout', String(SCM_TIMEOUT_MS)] });
    N = env.named[0] as string;
    okValues(await env.dbusSend('Create', 'ss', [N, 'deleg']), env);
    okValues(await env.dbusSend('Chown', 'ssii', [N, 'deleg', 1000, 1000]), env);
    okValues(await env.dbusSend('Create', 'ss', [N, 'other']), env);
    rootTask = await env.spawn(['sleep', '600'], { at: 'other' });
  });

  afterAll(async () => {
    await env?.stop();
  });

  it.each(scenarios('', () => 0).map((s, i) => [i, s.name, s.calls().map((c) => c.method).join('+')] as const))(
    'attack %i: %s (%s) is refused and changes nothing',
    async (index) => {
      const scenario = scenarios(N, () => rootTask.pid)[index];
      if (!scenario) throw new Error('no such scenario');
      const before = hierarchy();
      const deniedBefore = deniedLines(env.logLines()).length;
      const calls = scenario.calls();
      const report = parseReport(
        await env.run(['python3', ATTACKER, env.socket, scenario.name, ...calls.map((c) => JSON.stringify(c))], { uid: 1000, gid: 1000, at: 'deleg' }),
      );
      expect(report.replies).toHaveLength(calls.length);
      report.replies.forEach((reply, i) => {
        if (scenario.reflectedAtCall.includes(i)) expect(reply, `call ${i}`).toEqual({ ok: false, name: REFLECTED });
        else expect(reply, `call ${i}`).toEqual({ ok: true });
      });
      // Conversations that were admitted end refused (reconnect) or time out (pair: the
      // attacker never answers the kick), and the refusals are logged as denials.
      const refusedLater = scenario.name === 'reconnect' ? 2 : 0;
      const expected = deniedBefore + scenario.reflectedAtCall.length + refusedLater;
      expect(await waitFor(() => deniedLines(env.logLines()).length >= expected, 3 * SCM_TIMEOUT_MS, 20), 'denials logged').toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 2 * SCM_TIMEOUT_MS + 100)); // every conversation ended
      expect(deniedLines(env.logLines()).length).toBe(expected);
      for (const line of deniedLines(env.logLines()).slice(deniedBefore)) {
        expect(line.level, 'a denial is a warning').toBe('warn');
      }
      // The attacker never gets a result from the daemon, and nothing changed.
      assertOnlyKicksAndRefusals(report.received);
      expect(hierarchy()).toEqual(before);
      expect(fs.existsSync(env.absFsPath(N, '/red_escape'))).toBe(false);
      expect(env.cgroupOf(rootTask.pid, N)).toBe(env.cgPath(N, 'other'));
    },
  );

  it('the D-Bus connection itself passed as the Scm fd is refused as a stream socket', async () => {
    const before = hierarchy();
    const report = parseReport(
      await env.run(['python3', ATTACKER, env.socket, 'connection', JSON.stringify({ method: 'CreateScm', signature: 'ssh', args: [N, 'red_escape'] })], {
        uid: 1000,
        gid: 1000,
        at: 'deleg',
      }),
    );
    expect(report.replies).toEqual([{ ok: false, name: 'org.freedesktop.DBus.Error.InvalidArgs' }]);
    expect(hierarchy()).toEqual(before);
  });
});

describe.skipIf(reason !== undefined)(titled('reflected Scm credentials against cgproxy', reason), () => {
  const ROOT_UID = 100000;
  let env: TestDaemon;
  let N: string;
  let c: Container;
  let proxy: ContainerProcess;
  const hierarchy = (): Record<string, unknown> => snapshotTrees([env.absFsPath(N, '/')], SNAPSHOT_VALUES);
  const proxyDenials = (): number =>
    proxy
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"request denied"') && l.includes('"outcome":"ReflectedCredentials"')).length;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1 });
    N = env.named[0] as string;
    okValues(await env.dbusSend('Create', 'ss', [N, 'c1']), env);
    okValues(await env.dbusSend('Chown', 'ssii', [N, 'c1', ROOT_UID, ROOT_UID]), env);
    c = await startContainer(env, { name: 'c1', at: 'c1', uidMap: `0 ${ROOT_UID} 65536`, socketDir: env.dir });
    proxy = await c.startProxy(['--scm-timeout', String(SCM_TIMEOUT_MS)]);
  });

  afterAll(async () => {
    await c?.stop();
    await env?.stop();
  });

  it.each(scenarios('', () => 0).map((s, i) => [i, s.name, s.calls().map((c) => c.method).join('+')] as const))(
    'attack %i: %s (%s) from container root is refused by the proxy and changes nothing',
    async (index) => {
      const scenario = scenarios(N, () => 1)[index];
      if (!scenario) throw new Error('no such scenario');
      const before = hierarchy();
      const deniedBefore = proxyDenials();
      const calls = scenario.calls();
      const report = parseReport(
        await c.exec(['python3', ATTACKER, '/sys/fs/cgroup/cgmanager/sock', scenario.name, ...calls.map((call) => JSON.stringify(call))]),
      );
      report.replies.forEach((reply, i) => {
        if (scenario.reflectedAtCall.includes(i)) expect(reply, `call ${i}`).toEqual({ ok: false, name: REFLECTED });
        else expect(reply, `call ${i}`).toEqual({ ok: true });
      });
      const expected = deniedBefore + scenario.reflectedAtCall.length + (scenario.name === 'reconnect' ? 2 : 0);
      expect(await waitFor(() => proxyDenials() >= expected, 3 * SCM_TIMEOUT_MS, 20), 'denials logged by the proxy').toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 2 * SCM_TIMEOUT_MS + 100));
      expect(proxyDenials()).toBe(expected);
      assertOnlyKicksAndRefusals(report.received);
      expect(hierarchy()).toEqual(before);
      // Nothing reached the host daemon on the attacker's behalf.
      expect(env.logLines().some((l) => l.method === 'CreateScm' && l.cgroup === 'red_escape')).toBe(false);
    },
  );
});
