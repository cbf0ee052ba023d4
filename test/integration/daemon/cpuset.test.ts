// v1 cpuset (issue 9): a cgroup made by Create must take tasks at once. A new v1 cpuset cgroup
// has empty cpuset.cpus/mems and the kernel refuses attaching (ENOSPC) until both are set;
// Create copies them from the parent, at every level it makes. Run with `cgm`, as a new user
// would, on the host's real cpuset hierarchy (below the test's own cgroup) and in UML.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableV1Controllers, skipReason, startTestDaemon, titled, type LongLived, type TestDaemon } from '../../helpers';
import { REPO_ROOT } from '../../helpers/requirements';

const CGM = path.join(REPO_ROOT, 'dist', 'client', 'cgm.js');
const CPUSET = availableV1Controllers(['cpuset']);
const reason =
  skipReason({ named: 1 }) ?? (CPUSET.length === 0 ? 'no v1 cpuset hierarchy on this host (v2 needs no seeding: empty means the parent\'s)' : undefined);

const read = (file: string): string => fs.readFileSync(file, 'utf8').trim();

describe.skipIf(reason !== undefined)(titled('v1 cpuset cgroups made by Create take tasks', reason), () => {
  let env: TestDaemon;
  let victim: LongLived;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, controllers: CPUSET });
    victim = await env.spawn(['sleep', '600']);
  });

  afterAll(async () => {
    await env?.stop();
  });

  async function cgm(...args: string[]): Promise<void> {
    const r = await env.run([process.execPath, CGM, '--socket', env.socket, ...args]);
    expect(r.stderr, `cgm ${args.join(' ')}`).toBe('');
    expect(r.code, `cgm ${args.join(' ')}`).toBe(0);
  }

  it('cgm create cpuset x; cgm movepid cpuset x PID', async () => {
    await cgm('create', 'cpuset', 'x');
    for (const mask of ['cpuset.cpus', 'cpuset.mems']) {
      expect(read(env.fsPath('cpuset', 'x', mask)), mask).toBe(read(env.fsPath('cpuset', '', mask)));
      expect(read(env.fsPath('cpuset', 'x', mask)), mask).not.toBe('');
    }
    await cgm('movepid', 'cpuset', 'x', String(victim.pid));
    expect(env.cgroupOf(victim.pid, 'cpuset')).toBe(env.cgPath('cpuset', 'x'));
  });

  it('every level of a deep Create is seeded', async () => {
    await cgm('create', 'cpuset', 'a/b/c');
    for (const level of ['a', 'a/b', 'a/b/c']) expect(read(env.fsPath('cpuset', level, 'cpuset.cpus')), level).not.toBe('');
    await cgm('movepid', 'cpuset', 'a/b/c', String(victim.pid));
    expect(env.cgroupOf(victim.pid, 'cpuset')).toBe(env.cgPath('cpuset', 'a/b/c'));
  });

  it("the README's create all / movepid all", async () => {
    await cgm('create', 'all', 'y');
    await cgm('movepid', 'all', 'y', String(victim.pid));
    for (const label of env.labels) expect(env.cgroupOf(victim.pid, label), label).toBe(env.cgPath(label, 'y'));
  });
});
