// Bad input from callers: wrong signatures, unknown methods and controllers, empty and huge
// strings, NUL bytes, oversized messages and garbage frames, pids that do not exist, negative
// ids. Each gets its named error (or only its own connection closed) and nothing changes.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, isAlive, RawClient, sampleLimit, SELF_PID, skipReason, snapshotTrees, startTestDaemon, titled, type CallArg, type CallResult,
  type Snapshot, type TestDaemon, type Tool,
} from '../../helpers';
import { METHODS } from '../../../daemon/dbus/interface';

const E = {
  InvalidArgs: 'org.freedesktop.DBus.Error.InvalidArgs',
  UnknownMethod: 'org.freedesktop.DBus.Error.UnknownMethod',
  UnknownObject: 'org.freedesktop.DBus.Error.UnknownObject',
  NoSuchController: 'org.linuxcontainers.cgmanager.Error.NoSuchController',
  UnixProcessIdUnknown: 'org.freedesktop.DBus.Error.UnixProcessIdUnknown',
  LimitsExceeded: 'org.freedesktop.DBus.Error.LimitsExceeded',
  FileNotFound: 'org.freedesktop.DBus.Error.FileNotFound',
};
const MAX_MESSAGE = 131072;
const CONTROLLERS = availableV1Controllers(['cpu']);
const reason = skipReason({ cgroup2: true, named: 1 });

type Case = [what: string, tool: Tool, method: string, sig: string, args: () => CallArg[], error: string];

describe.skipIf(reason !== undefined)(titled('bad input', reason), () => {
  let env: TestDaemon;
  let dirs: string[];
  /** a v1 hierarchy (cpu here) and a writable file in it */
  let V1: string;
  let KEY: string;
  const snapshot = (): Snapshot => snapshotTrees(dirs);
  // A pid that cannot exist: above the kernel's pid_max (but still an int32).
  const noPid = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) + 1;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, cgroup2: true, controllers: CONTROLLERS, daemonArgs: ['--max-message-size', String(MAX_MESSAGE)] });
    V1 = env.primaryV1;
    KEY = sampleLimit(V1).key;
    dirs = [...env.bases.values()].map((b) => b.fsPath);
    const r = await env.dbusSend('Create', 'ss', ['all', 'x']);
    expect(r.ok).toBe(true);
  });

  afterAll(async () => {
    await env?.stop();
  });

  /** Runs `fn` and checks that no cgroup, owner, mode, value or membership changed meanwhile. */
  async function unchanged<T>(fn: () => Promise<T>): Promise<T> {
    const before = snapshot();
    const result = await fn();
    expect(snapshot()).toEqual(before);
    return result;
  }

  async function refused(tool: Tool, method: string, sig: string, args: readonly CallArg[], error: string): Promise<CallResult> {
    const r = await unchanged(() => env.call(tool, method, sig, args));
    expect(r.ok, `${method} should have failed`).toBe(false);
    expect(r.errorName, r.errorMessage).toBe(error);
    return r;
  }

  describe('wrong signatures', () => {
    // gdbus types the arguments itself from introspection, so only busctl and dbus-send can send these.
    // (The signature is checked before anything else, so the controller named does not matter.)
    const cases: Array<[Tool, string, string, CallArg[]]> = [
      ['dbus-send', 'Create', 'si', ['cpu', 1]],
      ['busctl', 'Create', 's', ['cpu']],
      ['dbus-send', 'Chown', 'ssss', ['cpu', 'x', '0', '0']],
      ['busctl', 'GetValue', 'ss', ['cpu', 'x']],
      ['dbus-send', 'MovePid', 'sss', ['cpu', 'x', '1']],
      ['busctl', 'Remove', 'ssu', ['cpu', 'x', 1]],
      ['dbus-send', 'Ping', 's', ['hello']],
      ['busctl', 'ListControllers', 'i', [1]],
      ['dbus-send', 'SetValue', 'sssi', ['cpu', 'x', 'cpu.shares', 5]],
    ];
    it.each(cases)('%s %s(%s) gets InvalidArgs "Invalid arguments to … method"', async (tool, method, sig, args) => {
      const r = await refused(tool, method, sig, args, E.InvalidArgs);
      expect(r.errorMessage).toBe(`Invalid arguments to ${method} method`);
    });

    it('every plain method refuses an extra argument (raw client)', async () => {
      const client = await RawClient.connect(env.socket);
      try {
        await unchanged(async () => {
          for (const m of METHODS.filter((x) => !x.scm)) {
            const sig = `${m.inSignature}s`;
            const body = [...m.in.map(([, t]) => (t === 's' ? env.baseName : 1)), 'extra'];
            const r = await client.call(m.name, sig, body);
            expect(r.errorName, m.name).toBe(E.InvalidArgs);
            expect(r.values, m.name).toEqual([`Invalid arguments to ${m.name} method`]);
          }
        });
      } finally {
        client.close();
      }
    });
  });

  describe('unknown methods, interfaces, objects and controllers', () => {
    it.each(['gdbus', 'busctl', 'dbus-send'] as const)('%s: unknown method and interface get UnknownMethod', async (tool) => {
      await refused(tool, 'Frobnicate', 'si', ['any', 1], E.UnknownMethod);
      await refused(tool, 'org.example.Nope.Create', 'ss', ['any', 'x'], E.UnknownMethod);
    });

    it('an unknown object path gets UnknownObject', async () => {
      const client = await RawClient.connect(env.socket);
      try {
        const r = await client.call('Ping', 'i', [0], { path: '/org/example/nope' });
        expect(r.errorName).toBe(E.UnknownObject);
      } finally {
        client.close();
      }
    });

    const cases: Case[] = [
      ['an unknown controller', 'dbus-send', 'Create', 'ss', () => ['nosuch', 'y'], E.NoSuchController],
      ['a list with an unknown controller (nothing made in the known one)', 'busctl', 'Create', 'ss', () => [`${V1},nosuch`, 'y'], E.NoSuchController],
      ['an unknown named hierarchy', 'gdbus', 'MovePid', 'ssi', () => ['name=nosuch', 'x', SELF_PID], E.NoSuchController],
      ['an unknown controller in a read', 'dbus-send', 'GetValue', 'sss', () => ['nosuch', 'x', KEY], E.NoSuchController],
      ['"all" where one hierarchy is expected', 'busctl', 'ListChildren', 'ss', () => ['all', ''], E.NoSuchController],
      ['an unknown controller in a recursive read', 'dbus-send', 'GetTasksRecursive', 'ss', () => ['unified,nosuch', ''], E.NoSuchController],
      ['an empty controller', 'dbus-send', 'GetValue', 'sss', () => ['', 'x', KEY], E.NoSuchController],
    ];
    it.each(cases)('%s (%s %s)', async (_what, tool, method, sig, args, error) => {
      await refused(tool, method, sig, args(), error);
    });
  });

  describe('empty and huge strings', () => {
    const cases: Case[] = [
      ['an empty key', 'dbus-send', 'GetValue', 'sss', () => [V1, 'x', ''], E.InvalidArgs],
      ['an empty key to set', 'busctl', 'SetValue', 'ssss', () => [V1, 'x', '', '1'], E.InvalidArgs],
      ['a 5000-byte cgroup name', 'gdbus', 'Create', 'ss', () => [V1, 'a'.repeat(5000)], E.InvalidArgs],
      ['a 5000-byte cgroup name in a read', 'dbus-send', 'GetTasks', 'ss', () => [V1, 'a'.repeat(5000)], E.InvalidArgs],
      ['a 300-byte path component (ENAMETOOLONG)', 'busctl', 'Create', 'ss', () => ['all', `x/${'b'.repeat(300)}`], E.InvalidArgs],
      ['a 5000-byte key', 'dbus-send', 'GetValue', 'sss', () => [V1, 'x', 'k'.repeat(5000)], E.InvalidArgs],
      ['a 300-byte file to chmod', 'dbus-send', 'Chmod', 'sssi', () => [V1, 'x', 'f'.repeat(300), 0o644], E.InvalidArgs],
      ['a 5000-byte controller', 'gdbus', 'Create', 'ss', () => ['c'.repeat(5000), 'y'], E.InvalidArgs],
      ['a 70000-byte value', 'dbus-send', 'SetValue', 'ssss', () => [V1, 'x', KEY, '1'.repeat(70000)], E.LimitsExceeded],
      ['a value the kernel refuses', 'busctl', 'SetValue', 'ssss', () => [V1, 'x', KEY, 'many'], E.InvalidArgs],
      ['a key that does not exist', 'dbus-send', 'GetValue', 'sss', () => [V1, 'x', 'no.such.key'], E.FileNotFound],
      ['a cgroup that does not exist', 'dbus-send', 'SetValue', 'ssss', () => [V1, 'nope', KEY, '2'], E.FileNotFound],
      ['a file name with a slash to chmod', 'gdbus', 'Chmod', 'sssi', () => [V1, 'x', `../${KEY}`, 0o666], E.InvalidArgs],
      ['a mode with file-type bits', 'dbus-send', 'Chmod', 'sssi', () => [V1, 'x', KEY, 0o100644], E.InvalidArgs],
    ];
    it.each(cases)('%s (%s %s)', async (_what, tool, method, sig, args, error) => {
      await refused(tool, method, sig, args(), error);
    });

    it('Create of "" is the original\'s no-op', async () => {
      const r = await unchanged(() => env.dbusSend('Create', 'ss', ['all', '']));
      expect(r.values).toEqual([-1]);
    });

    it.each(['tasks', 'cgroup.procs', 'notify_on_release', 'release_agent', 'cgroup.threads'])('SetValue refuses the key %s', async (key) => {
      // (release_agent exists only at a hierarchy root: the name alone is refused, before any lookup)
      await refused('dbus-send', 'SetValue', 'ssss', [key === 'cgroup.threads' ? 'unified' : V1, 'x', key, '1'], E.InvalidArgs);
    });
  });

  it('a Create that fails in one hierarchy (cgroup.max.descendants) leaves nothing behind in any', async () => {
    expect((await env.dbusSend('Create', 'ss', ['all', 'full'])).ok).toBe(true);
    expect((await env.dbusSend('SetValue', 'ssss', ['unified', 'full', 'cgroup.max.descendants', '0'])).ok).toBe(true);
    const r = await refused('busctl', 'Create', 'ss', ['all', 'full/a/b'], E.LimitsExceeded);
    expect(r.errorMessage).toContain('unified');
  });

  describe('NUL bytes, oversized messages and garbage (raw client)', () => {
    it.each([
      ['in a cgroup name', 'Create', 'ss', (b: string) => [V1, `${b}/nul\0x`]],
      ['in a controller', 'Create', 'ss', (b: string) => [`${V1}\0`, `${b}/nul`]],
      ['in a key', 'GetValue', 'sss', (b: string) => [V1, `${b}/x`, `${KEY}\0junk`]],
      ['in a value', 'SetValue', 'ssss', (b: string) => [V1, `${b}/x`, KEY, '512\0junk']],
      ['in a chmod file', 'Chmod', 'sssi', (b: string) => [V1, `${b}/x`, `${KEY}\0`, 0o666]],
    ] as const)('a NUL byte %s gets InvalidArgs', async (_what, method, sig, args) => {
      const client = await RawClient.connect(env.socket);
      try {
        // The test process sits in the parent of the bases, so `${baseName}/…` names our own cgroups.
        const r = await unchanged(() => client.call(method, sig, args(env.baseName)));
        expect(r.errorName).toBe(E.InvalidArgs);
      } finally {
        client.close();
      }
      expect(fs.existsSync(env.fsPath(V1, 'nul'))).toBe(false);
    });

    it('a message over --max-message-size closes that connection only', async () => {
      const [big, other] = await Promise.all([RawClient.connect(env.socket), RawClient.connect(env.socket)]);
      try {
        const huge = 'h'.repeat(MAX_MESSAGE + 1000);
        await unchanged(async () => {
          await expect(big.call('Create', 'ss', [V1, `${env.baseName}/${huge}`])).rejects.toThrow(/connection closed/);
        });
        expect(big.isClosed).toBe(true);
        expect((await other.call('Ping', 'i', [0])).ok).toBe(true);
        expect((await env.dbusSend('Ping', 'i', [0])).ok).toBe(true);
        expect(isAlive(env.daemonPid)).toBe(true);
      } finally {
        big.close();
        other.close();
      }
    });

    it.each([
      ['garbage bytes', Buffer.from('this is not a D-Bus message at all, just text\r\n')],
      ['a header with a bad protocol version', Buffer.from('6c01000200000000010000000000000000000000', 'hex')],
      ['a header claiming a body of 2 GiB', Buffer.from('6c01000100000080010000000000000000000000', 'hex')],
    ])('%s after BEGIN close only that connection', async (_what, bytes) => {
      const [bad, other] = await Promise.all([RawClient.connect(env.socket), RawClient.connect(env.socket)]);
      try {
        bad.writeRaw(bytes);
        await expect(bad.closed(5000)).resolves.toBeTypeOf('string');
        expect((await other.call('ListControllers')).ok).toBe(true);
        expect((await env.busctl('Ping', 'i', [0])).ok).toBe(true);
      } finally {
        bad.close();
        other.close();
      }
    });
  });

  describe('pids and ids', () => {
    const cases: Case[] = [
      ['a pid that does not exist (MovePid)', 'dbus-send', 'MovePid', 'ssi', () => [V1, 'x', noPid], E.UnixProcessIdUnknown],
      ['a pid that does not exist (MovePidAbs)', 'busctl', 'MovePidAbs', 'ssi', () => ['all', env.cgPath(V1, 'x'), noPid], E.UnixProcessIdUnknown],
      ['a pid that does not exist (GetPidCgroup)', 'gdbus', 'GetPidCgroup', 'si', () => [V1, noPid], E.UnixProcessIdUnknown],
      ['a pid that does not exist (GetPidCgroupAbs)', 'dbus-send', 'GetPidCgroupAbs', 'si', () => ['unified', noPid], E.UnixProcessIdUnknown],
      ['pid 0', 'dbus-send', 'MovePid', 'ssi', () => [V1, 'x', 0], E.InvalidArgs],
      ['a negative pid', 'busctl', 'GetPidCgroup', 'si', () => [V1, -5], E.InvalidArgs],
      ['a negative uid other than -1', 'dbus-send', 'Chown', 'ssii', () => [V1, 'x', -2, 0], E.InvalidArgs],
      ['a negative gid other than -1', 'gdbus', 'Chown', 'ssii', () => ['all', 'x', 0, -7], E.InvalidArgs],
    ];
    it.each(cases)('%s (%s)', async (_what, tool, method, sig, args, error) => {
      await refused(tool, method, sig, args(), error);
    });

    it('Chown to -1:-1 leaves both ids as they were', async () => {
      const r = await unchanged(() => env.busctl('Chown', 'ssii', ['all', 'x', -1, -1]));
      expect(r.ok).toBe(true);
    });
  });
});
