import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CgmError, codeForErrno, ERROR_CATALOG, ERROR_NAMES, errorFromErrno, type ErrorCode } from '../../../daemon/errors';

const CODES = Object.keys(ERROR_CATALOG) as ErrorCode[];
const STANDARD = 'org.freedesktop.DBus.Error.';
const OURS = 'org.linuxcontainers.cgmanager.Error.';
// SPEC §2.1: the standard names where they fit; ours only for what has no standard name.
const STANDARD_CODES = new Set([
  'AccessDenied', 'InvalidArgs', 'FileNotFound', 'UnixProcessIdUnknown', 'LimitsExceeded', 'Timeout',
  'NotSupported', 'Failed', 'UnknownMethod', 'UnknownObject', 'UnknownProperty', 'PropertyReadOnly',
]);

describe('ERROR_CATALOG', () => {
  it.each(CODES)('%s has a D-Bus name in the right namespace, ending in its code', (code) => {
    const { name, when } = ERROR_CATALOG[code];
    expect(name).toBe((STANDARD_CODES.has(code) ? STANDARD : OURS) + code);
    // D-Bus error names follow interface-name rules: dot-separated elements of [A-Za-z0-9_], none starting with a digit.
    expect(name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$/);
    expect(name.length).toBeLessThanOrEqual(255);
    expect(when.length).toBeGreaterThan(0);
  });

  it('has the names SPEC §2.1 asks for', () => {
    for (const code of ['AccessDenied', 'InvalidArgs', 'FileNotFound', 'UnixProcessIdUnknown', 'LimitsExceeded', 'Timeout', 'NotSupported', 'Failed', 'Busy', 'NoSuchController', 'NotEmpty']) {
      expect(CODES).toContain(code);
    }
  });

  it('has unique names', () => {
    const names = CODES.map((c) => ERROR_CATALOG[c].name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('ERROR_NAMES maps every name back to its code', () => {
    expect(ERROR_NAMES.size).toBe(CODES.length);
    for (const code of CODES) expect(ERROR_NAMES.get(ERROR_CATALOG[code].name)).toBe(code);
    expect(ERROR_NAMES.get('org.freedesktop.DBus.Error.NoMemory')).toBeUndefined();
  });
});

describe('CgmError', () => {
  it('carries its code, D-Bus name and message', () => {
    const e = new CgmError('NotEmpty', 'memory:lxc/c1 still has child cgroups');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('CgmError');
    expect(e.code).toBe('NotEmpty');
    expect(e.dbusName).toBe('org.linuxcontainers.cgmanager.Error.NotEmpty');
    expect(e.message).toBe('memory:lxc/c1 still has child cgroups');
  });
});

describe('errno mapping', () => {
  it.each<[string | undefined, ErrorCode]>([
    ['ENOENT', 'FileNotFound'],
    ['ENOTDIR', 'FileNotFound'],
    ['EACCES', 'AccessDenied'],
    ['EPERM', 'AccessDenied'],
    ['EROFS', 'AccessDenied'],
    ['EBUSY', 'Busy'],
    ['ENOTEMPTY', 'NotEmpty'],
    ['EINVAL', 'InvalidArgs'],
    ['ERANGE', 'InvalidArgs'],
    ['ENAMETOOLONG', 'InvalidArgs'],
    ['EOPNOTSUPP', 'NotSupported'],
    ['ENOTSUP', 'NotSupported'],
    ['ESRCH', 'UnixProcessIdUnknown'],
    ['EAGAIN', 'LimitsExceeded'],
    ['ENOSPC', 'LimitsExceeded'],
    ['EMFILE', 'LimitsExceeded'],
    ['ETIMEDOUT', 'Timeout'],
    ['EIO', 'Failed'],
    ['EEXIST', 'Failed'],
    ['ENOTAREALERRNO', 'Failed'],
    ['', 'Failed'],
    [undefined, 'Failed'],
    ['constructor', 'Failed'],
    ['__proto__', 'Failed'],
  ])('%s -> %s', (errno, code) => {
    expect(codeForErrno(errno)).toBe(code);
  });
});

describe('errorFromErrno', () => {
  const sysError = (code: string, message = `${code}: some libc text`): NodeJS.ErrnoException => Object.assign(new Error(message), { code });

  it.each<[string, ErrorCode, string]>([
    ['ENOENT', 'FileNotFound', 'cgroup memory:lxc/c1: does not exist (ENOENT)'],
    ['EACCES', 'AccessDenied', 'cgroup memory:lxc/c1: permission denied (EACCES)'],
    ['EPERM', 'AccessDenied', 'cgroup memory:lxc/c1: operation not permitted (EPERM)'],
    ['EBUSY', 'Busy', 'cgroup memory:lxc/c1: still has tasks (EBUSY)'],
    ['ENOTEMPTY', 'NotEmpty', 'cgroup memory:lxc/c1: still has child cgroups (ENOTEMPTY)'],
    ['EINVAL', 'InvalidArgs', 'cgroup memory:lxc/c1: the kernel refused the value (EINVAL)'],
    ['ESRCH', 'UnixProcessIdUnknown', 'cgroup memory:lxc/c1: no such process (ESRCH)'],
    ['EAGAIN', 'LimitsExceeded', 'cgroup memory:lxc/c1: a cgroup limit was reached (EAGAIN)'],
    ['EIO', 'Failed', 'cgroup memory:lxc/c1: system error (EIO)'],
  ])('%s names the object and the errno', (errno, code, message) => {
    const e = errorFromErrno(sysError(errno), 'cgroup memory:lxc/c1');
    expect(e).toBeInstanceOf(CgmError);
    expect(e.code).toBe(code);
    expect(e.dbusName).toBe(ERROR_CATALOG[code].name);
    expect(e.message).toBe(message);
  });

  it('never copies a stack into the message', () => {
    const e = errorFromErrno(sysError('EIO'), 'key memory.max of memory:a');
    expect(e.message).not.toMatch(/\n\s+at /);
  });

  it('keeps a CgmError as it is', () => {
    const original = new CgmError('NoSuchController', 'no hierarchy for controller foo');
    expect(errorFromErrno(original, 'whatever')).toBe(original);
  });

  it('uses the message of an error without errno code', () => {
    const e = errorFromErrno(new Error('weird'), 'cgroup cpu:x');
    expect(e.code).toBe('Failed');
    expect(e.message).toBe('cgroup cpu:x: weird');
  });

  it('accepts a thrown non-error', () => {
    expect(errorFromErrno('text', 'cgroup cpu:x').message).toBe('cgroup cpu:x: text');
    expect(errorFromErrno(undefined, 'cgroup cpu:x').code).toBe('Failed');
  });
});

describe('the README error table', () => {
  const readmePath = path.resolve(__dirname, '../../../README.md');
  const START = '<!-- error-catalog:start -->';
  const END = '<!-- error-catalog:end -->';

  /** Rows `| <code> | `<dbus name>` | <when> |` between the markers; header and separator rows skipped. */
  function readTable(text: string): Array<{ code: string; name: string; when: string }> {
    const lines = text.split('\n').map((l) => l.trim());
    const start = lines.indexOf(START);
    const end = lines.indexOf(END);
    if (start < 0 || end < 0 || end < start) {
      throw new Error(`README.md must hold the error catalog table between the lines "${START}" and "${END}" (see daemon/errors.ts)`);
    }
    const tableLines = lines.slice(start + 1, end).filter((l) => l.startsWith('|'));
    if (tableLines.length < 2) throw new Error('the error catalog table in README.md has no header and separator rows');
    if (!/^\|(?:\s*:?-+:?\s*\|)+$/.test(tableLines[1]!)) throw new Error(`second table line is not a separator row: ${tableLines[1]}`);
    return tableLines.slice(2).map((line) => {
      const m = /^\|\s*([A-Za-z]+)\s*\|\s*`([^`]+)`\s*\|(.*)\|$/.exec(line);
      if (!m) throw new Error(`README error table row not in the form | Code | \`name\` | when |: ${line}`);
      return { code: m[1]!, name: m[2]!, when: m[3]!.trim() };
    });
  }

  it('lists exactly the codes and names of ERROR_CATALOG', () => {
    if (!fs.existsSync(readmePath)) throw new Error(`README.md not found at ${readmePath}; it must hold the error catalog table between "${START}" and "${END}"`);
    const rows = readTable(fs.readFileSync(readmePath, 'utf8'));
    const fromReadme = rows.map((r) => `${r.code} ${r.name}`).sort();
    const fromCode = CODES.map((c) => `${c} ${ERROR_CATALOG[c].name}`).sort();
    expect(fromReadme).toEqual(fromCode);
    expect(new Set(rows.map((r) => r.code)).size, 'each code once').toBe(rows.length);
    for (const r of rows) expect(r.when, `${r.code} says when it happens`).not.toBe('');
  });

  it('the table reader accepts the documented form and refuses others', () => {
    const good = [START, '| Code | D-Bus name | When |', '|---|---|---|', '| Busy | `org.linuxcontainers.cgmanager.Error.Busy` | the cgroup still has tasks |', END].join('\n');
    expect(readTable(`# x\n${good}\nmore`)).toEqual([{ code: 'Busy', name: 'org.linuxcontainers.cgmanager.Error.Busy', when: 'the cgroup still has tasks' }]);
    expect(() => readTable('# no markers')).toThrow(/error-catalog:start/);
    expect(() => readTable(good.replace('`org.linuxcontainers.cgmanager.Error.Busy`', 'org.linuxcontainers.cgmanager.Error.Busy'))).toThrow(/not in the form/);
  });
});
