// Every cgm subcommand as a real process against the real daemon in a private cgroup
// layout (test/helpers): stdout byte for byte, stderr, exit status, and the kernel's
// own view after the call. Then the original's delegation pattern as root and uid 1000.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason, startTestDaemon, titled, type ClientOptions, type LongLived, type TestDaemon } from '../../helpers';
import { REPO_ROOT } from '../../helpers/requirements';
import { API_VERSION } from '../../../daemon/dbus/interface';

const CGM = path.join(REPO_ROOT, 'dist', 'client', 'cgm.js');
const LEAF = '.cgm_leaf';
const USER = 1000;
const UNLIMITED_V1 = '9223372036854771712';
const DBUS = 'org.freedesktop.DBus.Error.';

/** dist/client older than client/ would test old code: say so instead of failing oddly. */
function clientBuildProblem(): string | undefined {
  if (!fs.existsSync(CGM)) return `cgm is not built (${CGM}); run npx tsc -p tsconfig.json`;
  const built = fs.statSync(CGM).mtimeMs;
  const walk = (dir: string): string | undefined => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        const found = walk(p);
        if (found) return found;
      } else if (e.name.endsWith('.ts') && fs.statSync(p).mtimeMs > built) return p;
    }
    return undefined;
  };
  const stale = walk(path.join(REPO_ROOT, 'client'));
  return stale ? `dist/client is older than ${stale}; run npx tsc -p tsconfig.json` : undefined;
}

const reason = skipReason({ controllers: ['cpu', 'memory'], cgroup2: true, named: 1 }) ?? clientBuildProblem();

interface Cgm {
  code: number | null;
  stdout: string;
  stderr: string;
}

const read = (file: string): string => fs.readFileSync(file, 'utf8').replace(/\n+$/, '');
const owner = (file: string): string => {
  const st = fs.statSync(file);
  return `${st.uid}:${st.gid}`;
};

describe.skipIf(reason !== undefined)(titled('cgm against the real daemon', reason), () => {
  let env: TestDaemon;
  let N: string; // the private named hierarchy, e.g. name=cgmt_…
  let all: string[];
  const sleepers: LongLived[] = [];

  beforeAll(async () => {
    env = await startTestDaemon({
      named: 1,
      cgroup2: true,
      controllers: ['cpu', 'memory'],
      daemonArgs: (layout) => ['--allow-autoremove-premounted', layout.named[0] as string],
    });
    N = env.named[0] as string;
    all = [...env.labels];
  });

  afterAll(async () => {
    await env?.stop();
  });

  /** cgm as a client process placed in the test's base cgroups (relative names start there). */
  async function cgm(args: readonly string[], options: ClientOptions & { viaEnv?: boolean } = {}): Promise<Cgm> {
    const argv = options.viaEnv ? [process.execPath, CGM, ...args] : [process.execPath, CGM, '--socket', env.socket, ...args];
    const env2 = options.viaEnv ? { ...options.env, CGMANAGER_SOCKET: env.socket } : options.env;
    const r = await env.run(argv, { ...options, env: env2 });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  /** Success: exit 0, nothing on stderr; returns stdout. */
  async function ok(args: readonly string[], options?: ClientOptions & { viaEnv?: boolean }): Promise<string> {
    const r = await cgm(args, options);
    expect(r.stderr, `cgm ${args.join(' ')}`).toBe('');
    expect(r.code, `cgm ${args.join(' ')}`).toBe(0);
    return r.stdout;
  }

  /** Failure: exit 1, nothing on stdout, one line on stderr in cgm's format with the D-Bus name. */
  async function fails(args: readonly string[], dbusName: string, options?: ClientOptions): Promise<string> {
    const r = await cgm(args, options);
    expect(r.code, `cgm ${args.join(' ')}: ${r.stderr}`).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^cgm: ${escape(args[0] ?? '')} .*: .+ \\(${escape(dbusName)}\\)\\n$`));
    return r.stderr;
  }

  async function sleeper(options: ClientOptions = {}): Promise<LongLived> {
    const s = await env.spawn(['sleep', '600'], options);
    sleepers.push(s);
    return s;
  }

  describe('each subcommand', () => {
    it('ping prints nothing; apiversion prints the number', async () => {
      expect(await ok(['ping'])).toBe('');
      expect(await ok(['ping', 'ignored', 'args'])).toBe('');
      expect(await ok(['apiversion'])).toBe(`${API_VERSION}\n`);
      expect(JSON.parse(await ok(['apiversion', '--json']))).toEqual({ apiVersion: API_VERSION });
    });

    it('the socket can come from CGMANAGER_SOCKET', async () => {
      expect(await ok(['apiversion'], { viaEnv: true })).toBe(`${API_VERSION}\n`);
    });

    it('listcontrollers prints one hierarchy per line', async () => {
      const out = await ok(['listcontrollers']);
      const lines = out.split('\n').slice(0, -1);
      expect(out.endsWith('\n')).toBe(true);
      expect(lines.map((l) => l.split(',')[0]).sort()).toEqual([...all].sort());
      expect(JSON.parse(await ok(['listcontrollers', '--json']))).toEqual(lines);
    });

    it('create prints "Path existed" only when it existed; the kernel has the directory', async () => {
      expect(await ok(['create', N, 'c1'])).toBe('');
      expect(fs.statSync(env.fsPath(N, 'c1')).isDirectory()).toBe(true);
      expect(await ok(['create', N, 'c1'])).toBe('Path existed\n');
      expect(JSON.parse(await ok(['create', N, 'c1', '--json']))).toEqual({ existed: true });
      expect(JSON.parse(await ok(['create', '--json', 'all', 'c2']))).toEqual({ existed: false });
      for (const h of all) expect(fs.existsSync(env.fsPath(h, 'c2')), h).toBe(true);
      await fails(['create', 'nosuchcontroller', 'c1'], 'org.linuxcontainers.cgmanager.Error.NoSuchController');
      await fails(['create', N, '../escape'], `${DBUS}InvalidArgs`);
    });

    it('chown hands over the directory and the task files', async () => {
      await ok(['create', N, 'c3']);
      expect(await ok(['chown', N, 'c3', String(USER), '1001'])).toBe('');
      const dir = env.fsPath(N, 'c3');
      expect(owner(dir)).toBe('1000:1001');
      expect(owner(path.join(dir, 'tasks'))).toBe('1000:1001');
      expect(owner(path.join(dir, 'cgroup.procs'))).toBe('1000:1001');
      expect(owner(path.join(dir, 'notify_on_release'))).toBe('0:0');
      await fails(['chown', N, 'nonexistent', '1', '1'], `${DBUS}FileNotFound`);
    });

    it('chmod and chmodfile take octal modes', async () => {
      await ok(['create', N, 'c4']);
      expect(await ok(['chmod', N, 'c4', '750'])).toBe('');
      expect(fs.statSync(env.fsPath(N, 'c4')).mode & 0o7777).toBe(0o750);
      expect(await ok(['chmodfile', N, 'c4', 'tasks', '0664'])).toBe('');
      expect(fs.statSync(env.fsPath(N, 'c4', 'tasks')).mode & 0o7777).toBe(0o664);
      await fails(['chmodfile', N, 'c4', 'nosuchfile', '644'], `${DBUS}FileNotFound`);
    });

    it('listkeys prints name uid gid octal-mode for every file, as the kernel has them', async () => {
      const out = await ok(['listkeys', N, 'c3']);
      const dir = env.fsPath(N, 'c3');
      const expected = fs
        .readdirSync(dir)
        .filter((f) => fs.statSync(path.join(dir, f)).isFile())
        .map((f) => {
          const st = fs.statSync(path.join(dir, f));
          return `${f} ${st.uid} ${st.gid} ${st.mode.toString(8)}`;
        });
      expect(out.endsWith('\n')).toBe(true);
      expect(out.split('\n').slice(0, -1).sort()).toEqual(expected.sort());
      expect(out).toContain('\ntasks 1000 1001 100644\n');
      const json = JSON.parse(await ok(['listkeys', N, 'c3', '--json'])) as Array<{ name: string; uid: number; gid: number; mode: number; modeOctal: string }>;
      expect(json.map((k) => `${k.name} ${k.uid} ${k.gid} ${k.modeOctal}`).sort()).toEqual(expected.sort());
      for (const k of json) expect(k.mode.toString(8)).toBe(k.modeOctal);
      await fails(['listkeys', N, 'nonexistent'], `${DBUS}FileNotFound`);
    });

    it('setvalue and getvalue, v1 and v2, including a value that looks like an option', async () => {
      await ok(['create', 'all', 'v']);
      expect(await ok(['setvalue', 'memory', 'v', 'memory.limit_in_bytes', '104857600'])).toBe('');
      expect(read(env.fsPath('memory', 'v', 'memory.limit_in_bytes'))).toBe('104857600');
      expect(await ok(['getvalue', 'memory', 'v', 'memory.limit_in_bytes'])).toBe('104857600\n');
      expect(await ok(['setvalue', 'memory', 'v', 'memory.limit_in_bytes', '-1'])).toBe('');
      expect(read(env.fsPath('memory', 'v', 'memory.limit_in_bytes'))).toBe(UNLIMITED_V1);
      expect(await ok(['setvalue', 'cpu', 'v', 'cpu.shares', '512'])).toBe('');
      expect(read(env.fsPath('cpu', 'v', 'cpu.shares'))).toBe('512');
      expect(JSON.parse(await ok(['getvalue', '--json', 'cpu', 'v', 'cpu.shares']))).toEqual({ value: '512' });
      expect(await ok(['setvalue', 'unified', 'v', 'cgroup.max.descendants', '7'])).toBe('');
      expect(read(env.fsPath('unified', 'v', 'cgroup.max.descendants'))).toBe('7');
      expect(await ok(['getvalue', 'unified', 'v', 'cgroup.max.descendants'])).toBe('7\n');
      // Multi-line values come back with their inner newlines and one final newline.
      expect(await ok(['getvalue', 'cpu', 'v', 'cpu.stat'])).toBe(`${read(env.fsPath('cpu', 'v', 'cpu.stat'))}\n`);
      await fails(['setvalue', 'cpu', 'v', 'cpu.shares', 'lots'], `${DBUS}InvalidArgs`);
      expect(read(env.fsPath('cpu', 'v', 'cpu.shares'))).toBe('512');
      await fails(['getvalue', 'cpu', 'v', 'no.such.key'], `${DBUS}FileNotFound`);
    });

    it('movepid, movepidabs, getpidcgroup(abs), gettasks(recursive), listchildren', async () => {
      const victim = await sleeper();
      await ok(['create', 'all', 'm/inner']);
      expect(await ok(['movepid', 'all', 'm', String(victim.pid)])).toBe('');
      for (const h of all) {
        expect(env.cgroupOf(victim.pid, h), h).toBe(h === 'unified' ? env.cgPath(h, `m/${LEAF}`) : env.cgPath(h, 'm'));
      }
      expect(await ok(['getpidcgroup', N, String(victim.pid)])).toBe('m\n');
      expect(await ok(['getpidcgroup', 'unified', String(victim.pid)])).toBe('m\n');
      expect(JSON.parse(await ok(['getpidcgroup', '--json', 'memory', String(victim.pid)]))).toEqual({ cgroup: 'm' });
      expect(await ok(['getpidcgroupabs', 'memory', String(victim.pid)])).toBe(`${env.cgPath('memory', 'm')}\n`);
      expect(await ok(['gettasks', N, 'm'])).toBe(`${victim.pid}\n`);
      expect(JSON.parse(await ok(['gettasks', N, 'm', '--json']))).toEqual([victim.pid]);
      expect(await ok(['gettasks', N, 'm/inner'])).toBe('');

      expect(await ok(['movepidabs', 'cpu', env.cgPath('cpu', 'm/inner'), String(victim.pid)])).toBe('');
      expect(env.cgroupOf(victim.pid, 'cpu')).toBe(env.cgPath('cpu', 'm/inner'));
      expect(await ok(['getpidcgroup', 'cpu', String(victim.pid)])).toBe('m/inner\n');

      const second = await sleeper({ at: 'm' });
      const recursive = await ok(['gettasksrecursive', 'cpu', 'm']);
      expect(recursive).toBe(`${[victim.pid, second.pid].sort((a, b) => a - b).join('\n')}\n`);
      expect(JSON.parse(await ok(['gettasksrecursive', 'cpu', 'm', '--json']))).toEqual([victim.pid, second.pid].sort((a, b) => a - b));

      expect(await ok(['listchildren', 'unified', 'm'])).toBe('inner\n');
      expect(JSON.parse(await ok(['listchildren', 'unified', 'm', '--json']))).toEqual(['inner']);
      const top = (await ok(['listchildren', N])).split('\n').slice(0, -1).sort();
      expect(top).toEqual(fs.readdirSync(env.fsPath(N)).filter((f) => fs.statSync(env.fsPath(N, f)).isDirectory()).sort());

      await fails(['movepid', N, 'm', '2147483647'], `${DBUS}UnixProcessIdUnknown`);
      await fails(['getpidcgroup', N, '2147483647'], `${DBUS}UnixProcessIdUnknown`);
      await fails(['gettasks', N, 'nonexistent'], `${DBUS}FileNotFound`);
      await fails(['listchildren', N, 'nonexistent'], `${DBUS}FileNotFound`);

      // Busy cgroups cannot be removed, and that is a failure with a named error.
      await fails(['remove', 'cpu', 'm/inner'], 'org.linuxcontainers.cgmanager.Error.Busy');
      await victim.stop();
      await second.stop();
    });

    it('remove is recursive unless the last argument is 0, and says when there was nothing', async () => {
      await ok(['create', N, 'r/a/b']);
      const stderr = await fails(['remove', N, 'r', '0'], 'org.linuxcontainers.cgmanager.Error.NotEmpty');
      expect(stderr).toMatch(/^cgm: remove name=\S+ r 0: /);
      expect(fs.existsSync(env.fsPath(N, 'r'))).toBe(true);
      expect(await ok(['remove', N, 'r/a/b', '0'])).toBe('');
      expect(fs.existsSync(env.fsPath(N, 'r/a/b'))).toBe(false);
      expect(await ok(['remove', N, 'r'])).toBe('');
      expect(fs.existsSync(env.fsPath(N, 'r'))).toBe(false);
      expect(await ok(['remove', N, 'r'])).toBe('Path did not exist\n');
      expect(JSON.parse(await ok(['remove', N, 'r', '--json']))).toEqual({ existed: false });
      await ok(['create', N, 'r2/x']);
      expect(JSON.parse(await ok(['remove', N, 'r2', '1', '--json']))).toEqual({ existed: true });
    });

    it('removeonempty sets notify_on_release (v1) and prune removes empty subtrees', async () => {
      await ok(['create', N, 'p/a/b']);
      expect(await ok(['removeonempty', N, 'p/a'])).toBe('');
      expect(read(env.fsPath(N, 'p/a', 'notify_on_release'))).toBe('1');
      await fails(['removeonempty', 'cpu', 'c2'], `${DBUS}NotSupported`);
      expect(await ok(['prune', N, 'p'])).toBe('');
      expect(fs.existsSync(env.fsPath(N, 'p/a'))).toBe(false);
      await fails(['prune', N, 'nonexistent'], `${DBUS}FileNotFound`);
    });

    it('usage errors: exit 1, message and usage on stderr, nothing on stdout', async () => {
      const r = await cgm(['chown', N, 'x', 'root', '0']);
      expect(r).toEqual({ code: 1, stdout: '', stderr: `cgm: chown ${N} x root 0: bad uid root: expected a decimal number\nusage: cgm chown <controller> <cgroup> <uid> <gid>\n` });
      const none = await cgm([]);
      expect(none.code).toBe(1);
      expect(none.stdout).toMatch(/^Usage: cgm/);
    });
  });

  describe('cgm tree', () => {
    it('draws a small known tree with owners, task counts and limits', async () => {
      await ok(['create', 'memory', 't/a/c']);
      await ok(['create', 'memory', 't/b']);
      await ok(['chown', 'memory', 't/a', String(USER), String(USER)]);
      await ok(['setvalue', 'memory', 't/a', 'memory.limit_in_bytes', '104857600']);
      const s = await sleeper({ at: { memory: 't/b' } });
      const out = await ok(['tree', 'memory', 't']);
      expect(out).toBe(
        [
          'memory     OWNER      TASKS  LIMITS',
          `t          0:0            0  memory.limit_in_bytes=${UNLIMITED_V1}`,
          '├── a      1000:1000      0  memory.limit_in_bytes=104857600',
          `│   └── c  0:0            0  memory.limit_in_bytes=${UNLIMITED_V1}`,
          `└── b      0:0            1  memory.limit_in_bytes=${UNLIMITED_V1}`,
          '',
        ].join('\n'),
      );
      const [tree] = JSON.parse(await ok(['tree', '--json', 'memory', 't'])) as Array<{ hierarchy: string; root: Record<string, unknown> }>;
      expect(tree?.hierarchy).toBe('memory');
      expect(tree?.root).toMatchObject({
        name: 't',
        cgroup: 't',
        owner: { uid: 0, gid: 0 },
        tasks: 0,
        limits: { 'memory.limit_in_bytes': UNLIMITED_V1 },
        children: [
          { name: 'a', cgroup: 't/a', owner: { uid: 1000, gid: 1000 }, tasks: 0, limits: { 'memory.limit_in_bytes': '104857600' }, children: [{ name: 'c', cgroup: 't/a/c' }] },
          { name: 'b', cgroup: 't/b', tasks: 1, children: [] },
        ],
      });
      expect(await ok(['tree', '--depth', '0', 'memory', 't'])).toBe(`memory  OWNER  TASKS  LIMITS\nt       0:0        0  memory.limit_in_bytes=${UNLIMITED_V1} [+2 below]\n`);
      await s.stop();
    });

    it('without a controller draws every hierarchy', async () => {
      const out = await ok(['tree']);
      const headers = out.split('\n').filter((l) => / OWNER +TASKS +LIMITS$/.test(l)).map((l) => l.split(' ')[0]?.split(',')[0]);
      expect(headers.sort()).toEqual([...all].sort());
      const json = JSON.parse(await ok(['tree', '--json'])) as Array<{ controller: string }>;
      expect(json.map((t) => t.controller).sort()).toEqual([...all].sort());
    });

    it('a root that does not exist fails', async () => {
      await fails(['tree', 'memory', 'nonexistent'], `${DBUS}FileNotFound`);
    });
  });

  describe('the original delegation pattern, as root then as uid 1000', () => {
    it('create all foo; chown all foo; movepid all foo; setvalue on foo/child', async () => {
      // As root.
      expect(await ok(['create', 'all', 'foo'])).toBe('');
      expect(await ok(['chown', 'all', 'foo', String(USER), String(USER)])).toBe('');
      for (const h of all) expect(owner(env.fsPath(h, 'foo')), h).toBe('1000:1000');

      // As uid 1000: move its own process in, make a child, limit the child.
      const as = { uid: USER, gid: USER };
      const victim = await sleeper(as);
      expect(await ok(['movepid', 'all', 'foo', String(victim.pid)], as)).toBe('');
      for (const h of all) {
        expect(env.cgroupOf(victim.pid, h), h).toBe(h === 'unified' ? env.cgPath(h, `foo/${LEAF}`) : env.cgPath(h, 'foo'));
      }
      expect(await ok(['create', 'all', 'foo/child'], as)).toBe('');
      for (const h of all) expect(owner(env.fsPath(h, 'foo/child')), h).toBe('1000:1000');
      expect(await ok(['setvalue', 'memory', 'foo/child', 'memory.limit_in_bytes', '52428800'], as)).toBe('');
      expect(read(env.fsPath('memory', 'foo/child', 'memory.limit_in_bytes'))).toBe('52428800');
      expect(await ok(['setvalue', 'cpu', 'foo/child', 'cpu.shares', '256'], as)).toBe('');
      expect(read(env.fsPath('cpu', 'foo/child', 'cpu.shares'))).toBe('256');
      expect(await ok(['movepid', 'all', 'foo/child', String(victim.pid)], as)).toBe('');
      expect(env.cgroupOf(victim.pid, 'memory')).toBe(env.cgPath('memory', 'foo/child'));
      expect(await ok(['gettasks', 'memory', 'foo/child'], as)).toBe(`${victim.pid}\n`);
      expect(await ok(['create', 'memory', 'foo'], as)).toBe('Path existed\n');

      // Refused for uid 1000 on foo itself: its limits, its ownership, its removal.
      const denied = `${DBUS}AccessDenied`;
      const before = read(env.fsPath('memory', 'foo', 'memory.limit_in_bytes'));
      const e1 = await fails(['setvalue', 'memory', 'foo', 'memory.limit_in_bytes', '1048576'], denied, as);
      expect(e1).toMatch(/^cgm: setvalue memory foo memory\.limit_in_bytes 1048576: .*memory\.limit_in_bytes/);
      expect(read(env.fsPath('memory', 'foo', 'memory.limit_in_bytes'))).toBe(before);
      await fails(['chmodfile', 'memory', 'foo', 'memory.limit_in_bytes', '666'], denied, as);
      await fails(['chown', 'all', 'foo', String(USER), String(USER)], denied, as);
      await fails(['remove', 'all', 'foo'], denied, as);
      for (const h of all) expect(fs.existsSync(env.fsPath(h, 'foo')), h).toBe(true);
      // Nor may it create next to foo, in the root-owned base.
      await fails(['create', 'memory', 'bar'], denied, as);
      expect(fs.existsSync(env.fsPath('memory', 'bar'))).toBe(false);

      // Root cleans up once the task is gone.
      await victim.stop();
      expect(await ok(['remove', 'all', 'foo'])).toBe('');
      for (const h of all) expect(fs.existsSync(env.fsPath(h, 'foo')), h).toBe(false);
    });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
