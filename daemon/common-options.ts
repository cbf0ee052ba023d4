// Command-line options the daemon and cgproxy share: the same transport limits, Scm
// timeout and logging, declared once so their names, bounds and help never drift apart.
import { Command, InvalidArgumentError, Option } from 'commander';
import { isLogLevel, type LogLevel } from './logger';

export function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError('not a number');
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

export function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function level(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError('one of fatal, error, warn, info, debug, trace, silent');
  return value;
}

/** What commander returns for the common options. */
export interface CommonOptionValues {
  scmTimeout: number;
  logLevel: LogLevel;
  logFile?: string;
  maxConnectionsPerUid: number;
  maxMessageSize: number;
  maxPendingScm: number;
  maxPendingScmPerUid: number;
  handshakeTimeout: number;
  maxQueuedOutput: number;
}

/** The common options as the daemon and cgproxy use them. */
export interface CommonOptions {
  scmTimeoutMs: number;
  logLevel: LogLevel;
  logFile?: string;
  maxConnectionsPerUid: number;
  maxMessageSize: number;
  maxPendingScm: number;
  maxPendingScmPerUid: number;
  handshakeTimeoutMs: number;
  maxQueuedOutput: number;
}

export function commonOptionsFrom(o: CommonOptionValues): CommonOptions {
  return {
    scmTimeoutMs: o.scmTimeout,
    logLevel: o.logLevel,
    logFile: o.logFile,
    maxConnectionsPerUid: o.maxConnectionsPerUid,
    maxMessageSize: o.maxMessageSize,
    maxPendingScm: o.maxPendingScm,
    maxPendingScmPerUid: o.maxPendingScmPerUid,
    handshakeTimeoutMs: o.handshakeTimeout,
    maxQueuedOutput: o.maxQueuedOutput,
  };
}

/** Adds --scm-timeout, --log-level, --log-file and the per-connection limits to `command`. */
export function addCommonOptions(command: Command, env: NodeJS.ProcessEnv, scmTimeoutHelp: string): Command {
  const envLevel = env.CGMANAGER_LOG_LEVEL;
  return command
    .option('--scm-timeout <ms>', scmTimeoutHelp, integer(10, 600_000), 5000)
    .addOption(
      new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env CGMANAGER_LOG_LEVEL)')
        .argParser(level)
        .default(envLevel && isLogLevel(envLevel) ? envLevel : 'info'),
    )
    .option('--log-file <path>', 'write the JSON log lines to this file instead of stderr')
    .option('--max-connections-per-uid <n>', 'simultaneous connections one uid may hold', integer(1, 1_000_000), 256)
    .option('--max-message-size <bytes>', 'largest D-Bus message accepted', integer(1024, 128 * 1024 * 1024), 1024 * 1024)
    .option('--max-pending-scm <n>', 'Scm requests one connection may have waiting for credentials', integer(1, 100_000), 64)
    .option('--max-pending-scm-per-uid <n>', 'Scm requests all connections of one uid may have waiting for credentials', integer(1, 1_000_000), 256)
    .option('--handshake-timeout <ms>', 'how long a new connection has to finish authenticating (also how long one over its uid\'s connection limit may stay)', integer(100, 600_000), 5000)
    .option('--max-queued-output <bytes>', 'reply bytes held for a client that does not read them; beyond it its calls are not read until it does', integer(4096, 128 * 1024 * 1024), 128 * 1024);
}
