// Finding the host daemon from inside a container (reference §9.3): the host's socket
// directory is bind-mounted where clients expect it; cgproxy moves it aside (to the
// upstream directory) and serves its own socket in its place. It never removes a socket
// that answers: that is the host daemon's, seen through the bind mount.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { isAnswering } from '../daemon/listen-socket';

export type Takeover =
  | { outcome: 'use-upstream' }
  | { outcome: 'moved'; how: 'move-mount' | 'rename' }
  | { outcome: 'already-running' }
  | { outcome: 'nothing-answers' };

/** The mount (mountinfo fields) whose mount point is exactly `dir`, if any. */
function mountAt(dir: string): { options: string[] } | undefined {
  let found: { options: string[] } | undefined;
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    // The last mount on a point is the visible one.
    if (f[4] !== undefined && unescapeMountPath(f[4]) === dir) found = { options: (f[5] ?? '').split(',') };
  }
  return found;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Reference §9.3 step 1: a read-only /sys/fs/cgroup is remounted read-write so the proxy can make its socket. */
function ensureWritable(dir: string): void {
  if (!mountAt(dir)?.options.includes('ro')) return;
  try {
    execFileSync('mount', ['-n', '-o', 'remount,rw', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    // mkdir below reports the real problem
  }
}

/**
 * Moves the directory holding `socket` to the directory of `upstream`, as a mount if it is
 * one (MS_MOVE), else by renaming it (reference §9.3: a socket directory that is not a
 * mount point, as on old hosts or when only the socket file was bind-mounted).
 */
function moveSocketDirectory(socket: string, upstream: string): 'move-mount' | 'rename' {
  const upperDir = path.dirname(socket);
  const lowerDir = path.dirname(upstream);
  ensureWritable(path.dirname(upperDir));
  fs.mkdirSync(lowerDir, { recursive: true, mode: 0o755 });
  if (mountAt(upperDir)) {
    try {
      // -n: inside a container mount(8) cannot update /run/mount/utab and would report a
      // move that happened as a failure.
      execFileSync('mount', ['-n', '--move', upperDir, lowerDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch {
      // judged by the result below
    }
    if (isAnswering(upstream)) {
      fs.mkdirSync(upperDir, { recursive: true, mode: 0o755 });
      return 'move-mount';
    }
  }
  // Not a mount point (or the move failed): rename. Only a dead socket file is removed.
  if (isAnswering(upstream)) throw new Error(`${upstream} answers already; refusing to replace it`);
  fs.rmSync(upstream, { force: true });
  fs.rmdirSync(lowerDir);
  fs.renameSync(upperDir, lowerDir);
  fs.mkdirSync(upperDir, { mode: 0o755 });
  return 'rename';
}

export function takeOver(socket: string, upstream: string): Takeover {
  const upper = isAnswering(socket);
  const lower = isAnswering(upstream);
  if (upper && lower) return { outcome: 'already-running' };
  if (lower) return { outcome: 'use-upstream' };
  if (!upper) return { outcome: 'nothing-answers' };
  return { outcome: 'moved', how: moveSocketDirectory(socket, upstream) };
}

/** --check-master: is a manager reachable (so a proxy, not a daemon, belongs here)? */
export function checkMaster(socket: string, upstream: string): boolean {
  return isAnswering(upstream) || isAnswering(socket);
}
