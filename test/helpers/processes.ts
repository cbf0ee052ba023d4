// Running and stopping the processes the integration tests start: one-shot commands with
// their output, long-lived ones tracked by pid, and waits that never hang a test.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import { slack } from './slack';

export interface RunResult {
  /** exit status; null when killed by a signal */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

export interface RunOptions {
  /** written to stdin, which is then closed */
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A minimal environment for client processes, so that host settings do not leak into results. */
export const CLIENT_ENV: NodeJS.ProcessEnv = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/',
  LANG: 'C',
  LC_ALL: 'C',
};

/** Resolves when `child` has exited (immediately if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Waits up to `ms` for `child` to exit; true if it did. */
export async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), slack(ms));
  });
  const done = await Promise.race([exited(child).then(() => true as const), timeout]);
  clearTimeout(timer);
  return done;
}

/** Sends `signal`, waits `graceMs`, then SIGKILLs. Only ever used on children we spawned. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill(signal);
  if (await waitExit(child, graceMs)) return;
  child.kill('SIGKILL');
  await waitExit(child, 5000);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Starts `argv` and collects its output; the promise resolves on exit (or rejects on spawn failure). */
export function startCollecting(argv: readonly string[], options: RunOptions & { keepStdinOpen?: boolean } = {}): {
  child: ChildProcess;
  result: Promise<RunResult>;
} {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command');
  const spawnOptions: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? CLIENT_ENV, cwd: options.cwd ?? '/' };
  const child = spawn(cmd, args, spawnOptions);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => err.push(d));
  child.stdin?.on('error', () => undefined); // the child may exit without reading
  if (options.input !== undefined) child.stdin?.write(options.input);
  if (!options.keepStdinOpen) child.stdin?.end();
  const result = new Promise<RunResult>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill('SIGKILL'), slack(options.timeoutMs));
    }
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        pid: child.pid ?? -1,
      });
    });
  });
  return { child, result };
}

/** Runs `argv` to completion (default timeout 20 s) and returns what it printed. */
export function runCommand(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return startCollecting(argv, { timeoutMs: 20_000, ...options }).result;
}

/** Polls `predicate` every `everyMs` until it holds or `timeoutMs` (times CGMT_TIME_SCALE) passes; returns the last verdict. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000, everyMs = 10): Promise<boolean> {
  const end = Date.now() + slack(timeoutMs);
  for (;;) {
    if (predicate()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The argv of a live process ([] when it is gone). */
export function argvOf(pid: number): string[] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return (text.endsWith('\0') ? text.slice(0, -1) : text).split('\0');
  } catch {
    return [];
  }
}

/** The command line of a live process as one string ('' when it is gone). */
export function cmdlineOf(pid: number): string {
  return argvOf(pid).join(' ');
}

/** Numeric entries of /proc: every pid currently visible. */
export function allPids(): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}
