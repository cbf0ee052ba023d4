// Who a request is for: the requestor r (and proxy p) with the facts about them that
// policy needs, read from /proc lazily and at most once per request.
import * as fs from 'node:fs';
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import { readProcCgroup } from '../cgroupfs/discover';
import { parseProcCgroup, type ProcCgroupLine } from '../proc/proc-cgroup';
import { parseIdMap, type IdMapRange } from '../proc/id-map';
import { readText } from '../proc/read-text';
import type { Cred, Requestor, Victim } from '../policy';
import { namespaceInode, type Runtime } from '../runtime';

function readIdMap(pid: number, kind: 'uid_map' | 'gid_map'): IdMapRange[] | undefined {
  try {
    return parseIdMap(fs.readFileSync(`/proc/${pid}/${kind}`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A requestor whose uid_map is read only if a check needs it (host root never does). */
class LazyRequestor implements Requestor {
  private map: IdMapRange[] | undefined | null = null;
  constructor(readonly cred: Cred) {}
  get uidMap(): IdMapRange[] | undefined {
    if (this.map === null) this.map = readIdMap(this.cred.pid, 'uid_map');
    return this.map;
  }
}

// The transport returns the very same string while a peer's /proc/PID/cgroup is unchanged
// (ServerConnection.peerCgroupText), so the last parse is kept and reused for it: a
// request still sees what was read for it, only the parsing is spared. Never mutated.
let lastText: string | undefined;
let lastLines: ProcCgroupLine[] = [];

/** Each parsed text's cgroup per hierarchy, for as long as the parse is in use. */
const cgroupOfMemo = new WeakMap<ProcCgroupLine[], Map<Hierarchy, string | undefined>>();

function parsedCgroupText(text: string): ProcCgroupLine[] {
  if (text !== lastText) {
    lastLines = parseProcCgroup(text);
    lastText = text;
  }
  return lastLines;
}

export class Caller {
  readonly requestor: Requestor;
  private rLines: ProcCgroupLine[] | undefined;
  private pLines: ProcCgroupLine[] | undefined;
  private gidMapCache: IdMapRange[] | undefined | null = null;

  /**
   * @param r the requestor (SO_PEERCRED for plain calls, the first SCM credential for Scm calls)
   * @param p the proxy: the connection's SO_PEERCRED, or 'daemon' where the reference lets the
   *   daemon stand in for it (plain MovePidAbs and GetPidCgroupAbs: the base is the hierarchy root)
   */
  constructor(
    private readonly rt: Runtime,
    readonly r: Cred,
    readonly p: Cred | 'daemon',
    /** r's /proc/PID/cgroup text when the transport already has a cheap way to read it */
    private readonly requestorCgroupText?: () => string | undefined,
  ) {
    this.requestor = new LazyRequestor(r);
  }

  get isProxied(): boolean {
    return this.p !== 'daemon' && (this.p.pid !== this.r.pid || this.p.uid !== this.r.uid || this.p.gid !== this.r.gid);
  }

  private linesOf(pid: number): ProcCgroupLine[] {
    const lines = readProcCgroup(pid);
    if (!lines) throw new CgmError('UnixProcessIdUnknown', `process ${pid} does not exist (any more)`);
    return lines;
  }

  private cgroupFrom(lines: ProcCgroupLine[], h: Hierarchy, pid: number): string {
    let found = cgroupOfMemo.get(lines);
    if (!found) cgroupOfMemo.set(lines, (found = new Map()));
    let cg = found.get(h);
    if (cg === undefined && !found.has(h)) found.set(h, (cg = this.rt.layout.cgroupOf(lines, h)));
    if (cg === undefined) throw new CgmError('NoSuchController', `process ${pid} has no cgroup in hierarchy ${h.label}`);
    return cg;
  }

  /** r's own cgroup in h, hierarchy-absolute, unchopped. */
  requestorCgroup(h: Hierarchy): string {
    if (!this.rLines && this.requestorCgroupText) {
      const text = this.requestorCgroupText();
      if (text === undefined) throw new CgmError('UnixProcessIdUnknown', `process ${this.r.pid} does not exist (any more)`);
      this.rLines = parsedCgroupText(text);
    }
    this.rLines ??= this.linesOf(this.r.pid);
    return this.cgroupFrom(this.rLines, h, this.r.pid);
  }

  /** p's own cgroup in h, unchopped; the top the daemon sees when the daemon stands in for p. */
  proxyCgroup(h: Hierarchy): string {
    if (this.p === 'daemon') return h.mountRoot;
    if (!this.isProxied) return this.requestorCgroup(h);
    this.pLines ??= this.linesOf(this.p.pid);
    return this.cgroupFrom(this.pLines, h, this.p.pid);
  }

  /** r's gid_map, for presenting group owners in ListKeys. */
  get gidMap(): IdMapRange[] | undefined {
    if (this.gidMapCache === null) this.gidMapCache = readIdMap(this.r.pid, 'gid_map');
    return this.gidMapCache;
  }

  get uidMap(): readonly IdMapRange[] | undefined {
    return this.requestor.uidMap;
  }
}

/** The victim of MovePid/GetPidCgroup: must exist; its real uid comes from /proc/<pid>/status. */
export function readVictim(pid: number): Victim {
  let status: string;
  try {
    status = readText(`/proc/${pid}/status`); // open, read, close: no fstat, no second read
  } catch {
    throw new CgmError('UnixProcessIdUnknown', `process ${pid} does not exist`);
  }
  const match = /^Uid:\s+(\d+)/m.exec(status);
  return { pid, uid: match ? Number(match[1]) : -1 };
}

/** The cgroup of any process in h (GetPidCgroup victims, MovePid victims). */
export function processCgroup(rt: Runtime, pid: number, h: Hierarchy): string {
  return cgroupIn(rt, processCgroupLines(pid), pid, h);
}

/** A process's /proc/PID/cgroup, parsed (read once for a request that looks at several hierarchies). */
export function processCgroupLines(pid: number): ProcCgroupLine[] {
  const lines = readProcCgroup(pid);
  if (!lines) throw new CgmError('UnixProcessIdUnknown', `process ${pid} does not exist`);
  return lines;
}

/** The cgroup in h of the process whose /proc/PID/cgroup `lines` are. */
export function cgroupIn(rt: Runtime, lines: ProcCgroupLine[], pid: number, h: Hierarchy): string {
  const cg = rt.layout.cgroupOf(lines, h);
  if (cg === undefined) throw new CgmError('NoSuchController', `process ${pid} has no cgroup in hierarchy ${h.label}`);
  return cg;
}

/**
 * Is `pid` in the daemon's own pid (or user) namespace? One stat of its /proc/PID/ns link; the
 * namespace rule asks for only the kinds a method needs, each once.
 */
export function sameNamespace(rt: Runtime, pid: number, kind: 'pid' | 'user'): boolean {
  const own = kind === 'pid' ? rt.self.pidNs : rt.self.userNs;
  return own === undefined || namespaceInode(pid, kind) === own;
}
