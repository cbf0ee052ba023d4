// cgproxy's command line (reference §9.2, SPEC §4) parsed with commander.
import { Command, InvalidArgumentError, Option } from 'commander';
import * as path from 'node:path';
import { defaultSocketPath, LOWER_SOCKET } from '../daemon/socket-path';
import { isLogLevel, type LogLevel } from '../daemon/logger';
import { VERSION } from '../daemon/version';

export interface ProxyOptions {
  checkMaster: boolean;
  /** where the proxy serves (the container's view of the CGManager socket) */
  socket: string;
  /** the host daemon's socket as bind-mounted into the container */
  upstream: string;
  scmTimeoutMs: number;
  logLevel: LogLevel;
  logFile?: string;
  maxConnectionsPerUid: number;
  maxMessageSize: number;
  maxPendingScm: number;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError('not a number');
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

export function buildProxyCommand(env: NodeJS.ProcessEnv = process.env): Command {
  const envLevel = env.CGMANAGER_LOG_LEVEL;
  return new Command('cgproxy')
    .description(
      'cgroup manager proxy for containers: serves the cgmanager API on the container\'s socket and forwards each call to the host daemon as its Scm variant, so the kernel translates pids and uids.',
    )
    .version(VERSION, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help')
    .option('--check-master', 'exit 0 if a cgmanager (daemon or proxy) answers on --upstream or --socket, 1 otherwise')
    .option('--socket <path>', 'socket to serve on (env CGMANAGER_SOCKET; default as for the daemon)')
    .option('--upstream <path>', 'the host daemon\'s socket; when only --socket answers, its directory is moved here first', LOWER_SOCKET)
    .option('--scm-timeout <ms>', 'how long to wait for each step of an Scm exchange', integer(10, 600_000), 5000)
    .addOption(new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env CGMANAGER_LOG_LEVEL)').argParser((v) => {
      if (!isLogLevel(v)) throw new InvalidArgumentError('one of fatal, error, warn, info, debug, trace, silent');
      return v;
    }).default(envLevel && isLogLevel(envLevel) ? envLevel : 'info'))
    .option('--log-file <path>', 'write the JSON log lines to this file instead of stderr')
    .option('--max-connections-per-uid <n>', 'simultaneous connections one uid may hold', integer(1, 1_000_000), 256)
    .option('--max-message-size <bytes>', 'largest D-Bus message accepted', integer(1024, 128 * 1024 * 1024), 1024 * 1024)
    .option('--max-pending-scm <n>', 'Scm requests one connection may have waiting', integer(1, 100_000), 64)
    .allowExcessArguments(false)
    .showHelpAfterError()
    .exitOverride();
}

export function parseProxyOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): ProxyOptions {
  const command = buildProxyCommand(env);
  command.parse(argv, { from: 'user' });
  const o = command.opts<{
    checkMaster?: boolean;
    socket?: string;
    upstream: string;
    scmTimeout: number;
    logLevel: LogLevel;
    logFile?: string;
    maxConnectionsPerUid: number;
    maxMessageSize: number;
    maxPendingScm: number;
  }>();
  return {
    checkMaster: o.checkMaster === true,
    socket: path.resolve(o.socket ?? defaultSocketPath(env)),
    upstream: path.resolve(o.upstream),
    scmTimeoutMs: o.scmTimeout,
    logLevel: o.logLevel,
    logFile: o.logFile,
    maxConnectionsPerUid: o.maxConnectionsPerUid,
    maxMessageSize: o.maxMessageSize,
    maxPendingScm: o.maxPendingScm,
  };
}
