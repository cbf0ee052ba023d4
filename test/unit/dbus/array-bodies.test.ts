// The directly written array bodies of ListChildren ('as') and GetTasks* ('ai') replies decode,
// through dbus-next's own unmarshaller, to exactly what was encoded.
import { describe, expect, it } from 'vitest';
import { decodeBody, encodeMessage, MessageReader, MessageType } from '../../../daemon/dbus/wire';

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
