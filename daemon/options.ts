// The daemon's command line (SPEC §4) parsed with commander into a plain, validated object.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { addCommonOptions, commonOptionsFrom, integer, list, type CommonOptions, type CommonOptionValues } from './common-options';
import { DEFAULT_LIMITS, DEFAULT_LIMITS_FILE, parseLimitsFile, type QuotaLimits } from './quota/limits';
import { defaultSocketPath, LEGACY_SOCKET, UNIFIED_SOCKET } from './socket-path';
import { VERSION } from './version';

export interface DaemonOptions extends CommonOptions {
  socket: string;
  mount: string[];
  mountDir: string;
  skip: string[];
  maxDepth: number;
  /** the per-requestor limits: defaults, then the limits file, then the command line (maxDepth included) */
  limits: QuotaLimits;
  /** the limits file that was read, if any */
  limitsFile: string | undefined;
  allowAutoremovePremounted: string[];
  /** install our release agent on allowed premounted v1 hierarchies that have none */
  autoremoveSetReleaseAgent: boolean;
  /** what must survive a restart: remove-on-empty marks, the create journal, release agents */
  stateDir: string;
  /** how often /proc/self/mountinfo is compared for hierarchies mounted or unmounted at run time; 0: never */
  mountPollMs: number;
  /** TEST ONLY: Create sleeps this long between hierarchies, so a test can kill it half-way */
  testCreatePauseMs: number;
  /** TEST ONLY: requests that check then act sleep this long in between, so a test can race them */
  testCheckPauseMs: number;
  /** TEST ONLY: Create sleeps this long between its check of a parent and its mkdir there */
  testCreateCheckPauseMs: number;
}

/** Where the daemon keeps its state unless --state-dir says otherwise. */
export const DEFAULT_STATE_DIR = '/run/cgmanager';

/**
 * The default sockets share /run/cgmanager; an instance on any other socket keeps its state
 * beside that socket, so two instances (tests, a second daemon) never share a create journal.
 */
export function defaultStateDir(socket: string): string {
  return socket === LEGACY_SOCKET || socket === UNIFIED_SOCKET ? DEFAULT_STATE_DIR : path.join(path.dirname(socket), 'cgmanager.state');
}

export function buildCommand(env: NodeJS.ProcessEnv = process.env): Command {
  const command = new Command('cgmanager')
    .description('Per-host cgroup manager: serves the CGManager D-Bus API on a unix socket and checks every caller\'s kernel credentials.')
    .version(VERSION, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help')
    .option('--socket <path>', 'unix socket to listen on (env CGMANAGER_SOCKET; default /sys/fs/cgroup/cgmanager/sock, or /run/cgmanager/sock when /sys/fs/cgroup is cgroup2)')
    .option('-m, --mount <list>', 'named v1 hierarchies to mount when missing, e.g. name=systemd (comma list; the last -m counts, as in the original)', list, [])
    .option('--mount-dir <dir>', 'directory the daemon owns for the hierarchies it mounts', '/run/cgmanager/fs')
    .option('-M, --skip <list>', 'hierarchies to hide, e.g. memory,name=systemd (comma list, repeatable)', (v: string, prev: string[]) => prev.concat(list(v)), [] as string[])
    .option('--max-depth <n>', 'deepest cgroup a caller may create, counted from the hierarchy root (default 16)', integer(1, 1024))
    .option('--limits-file <path>', `per-requestor limits as "key = value" lines (default ${DEFAULT_LIMITS_FILE}, read when it exists); options given here win`)
    .option('--max-cgroups-per-uid <n>', `cgroups one uid may own in each hierarchy (default ${DEFAULT_LIMITS.maxCgroupsPerUid})`, integer(1, 100_000_000))
    .option('--max-walk <n>', `cgroups one recursive call (GetTasksRecursive, recursive Remove, Prune) may walk (default ${DEFAULT_LIMITS.maxWalk})`, integer(1, 100_000_000))
    .option('--limit-root', 'hold host root to --max-cgroups-per-uid and --max-walk too (root is exempt by default)')
    .option('--recount-interval <s>', `seconds between background recounts of cgroup owners, 0: never (default ${DEFAULT_LIMITS.recountIntervalS})`, integer(0, 604_800));
  addCommonOptions(command, env, 'how long an Scm peer may take to send each credential');
  return command
    .option('--allow-autoremove-premounted <list>', 'premounted v1 hierarchies (or "all") on which RemoveOnEmpty/Prune may set notify_on_release', list, [])
    .option('--autoremove-premounted-set-release-agent', 'also install our release agent on those hierarchies when they have none', false)
    .option('--state-dir <dir>', 'where remove-on-empty marks, the create journal, the release agents and v2 device rule lists live (default /run/cgmanager; beside the socket for a non-default --socket)')
    .option('--mount-poll-interval <ms>', 'how often to look for hierarchies mounted or unmounted after start (0: never)', integer(0, 3_600_000), 1000)
    // Test only: makes Create pause between hierarchies so that a test can SIGKILL the daemon
    // half-way through and check that the next start rolls the create back. Never use it in production.
    .addOption(new Option('--test-create-pause <ms>').argParser(integer(0, 60_000)).default(0).hideHelp())
    // Test only: makes SetValue, Chmod, Chown, MovePid, Remove, Prune and RemoveOnEmpty pause between their permission checks
    // and their writes, so that the hostile suite can rename cgroups in that window. Never in production.
    .addOption(new Option('--test-check-pause <ms>').argParser(integer(0, 60_000)).default(0).hideHelp())
    // Test only: the same for Create (and Setup's create step), between a parent's check and the mkdir in it.
    .addOption(new Option('--test-create-check-pause <ms>').argParser(integer(0, 60_000)).default(0).hideHelp())
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
  const o = command.opts<CommonOptionValues & {
    socket?: string;
    mount: string[];
    mountDir: string;
    skip: string[];
    maxDepth?: number;
    limitsFile?: string;
    maxCgroupsPerUid?: number;
    maxWalk?: number;
    limitRoot?: boolean;
    recountInterval?: number;
    allowAutoremovePremounted: string[];
    autoremovePremountedSetReleaseAgent: boolean;
    stateDir?: string;
    mountPollInterval: number;
    testCreatePause: number;
    testCheckPause: number;
    testCreateCheckPause: number;
  }>();
  const socket = o.socket ?? defaultSocketPath(env);
  const { limits: fromFile, file: limitsFile } = readLimitsFile(o.limitsFile);
  const limits: QuotaLimits = {
    ...DEFAULT_LIMITS,
    ...fromFile,
    ...defined({
      maxCgroupsPerUid: o.maxCgroupsPerUid,
      maxDepth: o.maxDepth,
      maxWalk: o.maxWalk,
      limitRoot: o.limitRoot,
      recountIntervalS: o.recountInterval,
    }),
  };
  return {
    socket,
    mount: o.mount,
    mountDir: o.mountDir,
    skip: o.skip,
    maxDepth: limits.maxDepth,
    limits,
    limitsFile,
    ...commonOptionsFrom(o),
    allowAutoremovePremounted: o.allowAutoremovePremounted,
    autoremoveSetReleaseAgent: o.autoremovePremountedSetReleaseAgent,
    stateDir: o.stateDir ?? defaultStateDir(socket),
    mountPollMs: o.mountPollInterval,
    testCreatePauseMs: o.testCreatePause,
    testCheckPauseMs: o.testCheckPause,
    testCreateCheckPauseMs: o.testCreateCheckPause,
  };
}

function defined<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The limits file: the default one only when it exists, one given with --limits-file always.
 * A bad file stops the start with a message naming the file, line and key (exit status 1).
 */
function readLimitsFile(given: string | undefined): { limits: Partial<QuotaLimits>; file: string | undefined } {
  const file = given ?? DEFAULT_LIMITS_FILE;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (given === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') return { limits: {}, file: undefined };
    return limitsError(`cannot read the limits file ${file}: ${(err as Error).message}`);
  }
  try {
    return { limits: parseLimitsFile(text, file), file };
  } catch (err) {
    return limitsError(`bad limits file ${(err as Error).message}`);
  }
}

/** Like commander's own errors (printed, then thrown with the exit status), without the help text. */
function limitsError(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  throw new CommanderError(1, 'cgmanager.limitsFile', message);
}
