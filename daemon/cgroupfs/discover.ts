// The thin real-I/O edge of hierarchy discovery: reads mountinfo, cgroup.controllers and
// /proc/PID/cgroup and hands the text to the pure parsers. It never logs and never mounts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMountinfo } from '../proc/mountinfo';
import { parseProcCgroup, type ProcCgroupLine } from '../proc/proc-cgroup';
import { readText } from '../proc/read-text';
import { buildLayout, type Layout } from './layout';

export interface DiscoverLayoutOptions {
  /** where procfs is mounted; tests point it at a fixture tree */
  procRoot?: string;
  /** the daemon's -M list */
  skip?: readonly string[];
}

/**
 * A v2 root without cgroup.controllers (or one we cannot read) simply offers no controllers;
 * it stays addressable as 'unified'.
 */
function readV2Controllers(mountPoint: string): string[] {
  try {
    return fs.readFileSync(path.join(mountPoint, 'cgroup.controllers'), 'utf8').split(/\s+/).filter((c) => c !== '');
  } catch {
    return [];
  }
}

/** Throws when mountinfo cannot be read: without it the daemon knows no hierarchy at all. */
export function discoverLayout(options: DiscoverLayoutOptions = {}): Layout {
  const procRoot = options.procRoot ?? '/proc';
  const text = fs.readFileSync(path.join(procRoot, 'self', 'mountinfo'), 'utf8');
  return buildLayout(parseMountinfo(text), {
    ...(options.skip === undefined ? {} : { skip: options.skip }),
    readV2Controllers,
  });
}

function isNoSuchProcess(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  // ESRCH: the process exited between open() and read().
  return code === 'ENOENT' || code === 'ESRCH';
}

/** The parsed /proc/PID/cgroup of `pid`, or undefined when no such process exists. */
export function readProcCgroup(pid: number, procRoot = '/proc'): ProcCgroupLine[] | undefined {
  // A pid that is not a positive integer would name some other /proc entry ('self', '1.5').
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  let text: string;
  try {
    text = readText(`${procRoot}/${pid}/cgroup`);
  } catch (err) {
    if (isNoSuchProcess(err)) return undefined;
    throw err;
  }
  return parseProcCgroup(text);
}
