import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, type ErrorCode } from '../../../daemon/errors';
import { CgmanagerError, codeForDBusName, errorFromConnect, errorFromReply, isCgmanagerError } from '../../../client/errors';

const catalog = Object.entries(ERROR_CATALOG) as Array<[ErrorCode, { name: string }]>;

describe('codeForDBusName', () => {
  it.each(catalog)('%s <- its D-Bus name', (code, entry) => {
    expect(codeForDBusName(entry.name)).toBe(code);
  });

  it.each([
    'org.freedesktop.DBus.Error.NoReply',
    'org.freedesktop.DBus.Error.ServiceUnknown',
    'org.linuxcontainers.cgmanager.Error.SomethingNew',
    'org.freedesktop.DBus.Error.accessdenied',
    '',
  ])('unknown name %j -> Unknown', (name) => {
    expect(codeForDBusName(name)).toBe('Unknown');
  });
});

describe('errorFromReply', () => {
  it('carries name, code, method and the daemon message without trailing newlines', () => {
    const err = errorFromReply('Create', ERROR_CATALOG.AccessDenied.name, 'cannot create memory:/x: permission denied\n', '/run/s');
    expect(err).toBeInstanceOf(CgmanagerError);
    expect(isCgmanagerError(err)).toBe(true);
    expect(err).toMatchObject({
      code: 'AccessDenied',
      dbusName: 'org.freedesktop.DBus.Error.AccessDenied',
      method: 'Create',
      socketPath: '/run/s',
      message: 'cannot create memory:/x: permission denied',
    });
  });

  it('an unknown name keeps the name and gets code Unknown', () => {
    const err = errorFromReply('Ping', 'com.example.Error.Odd', 'odd', '/s');
    expect(err.code).toBe('Unknown');
    expect(err.dbusName).toBe('com.example.Error.Odd');
  });

  it('a reply without text still says what failed', () => {
    expect(errorFromReply('Remove', ERROR_CATALOG.Busy.name, undefined, '/s').message).toBe(`Remove failed (${ERROR_CATALOG.Busy.name})`);
    expect(errorFromReply('Remove', ERROR_CATALOG.Busy.name, '  ', '/s').message).toBe(`Remove failed (${ERROR_CATALOG.Busy.name})`);
  });
});

describe('errorFromConnect', () => {
  const sys = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: x, connect`), { code });

  it.each(['ENOENT', 'ECONNREFUSED', 'ENOTDIR'])('%s -> NotRunning naming the socket', (errno) => {
    const err = errorFromConnect(sys(errno), '/tmp/x/sock');
    expect(err.code).toBe('NotRunning');
    expect(err.errno).toBe(errno);
    expect(err.socketPath).toBe('/tmp/x/sock');
    expect(err.message).toContain('/tmp/x/sock');
    expect(err.message).toContain(`(${errno})`);
    expect(err.message).toContain('is the daemon running?');
    expect(err.dbusName).toBeUndefined();
  });

  it('EACCES -> ConnectFailed', () => {
    const err = errorFromConnect(sys('EACCES'), '/s');
    expect(err).toMatchObject({ code: 'ConnectFailed', errno: 'EACCES', message: 'cannot connect to cgmanager at /s: permission denied (EACCES)' });
  });

  it('a TypeError for an unusable path -> ConnectFailed with its text', () => {
    const err = errorFromConnect(new TypeError('unusable unix socket path: "x"'), 'x');
    expect(err.code).toBe('ConnectFailed');
    expect(err.message).toContain('unusable unix socket path');
  });
});
