// The create journal: Create appends its intent before each mkdir and empties the
// journal when it has finished (or rolled back), so a daemon killed half-way through a
// multi-hierarchy Create leaves a record of what it may have made. The next start
// rolls those cgroups back (rmdir, only while they are still empty) before it serves.
// Requests run one at a time, so the journal only ever holds the Create in progress.
// No fsync: what it protects (cgroups, /run) does not survive a reboot either.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from './logger';
import type { CgroupFs } from './cgroupfs/cgroupfs';
import type { Hierarchy } from './cgroupfs/layout';

export const JOURNAL_FILE_NAME = 'create.journal';

/**
 * One mkdir the interrupted Create attempted, for the requestor uid/gid: 'existed' when the
 * cgroup turned out to be there already (someone else's), else 'attempted'.
 */
export interface JournalEntry {
  hierarchy: string;
  mountPoint: string;
  cgroup: string;
  uid: number;
  gid: number;
  outcome: 'attempted' | 'existed';
}

type JournalRecord =
  | { op: 'mkdir'; hierarchy: string; mountPoint: string; cgroup: string; uid: number; gid: number }
  | { op: 'existed' };

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/** Parses the journal; a torn last line (killed mid-write) is ignored. */
export function parseJournal(text: string): JournalEntry[] {
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let rec: Partial<Record<'op' | 'hierarchy' | 'mountPoint' | 'cgroup' | 'uid' | 'gid', unknown>>;
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      continue;
    }
    const last = entries[entries.length - 1];
    if (rec.op === 'mkdir' && typeof rec.hierarchy === 'string' && typeof rec.mountPoint === 'string' && typeof rec.cgroup === 'string' && isId(rec.uid) && isId(rec.gid)) {
      if (!rec.cgroup.startsWith('/') || rec.cgroup.split('/').includes('..')) continue;
      entries.push({ hierarchy: rec.hierarchy, mountPoint: rec.mountPoint, cgroup: rec.cgroup, uid: rec.uid, gid: rec.gid, outcome: 'attempted' });
    } else if (rec.op === 'existed' && last) {
      last.outcome = 'existed';
    }
  }
  return entries;
}

export interface CreateJournal {
  /** Before mkdir of `cg` in `h`, which will belong to uid:gid. */
  intend(h: Hierarchy, cg: string, uid: number, gid: number): void;
  /** The last intended mkdir found the cgroup already there (someone else made it meanwhile). */
  existed(): void;
  /** The Create is over (done or rolled back): nothing is left to undo. */
  finish(): void;
  close(): void;
}

/** For a daemon without a usable state directory. */
export const NO_JOURNAL: CreateJournal = {
  intend: () => undefined,
  existed: () => undefined,
  finish: () => undefined,
  close: () => undefined,
};

export class FileJournal implements CreateJournal {
  private fd: number | undefined;
  private written = false;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
  }

  static inDir(stateDir: string): FileJournal {
    return new FileJournal(path.join(stateDir, JOURNAL_FILE_NAME));
  }

  private append(rec: JournalRecord): void {
    if (this.fd === undefined) return;
    fs.writeSync(this.fd, `${JSON.stringify(rec)}\n`);
    this.written = true;
  }

  intend(h: Hierarchy, cg: string, uid: number, gid: number): void {
    this.append({ op: 'mkdir', hierarchy: h.primaryName, mountPoint: h.mountPoint, cgroup: cg, uid, gid });
  }

  existed(): void {
    this.append({ op: 'existed' });
  }

  finish(): void {
    if (!this.written || this.fd === undefined) return;
    fs.ftruncateSync(this.fd, 0);
    this.written = false;
  }

  /** What an earlier, interrupted Create left; read before the first request. */
  pending(): JournalEntry[] {
    return parseJournal(fs.readFileSync(this.file, 'utf8'));
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

function findHierarchy(cgfs: CgroupFs, entry: JournalEntry): Hierarchy | undefined {
  const { hierarchies } = cgfs.layout;
  return hierarchies.find((h) => h.primaryName === entry.hierarchy && h.mountPoint === entry.mountPoint)
    ?? cgfs.layout.find(entry.hierarchy);
}

/**
 * Undoes what the interrupted Create made, newest first: rmdir of each cgroup it attempted
 * that is still empty (the kernel refuses rmdir of a cgroup with tasks or children, so
 * nothing that came to be used is ever removed) and still owned as our mkdir leaves it:
 * root's before the chown, the requestor's after it. Then empties the journal.
 */
export function rollBackInterrupted(journal: FileJournal, cgfs: CgroupFs, log: Logger): number {
  let entries: JournalEntry[];
  try {
    entries = journal.pending();
  } catch (err) {
    log.error({ err }, 'cannot read the create journal');
    return 0;
  }
  let removed = 0;
  for (const entry of entries.reverse()) {
    if (entry.outcome === 'existed') continue;
    const h = findHierarchy(cgfs, entry);
    if (!h || entry.cgroup === '/' || entry.cgroup === h.mountRoot) continue;
    const owner = cgfs.stat(h, entry.cgroup);
    if (!owner || !cgfs.isDirectory(h, entry.cgroup)) continue;
    const ours = (owner.uid === 0 && owner.gid === 0) || (owner.uid === entry.uid && owner.gid === entry.gid);
    if (!ours) continue;
    try {
      cgfs.rmdir(h, entry.cgroup);
      removed++;
      log.warn({ cgroup: cgfs.describe(h, entry.cgroup) }, 'rolled back a cgroup of an interrupted create');
    } catch (err) {
      log.warn({ cgroup: cgfs.describe(h, entry.cgroup), err: (err as Error).message }, 'cannot roll back a cgroup of an interrupted create; it is in use');
    }
  }
  journal.finish();
  // finish() only truncates what this process wrote; the file may hold the earlier run's lines.
  fs.truncateSync(journal.file, 0);
  return removed;
}
