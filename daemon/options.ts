// The daemon's command line (SPEC §4) parsed with commander into a plain, validated object.
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultSocketPath } from './socket-path';
import { isLogLevel, type LogLevel } from './logger';
import { VERSION } from './version';

export interface DaemonOptions {
  socket: string;
  mount: string[];
  mountDir: string;
  skip: string[];
  maxDepth: number;
  scmTimeoutMs: number;
  logLevel: LogLevel;
  logFile?: string;
  maxConnectionsPerUid: number;
  maxMessageSize: number;
  maxPendingScm: number;
  maxCgroupsPerUid: number;
  allowAutoremovePremounted: string[];
}

function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError('not a number');
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function level(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError('one of fatal, error, warn, info, debug, trace, silent');
  return value;
}

export function buildCommand(env: NodeJS.ProcessEnv = process.env): Command {
  const envLevel = env.CGMANAGER_LOG_LEVEL;
  return new Command('cgmanager')
    .description('Per-host cgroup manager: serves the CGManager D-Bus API on a unix socket and checks every caller\'s kernel credentials.')
    .version(VERSION, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help')
    .option('--socket <path>', 'unix socket to listen on (env CGMANAGER_SOCKET; default /sys/fs/cgroup/cgmanager/sock, or /run/cgmanager/sock when /sys/fs/cgroup is cgroup2)')
    .option('-m, --mount <list>', 'named v1 hierarchies to mount when missing, e.g. name=systemd (comma list; the last -m counts, as in the original)', list, [])
    .option('--mount-dir <dir>', 'directory the daemon owns for the hierarchies it mounts', '/run/cgmanager/fs')
    .option('-M, --skip <list>', 'hierarchies to hide, e.g. memory,name=systemd (comma list, repeatable)', (v: string, prev: string[]) => prev.concat(list(v)), [] as string[])
    .option('--max-depth <n>', 'deepest cgroup a caller may create, counted from the hierarchy root', integer(1, 1024), 16)
    .option('--scm-timeout <ms>', 'how long an Scm peer may take to send each credential', integer(10, 600_000), 5000)
    .addOption(new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env CGMANAGER_LOG_LEVEL)').argParser(level).default(envLevel && isLogLevel(envLevel) ? envLevel : 'info'))
    .option('--log-file <path>', 'write the JSON log lines to this file instead of stderr')
    .option('--max-connections-per-uid <n>', 'simultaneous connections one uid may hold', integer(1, 1_000_000), 256)
    .option('--max-message-size <bytes>', 'largest D-Bus message accepted', integer(1024, 128 * 1024 * 1024), 1024 * 1024)
    .option('--max-pending-scm <n>', 'Scm requests one connection may have waiting for credentials', integer(1, 100_000), 64)
    .option('--max-cgroups-per-uid <n>', 'cgroups an unprivileged uid may create in all (0: no limit)', integer(0, 100_000_000), 0)
    .option('--allow-autoremove-premounted <list>', 'premounted v1 hierarchies (or "all") on which RemoveOnEmpty/Prune may set notify_on_release', list, [])
    .allowExcessArguments(false)
    .showHelpAfterError()
    // Throw a CommanderError (exit code inside) instead of calling process.exit, so that
    // main.ts decides when to exit and tests can observe the error.
    .exitOverride();
}

/** Parses the daemon's arguments (without node and script). Throws CommanderError on a bad one, and for --help and --version (exit code 0). */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): DaemonOptions {
  const command = buildCommand(env);
  command.parse(argv, { from: 'user' });
  const o = command.opts<{
    socket?: string;
    mount: string[];
    mountDir: string;
    skip: string[];
    maxDepth: number;
    scmTimeout: number;
    logLevel: LogLevel;
    logFile?: string;
    maxConnectionsPerUid: number;
    maxMessageSize: number;
    maxPendingScm: number;
    maxCgroupsPerUid: number;
    allowAutoremovePremounted: string[];
  }>();
  return {
    socket: o.socket ?? defaultSocketPath(env),
    mount: o.mount,
    mountDir: o.mountDir,
    skip: o.skip,
    maxDepth: o.maxDepth,
    scmTimeoutMs: o.scmTimeout,
    logLevel: o.logLevel,
    logFile: o.logFile,
    maxConnectionsPerUid: o.maxConnectionsPerUid,
    maxMessageSize: o.maxMessageSize,
    maxPendingScm: o.maxPendingScm,
    maxCgroupsPerUid: o.maxCgroupsPerUid,
    allowAutoremovePremounted: o.allowAutoremovePremounted,
  };
}
