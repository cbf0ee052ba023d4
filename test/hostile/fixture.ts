// The hostile suite's shared scene: one real daemon per test file on private hierarchies (a
// named v1 one, cgroup2, and the host's cpu v1 controller below the test's own cgroup), and an attacker uid A = 1000 that root delegated `deleg` to, living in it:
//
//   <base>/deleg            A's (Chown: directory and task files only; limits stay root's)
//   <base>/deleg/mine       A's wholly (A created it)
//   <base>/deleg/rootchild  root's, inside A's subtree (root made it there and kept it)
//   <base>/delegb           B's (uid 2000): the prefix neighbour, '/deleg' must not contain '/delegb'
//   <base>/delegb/inner     B's
//
// with long-lived victims: a root process in deleg, a B process in delegb, and an A process
// outside deleg (in <base>). Every refusal is asserted with its D-Bus error name (or Scm
// failure result plus error detail) and a snapshot of the whole tree taken before and after.
import { expect } from 'vitest';
import {
  availableV1Controllers, DEFAULT_SNAPSHOT_VALUES, okValues, sampleLimit, snapshotTrees, startTestDaemon, type LongLived, type Snapshot,
  type TestDaemon,
} from '../helpers';
import { Attacker, type AttackReply } from '../helpers/attacker';

export const A = 1000;
export const B = 2000;
export const ERR = {
  AccessDenied: 'org.freedesktop.DBus.Error.AccessDenied',
  InvalidArgs: 'org.freedesktop.DBus.Error.InvalidArgs',
  FileNotFound: 'org.freedesktop.DBus.Error.FileNotFound',
  UnixProcessIdUnknown: 'org.freedesktop.DBus.Error.UnixProcessIdUnknown',
  LimitsExceeded: 'org.freedesktop.DBus.Error.LimitsExceeded',
  NotSupported: 'org.freedesktop.DBus.Error.NotSupported',
  NoSuchController: 'org.linuxcontainers.cgmanager.Error.NoSuchController',
} as const;
export type ErrorKey = keyof typeof ERR;

// Node's task lists change as it starts threads; memberships are compared by process.
export const SNAPSHOT_VALUES = [
  ...DEFAULT_SNAPSHOT_VALUES.filter((v) => v !== 'tasks'),
  'cpu.cfs_quota_us', 'memory.soft_limit_in_bytes', 'cgroup.type', 'cgroup.freeze', 'pids.max', 'memory.max',
];

export interface Scene {
  env: TestDaemon;
  attacker: Attacker;
  /** a v1 hierarchy (the host's cpu controller here, else the named one) */
  V1: string;
  /** the named v1 hierarchy (private: renames and moves there touch nothing of the host's) */
  NAMED: string;
  rootVictim: LongLived;
  victimB: LongLived;
  ownOutside: LongLived;
  /** hierarchy-absolute path of `rel` below the base in `label` */
  abs(label: string, rel?: string): string;
  snapshot(): Snapshot;
  /** the snapshot taken when the scene was ready; refusals must leave the tree exactly so */
  baseline: Snapshot;
  stop(): Promise<void>;
}

export async function startScene(daemonArgs: readonly string[] = [], v1Controllers: readonly string[] = ['cpu']): Promise<Scene> {
  // One real v1 controller is enough (each one adds ~30 files per cgroup to every snapshot);
  // the freezer's races need the v1 freezer, where renames are possible.
  const env = await startTestDaemon({ named: 1, cgroup2: true, controllers: availableV1Controllers(v1Controllers), daemonArgs });
  const ok = async (p: ReturnType<TestDaemon['dbusSend']>): Promise<unknown[]> => okValues(await p, env);
  let attacker: Attacker | undefined;
  try {
    await ok(env.dbusSend('Create', 'ss', ['all', 'deleg']));
    await ok(env.dbusSend('Chown', 'ssii', ['all', 'deleg', A, A]));
    await ok(env.dbusSend('Create', 'ss', ['all', 'deleg/rootchild']));
    await ok(env.dbusSend('Create', 'ss', ['all', 'delegb/inner']));
    await ok(env.dbusSend('Chown', 'ssii', ['all', 'delegb', B, B]));
    await ok(env.dbusSend('Chown', 'ssii', ['all', 'delegb/inner', B, B]));
    const [rootVictim, victimB, ownOutside] = await Promise.all([
      env.spawn(['sleep', '600'], { at: 'deleg' }),
      env.spawn(['sleep', '600'], { uid: B, at: 'delegb' }),
      env.spawn(['sleep', '600'], { uid: A, at: '' }),
    ]);
    attacker = await Attacker.onHost(env, A, 'deleg');
    const made = await attacker.call('Create', ['all', 'mine']);
    if (!made.ok) throw new Error(`A cannot create its own child: ${JSON.stringify(made)}`);
    const named = env.named[0];
    if (named === undefined) throw new Error('no named hierarchy');
    const dirs = [...env.bases.values()].map((b) => b.fsPath);
    const scene: Scene = {
      env,
      attacker,
      V1: env.primaryV1,
      NAMED: named,
      rootVictim,
      victimB,
      ownOutside,
      abs: (label, rel = '') => env.cgPath(label, rel),
      snapshot: () => snapshotTrees(dirs, SNAPSHOT_VALUES),
      baseline: snapshotTrees(dirs, SNAPSHOT_VALUES),
      stop: async () => {
        await attacker?.stop();
        await env.stop();
      },
    };
    return scene;
  } catch (err) {
    await attacker?.stop();
    await env.stop();
    throw err;
  }
}

/** The limit file tests aim at in `label`, with a valid value other than its current one. */
export function limitOf(label: string): { key: string; value: string } {
  return sampleLimit(label);
}

/**
 * Asserts a refusal: for a plain call the D-Bus error `name`; for an Scm exchange a failure
 * result followed by the api-11 error detail naming the same error.
 */
export function expectRefused(reply: AttackReply, name: ErrorKey, scm: boolean, what = ''): void {
  const shown = `${what} ${JSON.stringify(reply)}`;
  expect(reply.ok, shown).toBe(false);
  if (scm) expect(reply.scmFailure, shown).toBe(true);
  expect(reply.errorName, shown).toBe(ERR[name]);
}

/**
 * Asserts that the kernel refused a credential the attacker may not claim (sendmsg failed with
 * `code`), so the daemon was never asked.
 */
export function expectKernelRefused(reply: AttackReply, code = 'EPERM', what = ''): void {
  expect(reply.ok, `${what} ${JSON.stringify(reply)}`).toBe(false);
  expect(reply.code, `${what} ${JSON.stringify(reply)}`).toBe(code);
}

/**
 * Runs one attack and returns the reply; the tree must still be exactly the scene's baseline
 * (one snapshot per attack: every earlier attack left it so too, or its own row failed).
 */
export async function attackUnchanged(scene: Scene, attack: () => Promise<AttackReply>): Promise<AttackReply> {
  const reply = await attack();
  expect(scene.snapshot(), `the tree changed after ${JSON.stringify(reply)}`).toEqual(scene.baseline);
  return reply;
}
