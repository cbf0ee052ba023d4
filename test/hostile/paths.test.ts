// Hostile cgroup arguments from a delegated uid, for every method that takes a cgroup, plain and
// Scm: '..' in every form, absolute paths where the method gives a leading '/' a meaning, the
// '/deleg' vs '/delegb' prefix, NUL bytes and very long names. Each is refused with its named
// error and leaves the whole tree (directories, owners, modes, limits, memberships) unchanged.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason, titled } from '../helpers';
import { A, attackUnchanged, expectKernelRefused, expectRefused, limitOf, startScene, type ErrorKey, type Scene } from './fixture';

const reason = skipReason({ cgroup2: true, named: 1 });

/** Every method that takes a cgroup, with the arguments around it (s: the scene). */
type ArgsOf = (s: Scene, cg: string) => unknown[];
const CGROUP_METHODS: ReadonlyArray<[method: string, args: ArgsOf]> = [
  ['Create', (_s, cg) => ['all', cg]],
  ['Chown', (_s, cg) => ['all', cg, A, A]],
  ['Chmod', (_s, cg) => ['all', cg, '', 0o777]],
  ['MovePid', (s, cg) => ['all', cg, s.attacker.pid]],
  ['MovePidAbs', (s, cg) => ['all', cg, s.attacker.pid]],
  ['GetValue', (s, cg) => [s.V1, cg, limitOf(s.V1).key]],
  ['SetValue', (s, cg) => [s.V1, cg, limitOf(s.V1).key, limitOf(s.V1).value]],
  ['Remove', (_s, cg) => ['all', cg, 1]],
  ['GetTasks', (s, cg) => [s.V1, cg]],
  ['GetTasksRecursive', (_s, cg) => ['all', cg]],
  ['ListChildren', (s, cg) => [s.V1, cg]],
  ['RemoveOnEmpty', (_s, cg) => ['all', cg]],
  ['Prune', (_s, cg) => ['all', cg]],
  ['ListKeys', (s, cg) => [s.V1, cg]],
];

/** '..' in every spelling; the daemon refuses the substring anywhere (the original's sane_cgroup). */
const DOT_DOTS = ['..', 'mine/..', 'mine/../..', './..', 'mine/../../delegb', '//..', '/..', '/../..', '../deleg', '..a', 'a..', 'mine/.../x', `mine/${'x/'.repeat(8)}..`];

// A non-root caller's Chown is refused before its arguments are looked at.
const expectedForDotDot = (method: string): ErrorKey => (method === 'Chown' ? 'AccessDenied' : 'InvalidArgs');

const rows = <T,>(make: (scm: boolean) => T[]): T[] => [...make(false), ...make(true)];

describe.skipIf(reason !== undefined)(titled('hostile cgroup paths from delegated uid 1000', reason), () => {
  let s: Scene;
  beforeAll(async () => {
    s = await startScene();
  });
  afterAll(async () => {
    await s?.stop();
  });

  // One row per method and variant; each row tries every spelling between two snapshots.
  const dotDotRows = rows((scm) => CGROUP_METHODS.map(([method, args]) => ({ method, scm, args })));
  it.each(dotDotRows)('$method (scm: $scm) refuses every spelling of ..', async ({ method, scm, args }) => {
    for (const cg of DOT_DOTS) {
      const reply = await s.attacker.call(method, args(s, cg), scm);
      expectRefused(reply, expectedForDotDot(method), scm, `${method}(${JSON.stringify(cg)})`);
    }
    expect(s.snapshot()).toEqual(s.baseline);
  });

  // Absolute and prefix-confusion attacks, with what each method's path form makes of them.
  // victimNotOurs: the Scm variant passes the pid as a credential, which the kernel refuses (EPERM).
  // scmError: what the Scm variant answers instead (its MovePidAbs base is the caller's own cgroup).
  // dbusError: refused by the transport before any Scm exchange starts (NUL bytes in a string).
  type Row = { what: string; method: string; args: (s: Scene) => unknown[]; error: ErrorKey; victimNotOurs?: true; scmError?: ErrorKey; dbusError?: true };
  const absolute: Row[] = [
    // Form A (reads, SetValue): a leading '/' is hierarchy-absolute but bounded by the caller's cgroup.
    { what: 'the prefix neighbour /…/delegb', method: 'GetValue', args: (s) => [s.V1, s.abs(s.V1, 'delegb'), limitOf(s.V1).key], error: 'AccessDenied' },
    { what: 'the prefix neighbour /…/delegb', method: 'SetValue', args: (s) => [s.V1, s.abs(s.V1, 'delegb'), limitOf(s.V1).key, '2'], error: 'AccessDenied' },
    { what: 'the prefix neighbour\'s child', method: 'SetValue', args: (s) => [s.V1, s.abs(s.V1, 'delegb/inner'), limitOf(s.V1).key, '2'], error: 'AccessDenied' },
    { what: 'the prefix neighbour /…/delegb', method: 'GetTasks', args: (s) => [s.V1, s.abs(s.V1, 'delegb')], error: 'AccessDenied' },
    { what: 'the prefix neighbour /…/delegb', method: 'GetTasksRecursive', args: (s) => [s.NAMED, s.abs(s.NAMED, 'delegb')], error: 'AccessDenied' },
    { what: 'the prefix neighbour /…/delegb', method: 'ListChildren', args: (s) => [s.V1, s.abs(s.V1, 'delegb')], error: 'AccessDenied' },
    { what: 'the prefix neighbour /…/delegb', method: 'ListKeys', args: (s) => [s.V1, s.abs(s.V1, 'delegb')], error: 'AccessDenied' },
    { what: 'the parent of its cgroup', method: 'GetValue', args: (s) => [s.V1, s.abs(s.V1), limitOf(s.V1).key], error: 'AccessDenied' },
    { what: 'the parent of its cgroup', method: 'SetValue', args: (s) => [s.NAMED, s.abs(s.NAMED), 'cgroup.clone_children', '1'], error: 'AccessDenied' },
    { what: 'the parent of its cgroup', method: 'ListKeys', args: (s) => [s.NAMED, s.abs(s.NAMED)], error: 'AccessDenied' },
    { what: 'the hierarchy root', method: 'ListChildren', args: (s) => [s.NAMED, '/'], error: 'AccessDenied' },
    { what: 'the hierarchy root', method: 'GetTasks', args: (s) => [s.NAMED, '/'], error: 'AccessDenied' },
    { what: 'the hierarchy root\'s release_agent', method: 'GetValue', args: (s) => [s.NAMED, '/', 'release_agent'], error: 'AccessDenied' },
    { what: 'its own cgroup spelled absolutely plus a trailing ..', method: 'GetValue', args: (s) => [s.V1, `${s.abs(s.V1, 'deleg')}/..`, limitOf(s.V1).key], error: 'InvalidArgs' },
    // Form C: MovePid takes no leading '/' at all; MovePidAbs is bounded by file permissions and the victim's place.
    { what: 'an absolute target', method: 'MovePid', args: (s) => [s.V1, s.abs(s.V1, 'deleg/mine'), s.attacker.pid], error: 'InvalidArgs' },
    { what: 'its own task into the prefix neighbour', method: 'MovePidAbs', args: (s) => [s.NAMED, s.abs(s.NAMED, 'delegb'), s.attacker.pid], error: 'AccessDenied', scmError: 'FileNotFound' },
    { what: 'its own task into the parent', method: 'MovePidAbs', args: (s) => [s.NAMED, s.abs(s.NAMED), s.attacker.pid], error: 'AccessDenied', scmError: 'FileNotFound' },
    { what: 'B\'s task into its own cgroup', method: 'MovePidAbs', args: (s) => [s.NAMED, s.abs(s.NAMED, 'deleg/mine'), s.victimB.pid], error: 'AccessDenied', victimNotOurs: true },
    { what: 'B\'s task into its own cgroup', method: 'MovePid', args: (s) => [s.NAMED, 'mine', s.victimB.pid], error: 'AccessDenied', victimNotOurs: true },
    { what: 'root\'s task in its subtree', method: 'MovePid', args: (s) => [s.NAMED, 'mine', s.rootVictim.pid], error: 'AccessDenied', victimNotOurs: true },
    { what: 'its own task from outside its subtree', method: 'MovePid', args: (s) => ['all', 'mine', s.ownOutside.pid], error: 'AccessDenied', victimNotOurs: true },
    // Form B (Create, Remove, Chmod, ...): a leading '/' is still relative to the caller's cgroup.
    { what: 'its own cgroup ("/")', method: 'Remove', args: () => ['all', '/', 1], error: 'AccessDenied' },
    { what: 'its own cgroup ("")', method: 'Remove', args: () => ['all', '', 1], error: 'AccessDenied' },
    { what: 'root\'s cgroup in its subtree', method: 'Chmod', args: () => ['all', 'rootchild', '', 0o777], error: 'AccessDenied' },
    { what: 'root\'s cgroup in its subtree', method: 'Create', args: () => ['all', 'rootchild/x'], error: 'AccessDenied' },
    { what: 'root\'s cgroup in its subtree', method: 'Prune', args: () => ['all', 'rootchild'], error: 'AccessDenied' },
    { what: 'root\'s cgroup in its subtree', method: 'RemoveOnEmpty', args: () => ['unified', 'rootchild'], error: 'AccessDenied' },
    { what: 'the hidden v2 leaf', method: 'GetTasks', args: () => ['unified', '.cgm_leaf'], error: 'FileNotFound' },
    { what: 'the hidden v2 leaf', method: 'Create', args: () => ['unified', 'mine/.cgm_leaf/x'], error: 'InvalidArgs' },
    { what: 'a cgroup B owns, by the pid of B\'s task', method: 'GetPidCgroup', args: (s) => [s.NAMED, s.victimB.pid], error: 'AccessDenied', victimNotOurs: true },
    { what: 'a process outside its subtree', method: 'GetPidCgroup', args: (s) => [s.V1, s.ownOutside.pid], error: 'AccessDenied', victimNotOurs: true },
    // NUL bytes (a C daemon would cut the string there) and names past NAME_MAX / PATH_MAX.
    { what: 'a NUL byte hiding ..', method: 'GetValue', args: (s) => [s.V1, 'mine\0/../..', limitOf(s.V1).key], error: 'InvalidArgs', dbusError: true },
    { what: 'a NUL byte', method: 'Create', args: () => ['all', 'x\0y'], error: 'InvalidArgs', dbusError: true },
    { what: 'a NUL byte', method: 'Remove', args: () => ['all', 'mine\0', 0], error: 'InvalidArgs', dbusError: true },
    { what: 'a NUL byte', method: 'MovePid', args: (s) => ['all', 'mine\0', s.attacker.pid], error: 'InvalidArgs', dbusError: true },
    { what: 'a 256-byte name', method: 'Create', args: () => ['all', 'x'.repeat(256)], error: 'InvalidArgs' },
    { what: 'a 4097-byte path', method: 'Create', args: () => ['all', 'x/'.repeat(2048) + 'x'], error: 'InvalidArgs' },
    { what: 'a 4097-byte path', method: 'GetValue', args: (s) => [s.V1, 'x/'.repeat(2048) + 'x', limitOf(s.V1).key], error: 'InvalidArgs' },
    { what: 'a 4097-byte path', method: 'Chmod', args: () => ['all', 'x/'.repeat(2048) + 'x', '', 0o777], error: 'InvalidArgs' },
  ];
  it.each(rows((scm) => absolute.map((r) => ({ ...r, scm }))))('$method (scm: $scm) refuses $what', async (row) => {
    const { method, args, scm } = row;
    const reply = await attackUnchanged(s, () => s.attacker.call(method, args(s), scm));
    if (scm && row.victimNotOurs) expectKernelRefused(reply, 'EPERM', method);
    else expectRefused(reply, scm ? (row.scmError ?? row.error) : row.error, scm && !row.dbusError, method);
  });

  it('removing the empty cgroup root made inside its subtree is allowed, as rmdir(2) would be (write access to the parent)', async () => {
    const reply = await s.attacker.call('Remove', ['all', 'rootchild', 0]);
    expect(reply, JSON.stringify(reply)).toMatchObject({ ok: true, values: [1] });
    for (const h of s.env.labels) expect(existsSync(s.env.fsPath(h, 'deleg/rootchild')), h).toBe(false);
  });

  it('a leading / in a Create is relative to the caller: it lands inside its own cgroup', async () => {
    const target = s.abs(s.NAMED, 'delegb');
    const reply = await s.attacker.call('Create', [s.NAMED, `${target}/made`]);
    expect(reply.ok, JSON.stringify(reply)).toBe(true);
    const inside = `deleg${target}/made`;
    expect(s.env.cgroupOf(s.victimB.pid, s.NAMED)).toBe(s.abs(s.NAMED, 'delegb'));
    expect(existsSync(s.env.fsPath(s.NAMED, inside))).toBe(true);
    expect(existsSync(s.env.fsPath(s.NAMED, 'delegb/made'))).toBe(false);
    const removed = await s.attacker.call('Remove', [s.NAMED, target.split('/').filter(Boolean)[0], 1]);
    expect(removed.ok, JSON.stringify(removed)).toBe(true);
  });

  it('every refusal above was logged as a denial or as bad input, never as a fault of the daemon', () => {
    const faults = s.env.logLines().filter((l) => l.level === 'error' || l.level === 'fatal');
    expect(faults).toEqual([]);
  });
});
