// What the lifecycle tests share beyond the harness: killing the test daemon the hard way,
// running commands and extra daemons inside the test's private mount namespace, reading
// the daemon's state directory, and when the kernel-run release agent cannot be tested.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLIENT_ENV, runCommand, startCollecting, stopChild, waitFor, type RunResult } from '../../helpers/processes';
import { DAEMON_MAIN } from '../../helpers/requirements';
import type { TestDaemon } from '../../helpers';

/** The state directory of the harness's daemon: beside its socket (daemon/options.ts). */
export function stateDirOf(env: TestDaemon): string {
  return path.join(path.dirname(env.socket), 'cgmanager.state');
}

/** SIGKILLs the test daemon (a process the harness started) and waits until it is reaped. */
export async function killDaemon(env: TestDaemon): Promise<void> {
  const pid = env.daemonPid;
  process.kill(pid, 'SIGKILL');
  // /proc/PID goes once Node has reaped it, and then the harness knows it exited.
  if (!(await waitFor(() => !fs.existsSync(`/proc/${pid}`), 5000, 5))) throw new Error(`daemon ${pid} survived SIGKILL`);
}

/** Runs a shell script inside the test's private mount namespace. */
export function inHolder(env: TestDaemon, script: string): Promise<RunResult> {
  return runCommand(['nsenter', `--mount=/proc/${env.holderPid}/ns/mnt`, '--', 'sh', '-c', script]);
}

/** Files in a directory ([] when it does not exist). */
export function filesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** inode of the initial pid namespace (include/linux/proc_ns.h: PROC_PID_INIT_INO). */
const PROC_PID_INIT_INO = 0xeffffffc;

/**
 * The kernel runs release agents as root in the init namespaces. Inside a container the
 * agent (and the socket) the test generates are not there, so that part cannot be tested.
 * (An image's stale /.dockerenv proves nothing; the namespaces do.)
 */
export function releaseAgentSkipReason(): string | undefined {
  const ino = (p: string): number | undefined => {
    try {
      return fs.statSync(p).ino;
    } catch {
      return undefined;
    }
  };
  if (ino('/proc/self/ns/pid') !== PROC_PID_INIT_INO) return 'not in the initial pid namespace (a container?): the kernel runs release agents in the host\'s namespaces';
  const initMnt = ino('/proc/1/ns/mnt');
  if (initMnt !== undefined && initMnt !== ino('/proc/self/ns/mnt')) return 'not in the initial mount namespace: the kernel runs release agents where this test\'s files are not';
  return undefined;
}

export interface OwnDaemon {
  pid: number;
  child: ChildProcess;
  result: Promise<RunResult>;
  logFile: string;
  logText(): string;
  stop(signal?: NodeJS.Signals): Promise<RunResult>;
}

/**
 * Another daemon process inside the test's namespace, with an environment of our choosing
 * (NOTIFY_SOCKET, LISTEN_FDS) and an optional argv prefix (a socket-activation launcher).
 * Resolves once it logged "serving".
 */
export async function startOwnDaemon(
  env: TestDaemon,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; launcher?: readonly string[]; logFile: string },
): Promise<OwnDaemon> {
  const argv = [
    'nsenter', `--mount=/proc/${env.holderPid}/ns/mnt`, '--',
    ...(options.launcher ?? []),
    process.execPath, DAEMON_MAIN, '--log-file', options.logFile, ...args,
  ];
  const { child, result } = startCollecting(argv, { env: { PATH: CLIENT_ENV.PATH, ...options.env } });
  result.catch(() => undefined);
  const logText = (): string => {
    try {
      return fs.readFileSync(options.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const serving = await waitFor(() => child.exitCode !== null || logText().includes('"msg":"serving"'), 15_000, 10);
  if (!serving || child.exitCode !== null) {
    await stopChild(child, 'SIGKILL', 1000);
    const r = await result;
    throw new Error(`daemon did not start: ${r.stderr}\n${logText()}`);
  }
  return {
    pid: child.pid ?? -1,
    child,
    result,
    logFile: options.logFile,
    logText,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await stopChild(child, signal, 5000);
      return result;
    },
  };
}
