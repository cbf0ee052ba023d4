// cgm's command line without a daemon: usage, help, version, argument errors, exit
// statuses, and the error line when nothing listens.
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../client/cli/commands';
import { runCgm } from '../../../client/cli/program';
import { VERSION } from '../../../daemon/version';

const NO_SOCKET = path.join(os.tmpdir(), `cgm-no-daemon-${process.pid}`, 'sock');

async function cgm(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCgm(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: { CGMANAGER_SOCKET: NO_SOCKET },
  });
  return { code, stdout, stderr };
}

// Reference §10, in its order, with the arguments each takes.
const ORIGINAL: Array<[string, string[]]> = [
  ['ping', []],
  ['create', ['<controller>', '<cgroup>']],
  ['chown', ['<controller>', '<cgroup>', '<uid>', '<gid>']],
  ['chmod', ['<controller>', '<cgroup>', '<mode>']],
  ['chmodfile', ['<controller>', '<cgroup>', '<file>', '<mode>']],
  ['remove', ['<controller>', '<cgroup>', '[recursive]']],
  ['removeonempty', ['<controller>', '<cgroup>']],
  ['getpidcgroup', ['<controller>', '<pid>']],
  ['getpidcgroupabs', ['<controller>', '<pid>']],
  ['movepid', ['<controller>', '<cgroup>', '<pid>']],
  ['movepidabs', ['<controller>', '<cgroup>', '<pid>']],
  ['getvalue', ['<controller>', '<cgroup>', '<file>']],
  ['setvalue', ['<controller>', '<cgroup>', '<file>', '<value>']],
  ['gettasks', ['<controller>', '[cgroup]']],
  ['gettasksrecursive', ['<controller>', '[cgroup]']],
  ['listchildren', ['<controller>', '[cgroup]']],
  ['prune', ['<controller>', '[cgroup]']],
  ['listcontrollers', []],
  ['listkeys', ['<controller>', '[cgroup]']],
  ['apiversion', []],
];

describe('cgm command table', () => {
  it.each(ORIGINAL)('has %s with the original arguments', (name, args) => {
    const def = COMMANDS.find((c) => c.name === name);
    expect(def?.args).toEqual(args);
  });

  it('every command that prints data takes --json, the others do not', () => {
    const data = COMMANDS.filter((c) => c.printsData).map((c) => c.name);
    expect(data.sort()).toEqual(
      ['apiversion', 'create', 'getpidcgroup', 'getpidcgroupabs', 'gettasks', 'gettasksrecursive', 'getvalue', 'listchildren', 'listcontrollers', 'listkeys', 'remove', 'setup', 'stats', 'tree'].sort(),
    );
  });
});

describe('cgm without a daemon', () => {
  it.each([[[]], [['-h']], [['--help']]])('%j: usage on stdout, exit 1 (like the original)', async (argv) => {
    const r = await cgm(...argv);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^Usage: cgm \[--socket PATH\] <command> \[arguments\]/);
    for (const [name] of ORIGINAL) expect(r.stdout).toContain(`  ${name} `);
    expect(r.stdout).toContain('CGMANAGER_SOCKET');
    expect(r.stderr).toBe('');
  });

  it('--version prints the version and a newline, exit 0', async () => {
    expect(await cgm('--version')).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('help <command> shows its usage and output format, exit 0', async () => {
    const r = await cgm('help', 'listkeys');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: cgm listkeys [options] <controller> [cgroup]');
    expect(r.stdout).toContain('--json');
    expect(r.stdout).toContain('Output: One line per file');
  });

  it('<command> --help works too, exit 0', async () => {
    const r = await cgm('chown', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: cgm chown [options] <controller> <cgroup> <uid> <gid>');
  });

  it('unknown command: one line on stderr, nothing on stdout, exit 1', async () => {
    expect(await cgm('frobnicate', 'memory')).toEqual({ code: 1, stdout: '', stderr: 'cgm: unknown command: frobnicate; see cgm help\n' });
    const near = await cgm('gettask', 'memory');
    expect(near.stderr).toBe('cgm: unknown command: gettask (did you mean gettasks?); see cgm help\n');
  });

  it('help for an unknown command is an error: one line, exit 1', async () => {
    expect(await cgm('help', 'nosuch')).toEqual({ code: 1, stdout: '', stderr: 'cgm: help: unknown command: nosuch; see cgm help\n' });
    expect(await cgm('--socket', '/x', 'help', 'nosuch')).toMatchObject({ code: 1, stdout: '' });
  });

  it.each([[['--socket']], [['--socket=']], [['--socket', '--help']], [['--socket', '', 'ping']], [['ping', '--socket']]])('%j: --socket without a path is an error, exit 1', async (argv) => {
    expect(await cgm(...argv)).toEqual({ code: 1, stdout: '', stderr: "cgm: option '--socket <path>' needs a path\n" });
  });

  it.each<[string[], string]>([
    [['create', 'memory'], "cgm: create: missing required argument 'cgroup'\nusage: cgm create [--json] <controller> <cgroup>\n"],
    [['create', 'memory', 'a', 'b'], "cgm: create: too many arguments for 'create'. Expected 2 arguments but got 3.\nusage: cgm create [--json] <controller> <cgroup>\n"],
    [['chown', 'all', 'foo', '-1', '0'], 'cgm: chown all foo -1 0: bad uid -1: expected a decimal number\nusage: cgm chown <controller> <cgroup> <uid> <gid>\n'],
    [['chown', 'all', 'foo', '0', '2147483647'], 'cgm: chown all foo 0 2147483647: bad gid 2147483647: must be below 2147483647\nusage: cgm chown <controller> <cgroup> <uid> <gid>\n'],
    [['chmod', 'memory', 'foo', '0o755'], 'cgm: chmod memory foo 0o755: bad mode 0o755: expected an octal number such as 755\nusage: cgm chmod <controller> <cgroup> <mode>\n'],
    [['chmodfile', 'memory', 'foo', 'tasks', '9'], 'cgm: chmodfile memory foo tasks 9: bad mode 9: expected an octal number such as 755\nusage: cgm chmodfile <controller> <cgroup> <file> <mode>\n'],
    [['movepid', 'memory', 'foo', 'self'], 'cgm: movepid memory foo self: bad pid self: expected a decimal process id\nusage: cgm movepid <controller> <cgroup> <pid>\n'],
    [['getpidcgroup', 'memory', '0'], 'cgm: getpidcgroup memory 0: bad pid 0: out of range\nusage: cgm getpidcgroup [--json] <controller> <pid>\n'],
    [['tree', 'memory', '--depth', 'x'], 'cgm: tree memory: bad depth x: expected a number\nusage: cgm tree [--json] [--depth <n>] [controller] [cgroup]\n'],
  ])('%j is a usage error: exit 1, stderr only', async (argv, stderr) => {
    expect(await cgm(...argv)).toEqual({ code: 1, stdout: '', stderr });
  });

  it('nothing listening: one line naming the socket, exit 1, no stdout', async () => {
    const r = await cgm('create', 'memory', 'foo');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`cgm: create memory foo: cannot connect to cgmanager at ${NO_SOCKET}: no socket there (ENOENT); is the daemon running?\n`);
  });

  it('--socket overrides CGMANAGER_SOCKET, before or after the command', async () => {
    const before = await cgm('--socket', '/nonexistent/a', 'ping');
    expect(before.stderr).toContain('cgmanager at /nonexistent/a:');
    const after = await cgm('listcontrollers', '--socket', '/nonexistent/b');
    expect(after.stderr).toContain('cgmanager at /nonexistent/b:');
  });

  it('arguments that look like options are values (setvalue … -1)', async () => {
    const r = await cgm('setvalue', 'memory', 'foo', 'memory.limit_in_bytes', '-1');
    expect(r.stderr).toMatch(/^cgm: setvalue memory foo memory\.limit_in_bytes -1: cannot connect/);
  });

  it('ping, listcontrollers and apiversion ignore extra arguments as the original did', async () => {
    for (const name of ['ping', 'listcontrollers', 'apiversion']) {
      const r = await cgm(name, 'extra', 'args');
      expect(r.stderr).toContain('cannot connect');
    }
  });

  it('an empty cgroup argument is shown as \'\'', async () => {
    const r = await cgm('gettasks', 'memory', '');
    expect(r.stderr).toMatch(/^cgm: gettasks memory '': cannot connect/);
  });
});

describe('cgm with only global options', () => {
  it('--socket PATH alone prints the usage on stdout, exit 1', async () => {
    for (const argv of [['--socket', '/x'], ['--socket=/x'], ['--socket', '/x', '--help']]) {
      const r = await cgm(...argv);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^Usage: cgm/);
    }
  });
});

describe('cgm setup without a daemon', () => {
  it('collects repeated --limit and --pid, and refuses a bad one before connecting', async () => {
    const r = await cgm('setup', 'all', 'c1', '--limit', 'memory.max=1G', '--limit', 'nokey', '--pid', '1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad limit nokey: expected key=value/);
    // Well-formed: it gets as far as connecting (nothing listens here).
    const ok = await cgm('setup', 'all', 'c1', '--limit', 'memory.max=1G', '--limit', 'pids.max=5', '--pid', '1', '--owner', '1000:1000');
    expect(ok.code).toBe(1);
    expect(ok.stderr).not.toMatch(/bad|usage/);
  });
});
