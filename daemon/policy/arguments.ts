// Throwing validators for the scalar arguments of API methods (keys, file names, pids, ids, values, modes).
// Pure: they look only at the argument; they never touch the filesystem and never decide who may do what.

import { CgmError } from '../errors';

/** PATH_MAX: the original's MAXPATHLEN bound on cgroup arguments (reference §3.4). */
export const MAX_CGROUP_ARG_BYTES = 4096;
/** NAME_MAX: a key or chmod file is one directory entry. */
export const MAX_NAME_BYTES = 255;
/**
 * Longest SetValue value. The kernel accepts at most one page per write to a cgroup file
 * (kernfs atomic_write_len = PAGE_SIZE, else E2BIG); 64 KiB is the largest common page size
 * (arm64/ppc64), so nothing longer can ever be written.
 */
export const MAX_VALUE_BYTES = 65536;

/**
 * Keys SetValue refuses (SPEC §2.2, fixing reference §14.2 item 3): task membership goes through
 * MovePid, and the release-agent files steer the daemon's own autoremoval (reference §8.1).
 */
const UNSETTABLE_KEYS: ReadonlyMap<string, string> = new Map([
  ['tasks', 'use MovePid to move tasks'],
  ['cgroup.procs', 'use MovePid to move tasks'],
  ['cgroup.threads', 'use MovePid to move tasks'],
  ['release_agent', 'the release agent is managed by the daemon'],
  ['notify_on_release', 'use RemoveOnEmpty'],
]);

const SHOWN_CHARS = 80;

/** An argument as it may appear in a message: quoted, control characters escaped, long ones cut. */
export function quoteArg(arg: string): string {
  const shown = arg.length > SHOWN_CHARS ? `${arg.slice(0, SHOWN_CHARS)}…` : arg;
  return JSON.stringify(shown);
}

function invalid(message: string): CgmError {
  return new CgmError('InvalidArgs', message);
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function assertFileName(arg: string, what: string): void {
  if (arg.includes('\0')) throw invalid(`${what} ${quoteArg(arg)} must not contain a NUL byte`);
  if (arg.includes('/')) throw invalid(`${what} ${quoteArg(arg)} must be a single file name, without '/'`);
  if (arg === '.' || arg === '..') throw invalid(`${what} ${quoteArg(arg)} must name a file, not '.' or '..'`);
  if (byteLength(arg) > MAX_NAME_BYTES) {
    throw invalid(`${what} ${quoteArg(arg)} is longer than ${MAX_NAME_BYTES} bytes`);
  }
}

/**
 * GetValue/SetValue key (SPEC §2.2, fixing reference §14.2 item 4 where the key could be `../x`):
 * one non-empty file name of the cgroup directory.
 */
export function assertKey(key: string): void {
  if (key === '') throw invalid('key must not be empty');
  assertFileName(key, 'key');
}

/** assertKey, plus the keys SetValue must never write (SPEC §2.2). */
export function assertSettableKey(key: string): void {
  assertKey(key);
  const why = UNSETTABLE_KEYS.get(key);
  if (why !== undefined) throw invalid(`key ${quoteArg(key)} cannot be set with SetValue: ${why}`);
}

/** Chmod's file argument (reference §5.7): '' is the cgroup directory itself; else one file name, no '/' or '\'. */
export function assertChmodFile(file: string): void {
  if (file === '') return;
  assertFileName(file, 'file');
  if (file.includes('\\')) throw invalid(`file ${quoteArg(file)} must not contain '\\'`);
}

function isInt32(n: number): boolean {
  return Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31;
}

/** A pid argument: a positive int32 (the original accepted anything and failed later). */
export function assertPid(pid: number, what = 'pid'): void {
  if (!isInt32(pid) || pid <= 0) throw invalid(`${what} ${pid} is not a valid process id`);
}

/** Chown's uid/gid (reference §5.6): an int32 id, where -1 means "leave unchanged" as for chown(2). */
export function assertIdArg(id: number, what: 'uid' | 'gid'): void {
  if (!isInt32(id) || id < -1) throw invalid(`${what} ${id} is not a valid id (use -1 to leave it unchanged)`);
}

/** A SetValue value: no NUL (it would truncate the write) and at most MAX_VALUE_BYTES. */
export function assertValue(value: string): void {
  if (value.includes('\0')) throw invalid('value must not contain a NUL byte');
  const bytes = byteLength(value);
  if (bytes > MAX_VALUE_BYTES) {
    throw new CgmError('LimitsExceeded', `value is ${bytes} bytes, more than the limit of ${MAX_VALUE_BYTES}`);
  }
}

/** A Chmod mode: permission bits only (0 to 07777); file-type bits are not the caller's to set. */
export function assertMode(mode: number): void {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    const octal = Number.isInteger(mode) && mode > 0 ? ` (0${mode.toString(8)})` : '';
    throw invalid(`mode ${mode}${octal} is not a permission mode between 0 and 07777`);
  }
}
