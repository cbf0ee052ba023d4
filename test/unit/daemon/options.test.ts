import { CommanderError } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseOptions } from '../../../daemon/options';
import { LEGACY_SOCKET, UNIFIED_SOCKET } from '../../../daemon/socket-path';
import { VERSION } from '../../../daemon/version';

const ENV = { CGMANAGER_SOCKET: '/tmp/cgm-test/sock' };

/** Runs parseOptions expecting a CommanderError; returns it and what commander printed. */
function failure(argv: string[], env: NodeJS.ProcessEnv = ENV): { error: CommanderError; stderr: string; stdout: string } {
  let stderr = '';
  let stdout = '';
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  try {
    parseOptions(argv, env);
  } catch (e) {
    if (e instanceof CommanderError) return { error: e, stderr, stdout };
    throw e;
  } finally {
    err.mockRestore();
    out.mockRestore();
  }
  throw new Error(`parseOptions(${JSON.stringify(argv)}) did not fail`);
}

describe('parseOptions defaults', () => {
  it('gives the documented defaults', () => {
    expect(parseOptions([], ENV)).toEqual({
      socket: '/tmp/cgm-test/sock',
      mount: [],
      mountDir: '/run/cgmanager/fs',
      skip: [],
      maxDepth: 16,
      limits: { maxCgroupsPerUid: 4096, maxDepth: 16, maxWalk: 100_000, limitRoot: false, recountIntervalS: 600 },
      limitsFile: undefined,
      scmTimeoutMs: 5000,
      logLevel: 'info',
      logFile: undefined,
      maxConnectionsPerUid: 256,
      maxMessageSize: 1024 * 1024,
      maxPendingScm: 64,
      maxPendingScmPerUid: 256,
      handshakeTimeoutMs: 5000,
      maxQueuedOutput: 128 * 1024,
      allowAutoremovePremounted: [],
      autoremoveSetReleaseAgent: false,
      stateDir: '/tmp/cgm-test/cgmanager.state',
      mountPollMs: 1000,
      testCreatePauseMs: 0,
      testCheckPauseMs: 0,
      testCreateCheckPauseMs: 0,
    });
  });

  it('keeps state in /run/cgmanager for the default sockets, beside any other socket', () => {
    expect(parseOptions([], { CGMANAGER_SOCKET: '/sys/fs/cgroup/cgmanager/sock' }).stateDir).toBe('/run/cgmanager');
    expect(parseOptions(['--socket', '/run/cgmanager/sock'], {}).stateDir).toBe('/run/cgmanager');
    expect(parseOptions(['--socket', '/srv/x/sock'], {}).stateDir).toBe('/srv/x/cgmanager.state');
    expect(parseOptions(['--socket', '/srv/x/sock', '--state-dir', '/run/y'], {}).stateDir).toBe('/run/y');
  });

  it('takes the socket from CGMANAGER_SOCKET, and --socket over it', () => {
    expect(parseOptions([], { CGMANAGER_SOCKET: '/x/sock' }).socket).toBe('/x/sock');
    expect(parseOptions(['--socket', '/y/sock'], { CGMANAGER_SOCKET: '/x/sock' }).socket).toBe('/y/sock');
  });

  it('falls back to the layout-dependent default socket without CGMANAGER_SOCKET', () => {
    expect([LEGACY_SOCKET, UNIFIED_SOCKET]).toContain(parseOptions([], {}).socket);
  });

  it.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])('takes log level %s from CGMANAGER_LOG_LEVEL', (level) => {
    expect(parseOptions([], { ...ENV, CGMANAGER_LOG_LEVEL: level }).logLevel).toBe(level);
  });

  it('ignores an unknown CGMANAGER_LOG_LEVEL, and --log-level wins over the environment', () => {
    expect(parseOptions([], { ...ENV, CGMANAGER_LOG_LEVEL: 'loud' }).logLevel).toBe('info');
    expect(parseOptions(['--log-level', 'warn'], { ...ENV, CGMANAGER_LOG_LEVEL: 'debug' }).logLevel).toBe('warn');
  });

  it('does not read process.env when given an environment', () => {
    const saved = process.env.CGMANAGER_LOG_LEVEL;
    process.env.CGMANAGER_LOG_LEVEL = 'trace';
    try {
      expect(parseOptions([], ENV).logLevel).toBe('info');
    } finally {
      if (saved === undefined) delete process.env.CGMANAGER_LOG_LEVEL;
      else process.env.CGMANAGER_LOG_LEVEL = saved;
    }
  });
});

describe('parseOptions values', () => {
  it.each<[string[], Partial<ReturnType<typeof parseOptions>>]>([
    [['--max-depth', '1'], { maxDepth: 1 }],
    [['--max-depth', '1024'], { maxDepth: 1024 }],
    [['--max-depth=7'], { maxDepth: 7 }],
    [['--scm-timeout', '250'], { scmTimeoutMs: 250 }],
    [['--log-file', '/var/log/cgm.log'], { logFile: '/var/log/cgm.log' }],
    [['--max-connections-per-uid', '3'], { maxConnectionsPerUid: 3 }],
    [['--max-message-size', '4096'], { maxMessageSize: 4096 }],
    [['--max-pending-scm', '2'], { maxPendingScm: 2 }],
    [['--max-pending-scm-per-uid', '5'], { maxPendingScmPerUid: 5 }],
    [['--handshake-timeout', '250'], { handshakeTimeoutMs: 250 }],
    [['--max-queued-output', '65536'], { maxQueuedOutput: 65536 }],
    [['--mount-dir', '/run/x'], { mountDir: '/run/x' }],
    // -m: the last one counts, as in the original.
    [['-m', 'name=systemd'], { mount: ['name=systemd'] }],
    [['-m', 'name=a,name=b', '--mount', 'name=c'], { mount: ['name=c'] }],
    [['-m', ' name=a , ,name=b '], { mount: ['name=a', 'name=b'] }],
    // -M: accumulates.
    [['-M', 'memory'], { skip: ['memory'] }],
    [['-M', 'memory,cpu', '--skip', 'name=systemd', '-M', 'pids'], { skip: ['memory', 'cpu', 'name=systemd', 'pids'] }],
    [['--allow-autoremove-premounted', 'all'], { allowAutoremovePremounted: ['all'] }],
    [['--autoremove-premounted-set-release-agent'], { autoremoveSetReleaseAgent: true }],
    [['--mount-poll-interval', '0'], { mountPollMs: 0 }],
    [['--test-create-pause', '500'], { testCreatePauseMs: 500 }],
    [['--test-check-pause', '300'], { testCheckPauseMs: 300 }],
  ])('%j', (argv, expected) => {
    expect(parseOptions(argv, ENV)).toMatchObject(expected);
  });
});

describe('parseOptions errors throw CommanderError instead of exiting', () => {
  let exit: { mockRestore(): void };
  beforeEach(() => {
    exit = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`process.exit(${code}) called`);
    }) as never);
  });
  afterEach(() => exit.mockRestore());

  it.each<[string[], string, RegExp]>([
    [['--max-depth', 'abc'], 'commander.invalidArgument', /--max-depth.*'abc' is invalid\. not a number/],
    [['--max-depth', '0'], 'commander.invalidArgument', /must be between 1 and 1024/],
    [['--max-depth', '1025'], 'commander.invalidArgument', /must be between 1 and 1024/],
    [['--max-depth', '-1'], 'commander.invalidArgument', /not a number/],
    [['--max-depth', '1.5'], 'commander.invalidArgument', /not a number/],
    [['--max-depth', '99999999999999999999'], 'commander.invalidArgument', /must be between/],
    [['--scm-timeout', '5'], 'commander.invalidArgument', /must be between 10 and 600000/],
    [['--scm-timeout', '5s'], 'commander.invalidArgument', /not a number/],
    [['--log-level', 'loud'], 'commander.invalidArgument', /one of fatal, error, warn/],
    [['--max-message-size', '100'], 'commander.invalidArgument', /must be between 1024/],
    [['--max-depth'], 'commander.optionMissingArgument', /argument missing/],
    [['--bogus'], 'commander.unknownOption', /unknown option '--bogus'/],
    [['-x'], 'commander.unknownOption', /unknown option '-x'/],
    [['extra'], 'commander.excessArguments', /too many arguments/],
  ])('%j', (argv, code, message) => {
    const { error, stderr } = failure(argv);
    expect(error.code).toBe(code);
    expect(error.exitCode).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr).toContain('Usage: cgmanager');
    expect(exit).not.toHaveBeenCalled();
  });

  it('--help prints the help and throws with exit code 0', () => {
    const { error, stdout } = failure(['--help']);
    expect(error.exitCode).toBe(0);
    expect(stdout).toContain('--max-depth <n>');
    expect(stdout).toContain('--scm-timeout <ms>');
    expect(stdout).toContain('--state-dir <dir>');
    // The test-only pause stays out of the help.
    expect(stdout).not.toContain('test-create-pause');
  });

  it('--version prints the version and throws with exit code 0', () => {
    const { error, stdout } = failure(['--version']);
    expect(error.code).toBe('commander.version');
    expect(error.exitCode).toBe(0);
    expect(stdout.trim()).toBe(VERSION);
  });
});
