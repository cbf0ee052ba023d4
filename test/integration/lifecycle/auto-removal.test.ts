// RemoveOnEmpty and Prune for real: on a private named v1 hierarchy through the daemon's own
// release agent (which the kernel runs in the init namespaces with a bare environment), and on
// cgroup2 through the daemon's watches. Cgroups go when their last task exits, nested ones
// too; a cgroup that still has tasks stays; no task is ever killed.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { okValues, runCommand, skipReason, startTestDaemon, titled, waitFor, type CallArg, type TestDaemon } from '../../helpers';
import { destroyNamedHierarchy, PREFIX } from '../../helpers/leftovers';
import { releaseAgentSkipReason, stateDirOf } from './lifecycle';

const reason = skipReason({ cgroup2: true, named: 1 }) ?? releaseAgentSkipReason();

describe.skipIf(reason !== undefined)(titled('automatic removal', reason), () => {
  let env: TestDaemon;
  /** the private named hierarchy whose release agent the daemon owns */
  let N: string;
  const call = async (method: string, sig: string, args: readonly CallArg[]): Promise<unknown[]> => okValues(await env.dbusSend(method, sig, args), env);
  const exists = (label: string, rel: string): boolean => fs.existsSync(env.fsPath(label, rel));
  const gone = (label: string, rel: string, ms = 5000): Promise<boolean> => waitFor(() => !exists(label, rel), ms, 20);

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

  it('installs a generated agent as the named hierarchy\'s release_agent, and the agent works with the kernel\'s bare environment', async () => {
    const agent = fs.readFileSync(env.absFsPath(N, '/', 'release_agent'), 'utf8').trim();
    expect(path.dirname(agent)).toBe(path.join(stateDirOf(env), 'agents'));
    expect(path.basename(agent)).toBe(`cgm-release-agent.${N.slice('name='.length)}`);
    expect(fs.statSync(agent).mode & 0o777).toBe(0o755);
    expect(fs.readFileSync(agent, 'utf8')).toContain(`'${N}'`);
    // As the kernel runs it: one argument (the path from the hierarchy root), nothing else set.
    await call('Create', 'ss', [N, 'by-hand']);
    const r = await runCommand([agent, env.cgPath(N, 'by-hand')], { env: { PATH: '/sbin:/bin:/usr/sbin:/usr/bin', HOME: '/' } });
    expect(r.code, r.stderr).toBe(0);
    expect(await gone(N, 'by-hand')).toBe(true);
  });

  it('v1: a marked cgroup goes when its last task exits, with children created after the mark; a busy one stays', async () => {
    await call('Create', 'ss', [N, 'r']);
    await call('RemoveOnEmpty', 'ss', [N, 'r']);
    expect(fs.readFileSync(env.fsPath(N, 'r', 'notify_on_release'), 'utf8').trim()).toBe('1');
    // The kernel hands notify_on_release down to children made afterwards.
    await call('Create', 'ss', [N, 'r/child/grandchild']);
    await call('Create', 'ss', [N, 'keep']);
    await call('RemoveOnEmpty', 'ss', [N, 'keep']);
    const inner = await env.spawn(['sleep', '600'], { at: { [N]: 'r/child/grandchild' } });
    const stays = await env.spawn(['sleep', '600'], { at: { [N]: 'keep' } });
    await inner.stop();
    expect(await gone(N, 'r'), 'r and its subtree should go after the last task').toBe(true);
    // Each level went through the kernel's release agent, deepest first.
    await new Promise((r) => setTimeout(r, 150)); // info lines are flushed every 100 ms
    const under = `${N}:${env.cgPath(N, 'r')}`;
    expect(env.logLines().filter((l) => l.msg === 'removed a released cgroup' && String(l.cgroup).startsWith(under)).map((l) => l.cgroup)).toEqual(
      ['r/child/grandchild', 'r/child', 'r'].map((rel) => `${N}:${env.cgPath(N, rel)}`),
    );
    expect(exists(N, 'keep')).toBe(true);
    expect(fs.readFileSync(env.fsPath(N, 'keep', 'cgroup.procs'), 'utf8').trim()).toBe(String(stays.pid));
    await stays.stop();
    expect(await gone(N, 'keep')).toBe(true);
  });

  it('cgroup2: a marked cgroup goes with its subtree once no task is left in it; a busy one stays', async () => {
    await call('Create', 'ss', ['unified', 'r/child/grandchild']);
    await call('Create', 'ss', ['unified', 'keep']);
    const inner = await env.spawn(['sleep', '600'], { at: { unified: 'r/child/grandchild' } });
    const stays = await env.spawn(['sleep', '600'], { at: { unified: 'keep' } });
    await call('RemoveOnEmpty', 'ss', ['unified', 'r']);
    await call('RemoveOnEmpty', 'ss', ['unified', 'keep']);
    await inner.stop();
    expect(await gone('unified', 'r')).toBe(true);
    expect(exists('unified', 'keep')).toBe(true);
    await stays.stop();
    expect(await gone('unified', 'keep')).toBe(true);
  });

  it('Prune on all removes empty subtrees at once and busy ones when their tasks exit, without killing anything', async () => {
    await call('Create', 'ss', ['all', 'p/busy/deeper']);
    await call('Create', 'ss', ['all', 'p/idle/x']);
    const victim = await env.spawn(['sleep', '600'], { at: 'p/busy/deeper' });
    await call('Prune', 'ss', ['all', 'p']);
    for (const h of [N, 'unified']) {
      expect(exists(h, 'p/idle'), h).toBe(false);
      expect(exists(h, 'p/busy/deeper'), h).toBe(true);
    }
    expect(fs.existsSync(`/proc/${victim.pid}`)).toBe(true);
    await victim.stop();
    expect(await gone(N, 'p')).toBe(true);
    expect(await gone('unified', 'p')).toBe(true);
  });

  it('refuses to mark the top of a hierarchy', async () => {
    // A client outside the bases sits at the root of the private named hierarchy: '' is the root.
    const top = await env.dbusSend('RemoveOnEmpty', 'ss', [N, ''], { at: false });
    expect(top.errorName).toBe('org.freedesktop.DBus.Error.AccessDenied');
    expect(fs.readFileSync(env.absFsPath(N, '/', 'notify_on_release'), 'utf8').trim()).toBe('0');
  });
});

describe.skipIf(reason !== undefined)(titled('automatic removal on a hierarchy the daemon mounted itself (-m)', reason), () => {
  let env: TestDaemon;
  // Named like the harness's own hierarchies and run directories, so a crashed run's are cleaned up.
  const runId = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const name = `${PREFIX}_${runId.replace('-', '_')}_7`;
  const mountDir = path.join(os.tmpdir(), `${PREFIX}-${runId}`);

  beforeAll(async () => {
    fs.mkdirSync(mountDir);
    // The mount happens in the test's private namespace; the host sees an empty directory.
    env = await startTestDaemon({ named: 1, daemonArgs: ['-m', `name=${name}`, '--mount-dir', mountDir] });
  });

  afterAll(async () => {
    await env?.stop();
    try {
      expect(await destroyNamedHierarchy(name, mountDir)).toBe(true);
    } finally {
      fs.rmSync(mountDir, { recursive: true, force: true });
    }
  });

  it('installs the release agent without further options, and removes an emptied cgroup', async () => {
    const ok = async (method: string, sig: string, args: readonly CallArg[]): Promise<unknown[]> => okValues(await env.dbusSend(method, sig, args, { at: false }), env);
    expect((await ok('ListControllers', '', []))[0]).toContain(`name=${name}`);
    const where = `/proc/${env.holderPid}/root${mountDir}/name=${name}`;
    expect(fs.readFileSync(`${where}/release_agent`, 'utf8').trim()).toBe(path.join(stateDirOf(env), 'agents', `cgm-release-agent.${name}`));
    // Everyone sits at the root of the new hierarchy; the task is moved in through the daemon.
    await ok('Create', 'ss', [`name=${name}`, 'a']);
    const task = await env.spawn(['sleep', '600'], { at: false });
    await ok('MovePid', 'ssi', [`name=${name}`, 'a', task.pid]);
    await ok('RemoveOnEmpty', 'ss', [`name=${name}`, 'a']);
    await task.stop();
    expect(await waitFor(() => !fs.existsSync(`${where}/a`), 5000, 20)).toBe(true);
  });
});
