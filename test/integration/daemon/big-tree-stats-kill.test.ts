// Stats (v1 populated), Kill's freeze-kill fallback and its wait for an empty subtree walk the
// whole subtree of the cgroup: over a big tree they walk in slices, so a second client's Pings
// are answered while the walk runs. Functional assertions only (ordering: Pings answered
// before the big call's reply), as big-tree.test.ts does; timings are printed, never asserted.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, bigTreeSize, BIG_TREE, buildBigTree, groupChild, pingDuring, RawClient, skipReason, startTestDaemon, titled,
  type BigTreeShape, type TestDaemon,
} from '../../helpers';

const reason = skipReason({ named: 1 }) ?? (availableV1Controllers(['freezer']).length === 0 ? 'no v1 freezer hierarchy on this host' : undefined);
/** Without slicing the daemon answers no Ping (or one that arrived first) before a big call's reply. */
const MANY = 10;
const SLOW = 300_000;
/** The freezer tree lives in the host's freezer hierarchy (below the test's own cgroup): kept smaller. */
const FREEZER_TREE: BigTreeShape = { flat: 4_000, groups: 40, perGroup: 99 };
const V1 = 'org.linuxcontainers.cgmanager1';

/** The Stats reply's a{sv} as an object (the raw client decodes a dict as [key, [sig, value]] pairs or a Map). */
function statsOf(value: unknown): Record<string, unknown> {
  const entries: Array<[string, unknown]> = value instanceof Map ? [...value.entries()] : (value as Array<[string, unknown]>);
  return Object.fromEntries(entries.map(([k, v]) => [k, Array.isArray(v) ? v[1] : v]));
}

describe.skipIf(reason !== undefined)(titled('Stats and Kill over a big tree never stall other clients', reason), () => {
  let env: TestDaemon;
  let named: string;
  let worker: RawClient;
  let pinger: RawClient;
  const CG = (rel: string): string => `${env.baseName}/${rel}`;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, controllers: ['freezer'] });
    named = env.named[0] as string;
    buildBigTree(env.fsPath(named, 'big'));
    buildBigTree(env.fsPath('freezer', 'big'), FREEZER_TREE);
    const connect = (): Promise<RawClient> => RawClient.connect(env.socket, { timeoutMs: 120_000 });
    [worker, pinger] = await Promise.all([connect(), connect()]);
  }, 300_000);

  afterAll(async () => {
    for (const c of [worker, pinger]) c?.close();
    await env?.stop();
  }, 300_000);

  it('Stats walks an empty 20 000-cgroup v1 subtree for populated while Pings keep being answered', async () => {
    const run = await pingDuring(pinger, worker.call(`${V1}.Stats`, 'ss', [named, CG('big')]));
    console.log(`Stats over ${bigTreeSize()}: ${Math.round(run.ms)} ms, ${run.pingsBefore} Pings answered meanwhile`);
    expect(run.result.ok, run.result.errorName).toBe(true);
    expect(statsOf(run.result.values[0]).populated).toBe(false);
    expect(run.pingsBefore).toBeGreaterThan(MANY);
    // A task deep in the tree makes it populated.
    const sleeper = await env.spawn(['sleep', '600'], { at: { [named]: `big/${groupChild(BIG_TREE.groups - 1, BIG_TREE.perGroup - 1)}` } });
    const again = await worker.call(`${V1}.Stats`, 'ss', [named, CG('big')]);
    expect(statsOf(again.values[0]).populated).toBe(true);
    await sleeper.stop();
  }, SLOW);

  it('Kill freezes, kills and waits over a big v1 freezer subtree while Pings keep being answered', async () => {
    const homes = [`big/${groupChild(FREEZER_TREE.groups - 1, 42)}`, `big/flat/c0${FREEZER_TREE.flat - 1}`];
    const sleepers = await Promise.all(homes.map((at) => env.spawn(['sleep', '600'], { at: { freezer: at } })));
    const procs = (at: string): string => fs.readFileSync(env.fsPath('freezer', at, 'cgroup.procs'), 'utf8').trim();
    for (const at of homes) expect(procs(at)).not.toBe('');
    const run = await pingDuring(pinger, worker.call(`${V1}.Kill`, 's', [CG('big')]));
    console.log(`Kill over ${bigTreeSize(FREEZER_TREE)}: ${Math.round(run.ms)} ms, ${run.pingsBefore} Pings answered meanwhile`);
    expect(run.result.ok, run.result.errorName).toBe(true);
    // Kill answers once every task of the subtree is gone (exited: the kernel takes a task out of its cgroup on exit).
    for (const at of homes) expect(procs(at)).toBe('');
    await Promise.all(sleepers.map((s) => s.stop()));
    expect(run.pingsBefore).toBeGreaterThan(MANY);
  }, SLOW);
});
