// Hierarchies mounted or unmounted after the daemon started: a private named hierarchy
// mounted in the test's namespace shows in ListControllers within a few seconds and takes
// Create; once unmounted it is gone from the daemon's view. No restart involved.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, okValues, skipReason, startTestDaemon, titled, waitFor, type TestDaemon } from '../../helpers';
import { destroyNamedHierarchy, PREFIX } from '../../helpers/leftovers';
import { inHolder } from './lifecycle';

const reason = skipReason({ named: 1 });

describe.skipIf(reason !== undefined)(titled('mount changes at run time', reason), () => {
  let env: TestDaemon;
  let client: RawClient;
  // Named like the harness's own, so a crashed run's hierarchy is found and destroyed later.
  const name = `${PREFIX}_${process.pid}_${randomBytes(3).toString('hex')}_9`;
  const mountPoint = `/sys/fs/cgroup/${name}`;
  let mounted = false;

  const controllers = async (): Promise<string[]> => {
    const r = await client.call('ListControllers', '', []);
    if (!r.ok) throw new Error(`ListControllers failed: ${r.errorName}`);
    return r.values[0] as string[];
  };
  const within = async (ms: number, predicate: () => Promise<boolean>): Promise<boolean> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await predicate()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return predicate();
  };

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, daemonArgs: ['--mount-poll-interval', '200'] });
    client = await RawClient.connect(env.socket);
  });

  afterAll(async () => {
    client?.close();
    if (mounted) await inHolder(env, `rmdir ${mountPoint}/* 2>/dev/null; umount ${mountPoint}`);
    await env?.stop();
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-${process.pid}-`));
    try {
      expect(await destroyNamedHierarchy(name, scratch)).toBe(true);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('follows a hierarchy mounted after start, and one unmounted', async () => {
    expect(await controllers()).not.toContain(`name=${name}`);
    const m = await inHolder(env, `mkdir ${mountPoint} && mount -t cgroup -o none,name=${name} cgroup ${mountPoint}`);
    expect(m.code, m.stderr).toBe(0);
    mounted = true;
    expect(await within(5000, async () => (await controllers()).includes(`name=${name}`))).toBe(true);
    // Everyone sits at the root of a new named hierarchy: the cgroup lands at /probe.
    const created = await env.dbusSend('Create', 'ss', [`name=${name}`, 'probe'], { at: false });
    expect(okValues(created, env)).toEqual([-1]);
    expect(fs.existsSync(`/proc/${env.holderPid}/root${mountPoint}/probe`)).toBe(true);
    expect(okValues(await env.dbusSend('Remove', 'ssi', [`name=${name}`, 'probe', 0], { at: false }), env)).toEqual([1]);
    const u = await inHolder(env, `umount ${mountPoint} && rmdir ${mountPoint}`);
    expect(u.code, u.stderr).toBe(0);
    mounted = false;
    expect(await within(5000, async () => !(await controllers()).includes(`name=${name}`))).toBe(true);
    const after = await env.dbusSend('Create', 'ss', [`name=${name}`, 'probe'], { at: false });
    expect(after.errorName).toBe('org.linuxcontainers.cgmanager.Error.NoSuchController');
    await new Promise((r) => setTimeout(r, 150)); // info lines are flushed every 100 ms
    expect(env.logLines().filter((l) => l.msg === 'hierarchies changed').map((l) => [l.added, l.removed])).toEqual([
      [[`name=${name}`], []],
      [[], [`name=${name}`]],
    ]);
  });
});
