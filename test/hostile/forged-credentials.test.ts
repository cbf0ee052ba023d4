// Forged SCM_CREDENTIALS: delegated uid 1000 calls every …Scm method and, over the very socket it
// passed, answers the daemon's kick with a credential it is not (uid 0, another uid, gid 0,
// another process's pid, pid 1), or an honest requestor followed by a forged victim (MovePid,
// GetPidCgroup) or forged target ids (Chown). The kernel refuses each at sendmsg (EPERM:
// scm_check_creds lets only the sender's own ids and pid through without CAP_SETUID,
// CAP_SETGID, CAP_SYS_ADMIN), so the daemon never sees the claim: it waits for a credential
// that never comes, times the request out, and nothing changes on disk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ucred } from '../../addon';
import { skipReason, titled } from '../helpers';
import { A, B, expectRefused, limitOf, startScene, type Scene } from './fixture';

const reason = skipReason({ cgroup2: true, named: 1 });
const SCM_TIMEOUT_MS = 100;
const EPERM = -1;

/** Every Scm method with D-Bus arguments that would change something if the forged claim were believed. */
const SCM_CALLS: ReadonlyArray<[method: string, args: (s: Scene) => unknown[]]> = [
  ['GetPidCgroupScm', (s) => [s.NAMED]],
  ['GetPidCgroupAbsScm', (s) => [s.NAMED]],
  ['CreateScm', () => ['all', 'forged']],
  ['ChownScm', () => ['all', '']],
  ['ChmodScm', (s) => [s.V1, '', limitOf(s.V1).key, 0o666]],
  ['MovePidScm', (s) => [s.NAMED, 'rootchild']],
  ['MovePidAbsScm', (s) => [s.NAMED, s.abs(s.NAMED, 'delegb')]],
  ['GetValueScm', (s) => [s.V1, '', limitOf(s.V1).key]],
  ['SetValueScm', (s) => [s.V1, '', limitOf(s.V1).key, '2']],
  ['RemoveScm', () => ['all', 'rootchild', 1]],
  ['GetTasksScm', (s) => [s.NAMED, '']],
  ['GetTasksRecursiveScm', () => ['all', '']],
  ['ListChildrenScm', (s) => [s.NAMED, '']],
  ['RemoveOnEmptyScm', () => ['unified', 'rootchild']],
  ['PruneScm', () => ['all', 'rootchild']],
  ['ListKeysScm', (s) => [s.NAMED, '']],
];

describe.skipIf(reason !== undefined)(titled('forged SCM credentials from uid 1000', reason), () => {
  let s: Scene;
  beforeAll(async () => {
    s = await startScene(['--scm-timeout', String(SCM_TIMEOUT_MS)]);
  });
  afterAll(async () => {
    await s?.stop();
  });

  const own = (): Ucred => ({ pid: s.attacker.pid, uid: A, gid: A });
  const requestorForgeries: ReadonlyArray<[what: string, cred: (s: Scene) => Ucred]> = [
    ['uid 0', (s) => ({ pid: s.attacker.pid, uid: 0, gid: A })],
    ['uid 0 and gid 0', (s) => ({ pid: s.attacker.pid, uid: 0, gid: 0 })],
    ['gid 0', (s) => ({ pid: s.attacker.pid, uid: A, gid: 0 })],
    ['B\'s uid', (s) => ({ pid: s.attacker.pid, uid: B, gid: B })],
    ['root\'s process', (s) => ({ pid: s.rootVictim.pid, uid: A, gid: A })],
    ['pid 1', () => ({ pid: 1, uid: 0, gid: 0 })],
  ];

  /** Sends the forged credentials and checks that the kernel refused the last one and the daemon gave up. */
  async function forgeAndCheck(method: string, args: unknown[], creds: Ucred[]): Promise<void> {
    const before = s.snapshot();
    const reply = await s.attacker.forge(method, args, creds, SCM_TIMEOUT_MS * 2);
    const shown = JSON.stringify(reply);
    // The D-Bus call itself is answered at once; every honest credential went through, the forged one did not.
    expect(reply.ok, shown).toBe(true);
    expect(reply.sendResults, shown).toEqual([...creds.slice(0, -1).map(() => 0), EPERM]);
    // Kicks only, then (after the timeout) at most a failure result and its error detail naming Timeout.
    const afterKicks = (reply.datagrams ?? []).slice(creds.length);
    for (const d of afterKicks) expect(d === '' || d === '0' || d.startsWith('cgmanager.error\n') || /^[\xff]{4}$/.test(d), shown).toBe(true);
    const detail = afterKicks.find((d) => d.startsWith('cgmanager.error\n'));
    if (detail !== undefined) expect(detail.split('\n')[1], shown).toBe('org.freedesktop.DBus.Error.Timeout');
    expect(s.snapshot()).toEqual(before);
  }

  // Every method with a forged uid 0; every kind of forgery on the methods that change most.
  const rows = SCM_CALLS.flatMap(([method, args]) =>
    requestorForgeries
      .filter(([what]) => what === 'uid 0 and gid 0' || ['SetValueScm', 'ChownScm', 'MovePidScm'].includes(method))
      .map(([what, cred]) => ({ method, args, what, cred })),
  );
  it.each(rows)('$method with a requestor credential claiming $what is refused by the kernel', async ({ method, args, cred }) => {
    await forgeAndCheck(method, args(s), [cred(s)]);
  });

  const victimRows: ReadonlyArray<[method: string, what: string, victim: (s: Scene) => Ucred]> = [
    ['MovePidScm', 'root\'s process as the victim', (s) => ({ pid: s.rootVictim.pid, uid: A, gid: A })],
    ['MovePidScm', 'B\'s process as the victim', (s) => ({ pid: s.victimB.pid, uid: A, gid: A })],
    ['MovePidAbsScm', 'pid 1 as the victim', () => ({ pid: 1, uid: A, gid: A })],
    ['GetPidCgroupScm', 'B\'s process as the victim', (s) => ({ pid: s.victimB.pid, uid: A, gid: A })],
    ['ChownScm', 'target uid 0', (s) => ({ pid: s.attacker.pid, uid: 0, gid: A })],
    ['ChownScm', 'target uid B', (s) => ({ pid: s.attacker.pid, uid: B, gid: B })],
  ];
  it.each(victimRows)('%s with an honest requestor and %s: the second credential is refused by the kernel', async (method, _what, victim) => {
    const args = SCM_CALLS.find(([m]) => m === method)?.[1](s) ?? [];
    await forgeAndCheck(method, args, [own(), victim(s)]);
  });

  it('the daemon logged each forged request as timed out, and none as completed', () => {
    const lines = s.env.logLines().filter((l) => typeof l.method === 'string' && String(l.method).endsWith('Scm'));
    expect(lines.length).toBeGreaterThanOrEqual(rows.length + victimRows.length);
    for (const l of lines) expect(l.outcome, JSON.stringify(l)).toBe('Timeout');
  });

  it('the same requests with honest credentials are answered by the daemon (so the refusals above were the kernel\'s)', async () => {
    const reply = await s.attacker.call('SetValue', [s.V1, '', limitOf(s.V1).key, '2'], true);
    expectRefused(reply, 'AccessDenied', true);
    const read = await s.attacker.call('GetValue', [s.V1, '', limitOf(s.V1).key], true);
    expect(read.ok, JSON.stringify(read)).toBe(true);
  });
});
