// The create journal: a daemon SIGKILLed in the middle of a multi-hierarchy Create (held
// there by the hidden, test-only --test-create-pause) leaves no half-made cgroup behind once
// it has started again; cgroups that existed before, or came to be used meanwhile, stay.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { okValues, skipReason, startTestDaemon, titled, waitFor, type CallArg, type TestDaemon } from '../../helpers';
import { killDaemon, stateDirOf } from './lifecycle';

const reason = skipReason({ cgroup2: true, named: 1 });

describe.skipIf(reason !== undefined)(titled('the create journal', reason), () => {
  let env: TestDaemon;
  /** in the order the daemon walks `all`: the named hierarchy ('cgmt_…') before 'unified' */
  let first: string;
  let second: string;
  const call = async (method: string, sig: string, args: readonly CallArg[]): Promise<unknown[]> => okValues(await env.dbusSend(method, sig, args), env);
  const exists = (label: string, rel: string): boolean => fs.existsSync(env.fsPath(label, rel));
  const journal = (): string => fs.readFileSync(path.join(stateDirOf(env), 'create.journal'), 'utf8');

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, daemonArgs: ['--test-create-pause', '10000'] });
    first = env.named[0] as string;
    second = 'unified';
  });

  afterAll(async () => {
    await env?.stop();
  });

  /** Starts Create(all, cg) and SIGKILLs the daemon while it pauses after the first hierarchy. */
  async function killMidCreate(cg: string, madeInFirst: string): Promise<void> {
    const creating = env.dbusSend('Create', 'ss', ['all', cg], { timeoutMs: 15_000 });
    expect(await waitFor(() => exists(first, madeInFirst), 5000, 5), `${first}:${madeInFirst} should appear`).toBe(true);
    await killDaemon(env);
    expect((await creating).ok).toBe(false);
    expect(exists(second, cg)).toBe(false);
  }

  it('rolls back at the next start what the killed Create made', async () => {
    await killMidCreate('half/x', 'half/x');
    expect(exists(first, 'half/x')).toBe(true);
    expect(journal()).toContain(env.cgPath(first, 'half/x'));
    await env.restartDaemon();
    for (const h of [first, second]) expect(exists(h, 'half'), h).toBe(false);
    expect(journal()).toBe('');
    expect(env.logLines().filter((l) => l.msg === 'rolled back a cgroup of an interrupted create').map((l) => l.cgroup)).toEqual([
      `${first}:${env.cgPath(first, 'half/x')}`, `${first}:${env.cgPath(first, 'half')}`,
    ]);
  });

  it('leaves what existed before, and what came to be used before the restart', async () => {
    await call('Create', 'ss', [first, 'pre']); // one hierarchy: no pause
    await killMidCreate('pre/busy', 'pre/busy');
    // Someone uses the half-made cgroup before the daemon is back: it must stay.
    const task = await env.spawn(['sleep', '600'], { at: { [first]: 'pre/busy' } });
    await env.restartDaemon();
    expect(exists(first, 'pre')).toBe(true);
    expect(exists(first, 'pre/busy')).toBe(true);
    expect(env.logLines().some((l) => l.msg === 'cannot roll back a cgroup of an interrupted create; it is in use')).toBe(true);
    await task.stop();
    expect(journal()).toBe('');
  });

  it('a Create that completes leaves nothing to roll back', async () => {
    await call('Create', 'ss', [second, 'whole']);
    expect(journal()).toBe('');
    expect(exists(second, 'whole')).toBe(true);
  });
});
