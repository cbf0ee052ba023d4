// Hostile keys (GetValue, SetValue) and file names (Chmod) from delegated uid 1000, plain and
// Scm: '..', '/', empty, encoded and NUL-bearing keys, names past NAME_MAX, and keys naming the
// dangerous files of the delegated cgroup, of root's cgroup inside it and of its own child:
// task membership, release agent, cgroup.kill, cgroup.type, limits. Each is refused with its
// named error and changes nothing on disk.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { skipReason, titled } from '../helpers';
import { attackUnchanged, expectRefused, limitOf, startScene, type ErrorKey, type Scene } from './fixture';

const reason = skipReason({ cgroup2: true, named: 1 });

type Row = { what: string; method: 'GetValue' | 'SetValue' | 'Chmod'; args: (s: Scene) => unknown[]; error: ErrorKey; dbusError?: true };

const get = (h: (s: Scene) => string, cg: string, key: string): Pick<Row, 'method' | 'args'> => ({ method: 'GetValue', args: (s) => [h(s), cg, key] });
const set = (h: (s: Scene) => string, cg: string, key: string, value = '1'): Pick<Row, 'method' | 'args'> => ({ method: 'SetValue', args: (s) => [h(s), cg, key, value] });
const chmod = (h: (s: Scene) => string, cg: string, file: string, mode = 0o666): Pick<Row, 'method' | 'args'> => ({ method: 'Chmod', args: (s) => [h(s), cg, file, mode] });
const V1 = (s: Scene): string => s.V1;
const NAMED = (s: Scene): string => s.NAMED;
const UNIFIED = (): string => 'unified';

/** Key spellings that try to leave the cgroup directory or name nothing. */
const BAD_KEYS: ReadonlyArray<[key: string, error: ErrorKey]> = [
  ['..', 'InvalidArgs'],
  ['.', 'InvalidArgs'],
  ['../cgroup.procs', 'InvalidArgs'],
  ['mine/../cgroup.procs', 'InvalidArgs'],
  ['/cgroup.procs', 'InvalidArgs'],
  ['cgroup.procs/', 'InvalidArgs'],
  ['mine/cgroup.procs', 'InvalidArgs'],
  ['x'.repeat(256), 'InvalidArgs'],
  ['%2e%2e', 'FileNotFound'],
  ['..%2fcgroup.procs', 'FileNotFound'],
  ['%2e%2e%2fcgroup.procs', 'FileNotFound'],
];

const rows: Row[] = [
  ...BAD_KEYS.flatMap(([key, error]): Row[] => [
    { what: `key ${JSON.stringify(key.slice(0, 40))}`, ...get(NAMED, '', key), error },
    { what: `key ${JSON.stringify(key.slice(0, 40))}`, ...set(NAMED, 'mine', key), error },
    { what: `file ${JSON.stringify(key.slice(0, 40))}`, ...chmod(NAMED, 'mine', key), error },
  ]),
  { what: 'an empty key', ...get(NAMED, '', ''), error: 'InvalidArgs' },
  { what: 'an empty key', ...set(NAMED, 'mine', ''), error: 'InvalidArgs' },
  { what: 'a backslash in a file', ...chmod(NAMED, 'mine', 'cgroup.procs\\..'), error: 'InvalidArgs' },
  { what: 'a NUL byte in a key', ...set(NAMED, 'mine', 'cgroup.clone_children\0/../../x'), error: 'InvalidArgs', dbusError: true },
  { what: 'a NUL byte in a key', ...get(NAMED, '', 'cgroup.procs\0'), error: 'InvalidArgs', dbusError: true },
  { what: 'a NUL byte in a value', ...set(NAMED, 'mine', 'cgroup.clone_children', '1\0 0'), error: 'InvalidArgs', dbusError: true },
  { what: 'a NUL byte in a file', ...chmod(NAMED, 'mine', 'tasks\0'), error: 'InvalidArgs', dbusError: true },
  // SetValue never writes task membership or the release agent, not even in a cgroup the caller owns wholly.
  ...['tasks', 'cgroup.procs', 'notify_on_release', 'release_agent'].flatMap((key): Row[] => [
    { what: `${key} of the delegated cgroup`, ...set(NAMED, '', key), error: 'InvalidArgs' },
    { what: `${key} of its own child`, ...set(NAMED, 'mine', key), error: 'InvalidArgs' },
    { what: `${key} of root's cgroup in its subtree`, ...set(NAMED, 'rootchild', key), error: 'InvalidArgs' },
  ]),
  ...['cgroup.procs', 'cgroup.threads'].map((key): Row => ({ what: `v2 ${key} of the delegated cgroup`, ...set(UNIFIED, '', key), error: 'InvalidArgs' })),
  // The limits of the cgroup it was given, and root's files, stay root's (SPEC: Chown hands over only the directory and task files).
  { what: 'a limit of the delegated cgroup', ...set(V1, '', '<limit>'), error: 'AccessDenied' },
  { what: 'a limit of root\'s cgroup in its subtree', ...set(V1, 'rootchild', '<limit>'), error: 'AccessDenied' },
  { what: 'cgroup.clone_children of the delegated cgroup', ...set(NAMED, '', 'cgroup.clone_children'), error: 'AccessDenied' },
  ...['cgroup.kill', 'cgroup.type', 'cgroup.freeze', 'cgroup.max.depth', 'cgroup.max.descendants'].flatMap((key): Row[] => [
    { what: `v2 ${key} of the delegated cgroup`, ...set(UNIFIED, '', key, key === 'cgroup.type' ? 'threaded' : '1'), error: 'AccessDenied' },
    { what: `v2 ${key} of root's cgroup in its subtree`, ...set(UNIFIED, 'rootchild', key, key === 'cgroup.type' ? 'threaded' : '1'), error: 'AccessDenied' },
    { what: `mode of v2 ${key} of the delegated cgroup`, ...chmod(UNIFIED, '', key), error: 'AccessDenied' },
  ]),
  { what: 'cgroup.kill (write-only) of the delegated cgroup', ...get(UNIFIED, '', 'cgroup.kill'), error: 'AccessDenied' },
  { what: 'mode of a limit of the delegated cgroup', ...chmod(V1, '', '<limit>'), error: 'AccessDenied' },
  { what: 'mode of a limit of root\'s cgroup in its subtree', ...chmod(V1, 'rootchild', '<limit>'), error: 'AccessDenied' },
  { what: 'mode of the task file of root\'s cgroup in its subtree', ...chmod(NAMED, 'rootchild', 'tasks'), error: 'AccessDenied' },
  { what: 'mode of notify_on_release of the delegated cgroup', ...chmod(NAMED, '', 'notify_on_release'), error: 'AccessDenied' },
  { what: 'a file type in the mode', ...chmod(NAMED, 'mine', 'tasks', 0o100666), error: 'InvalidArgs' },
  { what: 'a negative mode', ...chmod(NAMED, 'mine', 'tasks', -1), error: 'InvalidArgs' },
  { what: 'a key that does not exist', ...set(NAMED, 'mine', 'no.such.key'), error: 'FileNotFound' },
  { what: 'release_agent outside the root', ...get(NAMED, '', 'release_agent'), error: 'FileNotFound' },
];

describe.skipIf(reason !== undefined)(titled('hostile keys and file names from delegated uid 1000', reason), () => {
  let s: Scene;
  beforeAll(async () => {
    s = await startScene();
  });
  afterAll(async () => {
    await s?.stop();
  });

  // '<limit>' stands for the sample limit of the hierarchy (cpu.shares on the host's cpu controller).
  const resolve = (s: Scene, args: unknown[]): unknown[] => args.map((a) => (a === '<limit>' ? limitOf(s.V1).key : a));

  it.each([...rows.map((r) => ({ ...r, scm: false })), ...rows.map((r) => ({ ...r, scm: true }))])('$method (scm: $scm) refuses $what', async (row) => {
    const reply = await attackUnchanged(s, () => s.attacker.call(row.method, resolve(s, row.args(s)), row.scm));
    expectRefused(reply, row.error, row.scm && !row.dbusError, row.method);
  });
});
