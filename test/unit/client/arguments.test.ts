import { describe, expect, it } from 'vitest';
import { METHODS, METHODS_BY_NAME, type MethodSpec } from '../../../daemon/dbus/interface';
import { assertArgs, assertInt32Arg, assertStringArg, INT32_MAX, INT32_MIN } from '../../../client/arguments';

const plain = METHODS.filter((m) => !m.scm);

function sample(spec: MethodSpec): unknown[] {
  return spec.in.map(([, type]) => (type === 's' ? 'x' : 1));
}

describe('assertArgs', () => {
  it.each(plain.map((m) => [m.name, m] as const))('%s accepts arguments of its signature', (_name, spec) => {
    expect(() => assertArgs(spec, sample(spec))).not.toThrow();
  });

  it.each(METHODS.filter((m) => m.scm).map((m) => [m.name, m] as const))('%s (Scm) cannot be called with plain arguments', (_name, spec) => {
    expect(() => assertArgs(spec, sample(spec))).toThrow(/cannot be passed by a plain call/);
  });

  it('checks the argument count', () => {
    const spec = METHODS_BY_NAME.get('Create') as MethodSpec;
    expect(() => assertArgs(spec, ['memory'])).toThrow('Create: expected 2 argument(s) (controller, cgroup), got 1');
    expect(() => assertArgs(spec, ['memory', 'a', 'b'])).toThrow(TypeError);
  });

  it('names the argument that is wrong', () => {
    const spec = METHODS_BY_NAME.get('Chown') as MethodSpec;
    expect(() => assertArgs(spec, ['memory', 'x', '1000', 1000])).toThrow('Chown: uid must be an integer, got "1000"');
    expect(() => assertArgs(spec, ['memory', 7, 1000, 1000])).toThrow('Chown: cgroup must be a string, got 7');
  });
});

describe('assertInt32Arg', () => {
  it.each([0, 1, -1, INT32_MIN, INT32_MAX, 1000])('accepts %d', (v) => {
    expect(() => assertInt32Arg('M', 'pid', v)).not.toThrow();
  });

  it.each<[unknown, RegExp]>([
    [INT32_MAX + 1, /must fit in a signed 32-bit integer \(-2147483648\.\.2147483647\), got 2147483648/],
    [INT32_MIN - 1, /got -2147483649/],
    [1.5, /must be an integer, got 1\.5/],
    [Number.NaN, /must be an integer, got NaN/],
    [Infinity, /must be an integer/],
    ['12', /must be an integer, got "12"/],
    [12n, /must be an integer, got 12n/],
    [null, /got null/],
    [undefined, /got undefined/],
    [{}, /got an object/],
  ])('refuses %s', (v, message) => {
    expect(() => assertInt32Arg('MovePid', 'pid', v)).toThrow(TypeError);
    expect(() => assertInt32Arg('MovePid', 'pid', v)).toThrow(message);
  });
});

describe('assertStringArg', () => {
  it.each(['', 'memory', 'a/b', 'ünïcödé', '😀', 'x'.repeat(10000)])('accepts %j', (v) => {
    expect(() => assertStringArg('M', 'cgroup', v)).not.toThrow();
  });

  it.each<[unknown, RegExp]>([
    ['a\0b', /must not contain NUL bytes/],
    ['\uD800', /not valid Unicode/],
    ['x\uDC00', /not valid Unicode/],
    [1, /must be a string, got 1/],
    [['a'], /got an array/],
    [undefined, /got undefined/],
  ])('refuses %j', (v, message) => {
    expect(() => assertStringArg('Create', 'cgroup', v)).toThrow(message);
  });
});
