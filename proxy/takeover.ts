// Finding the host daemon from inside a container (reference §9.3): the host's socket
// directory is bind-mounted where clients expect it; cgproxy moves it aside (to the
// upstream directory) and serves its own socket in its place.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { isAnswering } from '../daemon/listen-socket';

export type Takeover =
  | { outcome: 'use-upstream' }
  | { outcome: 'moved'; how: 'move-mount' | 'rename' }
  | { outcome: 'already-running' }
  | { outcome: 'nothing-answers' };

/** Moves the directory holding `socket` to the directory of `upstream`, as a mount if it is one. */
function moveSocketDirectory(socket: string, upstream: string): 'move-mount' | 'rename' {
  const upperDir = path.dirname(socket);
  const lowerDir = path.dirname(upstream);
  fs.mkdirSync(lowerDir, { recursive: true, mode: 0o755 });
  try {
    execFileSync('mount', ['--move', upperDir, lowerDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    fs.mkdirSync(upperDir, { recursive: true, mode: 0o755 });
    return 'move-mount';
  } catch {
    // Not a mount point (an old kernel's host, or a bind-mounted socket file): rename.
    fs.rmSync(upstream, { force: true });
    fs.rmdirSync(lowerDir);
    fs.renameSync(upperDir, lowerDir);
    fs.mkdirSync(upperDir, { mode: 0o755 });
    return 'rename';
  }
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
