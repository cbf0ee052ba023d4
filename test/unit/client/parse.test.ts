import { describe, expect, it } from 'vitest';
import { parseDepth, parseId, parseOctalMode, parsePid, parseRecursive, quoteArg, UsageError } from '../../../client/cli/parse';

describe('parseOctalMode (cgm chmod/chmodfile: modes are octal)', () => {
  it.each([
    ['755', 0o755],
    ['0755', 0o755],
    ['644', 0o644],
    ['0', 0],
    ['4755', 0o4755],
    ['17777777776', 0x7ffffffe],
  ])('%s -> %o', (text, mode) => {
    expect(parseOctalMode(text)).toBe(mode);
  });

  it.each(['', '8', '789', '0x1ff', '0o755', '-1', '+7', ' 755', '755 ', 'rwx', '17777777777'])('refuses %j', (text) => {
    expect(() => parseOctalMode(text)).toThrow(UsageError);
  });
});

describe('parseId (cgm chown uid/gid)', () => {
  it.each([
    ['0', 0],
    ['1000', 1000],
    ['0100', 100],
    ['2147483646', 2147483646],
  ])('%s -> %d', (text, id) => {
    expect(parseId(text, 'uid')).toBe(id);
  });

  it.each(['', '-1', '2147483647', '4294967295', '1e3', '10.5', 'abc', '+1', '0x10'])('refuses %j (the original: "Bad uid or gid")', (text) => {
    expect(() => parseId(text, 'gid')).toThrow(/^bad gid/);
  });
});

describe('parsePid', () => {
  it.each([
    ['1', 1],
    ['4194304', 4194304],
    ['2147483647', 2147483647],
  ])('%s -> %d', (text, pid) => {
    expect(parsePid(text)).toBe(pid);
  });

  it.each(['', '0', '-5', '2147483648', 'self', '12abc', '1.0'])('refuses %j', (text) => {
    expect(() => parsePid(text)).toThrow(UsageError);
  });
});

describe('parseRecursive (cgm remove: recursive unless the argument is exactly 0)', () => {
  it.each<[string | undefined, boolean]>([
    [undefined, true],
    ['1', true],
    ['0', false],
    ['00', true],
    ['', true],
    ['no', true],
  ])('%j -> %s', (text, recursive) => {
    expect(parseRecursive(text)).toBe(recursive);
  });
});

describe('parseDepth', () => {
  it('takes a number', () => expect(parseDepth('2')).toBe(2));
  it.each(['-1', 'x', ''])('refuses %j', (t) => expect(() => parseDepth(t)).toThrow(UsageError));
});

describe('quoteArg', () => {
  it.each([
    ['', "''"],
    ['memory', 'memory'],
    ['name=systemd', 'name=systemd'],
    ['a/b', 'a/b'],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['$x', "'$x'"],
  ])('%j -> %s', (arg, quoted) => {
    expect(quoteArg(arg)).toBe(quoted);
  });
});

describe('cgm setup options', () => {
  it('--owner takes uid:gid, --limit key=value (the value may hold =)', async () => {
    const { parseOwner, parseLimit, UsageError } = await import('../../../client/cli/parse');
    expect(parseOwner('1000:1001')).toEqual({ uid: 1000, gid: 1001 });
    for (const bad of ['1000', '1000:', ':1', 'a:b', '1:2:3']) expect(() => parseOwner(bad)).toThrow(UsageError);
    expect(parseLimit('memory.max=256M')).toEqual(['memory.max', '256M']);
    expect(parseLimit('io.max=8:0 rbps=1')).toEqual(['io.max', '8:0 rbps=1']);
    for (const bad of ['memory.max', '=1']) expect(() => parseLimit(bad)).toThrow(UsageError);
  });
});
