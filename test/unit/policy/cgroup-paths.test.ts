import { describe, expect, it } from 'vitest';
import { CgmError } from '../../../daemon/errors';
import {
  DEFAULT_MAX_DEPTH,
  MAX_CGROUP_ARG_BYTES,
  chopProxySuffix,
  depthOf,
  hasDotDot,
  isUnder,
  joinCgroup,
  mayCreateAtDepth,
  relativeAnswer,
  resolveCgroupArg,
  type CgroupArgForm,
  type CgroupBases,
} from '../../../daemon/policy';
import { verdict } from './fixtures';

const FORMS: readonly CgroupArgForm[] = ['relative', 'readable', 'movepid', 'movepidabs'];
const BASES: CgroupBases = { requestor: '/user.slice/u1000', proxy: '/lxc/c1' };

describe('isUnder (boundary-aware, SPEC §2.2)', () => {
  it.each<[string, string, boolean]>([
    ['/a', '/a', true],
    ['/a/b', '/a', true],
    ['/a/b/c', '/a', true],
    ['/ab', '/a', false],
    ['/a-b', '/a', false],
    ['/a', '/a/b', false],
    ['/b', '/a', false],
    ['/', '/a', false],
    ['/', '/', true],
    ['/a', '/', true],
    ['/ab/c', '/', true],
    ['/lxc/c1/x', '/lxc/c1', true],
    ['/lxc/c10', '/lxc/c1', false],
    ['/lxc/c1.scope', '/lxc/c1', false],
  ])('%s under %s: %s', (path, base, expected) => {
    expect(isUnder(path, base)).toBe(expected);
  });
});

describe('hasDotDot (reference §3.4, sane_cgroup)', () => {
  it.each<[string, boolean]>([
    ['..', true],
    ['../x', true],
    ['x/..', true],
    ['a/../b', true],
    ['a..b', true],
    ['/..', true],
    ['x..', true],
    ['..x', true],
    ['', false],
    ['.', false],
    ['./x', false],
    ['a.b', false],
    ['.a/.b', false],
    ['/a/b', false],
  ])('%s: %s', (arg, expected) => {
    expect(hasDotDot(arg)).toBe(expected);
  });
});

describe('joinCgroup', () => {
  it.each<[string, string, string]>([
    ['/', '', '/'],
    ['/', '/', '/'],
    ['/', 'a', '/a'],
    ['/', '/a', '/a'],
    ['/a', '', '/a'],
    ['/a', 'b', '/a/b'],
    ['/a', '/b', '/a/b'],
    ['/a', 'b/', '/a/b'],
    ['/a', 'b//c', '/a/b/c'],
    ['/a', '//b///c//', '/a/b/c'],
    ['/a', '.', '/a'],
    ['/a', './b/./c/.', '/a/b/c'],
    ['/a', '.b', '/a/.b'],
    ['/a/', 'b', '/a/b'],
    ['/a//b', 'c', '/a/b/c'],
  ])('%s + %s = %s', (base, relative, expected) => {
    expect(joinCgroup(base, relative)).toBe(expected);
  });

  it.each(['..', 'a/..', '../b'])('refuses a %s component even if the caller forgot', (relative) => {
    expect(() => joinCgroup('/a', relative)).toThrow(CgmError);
  });
});

describe('resolveCgroupArg (reference §3.4)', () => {
  it.each<[string, CgroupArgForm, CgroupBases, string, string]>([
    // Form B: always relative to r's cgroup, a leading '/' is not absolute.
    ['', 'relative', BASES, '/user.slice/u1000', '/user.slice/u1000'],
    ['x', 'relative', BASES, '/user.slice/u1000/x', '/user.slice/u1000'],
    ['/x', 'relative', BASES, '/user.slice/u1000/x', '/user.slice/u1000'],
    ['/', 'relative', BASES, '/user.slice/u1000', '/user.slice/u1000'],
    ['x//y/./z/', 'relative', BASES, '/user.slice/u1000/x/y/z', '/user.slice/u1000'],
    ['x', 'relative', { requestor: '/', proxy: '/' }, '/x', '/'],
    ['x', 'relative', { requestor: '/a/init.scope', proxy: '/' }, '/a/init.scope/x', '/a/init.scope'],
    // Form A: relative to r, or hierarchy-absolute with a leading '/'.
    ['', 'readable', BASES, '/user.slice/u1000', '/user.slice/u1000'],
    ['x/y', 'readable', BASES, '/user.slice/u1000/x/y', '/user.slice/u1000'],
    ['/x/y', 'readable', BASES, '/x/y', '/'],
    ['/', 'readable', BASES, '/', '/'],
    ['//x//', 'readable', BASES, '/x', '/'],
    ['./x', 'readable', BASES, '/user.slice/u1000/x', '/user.slice/u1000'],
    // Form C, MovePid: relative to r's chopped cgroup.
    ['', 'movepid', BASES, '/user.slice/u1000', '/user.slice/u1000'],
    ['x', 'movepid', BASES, '/user.slice/u1000/x', '/user.slice/u1000'],
    ['x', 'movepid', { requestor: '/lxc/c1/init.scope', proxy: '/' }, '/lxc/c1/x', '/lxc/c1'],
    ['', 'movepid', { requestor: '/init.scope', proxy: '/' }, '/', '/'],
    // Form C, MovePidAbs: relative to p's chopped cgroup, leading '/' harmless.
    ['', 'movepidabs', BASES, '/lxc/c1', '/lxc/c1'],
    ['/', 'movepidabs', BASES, '/lxc/c1', '/lxc/c1'],
    ['x', 'movepidabs', BASES, '/lxc/c1/x', '/lxc/c1'],
    ['/x', 'movepidabs', BASES, '/lxc/c1/x', '/lxc/c1'],
    ['/x', 'movepidabs', { requestor: '/u', proxy: '/lxc/c1/system.slice/cgproxy.service' }, '/lxc/c1/x', '/lxc/c1'],
    ['/x/y', 'movepidabs', { requestor: '/u', proxy: '/' }, '/x/y', '/'],
  ])('%j as %s from %o is %s', (arg, form, bases, path, base) => {
    expect(resolveCgroupArg(arg, form, bases)).toEqual({ path, base });
  });

  const DOT_DOT = ['..', '../x', 'x/..', 'x/../y', 'a..b', '/..', '/../x', '..x', 'x..', 'x/../../../etc'];
  it.each(FORMS.flatMap((form) => DOT_DOT.map((arg) => [arg, form] as const)))(
    'refuses %j as %s (contains ..)',
    (arg, form) => {
      expectInvalid(arg, form, "must not contain '..'");
    },
  );

  it.each(FORMS.flatMap((form) => ['\0', 'a\0b', 'a/\0', '\0..'].map((arg) => [arg, form] as const)))(
    'refuses %j as %s (NUL byte)',
    (arg, form) => {
      expectInvalid(arg, form, 'NUL byte');
    },
  );

  it.each(['/', '/x', '//x', '/./x'])('refuses %j for MovePid (leading slash)', (arg) => {
    expectInvalid(arg, 'movepid', 'must be relative for MovePid');
  });

  it.each(FORMS)('accepts an argument of exactly %s bytes as %s', (form) => {
    const arg = 'a'.repeat(MAX_CGROUP_ARG_BYTES);
    expect(resolveCgroupArg(arg, form, { requestor: '/', proxy: '/' })).toEqual({ path: `/${arg}`, base: '/' });
  });

  it.each(FORMS)('refuses an argument one byte too long as %s', (form) => {
    expectInvalid('a'.repeat(MAX_CGROUP_ARG_BYTES + 1), form, 'cgroup argument is 4097 bytes');
  });

  it('counts bytes, not characters', () => {
    expectInvalid('é'.repeat(2049), 'relative', 'cgroup argument is 4098 bytes');
  });

  it('quotes the argument, cut short, in the message', () => {
    const result = resolveCgroupArg(`${'x'.repeat(200)}/..`, 'relative', BASES);
    expect('error' in result && result.error.message).toBe(`cgroup "${'x'.repeat(80)}…" must not contain '..'`);
  });
});

function expectInvalid(arg: string, form: CgroupArgForm, messagePart: string): void {
  const result = resolveCgroupArg(arg, form, BASES);
  expect('error' in result).toBe(true);
  if (!('error' in result)) return;
  expect(result.error).toBeInstanceOf(CgmError);
  expect(result.error.code).toBe('InvalidArgs');
  expect(result.error.message).toContain(messagePart);
}

describe('chopProxySuffix (reference §4.4)', () => {
  it.each<[string, string]>([
    ['/init.scope', '/'],
    ['/foo/init.scope', '/foo'],
    ['/system.slice/cgproxy.service', '/'],
    ['/lxc/c1/system.slice/cgproxy.service', '/lxc/c1'],
    ['/lxc/c1/init.scope', '/lxc/c1'],
    ['/a/init.scope/init.scope', '/a/init.scope'],
    ['/system.slice/cgproxy.service/init.scope', '/system.slice/cgproxy.service'],
    ['/', '/'],
    ['/foo', '/foo'],
    ['/xinit.scope', '/xinit.scope'],
    ['/init.scope/x', '/init.scope/x'],
    ['/cgproxy.service', '/cgproxy.service'],
    ['/other.slice/cgproxy.service', '/other.slice/cgproxy.service'],
  ])('%s -> %s', (path, expected) => {
    expect(chopProxySuffix(path)).toBe(expected);
  });
});

describe('relativeAnswer (reference §5.2, §5.3)', () => {
  it.each<[string, string, boolean, string | undefined]>([
    // GetPidCgroup: no leading slash.
    ['/a', '/a', false, '/'],
    ['/a/xxx/b', '/a', false, 'xxx/b'],
    ['/a/b', '/a', false, 'b'],
    ['/xxx/b', '/', false, 'xxx/b'],
    ['/', '/', false, '/'],
    ['/ab', '/a', false, undefined],
    ['/ab/c', '/a', false, undefined],
    ['/b', '/a', false, undefined],
    ['/', '/a', false, undefined],
    // GetPidCgroupAbs: leading slash.
    ['/a', '/a', true, '/'],
    ['/a/xxx/b', '/a', true, '/xxx/b'],
    ['/test22_cg', '/', true, '/test22_cg'],
    ['/', '/', true, '/'],
    ['/lxc/c10/x', '/lxc/c1', true, undefined],
  ])('%s relative to %s (leading slash %s) is %s', (victim, base, leading, expected) => {
    expect(relativeAnswer(victim, base, leading)).toBe(expected);
  });
});

describe('depthOf and mayCreateAtDepth (SPEC §2.2)', () => {
  it.each<[string, number]>([
    ['/', 0],
    ['/a', 1],
    ['/a/b', 2],
    ['/user.slice/user-1000.slice/user@1000.service/app.slice/x', 5],
  ])('depth of %s is %i', (path, depth) => {
    expect(depthOf(path)).toBe(depth);
  });

  const deep = (n: number): string => `/${Array.from({ length: n }, (_, i) => `c${i}`).join('/')}`;
  it.each<[string, string, number, 'allow' | 'deny']>([
    ['depth 1, limit 16', '/a', DEFAULT_MAX_DEPTH, 'allow'],
    ['depth 16, limit 16 (the boundary)', deep(16), DEFAULT_MAX_DEPTH, 'allow'],
    ['depth 17, limit 16', deep(17), DEFAULT_MAX_DEPTH, 'deny'],
    ['depth 1, limit 1', '/a', 1, 'allow'],
    ['depth 2, limit 1', '/a/b', 1, 'deny'],
    ['depth 1, limit 0', '/a', 0, 'deny'],
  ])('%s', (_name, path, limit, expected) => {
    expect(verdict(mayCreateAtDepth(path, limit))).toBe(expected);
  });

  it('explains the denial', () => {
    expect(mayCreateAtDepth('/a/b', 1)).toEqual({
      allow: false,
      reason: 'cgroup /a/b would be 2 levels deep, more than the limit of 1',
    });
  });
});
