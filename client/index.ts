// Public entry of the cgmanager client library: connect(), the typed client and its
// error type. Loads nothing beyond the transport (no logger, no introspection).
export { connect, CgmanagerClient, CLIENT_API_VERSION, DEFAULT_TIMEOUT_MS, type CallOptions, type ConnectOptions, type KeyInfo, type SetupSpec, type SetupReport, type CgroupStats } from './client';
export { CgmanagerError, isCgmanagerError, codeForDBusName, type CgmanagerErrorCode, type TransportErrorCode } from './errors';
export type { ErrorCode } from '../daemon/errors';
export { connectWithRetry, isConnectionLost, ReconnectingClient, type ReconnectOptions, type RunOptions } from './reconnect';
