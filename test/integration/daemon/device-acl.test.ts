// Device ACLs through SetValue on a real kernel: on cgroup v2 the daemon compiles each
// cgroup's devices.allow/devices.deny rules to a BPF program, on v1 the devices controller
// does it; the same calls give the same devices.list and the same opens from a task in the
// cgroup (libvirt's list: deny a; allow c 1:3, 1:5, 1:7, 5:1, 1:8, 1:9). Also: a child never
// gets more than its parent, delegatees only set cgroups they created, programs are swapped in
// place, and the rule lists and programs survive a daemon restart.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableV1Controllers, cgroupBpfSkipReason, okValues, skipReason, startTestDaemon, titled, type CallArg, type CallResult, type TestDaemon } from '../../helpers';
import { bpfDetachDeviceProgram, bpfProgramFdById, bpfQueryDevicePrograms, closeFd } from '../../../addon';

const ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied';
const INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs';
const UID = 1000;
const V1_DEVICES = availableV1Controllers(['devices']);
const reason = skipReason({ cgroup2: true, tools: ['mknod'] }) ?? cgroupBpfSkipReason();


/** The libvirt-style device nodes the probe opens, made with mknod in the test's directory. */
const NODES = {
  null: 'c 1 3',
  zero: 'c 1 5',
  full: 'c 1 7',
  random: 'c 1 8',
  urandom: 'c 1 9',
  console: 'c 5 1',
  tty: 'c 5 0',
  mem: 'c 1 1',
  loop: 'b 7 0',
} as const;
type Node = keyof typeof NODES;

const LIBVIRT = ['deny a', 'allow c 1:3 rwm', 'allow c 1:5 rwm', 'allow c 1:7 rwm', 'allow c 5:1 rwm', 'allow c 1:8 rwm', 'allow c 1:9 rwm'];
const LIBVIRT_LIST = 'c 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 5:1 rwm\nc 1:8 rwm\nc 1:9 rwm';

// Opens each "MODE PATH" (< read, > write) in a subshell and prints "PATH ok" or "PATH EPERM"
// or "PATH other: MESSAGE" (e.g. ENXIO for /dev/tty without a controlling terminal: the
// device check passed, the driver refused).
const PROBE = [
  'for spec in "$@"; do',
  '  mode=${spec%% *}; p=${spec#* }',
  '  if [ "$mode" = "<" ]; then err=$( (exec 3<"$p") 2>&1 ); else err=$( (exec 3>"$p") 2>&1 ); fi',
  '  if [ -z "$err" ]; then echo "$mode$p ok"',
  '  else case $err in *"not permitted"*) echo "$mode$p EPERM";; *) echo "$mode$p other: $err";; esac; fi',
  'done',
].join('\n');

describe.skipIf(reason !== undefined)(titled('device ACLs (devices.allow/deny/list) on cgroup v2 and v1', reason), () => {
  let env: TestDaemon;
  let nodeDir: string;
  const ok = (r: CallResult): unknown[] => okValues(r, env);
  const call = async (method: string, sig: string, args: readonly CallArg[]): Promise<unknown[]> => ok(await env.dbusSend(method, sig, args));
  const set = (h: string, cg: string, key: string, value: string): Promise<unknown[]> => call('SetValue', 'ssss', [h, cg, key, value]);
  const list = async (h: string, cg: string): Promise<string> => (await call('GetValue', 'sss', [h, cg, 'devices.list']))[0] as string;
  const nodePath = (n: Node): string => path.join(nodeDir, n);

  /** What a task in `cg` of `h` gets when it opens each node (read unless `>`). */
  async function probe(h: string, cg: string, opens: readonly string[]): Promise<Record<string, string>> {
    const specs = opens.map((o) => (o.startsWith('>') ? `> ${nodePath(o.slice(1) as Node)}` : `< ${nodePath(o as Node)}`));
    const r = await env.run(['sh', '-c', PROBE, 'sh', ...specs], { at: { [h]: cg } });
    expect(r.code, r.stderr).toBe(0);
    const out: Record<string, string> = {};
    for (const line of r.stdout.trim().split('\n')) {
      const m = /^([<>])(\S+) (.*)$/.exec(line);
      if (m) out[`${m[1] === '>' ? '>' : ''}${path.basename(m[2] as string)}`] = (m[3] as string).startsWith('other') ? 'other' : (m[3] as string);
    }
    return out;
  }

  const programsOf = (cg: string): number[] => {
    const fd = fs.openSync(env.fsPath('unified', cg), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      return bpfQueryDevicePrograms(fd);
    } finally {
      fs.closeSync(fd);
    }
  };

  beforeAll(async () => {
    env = await startTestDaemon({ cgroup2: true, controllers: V1_DEVICES });
    nodeDir = path.join(env.dir, 'nodes');
    fs.mkdirSync(nodeDir, { mode: 0o755 });
    for (const [name, spec] of Object.entries(NODES)) execFileSync('mknod', ['-m', '0666', path.join(nodeDir, name), ...spec.split(' ')]);
  });

  afterAll(async () => {
    await env?.stop();
  });

  const LIBVIRT_OUTCOME = {
    null: 'ok', zero: 'ok', full: 'ok', random: 'ok', urandom: 'ok', '>null': 'ok',
    tty: 'EPERM', mem: 'EPERM', loop: 'EPERM',
  };
  const LIBVIRT_OPENS = ['null', 'zero', 'full', 'random', 'urandom', '>null', 'tty', 'mem', 'loop'];

  it('v2: the libvirt list lets a task open exactly the allowed devices; devices.list in v1 format', async () => {
    await call('Create', 'ss', ['unified', 'lv']);
    expect(await list('unified', 'lv')).toBe('a *:* rwm');
    const before = await probe('unified', 'lv', ['tty', 'mem', 'loop']);
    expect(before.mem).not.toBe('EPERM');
    for (const line of LIBVIRT) await set('unified', 'lv', line.startsWith('deny') ? 'devices.deny' : 'devices.allow', line.replace(/^\w+ /, ''));
    expect(await list('unified', 'lv')).toBe(LIBVIRT_LIST);
    expect(await probe('unified', 'lv', LIBVIRT_OPENS)).toEqual(LIBVIRT_OUTCOME);
    // One program of ours on the cgroup, however many writes it took.
    expect(programsOf('lv')).toHaveLength(1);
  });

  it.skipIf(V1_DEVICES.length === 0)(titled('v1: the same calls on the devices controller give the same list and the same opens', V1_DEVICES.length === 0 ? 'no v1 devices hierarchy on this host' : undefined), async () => {
    await call('Create', 'ss', ['devices', 'lv']);
    for (const line of LIBVIRT) await set('devices', 'lv', line.startsWith('deny') ? 'devices.deny' : 'devices.allow', line.replace(/^\w+ /, ''));
    expect(await list('devices', 'lv')).toBe(LIBVIRT_LIST);
    expect(fs.readFileSync(env.fsPath('devices', 'lv', 'devices.list'), 'utf8').trim()).toBe(LIBVIRT_LIST);
    expect(await probe('devices', 'lv', LIBVIRT_OPENS)).toEqual(LIBVIRT_OUTCOME);
  });

  it('v2: each change swaps the program in place (one attached, a new id), and access bits count', async () => {
    await call('Create', 'ss', ['unified', 'swap']);
    await set('unified', 'swap', 'devices.deny', 'a');
    await set('unified', 'swap', 'devices.allow', 'c 1:3 r');
    const [first] = programsOf('swap');
    expect(await probe('unified', 'swap', ['null', '>null', 'zero'])).toEqual({ null: 'ok', '>null': 'EPERM', zero: 'EPERM' });
    await set('unified', 'swap', 'devices.allow', 'c 1:3 w');
    const after = programsOf('swap');
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(first);
    expect(await probe('unified', 'swap', ['null', '>null'])).toEqual({ null: 'ok', '>null': 'ok' });
    await set('unified', 'swap', 'devices.allow', 'a');
    expect(await list('unified', 'swap')).toBe('a *:* rwm');
    expect(await probe('unified', 'swap', ['zero', 'loop'])).toMatchObject({ zero: 'ok' });
  });

  it('v2: a child never gets more than its parent: refused writes, and the parent program applies below', async () => {
    await call('Create', 'ss', ['unified', 'par/kid']);
    // 'deny a' on a cgroup with children is refused, as on v1.
    const refused = await env.dbusSend('SetValue', 'ssss', ['unified', 'par', 'devices.deny', 'a']);
    expect(refused.errorName).toBe(INVALID_ARGS);
    await set('unified', 'par', 'devices.deny', 'c 1:5 rwm');
    expect(await list('unified', 'par/kid')).toBe('a *:* rwm');
    // The kid has no program of its own; the parent's applies to it.
    expect(await probe('unified', 'par/kid', ['null', 'zero'])).toEqual({ null: 'ok', zero: 'EPERM' });
    await call('Create', 'ss', ['unified', 'strict']);
    await set('unified', 'strict', 'devices.deny', 'a');
    await set('unified', 'strict', 'devices.allow', 'c 1:3 rwm');
    await call('Create', 'ss', ['unified', 'strict/kid']);
    expect(await list('unified', 'strict/kid')).toBe('c 1:3 rwm');
    const more = await env.dbusSend('SetValue', 'ssss', ['unified', 'strict/kid', 'devices.allow', 'c 1:5 r']);
    expect(more.errorName).toBe(ACCESS_DENIED);
    expect(more.errorMessage).toMatch(/more than the parent/);
    await set('unified', 'strict/kid', 'devices.deny', 'c 1:3 w');
    expect(await list('unified', 'strict/kid')).toBe('c 1:3 rm');
    expect(await probe('unified', 'strict/kid', ['null', '>null', 'zero'])).toEqual({ null: 'ok', '>null': 'EPERM', zero: 'EPERM' });
    // A new restriction of the parent reaches the kid's list too (v1 propagation).
    await set('unified', 'strict', 'devices.deny', 'c 1:3 m');
    expect(await list('unified', 'strict/kid')).toBe('c 1:3 r');
  });

  it('bad rules and the wrong file get named errors and change nothing', async () => {
    await call('Create', 'ss', ['unified', 'bad']);
    await set('unified', 'bad', 'devices.deny', 'a');
    for (const [key, value, name] of [
      ['devices.allow', 'c 1:3', INVALID_ARGS],
      ['devices.allow', 'x 1:3 rwm', INVALID_ARGS],
      ['devices.allow', 'c 1:3 rwx', INVALID_ARGS],
      ['devices.list', 'a', ACCESS_DENIED],
    ] as const) {
      const r = await env.dbusSend('SetValue', 'ssss', ['unified', 'bad', key, value]);
      expect(r.errorName, `${key} ${value}`).toBe(name);
    }
    expect((await env.dbusSend('GetValue', 'sss', ['unified', 'bad', 'devices.allow'])).errorName).toBe(ACCESS_DENIED);
    expect(await list('unified', 'bad')).toBe('');
    const keys = (await call('ListKeys', 'ss', ['unified', 'bad']))[0] as Array<[string, number, number, number]>;
    expect(keys.filter((k) => k[0].startsWith('devices.')).map((k) => [k[0], k[3] & 0o777])).toEqual([
      ['devices.allow', 0o200], ['devices.deny', 0o200], ['devices.list', 0o444],
    ]);
  });

  it('a delegatee cannot set the devices of the cgroup it was given, only of cgroups it created below', async () => {
    await call('Create', 'ss', ['unified', 'deleg']);
    await set('unified', 'deleg', 'devices.deny', 'a');
    await set('unified', 'deleg', 'devices.allow', 'c 1:3 rwm');
    await call('Chown', 'ssii', ['unified', 'deleg', UID, UID]);
    const as = { uid: UID, at: { unified: 'deleg' } };
    const own = await env.dbusSend('SetValue', 'ssss', ['unified', '', 'devices.allow', 'c 1:5 rwm'], as);
    expect(own.errorName).toBe(ACCESS_DENIED);
    ok(await env.dbusSend('Create', 'ss', ['unified', 'mine'], as));
    ok(await env.dbusSend('SetValue', 'ssss', ['unified', 'mine', 'devices.deny', 'c 1:3 w'], as));
    expect(ok(await env.dbusSend('GetValue', 'sss', ['unified', 'mine', 'devices.list'], as))).toEqual(['c 1:3 rm']);
    const widen = await env.dbusSend('SetValue', 'ssss', ['unified', 'mine', 'devices.allow', 'a'], as);
    expect(widen.errorName).toBe(ACCESS_DENIED);
  });

  it('rule lists and programs survive a restart; a lost program is attached again; Remove drops the list', async () => {
    const stateFile = path.join(path.dirname(env.socket), 'cgmanager.state', 'device-acl.json');
    await call('Create', 'ss', ['unified', 'keep']);
    for (const line of LIBVIRT) await set('unified', 'keep', line.startsWith('deny') ? 'devices.deny' : 'devices.allow', line.replace(/^\w+ /, ''));
    const [id] = programsOf('keep');
    const saved = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { cgroups: Array<{ cgroup: string; progId: number; exceptions: string[] }> };
    expect(saved.cgroups.find((c) => c.cgroup === env.cgPath('unified', 'keep'))).toMatchObject({ progId: id, exceptions: LIBVIRT_LIST.split('\n') });

    expect(await env.stopDaemon()).toEqual({ code: 0, signal: null });
    // The program outlives the daemon.
    expect(await probe('unified', 'keep', ['null', 'tty'])).toEqual({ null: 'ok', tty: 'EPERM' });
    await env.restartDaemon();
    expect(programsOf('keep')).toEqual([id]);
    expect(await list('unified', 'keep')).toBe(LIBVIRT_LIST);
    expect(env.logLines().filter((l) => l.msg === 'serving').at(-1)?.deviceAcl).toMatchObject({ reattached: 0, failed: 0 });

    // Someone detaches it while the daemon is down: the next start puts it back.
    await env.stopDaemon();
    const progFd = bpfProgramFdById(id as number);
    const cgFd = fs.openSync(env.fsPath('unified', 'keep'), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      bpfDetachDeviceProgram(cgFd, progFd);
    } finally {
      fs.closeSync(cgFd);
      closeFd(progFd);
    }
    expect(programsOf('keep')).toEqual([]);
    expect(await probe('unified', 'keep', ['tty'])).not.toEqual({ tty: 'EPERM' });
    await env.restartDaemon();
    expect(env.logLines().filter((l) => l.msg === 'serving').at(-1)?.deviceAcl).toMatchObject({ reattached: 1, failed: 0 });
    expect(programsOf('keep')).toHaveLength(1);
    expect(await probe('unified', 'keep', LIBVIRT_OPENS)).toEqual(LIBVIRT_OUTCOME);

    ok(await env.dbusSend('Remove', 'ssi', ['unified', 'keep', 1]));
    const left = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { cgroups: Array<{ cgroup: string }> };
    expect(left.cgroups.map((c) => c.cgroup)).not.toContain(env.cgPath('unified', 'keep'));
    await call('Create', 'ss', ['unified', 'keep']);
    expect(await list('unified', 'keep')).toBe('a *:* rwm');
  });
});
