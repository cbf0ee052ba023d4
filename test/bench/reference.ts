// The bench's comparison with a C libdbus server (reference-server.c, the shape of the
// original cgmanager): both servers are driven by the same C load generator (loadgen.c),
// one after the other and twice each, so that load from elsewhere on the machine hits both
// alike. Measures daemon CPU per GetValue, throughput at saturation with 64 clients, p99 at
// half of saturation in open loop, and the daemon's RSS with 5 000 connections held.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeMessage, MessageType } from '../../daemon/dbus/wire';
import { INTERFACE_NAME, OBJECT_PATH } from '../../daemon/dbus/interface';

const SRC = path.resolve(__dirname, '..', '..', '..', 'test', 'bench');
export const INSTALL_HINT = 'install libdbus-1-dev and pkg-config (Debian/Ubuntu: apt-get install libdbus-1-dev pkg-config; Fedora: dnf install dbus-devel pkgconf)';

export interface LoadResult {
  calls: number;
  errors: number;
  overflow: number;
  seconds: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** Compiles the load generator and, where libdbus-1-dev is installed, the reference server. */
export function compileTools(dir: string): { loadgen: string; reference?: string; missing?: string } {
  const loadgen = path.join(dir, 'loadgen');
  execFileSync('cc', ['-O2', '-o', loadgen, path.join(SRC, 'loadgen.c')]);
  let flags: string[];
  try {
    flags = execFileSync('pkg-config', ['--cflags', '--libs', 'dbus-1'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split(/\s+/);
  } catch {
    return { loadgen, missing: `libdbus-1 development files not found: ${INSTALL_HINT}` };
  }
  const reference = path.join(dir, 'reference-server');
  execFileSync('cc', ['-O2', '-o', reference, path.join(SRC, 'reference-server.c'), ...flags]);
  return { loadgen, reference };
}

/** The GetValue call both servers answer, as bytes (the load generator patches the serial). */
export function getValueMessage(controller: string, cgroup: string, key: string): string {
  return encodeMessage({
    type: MessageType.MethodCall,
    serial: 1,
    path: OBJECT_PATH,
    interface: INTERFACE_NAME,
    member: 'GetValue',
    signature: 'sss',
    body: [controller, cgroup, key],
  }).toString('hex');
}

export async function startReference(binary: string, socket: string, baseDir: string): Promise<ChildProcess> {
  const child = spawn(binary, [socket, baseDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`reference server exited ${code}`)));
    child.stdout?.once('data', () => resolve());
  });
  child.removeAllListeners('exit');
  return child;
}

export function runLoad(loadgen: string, socket: string, msg: string, args: string[]): LoadResult {
  const out = execFileSync(loadgen, [socket, msg, ...args], { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 }).toString();
  return JSON.parse(out) as LoadResult;
}

/** CPU time (user + system, every thread) a process has used, in µs. */
export function cpuUs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6; // utime + stime, at USER_HZ 100
}

export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN) / 1024;
}

/** A closed-loop run with the server's CPU time per call. */
export function closedRun(loadgen: string, server: { pid: number; socket: string }, msg: string, conns: number, seconds: number): LoadResult & { cpuPerCallUs: number; perSecond: number } {
  const before = cpuUs(server.pid);
  const r = runLoad(loadgen, server.socket, msg, ['closed', String(conns), String(seconds)]);
  const cpu = cpuUs(server.pid) - before;
  return { ...r, cpuPerCallUs: cpu / Math.max(1, r.calls), perSecond: r.calls / r.seconds };
}

/**
 * Holds `conns` connections (each made one call) and returns the server's RSS half a second
 * after the last one connected, and again once they have been quiet for `quietS` seconds.
 */
export async function holdConnections(
  loadgen: string, server: { pid: number; socket: string }, msg: string, conns: number, quietS: number,
): Promise<{ rssMiB: number; steadyRssMiB: number; held: number }> {
  const child = spawn(loadgen, [server.socket, msg, 'hold', String(conns)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const held = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /held (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`load generator exited ${code} before holding its connections`)));
  });
  await new Promise((r) => setTimeout(r, 500)); // let the server settle (GC) before reading its RSS
  const rss = rssMiB(server.pid);
  await new Promise((r) => setTimeout(r, quietS * 1000));
  const steadyRssMiB = rssMiB(server.pid);
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.once('exit', r));
  child.stdin?.end();
  await exited;
  return { rssMiB: rss, steadyRssMiB, held };
}
