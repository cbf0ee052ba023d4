import { describe, expect, it } from 'vitest';
import { MECHANISMS, SaslServer, type SaslStep } from '../../../daemon/dbus/sasl';

const GUID = '0123456789abcdef0123456789abcdef';
const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
const OK = `OK ${GUID}`;
const REJECTED = `REJECTED ${MECHANISMS}`;

/** What a step does, in one comparable string: reply text, then BEGIN or CLOSE. */
function show(step: SaslStep): string {
  const parts: string[] = [];
  if (step.reply !== undefined) parts.push(step.reply);
  if ('begin' in step) parts.push('<begin>');
  if ('close' in step) parts.push('<close>');
  return parts.join(' ');
}

function converse(lines: string[]): { replies: string[]; sasl: SaslServer } {
  const sasl = new SaslServer(GUID);
  return { replies: lines.map((l) => show(sasl.feed(l))), sasl };
}

describe('SaslServer', () => {
  it('advertises EXTERNAL and ANONYMOUS', () => {
    expect(MECHANISMS).toBe('EXTERNAL ANONYMOUS');
  });

  // Each row: the client's lines, then the server's answer to each ('' = no reply).
  it.each<[string, string[], string[]]>([
    ['AUTH without a mechanism lists the mechanisms', ['AUTH'], [REJECTED]],
    ['AUTH with an empty mechanism lists them too', ['AUTH '], [REJECTED]],
    ['EXTERNAL with the peer uid', [`AUTH EXTERNAL ${hex('1000')}`, 'BEGIN'], [OK, '<begin>']],
    // SPEC §1: accepted whatever uid is claimed (a client in a user namespace claims its
    // namespaced uid, e.g. 0, while SO_PEERCRED says 1000); authorisation never uses it.
    ['EXTERNAL claiming a namespaced uid 0', [`AUTH EXTERNAL ${hex('0')}`, 'BEGIN'], [OK, '<begin>']],
    ['EXTERNAL claiming a uid nobody has', [`AUTH EXTERNAL ${hex('4294967295')}`], [OK]],
    ['EXTERNAL with an empty initial response', ['AUTH EXTERNAL '], [OK]],
    ['EXTERNAL in upper-case hex', [`AUTH EXTERNAL ${hex('1000').toUpperCase()}`], [OK]],
    ['EXTERNAL without response, then DATA with hex', ['AUTH EXTERNAL', `DATA ${hex('0')}`, 'BEGIN'], ['DATA', OK, '<begin>']],
    ['EXTERNAL without response, then an empty DATA', ['AUTH EXTERNAL', 'DATA'], ['DATA', OK]],
    ['ANONYMOUS without trace', ['AUTH ANONYMOUS', 'BEGIN'], [OK, '<begin>']],
    ['ANONYMOUS with a hex trace', [`AUTH ANONYMOUS ${hex('libdbus 1.14')}`, 'BEGIN'], [OK, '<begin>']],
    ['an unknown mechanism is rejected, then EXTERNAL works', ['AUTH DBUS_COOKIE_SHA1 30', 'AUTH KERBEROS_V4', `AUTH EXTERNAL ${hex('0')}`], [REJECTED, REJECTED, OK]],
    ['a mechanism name is case-sensitive', ['AUTH external 30'], [REJECTED]],
    ['NEGOTIATE_UNIX_FD before auth is refused', ['NEGOTIATE_UNIX_FD'], ['ERROR "not authenticated"']],
    ['NEGOTIATE_UNIX_FD while waiting for DATA is refused', ['AUTH EXTERNAL', 'NEGOTIATE_UNIX_FD'], ['DATA', 'ERROR "not authenticated"']],
    ['NEGOTIATE_UNIX_FD after auth is agreed', ['AUTH ANONYMOUS', 'NEGOTIATE_UNIX_FD', 'BEGIN'], [OK, 'AGREE_UNIX_FD', '<begin>']],
    ['BEGIN before auth closes', ['BEGIN'], ['ERROR "not authenticated" <close>']],
    ['BEGIN while waiting for DATA closes', ['AUTH EXTERNAL', 'BEGIN'], ['DATA', 'ERROR "not authenticated" <close>']],
    ['DATA outside a conversation is an error', ['DATA 30'], ['ERROR "unexpected DATA"']],
    ['DATA after OK is an error', ['AUTH ANONYMOUS', 'DATA 30'], [OK, 'ERROR "unexpected DATA"']],
    ['CANCEL while waiting for DATA rejects', ['AUTH EXTERNAL', 'CANCEL', `AUTH EXTERNAL ${hex('0')}`], ['DATA', REJECTED, OK]],
    ['CANCEL outside a conversation is an error', ['CANCEL'], ['ERROR "Not currently in an auth conversation"']],
    ['CANCEL after OK goes back to the start', ['AUTH ANONYMOUS', 'CANCEL', 'BEGIN'], [OK, REJECTED, 'ERROR "not authenticated" <close>']],
    ['ERROR from the client rejects', ['ERROR "whatever"'], [REJECTED]],
    ['ERROR while waiting for DATA rejects', ['AUTH EXTERNAL', 'ERROR'], ['DATA', REJECTED]],
    ['ERROR after OK goes back to the start', ['AUTH EXTERNAL 30', 'ERROR', 'AUTH ANONYMOUS', 'BEGIN'], [OK, REJECTED, OK, '<begin>']],
    ['AUTH while waiting for DATA is an error', ['AUTH EXTERNAL', 'AUTH ANONYMOUS', 'DATA'], ['DATA', 'ERROR "Sent AUTH while another AUTH in progress"', OK]],
    ['AUTH after OK is an error', ['AUTH ANONYMOUS', 'AUTH EXTERNAL 30', 'BEGIN'], [OK, 'ERROR "Sent AUTH while expecting BEGIN"', '<begin>']],
    ['an initial response that is not hex', ['AUTH EXTERNAL root', `AUTH EXTERNAL ${hex('1000')}`], ['ERROR "Invalid hex encoding"', OK]],
    ['an odd-length hex response', ['AUTH EXTERNAL 303'], ['ERROR "Invalid hex encoding"']],
    ['DATA that is not hex', ['AUTH EXTERNAL', 'DATA zz', 'DATA 30'], ['DATA', 'ERROR "Invalid hex encoding"', OK]],
    ['an unknown command', ['HELLO'], ['ERROR "unknown command"']],
    ['an empty line', [''], ['ERROR "unknown command"']],
    ['lower-case commands are unknown', ['auth EXTERNAL 30', 'begin'], ['ERROR "unknown command"', 'ERROR "unknown command"']],
    ['binary garbage', ['\x00\xff\x80AUTH'], ['ERROR "unknown command"']],
    ['a command ends at the first space', ['BEGIN '], ['ERROR "not authenticated" <close>']],
  ])('%s', (_name, lines, replies) => {
    expect(converse(lines).replies).toEqual(replies);
  });

  it('records the mechanism and the claimed identity, for the log only', () => {
    const { sasl } = converse([`AUTH EXTERNAL ${hex('0')}`]);
    expect(sasl.mechanism).toBe('EXTERNAL');
    expect(sasl.claimedIdentity).toBe('0');
    const anon = converse([`AUTH ANONYMOUS ${hex('trace')}`]).sasl;
    expect(anon.mechanism).toBe('ANONYMOUS');
    expect(anon.claimedIdentity).toBe('trace');
  });

  it('caps the claimed identity it keeps', () => {
    const { sasl } = converse([`AUTH EXTERNAL ${hex('9'.repeat(500))}`]);
    expect(sasl.claimedIdentity).toHaveLength(64);
  });

  it('forgets unix-fd agreement and identity when the client starts over', () => {
    const { sasl, replies } = converse(['AUTH EXTERNAL 30', 'NEGOTIATE_UNIX_FD', 'CANCEL']);
    expect(replies).toEqual([OK, 'AGREE_UNIX_FD', REJECTED]);
    expect(sasl.unixFdNegotiated).toBe(false);
    expect(sasl.mechanism).toBeUndefined();
    expect(sasl.claimedIdentity).toBeUndefined();
  });

  it('keeps unix-fd agreement until BEGIN', () => {
    const { sasl } = converse(['AUTH ANONYMOUS', 'NEGOTIATE_UNIX_FD', 'BEGIN']);
    expect(sasl.unixFdNegotiated).toBe(true);
  });

  it('closes after a flood of commands', () => {
    const sasl = new SaslServer(GUID);
    const steps = Array.from({ length: 40 }, () => sasl.feed('AUTH BOGUS'));
    const closeAt = steps.findIndex((s) => 'close' in s);
    expect(closeAt).toBe(32);
    expect(steps.slice(0, 32).every((s) => s.reply === REJECTED)).toBe(true);
    expect(show(steps[32]!)).toBe('ERROR "too many commands" <close>');
    // Once over the limit, every further line closes too.
    expect(steps.slice(33).every((s) => 'close' in s)).toBe(true);
  });
});
