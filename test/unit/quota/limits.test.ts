// The limits file (key = value) and how it combines with the defaults and the command line.
import { CommanderError } from 'commander';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parseOptions } from '../../../daemon/options';
import { DEFAULT_LIMITS, isLimited, LimitsFileError, parseLimitsFile, walkLimitFor } from '../../../daemon/quota/limits';

const ENV = { CGMANAGER_SOCKET: '/tmp/cgm-test/sock' };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-limits-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function limitsFile(text: string): string {
  const file = path.join(dir, `limits-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, text);
  return file;
}

describe('parseLimitsFile', () => {
  it.each<[string, object]>([
    ['', {}],
    ['# nothing but a comment\n\n', {}],
    ['max-cgroups-per-uid = 100', { maxCgroupsPerUid: 100 }],
    ['max-cgroups-per-uid=100   # per hierarchy', { maxCgroupsPerUid: 100 }],
    ['max-depth = 8\nmax-walk = 5000', { maxDepth: 8, maxWalk: 5000 }],
    ['limit-root = yes', { limitRoot: true }],
    ['limit-root = no', { limitRoot: false }],
    ['recount-interval = 0', { recountIntervalS: 0 }],
  ])('%j', (text, expected) => {
    expect(parseLimitsFile(text, 'f')).toEqual(expected);
  });

  it.each<[string, RegExp]>([
    ['max-cgroups = 5', /^f:1: unknown key "max-cgroups" \(known: max-cgroups-per-uid, max-depth, max-walk, limit-root, recount-interval\)$/],
    ['\nmax-walk', /^f:2: expected "key = value", got "max-walk"$/],
    ['max-walk = lots', /^f:1: bad value "lots" for max-walk: expected a number/],
    ['max-walk = 0', /^f:1: bad value "0" for max-walk/],
    ['max-depth = 2000', /^f:1: bad value "2000" for max-depth: expected a number from 1 to 1024$/],
    ['limit-root = maybe', /^f:1: bad value "maybe" for limit-root: expected yes or no$/],
    ['max-walk = 1\nmax-walk = 2', /^f:2: max-walk is already set on line 1$/],
  ])('refuses %j', (text, message) => {
    expect(() => parseLimitsFile(text, 'f')).toThrow(LimitsFileError);
    expect(() => parseLimitsFile(text, 'f')).toThrow(message);
  });
});

describe('who is limited', () => {
  it.each<[boolean, number, boolean, number]>([
    [false, 0, false, Number.POSITIVE_INFINITY],
    [false, 1000, true, DEFAULT_LIMITS.maxWalk],
    [true, 0, true, DEFAULT_LIMITS.maxWalk],
  ])('limitRoot %s, uid %d: limited %s, walk %d', (limitRoot, uid, limited, walk) => {
    expect(isLimited({ limitRoot }, uid)).toBe(limited);
    expect(walkLimitFor({ limitRoot, maxWalk: DEFAULT_LIMITS.maxWalk }, uid)).toBe(walk);
  });
});

describe('limits in the daemon options', () => {
  it('defaults, then the file, then the command line', () => {
    const file = limitsFile('max-cgroups-per-uid = 10\nmax-depth = 5\nmax-walk = 300\nlimit-root = yes\n');
    expect(parseOptions(['--limits-file', file], ENV)).toMatchObject({
      limitsFile: file,
      maxDepth: 5,
      limits: { maxCgroupsPerUid: 10, maxDepth: 5, maxWalk: 300, limitRoot: true, recountIntervalS: 600 },
    });
    expect(parseOptions(['--limits-file', file, '--max-depth', '7', '--max-cgroups-per-uid', '20', '--recount-interval', '0'], ENV)).toMatchObject({
      maxDepth: 7,
      limits: { maxCgroupsPerUid: 20, maxDepth: 7, maxWalk: 300, limitRoot: true, recountIntervalS: 0 },
    });
    expect(parseOptions(['--max-walk', '9', '--limit-root'], ENV).limits).toEqual({ ...DEFAULT_LIMITS, maxWalk: 9, limitRoot: true });
  });

  it.each<[string, RegExp]>([
    ['max-cgroups-per-uid = 10\nmax-groups = 3\n', /bad limits file .*:2: unknown key "max-groups"/],
    ['max-walk = -1\n', /bad limits file .*:1: bad value "-1" for max-walk/],
  ])('a bad file is an error naming the file, line and key: %j', (text, message) => {
    const file = limitsFile(text);
    let stderr = '';
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr += String(chunk);
      return true;
    });
    let error: unknown;
    try {
      parseOptions(['--limits-file', file], ENV);
    } catch (err) {
      error = err;
    } finally {
      spy.mockRestore();
    }
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(1);
    expect(stderr).toMatch(message);
    expect(stderr).toContain(file);
  });

  it('a limits file given but missing is an error; the default one may be absent', () => {
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(() => parseOptions(['--limits-file', path.join(dir, 'absent')], ENV)).toThrow(/cannot read the limits file .*absent/);
    } finally {
      spy.mockRestore();
    }
  });
});
