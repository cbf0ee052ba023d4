import { describe, expect, it } from 'vitest';
import { CgmError, type ErrorCode } from '../../../daemon/errors';
import {
  MAX_NAME_BYTES,
  MAX_VALUE_BYTES,
  assertChmodFile,
  assertIdArg,
  assertKey,
  assertMode,
  assertPid,
  assertSettableKey,
  assertValue,
  quoteArg,
} from '../../../daemon/policy';

/** Runs a throwing validator; returns 'ok' or the code and message of the CgmError it threw. */
function outcome(validate: () => void): 'ok' | { code: ErrorCode; message: string } {
  try {
    validate();
    return 'ok';
  } catch (err) {
    if (!(err instanceof CgmError)) throw err;
    return { code: err.code, message: err.message };
  }
}

function expectRejected(validate: () => void, code: ErrorCode, messagePart: string): void {
  const result = outcome(validate);
  expect(result).not.toBe('ok');
  if (result === 'ok') return;
  expect(result.code).toBe(code);
  expect(result.message).toContain(messagePart);
}

const LONGEST_NAME = 'k'.repeat(MAX_NAME_BYTES);
const TOO_LONG_NAME = 'k'.repeat(MAX_NAME_BYTES + 1);

describe('assertKey (SPEC §2.2)', () => {
  it.each([
    'memory.limit_in_bytes',
    'memory.max',
    'cpu.weight',
    'tasks',
    'cgroup.procs',
    'release_agent',
    '.hidden',
    'a..b',
    'a\\b',
    LONGEST_NAME,
    'é'.repeat(127),
  ])('accepts %j', (key) => {
    expect(outcome(() => assertKey(key))).toBe('ok');
  });

  it.each<[string, string]>([
    ['', 'key must not be empty'],
    ['/', "without '/'"],
    ['a/b', "without '/'"],
    ['/memory.max', "without '/'"],
    ['memory.max/', "without '/'"],
    ['../etc/passwd', "without '/'"],
    ['.', "not '.' or '..'"],
    ['..', "not '.' or '..'"],
    ['\0', 'NUL byte'],
    ['memory.max\0', 'NUL byte'],
    [TOO_LONG_NAME, `longer than ${MAX_NAME_BYTES} bytes`],
    ['é'.repeat(128), `longer than ${MAX_NAME_BYTES} bytes`],
  ])('refuses %j', (key, messagePart) => {
    expectRejected(() => assertKey(key), 'InvalidArgs', messagePart);
  });

  it('names the argument and quotes it', () => {
    expect(outcome(() => assertKey('a/b'))).toEqual({
      code: 'InvalidArgs',
      message: `key "a/b" must be a single file name, without '/'`,
    });
  });
});

describe('assertSettableKey (SPEC §2.2)', () => {
  it.each(['memory.max', 'memory.limit_in_bytes', 'cpu.shares', 'pids.max', 'cgroup.subtree_control', 'tasks.x', 'Tasks'])(
    'accepts %j',
    (key) => {
      expect(outcome(() => assertSettableKey(key))).toBe('ok');
    },
  );

  it.each<[string, string]>([
    ['tasks', 'use MovePid'],
    ['cgroup.procs', 'use MovePid'],
    ['cgroup.threads', 'use MovePid'],
    ['release_agent', 'managed by the daemon'],
    ['notify_on_release', 'use RemoveOnEmpty'],
    ['', 'key must not be empty'],
    ['../tasks', "without '/'"],
    ['..', "not '.' or '..'"],
    ['x\0', 'NUL byte'],
  ])('refuses %j', (key, messagePart) => {
    expectRejected(() => assertSettableKey(key), 'InvalidArgs', messagePart);
  });
});

describe('assertChmodFile (reference §5.7)', () => {
  it.each(['', 'tasks', 'cgroup.procs', 'memory.max', '.x', 'a..b', LONGEST_NAME])('accepts %j', (file) => {
    expect(outcome(() => assertChmodFile(file))).toBe('ok');
  });

  it.each<[string, string]>([
    ['/', "without '/'"],
    ['a/b', "without '/'"],
    ['../x', "without '/'"],
    ['a\\b', "must not contain '\\'"],
    ['\\', "must not contain '\\'"],
    ['.', "not '.' or '..'"],
    ['..', "not '.' or '..'"],
    ['a\0', 'NUL byte'],
    [TOO_LONG_NAME, `longer than ${MAX_NAME_BYTES} bytes`],
  ])('refuses %j', (file, messagePart) => {
    expectRejected(() => assertChmodFile(file), 'InvalidArgs', messagePart);
  });
});

describe('assertPid', () => {
  it.each([1, 2, 4194304, 2 ** 31 - 1])('accepts %d', (pid) => {
    expect(outcome(() => assertPid(pid))).toBe('ok');
  });

  it.each([0, -1, -(2 ** 31), 2 ** 31, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses %d', (pid) => {
    expectRejected(() => assertPid(pid), 'InvalidArgs', 'is not a valid process id');
  });
});

describe('assertIdArg (reference §5.6)', () => {
  it.each<[number, 'uid' | 'gid']>([
    [0, 'uid'],
    [1000, 'uid'],
    [100000, 'gid'],
    [-1, 'uid'],
    [-1, 'gid'],
    [2 ** 31 - 1, 'gid'],
  ])('accepts %d as %s', (id, what) => {
    expect(outcome(() => assertIdArg(id, what))).toBe('ok');
  });

  it.each<[number, 'uid' | 'gid']>([
    [-2, 'uid'],
    [-(2 ** 31), 'gid'],
    [2 ** 31, 'uid'],
    [0.5, 'gid'],
    [Number.NaN, 'uid'],
  ])('refuses %d as %s', (id, what) => {
    expectRejected(() => assertIdArg(id, what), 'InvalidArgs', `${what} ${id} is not a valid id`);
  });
});

describe('assertValue', () => {
  it.each<[string, string]>([
    ['empty', ''],
    ['a limit', '100000'],
    ['with newline', 'max\n'],
    ['multi-line', '8:0 rbps=1048576\n8:16 wbps=max\n'],
    ['exactly the limit', 'x'.repeat(MAX_VALUE_BYTES)],
  ])('accepts %s', (_name, value) => {
    expect(outcome(() => assertValue(value))).toBe('ok');
  });

  it.each<[string, string, ErrorCode, string]>([
    ['a NUL byte', '100\u00000', 'InvalidArgs', 'NUL byte'],
    ['a lone NUL', '\0', 'InvalidArgs', 'NUL byte'],
    ['one byte too long', 'x'.repeat(MAX_VALUE_BYTES + 1), 'LimitsExceeded', `more than the limit of ${MAX_VALUE_BYTES}`],
    ['too long in bytes, not characters', 'é'.repeat(MAX_VALUE_BYTES / 2 + 1), 'LimitsExceeded', 'value is 65538 bytes'],
  ])('refuses %s', (_name, value, code, messagePart) => {
    expectRejected(() => assertValue(value), code, messagePart);
  });
});

describe('assertMode', () => {
  it.each([0, 0o644, 0o755, 0o1777, 0o4755, 0o7777])('accepts %o', (mode) => {
    expect(outcome(() => assertMode(mode))).toBe('ok');
  });

  it.each<[number, string]>([
    [-1, 'mode -1 is not'],
    [0o10000, 'mode 4096 (010000) is not'],
    [0o100644, '(0100644)'],
    [1.5, 'mode 1.5 is not'],
    [Number.NaN, 'mode NaN is not'],
  ])('refuses %d', (mode, messagePart) => {
    expectRejected(() => assertMode(mode), 'InvalidArgs', messagePart);
  });
});

describe('quoteArg', () => {
  it.each<[string, string]>([
    ['abc', '"abc"'],
    ['a\0b', '"a\\u0000b"'],
    ['line\nbreak', '"line\\nbreak"'],
    ['x'.repeat(81), `"${'x'.repeat(80)}…"`],
  ])('%j is shown as %s', (arg, shown) => {
    expect(quoteArg(arg)).toBe(shown);
  });
});
