// The one catalog of errors that cross the wire: code -> D-Bus error name, and the
// errno -> code mapping. The README's error table is checked against this by a test.
// Nothing here logs; a stack trace never reaches a client.

export const ERROR_CATALOG = {
  AccessDenied: {
    name: 'org.freedesktop.DBus.Error.AccessDenied',
    when: 'the caller may not do this to this cgroup, file or process',
  },
  InvalidArgs: {
    name: 'org.freedesktop.DBus.Error.InvalidArgs',
    when: 'a malformed argument: wrong signature, `..`, a bad key, NUL bytes, a value the kernel refused',
  },
  FileNotFound: {
    name: 'org.freedesktop.DBus.Error.FileNotFound',
    when: 'no such cgroup, or no such key in it',
  },
  UnixProcessIdUnknown: {
    name: 'org.freedesktop.DBus.Error.UnixProcessIdUnknown',
    when: 'no such process (or it exited during the call)',
  },
  LimitsExceeded: {
    name: 'org.freedesktop.DBus.Error.LimitsExceeded',
    when: 'a depth, size, count or connection limit was reached',
  },
  Timeout: {
    name: 'org.freedesktop.DBus.Error.Timeout',
    when: 'an Scm peer did not send its credentials in time, or a freeze did not settle',
  },
  NotSupported: {
    name: 'org.freedesktop.DBus.Error.NotSupported',
    when: 'the operation is not available on this hierarchy (e.g. remove-on-empty on a premounted v1 hierarchy)',
  },
  Failed: {
    name: 'org.freedesktop.DBus.Error.Failed',
    when: 'an unexpected failure inside the daemon (details in its log)',
  },
  UnknownMethod: {
    name: 'org.freedesktop.DBus.Error.UnknownMethod',
    when: 'no such method or interface on the object',
  },
  UnknownObject: {
    name: 'org.freedesktop.DBus.Error.UnknownObject',
    when: 'no such object path',
  },
  UnknownProperty: {
    name: 'org.freedesktop.DBus.Error.UnknownProperty',
    when: 'no such property',
  },
  PropertyReadOnly: {
    name: 'org.freedesktop.DBus.Error.PropertyReadOnly',
    when: 'properties cannot be set',
  },
  NoSuchController: {
    name: 'org.linuxcontainers.cgmanager.Error.NoSuchController',
    when: 'the controller or hierarchy is not mounted (or is hidden with --skip)',
  },
  Busy: {
    name: 'org.linuxcontainers.cgmanager.Error.Busy',
    when: 'the cgroup still has tasks, or another request is removing or pruning its subtree right now (retry)',
  },
  NotEmpty: {
    name: 'org.linuxcontainers.cgmanager.Error.NotEmpty',
    when: 'the cgroup still has child cgroups (use a recursive remove)',
  },
  Unavailable: {
    name: 'org.linuxcontainers.cgmanager.Error.Unavailable',
    when: 'cgproxy cannot reach the host daemon right now (it keeps reconnecting)',
  },
  ReflectedCredentials: {
    name: 'org.linuxcontainers.cgmanager.Error.ReflectedCredentials',
    when: "an Scm socket is connected to itself or to one of cgmanager's own sockets, so the credentials read from it would be cgmanager's",
  },
  WrongNamespace: {
    name: 'org.linuxcontainers.cgmanager.Error.WrongNamespace',
    when: "a plain call that needs the daemon's pid or user namespace came from another one (use a proxy or the Scm variant)",
  },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export const ERROR_NAMES: ReadonlyMap<string, ErrorCode> = new Map(
  (Object.keys(ERROR_CATALOG) as ErrorCode[]).map((code) => [ERROR_CATALOG[code].name, code]),
);

export class CgmError extends Error {
  readonly code: ErrorCode;
  readonly dbusName: string;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'CgmError';
    this.code = code;
    this.dbusName = ERROR_CATALOG[code].name;
  }
}

const ERRNO_CODES: Readonly<Record<string, ErrorCode>> = {
  ENOENT: 'FileNotFound',
  ENOTDIR: 'FileNotFound',
  EISDIR: 'FileNotFound',
  EACCES: 'AccessDenied',
  EPERM: 'AccessDenied',
  EROFS: 'AccessDenied',
  EBUSY: 'Busy',
  ENOTEMPTY: 'NotEmpty',
  EINVAL: 'InvalidArgs',
  ERANGE: 'InvalidArgs',
  ENAMETOOLONG: 'InvalidArgs',
  EOPNOTSUPP: 'NotSupported',
  ENOTSUP: 'NotSupported',
  ESRCH: 'UnixProcessIdUnknown',
  EAGAIN: 'LimitsExceeded', // mkdir under cgroup.max.descendants / cgroup.max.depth
  ENOSPC: 'LimitsExceeded',
  EMFILE: 'LimitsExceeded',
  ETIMEDOUT: 'Timeout',
};

/** Maps an errno code such as 'ENOENT' to a catalog code; anything unlisted is 'Failed'. */
export function codeForErrno(errnoCode: string | undefined): ErrorCode {
  // Own properties only: `code` can come from anything thrown, and 'constructor' or
  // '__proto__' must not find Object.prototype's members.
  return errnoCode !== undefined && Object.hasOwn(ERRNO_CODES, errnoCode) ? (ERRNO_CODES[errnoCode] as ErrorCode) : 'Failed';
}

/** Wraps a system error from an operation on `what` into a CgmError with a readable message. */
export function errorFromErrno(err: unknown, what: string): CgmError {
  if (err instanceof CgmError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const text = code ? `${what}: ${describeErrno(code)} (${code})` : `${what}: ${String((err as Error)?.message ?? err)}`;
  return new CgmError(codeForErrno(code), text);
}

const ERRNO_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'does not exist',
  ENOTDIR: 'is not a directory',
  EISDIR: 'is a directory, not a key',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EBUSY: 'still has tasks',
  ENOTEMPTY: 'still has child cgroups',
  EINVAL: 'the kernel refused the value',
  ESRCH: 'no such process',
  EAGAIN: 'a cgroup limit was reached',
  ENOSPC: 'no space left',
  EEXIST: 'already exists',
};

function describeErrno(code: string): string {
  return Object.hasOwn(ERRNO_WORDS, code) ? (ERRNO_WORDS[code] as string) : 'system error';
}
