// The directly written array bodies of ListChildren ('as') and GetTasks* ('ai') replies decode,
// through dbus-next's own unmarshaller, to exactly what was encoded.
import { describe, expect, it } from 'vitest';
import { decodeBody, decodeBodyBytes, encodeBodyBytes, encodeMessage, MessageReader, MessageType } from '../../../daemon/dbus/wire';

function roundTrip(signature: string, value: unknown): unknown[] {
  const frame = encodeMessage({ type: MessageType.MethodReturn, serial: 1, replySerial: 2, flags: 0, signature, body: [value] });
  const reader = new MessageReader(64 * 1024 * 1024);
  reader.push(frame);
  const next = reader.next();
  if (!next) throw new Error('no message decoded');
  return decodeBody(next.message, []);
}

describe('array reply bodies', () => {
  it.each<[string, unknown]>([
    ['as', []],
    ['as', ['']],
    ['as', ['a', 'ab', 'abc', 'abcd', 'abcde']],
    ['as', ['é', 'ünïcödé', '日本', 'x'.repeat(1000)]],
    ['as', Array.from({ length: 10_000 }, (_, i) => `c${i}`)],
    ['ai', []],
    ['ai', [1, -2, 0x7fffffff, -0x80000000]],
    ['ai', Array.from({ length: 10_000 }, (_, i) => i * 7)],
  ])('%s %#', (signature, value) => {
    expect(roundTrip(signature, value)).toEqual([value]);
  });

  it('refuses a NUL byte in a string', () => {
    expect(() => roundTrip('as', ['a\0b'])).toThrow(/NUL/);
  });

  it('leaves out-of-range integers to the generic marshaller', () => {
    expect(() => roundTrip('ai', [2 ** 31])).toThrow();
  });
});

// a{sv} (cgmanager1's Setup report and Stats, GetAll) is written directly for the variant types
// the daemon uses: byte for byte what dbus-next's marshaller writes, which stays the fallback.
describe('a{sv} reply bodies', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const marshall = require('dbus-next/lib/marshall') as (sig: string, data: unknown[], offset?: number) => Buffer;
  type Entries = Array<[string, [string, unknown]]>;
  const cases: Array<[string, Entries]> = [
    ['empty', []],
    ['a Setup report', [
      ['created', ['as', ['cpu', 'memory', 'pids']]],
      ['existed', ['as', []]],
      ['applied', ['a{ss}', [['cpu.shares', 'cpu.shares'], ['memory.limit_in_bytes', 'memory.max,memory.swap.max']]]],
      ['moved', ['ai', [1234, 5]]],
    ]],
    ['every direct type', [
      ['s', ['s', '']], ['s2', ['s', 'ünïcödé 日本']], ['i', ['i', -0x80000000]], ['i2', ['i', 0x7fffffff]],
      ['u', ['u', 0xffffffff]], ['u0', ['u', 0]], ['t', ['b', true]], ['f', ['b', false]],
      ['as', ['as', ['', 'a', 'ab', 'abc', 'abcd']]], ['ai', ['ai', []]], ['m', ['a{ss}', []]], ['m2', ['a{ss}', [['', ''], ['k', 'v'.repeat(300)]]]],
    ]],
    ['odd key lengths between entries', [['a', ['i', 1]], ['bb', ['s', 'x']], ['ccc', ['a{ss}', [['k', 'v']]]], ['dddd', ['ai', [7]]], ['e', ['b', true]]]],
    ['a big one (past the scratch buffer)', [['big', ['as', Array.from({ length: 5000 }, (_, i) => `cgroup${i}`)]], ['after', ['u', 9]]]],
  ];

  it.each(cases)('%s: the marshaller\'s bytes, and it decodes back', (_name, entries) => {
    const body = encodeBodyBytes('a{sv}', [entries]);
    expect(body.equals(marshall('a{sv}', [entries], 0))).toBe(true);
    expect(decodeBodyBytes('a{sv}', body)).toEqual([entries]);
    expect(roundTrip('a{sv}', entries)).toEqual([entries]);
  });

  it('leaves other variant types and out-of-range numbers to the marshaller', () => {
    for (const entries of [[['t', ['t', 5n]]], [['u', ['u', -1]]], [['i', ['i', 2 ** 31]]], [['x', ['s', 5]]]] as Entries[]) {
      let expected: Buffer | undefined;
      try {
        expected = marshall('a{sv}', [entries], 0);
      } catch {
        expect(() => encodeBodyBytes('a{sv}', [entries])).toThrow();
        continue;
      }
      expect(encodeBodyBytes('a{sv}', [entries]).equals(expected)).toBe(true);
    }
  });

  it('refuses a NUL byte in a string', () => {
    expect(() => encodeBodyBytes('a{sv}', [[['k', ['s', 'a\0b']]]])).toThrow(/NUL/);
    expect(() => encodeBodyBytes('a{sv}', [[['k', ['a{ss}', [['a\0', 'b']]]]]])).toThrow(/NUL/);
  });
});
