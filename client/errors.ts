// The client's one error type: a named D-Bus error from the daemon mapped back to the
// catalog code of daemon/errors.ts, or a transport failure with a client-side code.
// Never carries a stack trace from the daemon (none crosses the wire).
import { ERROR_NAMES, type ErrorCode } from '../daemon/errors';

/** Failures that happen on our side of the socket (no D-Bus error name). */
export type TransportErrorCode =
  /** nothing listens at the socket path (ENOENT, ECONNREFUSED, ENOTDIR) */
  | 'NotRunning'
  /** connect(2) failed for another reason (EACCES, a path too long for a unix socket, ...) */
  | 'ConnectFailed'
  /** the daemon refused both EXTERNAL and ANONYMOUS authentication */
  | 'AuthFailed'
  /** the daemon closed the connection or the socket failed */
  | 'Disconnected'
  /** the client itself was closed (close() or destroy()) */
  | 'Closed'
  /** no reply within the call timeout (or no connection within the connect timeout) */
  | 'NoReply'
  /** the caller's AbortSignal fired before the reply (or before the connection was made) */
  | 'Aborted'
  /** the daemon sent something that is not what the protocol allows */
  | 'ProtocolError';

/**
 * `code` is a catalog code (e.g. 'AccessDenied') for errors the daemon named, 'Unknown'
 * for a D-Bus error name outside the catalog, or a transport code.
 */
export type CgmanagerErrorCode = ErrorCode | TransportErrorCode | 'Unknown';

export interface CgmanagerErrorDetails {
  /** the D-Bus error name, for errors that came from the daemon */
  dbusName?: string;
  /** the D-Bus member that was called, e.g. 'Create' */
  method?: string;
  /** the socket path of the connection */
  socketPath?: string;
  /** errno code such as 'ENOENT' for connect failures */
  errno?: string;
}

export class CgmanagerError extends Error {
  readonly code: CgmanagerErrorCode;
  readonly dbusName: string | undefined;
  readonly method: string | undefined;
  readonly socketPath: string | undefined;
  readonly errno: string | undefined;

  constructor(code: CgmanagerErrorCode, message: string, details: CgmanagerErrorDetails = {}) {
    super(message);
    this.name = 'CgmanagerError';
    this.code = code;
    this.dbusName = details.dbusName;
    this.method = details.method;
    this.socketPath = details.socketPath;
    this.errno = details.errno;
  }
}

export function isCgmanagerError(err: unknown): err is CgmanagerError {
  return err instanceof CgmanagerError;
}

/** Catalog code for a D-Bus error name; names outside the catalog are 'Unknown'. */
export function codeForDBusName(name: string): ErrorCode | 'Unknown' {
  return ERROR_NAMES.get(name) ?? 'Unknown';
}

/** The error for an Error reply from the daemon. */
export function errorFromReply(method: string, dbusName: string, text: string | undefined, socketPath: string): CgmanagerError {
  const message = text !== undefined && text.trim() !== '' ? text.replace(/\n+$/, '') : `${method} failed (${dbusName})`;
  return new CgmanagerError(codeForDBusName(dbusName), message, { dbusName, method, socketPath });
}

const CONNECT_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no socket there',
  ENOTDIR: 'no socket there',
  ECONNREFUSED: 'nothing is listening',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENAMETOOLONG: 'the path is too long for a unix socket',
  EAGAIN: 'the daemon is not accepting connections',
};

const NOT_RUNNING = new Set(['ENOENT', 'ENOTDIR', 'ECONNREFUSED']);

/** The error for a failed connect(2) (or an unusable path) to `socketPath`. */
export function errorFromConnect(err: unknown, socketPath: string): CgmanagerError {
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `cannot connect to cgmanager at ${socketPath}`;
  if (errno && NOT_RUNNING.has(errno)) {
    return new CgmanagerError('NotRunning', `${where}: ${CONNECT_WORDS[errno]} (${errno}); is the daemon running?`, {
      socketPath,
      errno,
    });
  }
  const words = errno ? `${CONNECT_WORDS[errno] ?? 'system error'} (${errno})` : String((err as Error | undefined)?.message ?? err);
  return new CgmanagerError('ConnectFailed', `${where}: ${words}`, { socketPath, errno });
}
