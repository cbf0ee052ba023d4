// The daemon's command line (SPEC §4) parsed with commander into a plain, validated object.
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { addCommonOptions, commonOptionsFrom, integer, list, type CommonOptions, type CommonOptionValues } from './common-options';
import { defaultSocketPath, LEGACY_SOCKET, UNIFIED_SOCKET } from './socket-path';
import { VERSION } from './version';

export interface DaemonOptions extends CommonOptions {
  socket: string;
  mount: string[];
  mountDir: string;
  skip: string[];
  maxDepth: number;
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
    .option('--max-depth <n>', 'deepest cgroup a caller may create, counted from the hierarchy root', integer(1, 1024), 16);
  addCommonOptions(command, env, 'how long an Scm peer may take to send each credential');
  return command
    .option('--allow-autoremove-premounted <list>', 'premounted v1 hierarchies (or "all") on which RemoveOnEmpty/Prune may set notify_on_release', list, [])
    .option('--autoremove-premounted-set-release-agent', 'also install our release agent on those hierarchies when they have none', false)
    .option('--state-dir <dir>', 'where remove-on-empty marks, the create journal and the release agents live (default /run/cgmanager; beside the socket for a non-default --socket)')
    .option('--mount-poll-interval <ms>', 'how often to look for hierarchies mounted or unmounted after start (0: never)', integer(0, 3_600_000), 1000)
    // Test only: makes Create pause between hierarchies so that a test can SIGKILL the daemon
    // half-way through and check that the next start rolls the create back. Never use it in production.
    .addOption(new Option('--test-create-pause <ms>').argParser(integer(0, 60_000)).default(0).hideHelp())
    // Test only: makes SetValue, Chmod, Chown and MovePid pause between their permission checks
    // and their writes, so that the hostile suite can rename cgroups in that window. Never in production.
    .addOption(new Option('--test-check-pause <ms>').argParser(integer(0, 60_000)).default(0).hideHelp())
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
    maxDepth: number;
    allowAutoremovePremounted: string[];
    autoremovePremountedSetReleaseAgent: boolean;
    stateDir?: string;
    mountPollInterval: number;
    testCreatePause: number;
    testCheckPause: number;
  }>();
  const socket = o.socket ?? defaultSocketPath(env);
  return {
    socket,
    mount: o.mount,
    mountDir: o.mountDir,
    skip: o.skip,
    maxDepth: o.maxDepth,
    ...commonOptionsFrom(o),
    allowAutoremovePremounted: o.allowAutoremovePremounted,
    autoremoveSetReleaseAgent: o.autoremovePremountedSetReleaseAgent,
    stateDir: o.stateDir ?? defaultStateDir(socket),
    mountPollMs: o.mountPollInterval,
    testCreatePauseMs: o.testCreatePause,
    testCheckPauseMs: o.testCheckPause,
  };
}
