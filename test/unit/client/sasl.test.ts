import { describe, expect, it } from 'vitest';
import { externalIdentity, SaslClient } from '../../../client/sasl';

const GUID = '0123456789abcdef0123456789abcdef';

describe('externalIdentity', () => {
  it.each([
    [0, '30'],
    [1000, '31303030'],
    [4294967294, '34323934393637323934'],
  ])('uid %d -> %s', (uid, hex) => {
    expect(externalIdentity(uid)).toBe(hex);
  });
});

describe('SaslClient', () => {
  it('EXTERNAL accepted: OK, then NEGOTIATE_UNIX_FD + BEGIN, then AGREE_UNIX_FD opens', () => {
    const c = new SaslClient(1000);
    expect(c.start()).toBe('\0AUTH EXTERNAL 31303030\r\n');
    expect(c.state).toBe('external');
    expect(c.feed(`OK ${GUID}`)).toEqual({ authenticated: true });
    expect(c.state).toBe('authenticated');
    expect(c.guid).toBe(GUID);
    expect(c.mechanism).toBe('EXTERNAL');
    expect(c.begin()).toBe('NEGOTIATE_UNIX_FD\r\nBEGIN\r\n');
    expect(c.state).toBe('negotiating');
    expect(c.feed('AGREE_UNIX_FD')).toEqual({ open: true });
    expect(c.state).toBe('open');
    expect(c.unixFdsNegotiated).toBe(true);
  });

  it('EXTERNAL rejected falls back to ANONYMOUS', () => {
    const c = new SaslClient(0);
    c.start();
    expect(c.feed('REJECTED EXTERNAL ANONYMOUS')).toEqual({ send: 'AUTH ANONYMOUS\r\n' });
    expect(c.state).toBe('anonymous');
    expect(c.feed(`OK ${GUID}`)).toEqual({ authenticated: true });
    expect(c.mechanism).toBe('ANONYMOUS');
  });

  it('ERROR to EXTERNAL also falls back to ANONYMOUS', () => {
    const c = new SaslClient(0);
    expect(c.feed('ERROR "Invalid hex encoding"')).toEqual({ send: 'AUTH ANONYMOUS\r\n' });
  });

  it('answers a DATA challenge with the identity (EXTERNAL) or empty data (ANONYMOUS)', () => {
    const c = new SaslClient(1000);
    expect(c.feed('DATA')).toEqual({ send: 'DATA 31303030\r\n' });
    expect(c.feed('REJECTED ANONYMOUS')).toEqual({ send: 'AUTH ANONYMOUS\r\n' });
    expect(c.feed('DATA')).toEqual({ send: 'DATA\r\n' });
    expect(c.feed(`OK ${GUID}`)).toEqual({ authenticated: true });
  });

  it('fails when ANONYMOUS is refused too', () => {
    const c = new SaslClient(0);
    c.feed('REJECTED');
    expect(c.feed('REJECTED')).toEqual({ fail: 'the daemon refused EXTERNAL and ANONYMOUS authentication' });
    expect(c.state).toBe('failed');
  });

  it('a server without fd passing still opens (ERROR to NEGOTIATE_UNIX_FD)', () => {
    const c = new SaslClient(0);
    c.feed(`OK ${GUID}`);
    c.begin();
    expect(c.feed('ERROR "no fds"')).toEqual({ open: true });
    expect(c.unixFdsNegotiated).toBe(false);
  });

  it.each([
    ['OK without a guid', 'OK', /malformed OK/],
    ['OK with a short guid', 'OK abc', /malformed OK/],
    ['garbage', 'HELLO', /unexpected authentication reply/],
  ])('fails on %s', (_name, line, message) => {
    const c = new SaslClient(0);
    const step = c.feed(line);
    expect('fail' in step && step.fail).toMatch(message);
  });

  it('fails on anything but AGREE_UNIX_FD/ERROR after BEGIN', () => {
    const c = new SaslClient(0);
    c.feed(`OK ${GUID}`);
    c.begin();
    expect(c.feed(`OK ${GUID}`)).toEqual({ fail: expect.stringMatching(/unexpected reply to NEGOTIATE_UNIX_FD/) });
  });

  it('a line once authenticated (before BEGIN) is a protocol violation', () => {
    const c = new SaslClient(0);
    c.feed(`OK ${GUID}`);
    expect(c.feed('DATA')).toEqual({ fail: expect.stringMatching(/in state authenticated/) });
  });

  it('begin() only once authenticated', () => {
    expect(() => new SaslClient(0).begin()).toThrow(/state external/);
  });

  it('gives up on an endless conversation', () => {
    const c = new SaslClient(0);
    let step = c.feed('DATA');
    for (let i = 0; i < 20 && !('fail' in step); i++) step = c.feed('DATA');
    expect(step).toEqual({ fail: 'the daemon sent too many authentication lines' });
  });
});
