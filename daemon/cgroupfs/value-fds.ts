// Kept-open fds of cgroup value files, so that a read is one pread(2) instead of
// open+read+close. Only PinnedCgroup reads through it, and only after the request has
// opened the cgroup's directory by path and checked the caller against it: an entry is
// keyed by that opened directory's identity (st_dev:st_ino, never reused on cgroupfs
// while we hold an fd below it, which keeps the superblock alive) and the file's name, so
// the fd read is exactly the file /proc/self/fd/N/<file> would open now. What that means:
// - a cgroup renamed, or removed and made again under the same name, is another directory
//   (another inode): its files miss the cache and are opened afresh;
// - permissions and ownership are checked on every request before the read, as before;
// - a file that went away (its cgroup removed; on v2 a controller disabled in the parent,
//   which removes its files and makes new ones when re-enabled) fails on the old fd with
//   ENODEV: any failure drops the fd and the read is done again by path, whose answer
//   (value or error) is the one returned.
// Files with state per open file (the task lists of cgroup v1 cache their pid list per
// open file; cgroup.* files; pressure files hold triggers) are never kept. Bounded: at most
// MAX_KEPT fds, the least recently used closed first, and an fd unused for IDLE_MS to 2 x
// IDLE_MS is closed: an open file keeps its hierarchy's mount busy (umount: EBUSY) and a
// removed cgroup's memory allocated, so only files in use stay open.
import * as fs from 'node:fs';
import { readTextAt } from '../proc/read-text';

export const MAX_KEPT = 128;
export const IDLE_MS = 1000;

interface Kept {
  fd: number;
  /** the sweep generation of its last use */
  used: number;
}

/** directory identity + '/' + file -> fd; Map order is recency (re-inserted on every use) */
const kept = new Map<string, Kept>();
let generation = 0;
let sweeper: NodeJS.Timeout | undefined;

/** Closes the fds not used since the last sweep (the oldest uses come first in the map). */
function sweep(): void {
  for (const [key, entry] of kept) {
    if (entry.used === generation) break;
    drop(key, entry.fd);
  }
  generation++;
  if (kept.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function keep(key: string, fd: number): void {
  kept.set(key, { fd, used: generation });
  if (sweeper === undefined) {
    sweeper = setInterval(sweep, IDLE_MS);
    sweeper.unref();
  }
}

/** Whether reads of `file` may go through a kept fd (no per-open state in the kernel). */
export function isKeepable(file: string): boolean {
  return !file.startsWith('cgroup.') && file !== 'tasks' && !file.endsWith('.pressure') && !file.includes('/');
}

function drop(key: string, fd: number): void {
  kept.delete(key);
  try {
    fs.closeSync(fd);
  } catch {
    // already unusable; nothing else holds it
  }
}

/**
 * Reads `file` of the directory identified by `dirId` (its st_dev:st_ino), through a kept
 * fd when there is one, else by `path` (below the pinned directory), keeping that fd.
 * Throws what reading by path throws.
 */
export function readValueFile(dirId: string, file: string, path: string, maxBytes: number): string {
  const key = `${dirId}/${file}`;
  const entry = kept.get(key);
  if (entry !== undefined) {
    kept.delete(key);
    try {
      const text = readTextAt(entry.fd, maxBytes);
      // An empty answer is not kept: seq_file would not restart a read at 0 that returned nothing.
      if (text.length > 0) {
        keep(key, entry.fd);
        return text;
      }
    } catch {
      // stale (ENODEV after removal) or anything else: the read by path below decides
    }
    drop(key, entry.fd);
  }
  const fresh = fs.openSync(path, fs.constants.O_RDONLY);
  let text: string;
  try {
    text = readTextAt(fresh, maxBytes);
  } catch (err) {
    fs.closeSync(fresh);
    throw err;
  }
  if (text.length === 0) {
    fs.closeSync(fresh);
    return text;
  }
  keep(key, fresh);
  if (kept.size > MAX_KEPT) {
    const [oldestKey, oldest] = kept.entries().next().value as [string, Kept];
    drop(oldestKey, oldest.fd);
  }
  return text;
}

/** Closes every kept fd (tests; a daemon has no need to). */
export function closeKeptValueFds(): void {
  for (const [key, entry] of [...kept]) drop(key, entry.fd);
  if (sweeper !== undefined) clearInterval(sweeper);
  sweeper = undefined;
}

/** How many fds are kept (tests). */
export function keptValueFdCount(): number {
  return kept.size;
}
