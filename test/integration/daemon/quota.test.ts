// Issue 12, quotas per requestor: a real unprivileged uid (1000, via setpriv) is held to
// max-cgroups-per-uid in each hierarchy and to max-walk per recursive call, set in a limits
// file. Refusals name the limit and change nothing on disk (a multi-hierarchy Create refused in
// its second hierarchy rolls the first back); counts come from the tree's owners at start, and
// cgroups removed behind the daemon's back stop counting.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { okValues, skipReason, snapshotTrees, startTestDaemon, titled, type CallResult, type TestDaemon } from '../../helpers';

const UID = 1000;
const LIMIT = 5;
const WALK = 40;
const LIMITS_EXCEEDED = 'org.freedesktop.DBus.Error.LimitsExceeded';
const reason = skipReason({ named: 2 });

describe.skipIf(reason !== undefined)(titled('quotas per requestor uid', reason), () => {
  let env: TestDaemon;
  let limitsDir: string;
  let A: string;
  let B: string;
  const ok = (r: CallResult): unknown[] => okValues(r, env);
  const user = (method: string, sig: string, args: ReadonlyArray<string | number>): Promise<CallResult> =>
    env.gdbus(method, sig, args, { uid: UID, at: 'deleg' });
  const snapshot = (): ReturnType<typeof snapshotTrees> => snapshotTrees([A, B].map((h) => env.fsPath(h)));
  const servingLine = (): Record<string, unknown> | undefined => env.logLines().filter((l) => l.msg === 'serving').at(-1);

  beforeAll(async () => {
    limitsDir = fs.mkdtempSync('/tmp/cgm-limits-');
    fs.chmodSync(limitsDir, 0o755);
    const file = path.join(limitsDir, 'limits');
    fs.writeFileSync(file, `# test limits\nmax-cgroups-per-uid = ${LIMIT}\nmax-walk = ${WALK}\nrecount-interval = 0\n`);
    env = await startTestDaemon({ named: 2, daemonArgs: ['--limits-file', file] });
    [A, B] = env.named as [string, string];
    ok(await env.dbusSend('Create', 'ss', ['all', 'deleg']));
    ok(await env.dbusSend('Chown', 'ssii', ['all', 'deleg', UID, UID]));
  });

  afterAll(async () => {
    await env?.stop();
    if (limitsDir) fs.rmSync(limitsDir, { recursive: true, force: true });
  });

  it('reads its limits from the limits file, and counts the delegated cgroup as the delegatee\'s', async () => {
    expect(servingLine()).toMatchObject({ limits: { maxCgroupsPerUid: LIMIT, maxWalk: WALK, limitRoot: false, recountIntervalS: 0 } });
    for (const name of ['a', 'b', 'c']) expect(ok(await user('Create', 'ss', ['all', name]))).toEqual([-1]);
  });

  it('derives the counts from the owners in the tree when it starts again', async () => {
    await env.stopDaemon();
    // Made behind the daemon's back while it was down: only B holds a fifth cgroup of uid 1000.
    fs.mkdirSync(env.fsPath(B, 'deleg/x'));
    fs.chownSync(env.fsPath(B, 'deleg/x'), UID, UID);
    await env.restartDaemon();
    expect(servingLine()?.owned).toEqual({ [A]: { [UID]: 4 }, [B]: { [UID]: LIMIT } });
  });

  it('refuses a Create past the limit, naming it, and rolls back the hierarchy it had done', async () => {
    const before = snapshot();
    const r = await user('Create', 'ss', ['all', 'd']);
    expect(r.errorName).toBe(LIMITS_EXCEEDED);
    expect(r.errorMessage).toMatch(new RegExp(`uid ${UID} already owns ${LIMIT} cgroups in ${B} \\(limit max-cgroups-per-uid=${LIMIT}\\)`));
    expect(snapshot()).toEqual(before);
    expect(fs.existsSync(env.fsPath(A, 'deleg/d'))).toBe(false);
    // The log says who was refused and why.
    const line = env.logLines().filter((l) => l.method === 'Create' && l.outcome === 'LimitsExceeded').at(-1);
    expect(line).toMatchObject({ msg: 'request denied', level: 'warn', requestor: { uid: UID } });
    expect(line?.reason).toMatch(/max-cgroups-per-uid/);
  });

  it('stops counting a cgroup removed behind its back', async () => {
    fs.rmdirSync(env.fsPath(B, 'deleg/x'));
    expect(ok(await user('Create', 'ss', ['all', 'd']))).toEqual([-1]);
    const r = await user('Create', 'ss', ['all', 'e']);
    expect(r.errorName).toBe(LIMITS_EXCEEDED);
  });

  it('gives the quota back when a cgroup is removed through it', async () => {
    ok(await user('Remove', 'ssi', ['all', 'd', 1]));
    expect(ok(await user('Create', 'ss', ['all', 'e']))).toEqual([-1]);
  });

  it('does not hold root to the per-uid limit, and counts what root hands over with Chown', async () => {
    for (const name of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) ok(await env.dbusSend('Create', 'ss', [A, name]));
    ok(await env.dbusSend('Remove', 'ssi', [A, 'r1', 1]));
    // Chown is root's decision and is not refused, but what it hands over counts.
    ok(await env.dbusSend('Chown', 'ssii', [A, 'r2', UID, UID]));
    const r = await user('Create', 'ss', [A, 'f']);
    expect(r.errorMessage).toMatch(new RegExp(`uid ${UID} already owns ${LIMIT + 1} cgroups in ${A} `));
    ok(await env.dbusSend('Chown', 'ssii', [A, 'r2', 0, 0]));
  });

  it('refuses recursive calls over more than max-walk cgroups before doing anything', async () => {
    // 1 + 45 cgroups below deleg/a (root's: the limit is about walking, not owning).
    for (let i = 0; i < 9; i++) {
      fs.mkdirSync(env.fsPath(A, `deleg/a/w${i}`));
      for (let j = 0; j < 4; j++) fs.mkdirSync(env.fsPath(A, `deleg/a/w${i}/v${j}`));
    }
    const before = snapshot();
    for (const [method, sig, args] of [
      ['GetTasksRecursive', 'ss', [A, 'a']],
      ['Remove', 'ssi', [A, 'a', 1]],
      ['Prune', 'ss', [A, 'a']],
    ] as const) {
      const r = await user(method, sig, args);
      expect(r.errorName, method).toBe(LIMITS_EXCEEDED);
      expect(r.errorMessage, method).toMatch(new RegExp(`more than ${WALK} cgroups.*\\(limit max-walk=${WALK}\\)`));
    }
    expect(snapshot()).toEqual(before);
    // Root is exempt.
    expect(ok(await env.dbusSend('GetTasksRecursive', 'ss', [A, 'deleg/a']))).toEqual([[]]);
  });

  it('refuses to start with an unknown key in the limits file, naming file, line and key', async () => {
    const bad = path.join(limitsDir, 'bad');
    fs.writeFileSync(bad, 'max-cgroups-per-uid = 5\nmax-cgroup = 3\n');
    const r = await env.runOtherDaemon(['--socket', path.join(env.dir, 'other.sock'), '--limits-file', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}:2: unknown key "max-cgroup"`);
    expect(fs.existsSync(path.join(env.dir, 'other.sock'))).toBe(false);
  });
});
