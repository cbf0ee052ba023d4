// The only code that touches cgroup files. Every path is built from a hierarchy and a
// normalised hierarchy-absolute cgroup path through the layout, so nothing here can
// leave the hierarchy's mount. It never logs and never decides who may do what;
// system errors come back as CgmErrors that name the cgroup and file.
import * as fs from 'node:fs';
import { CgmError, errorFromErrno } from '../errors';
import type { FileOwner } from '../policy';
import { HIDDEN_LEAF, type Hierarchy, type Layout } from './layout';
import { driverFor, type CgroupDriver } from './driver';
import { readText } from '../proc/read-text';
import { PinnedCgroup } from './pinned';

/** The hierarchy path of child `name` of `cg`. */
export function childOf(cg: string, name: string): string {
  return cg === '/' ? `/${name}` : `${cg}/${name}`;
}

/** `cg` relative to its ancestor `top` ('a/b' for '/t/a/b' below '/t'). */
export function relativeBelow(top: string, cg: string): string {
  const prefix = top === '/' ? '/' : `${top}/`;
  if (!cg.startsWith(prefix) || cg.length === prefix.length) throw new CgmError('InvalidArgs', `${cg} is not below ${top}`);
  return cg.slice(prefix.length);
}

/** The hierarchy path of the parent of `cg` ('/' for top-level cgroups and for '/'). */
export function parentOf(cg: string): string {
  const i = cg.lastIndexOf('/');
  return i <= 0 ? '/' : cg.slice(0, i);
}

/** Whether hierarchy path `cg` is `top` or below it (every cgroup is below '/'). */
export function isAtOrBelow(cg: string, top: string): boolean {
  return top === '/' || cg === top || cg.startsWith(`${top}/`);
}

export interface KeyEntry {
  name: string;
  /** undefined when the entry vanished between readdir and stat */
  owner: FileOwner | undefined;
}

/**
 * Told of every cgroup the daemon makes or removes and every directory it chowns, whichever
 * request (or automatic removal, or roll-back) did it: the quota ledger keeps its counts so.
 */
export interface CgroupObserver {
  created(h: Hierarchy, cg: string): void;
  ownerChanged(h: Hierarchy, cg: string, uid: number): void;
  removed(h: Hierarchy, cg: string): void;
}

/** Synchronous on purpose: fs.*Sync costs ~1.4x the C floor per cycle, fs.promises 16-24x (DESIGN.md). */
export class CgroupFs {
  constructor(
    readonly layout: Layout,
    private readonly observer?: CgroupObserver,
  ) {}

  /** The driver of the hierarchy's version: everything that differs between v1 and v2. */
  driver(h: Hierarchy): CgroupDriver {
    return driverFor(h);
  }

  /** 'memory:/a/b' or 'memory:/a/b/memory.max', for messages. */
  describe(h: Hierarchy, cg: string, file?: string): string {
    return `${h.primaryName}:${cg}${file === undefined ? '' : `${cg === '/' ? '' : '/'}${file}`}`;
  }

  /** The directory of cgroup `cg`; FileNotFound when the daemon cannot see that part of the hierarchy. */
  dir(h: Hierarchy, cg: string): string {
    const p = this.layout.toFsPath(h, cg);
    if (p === undefined) throw new CgmError('FileNotFound', `${this.describe(h, cg)} is outside what the daemon can see of that hierarchy`);
    return p;
  }

  path(h: Hierarchy, cg: string, file?: string): string {
    const dir = this.dir(h, cg);
    if (file === undefined || file === '') return dir;
    if (file.includes('/') && !file.startsWith(`${HIDDEN_LEAF}/`)) throw new CgmError('InvalidArgs', `bad file name ${file}`);
    return `${dir}/${file}`;
  }

  /**
   * Opens the cgroup's directory once, so that a request checks and acts on the same cgroup
   * even if it is renamed meanwhile (pinned.ts); undefined when it does not exist.
   */
  pin(h: Hierarchy, cg: string): PinnedCgroup | undefined {
    const p = this.layout.toFsPath(h, cg);
    return p === undefined ? undefined : PinnedCgroup.open(p, this.describe(h, cg), (uid) => this.observer?.ownerChanged(h, cg, uid));
  }

  /**
   * Opens child `name` of the opened cgroup `parent` (cgroup `parentCg` when it was opened)
   * through that opening, not by path; undefined when there is none.
   */
  pinChild(h: Hierarchy, parent: PinnedCgroup, parentCg: string, name: string): PinnedCgroup | undefined {
    const cg = childOf(parentCg, name);
    return PinnedCgroup.open(parent.path(name), this.describe(h, cg), (uid) => this.observer?.ownerChanged(h, cg, uid));
  }

  /** mkdir of child `name` through the opened `parent` (0755); false if it existed. */
  mkdirIn(h: Hierarchy, parent: PinnedCgroup, parentCg: string, name: string): boolean {
    if (!parent.mkdir(name)) return false;
    this.observer?.created(h, childOf(parentCg, name));
    return true;
  }

  /** rmdir of child `name` through the opened `parent`. */
  rmdirIn(h: Hierarchy, parent: PinnedCgroup, parentCg: string, name: string): void {
    parent.rmdir(name);
    this.observer?.removed(h, childOf(parentCg, name));
  }

  /**
   * rmdir of cgroup `cg`, a descendant of the opened cgroup `top` (cgroup `topCg` when it was
   * opened), looked up below that opening: renames inside a subtree stay inside it, so
   * nothing outside `top` can be reached however the names below it change.
   */
  rmdirBelow(h: Hierarchy, top: PinnedCgroup, topCg: string, cg: string): void {
    top.rmdir(relativeBelow(topCg, cg));
    this.observer?.removed(h, cg);
  }

  /**
   * rmdir of the opened cgroup `dir` (cgroup `cg`) through its opened parent, only while its
   * name there still names `dir`. Renaming in the parent needs write access to it, which lets
   * the renamer remove any empty cgroup there itself, so the moment between the comparison and
   * the rmdir gives it nothing. FileNotFound when the name no longer names `dir`.
   */
  rmdirIfSame(h: Hierarchy, parent: PinnedCgroup, dir: PinnedCgroup, cg: string): void {
    const name = cg.slice(cg.lastIndexOf('/') + 1);
    const now = this.pinChild(h, parent, parentOf(cg), name);
    const same = now !== undefined && now.identity !== undefined && now.identity === dir.identity;
    now?.close();
    if (!same) throw new CgmError('FileNotFound', `${this.describe(h, cg)} is no longer the cgroup that was checked`);
    parent.rmdir(name);
    this.observer?.removed(h, cg);
  }

  /** chownAll through the opened cgroup `dir`. Returns entries that failed. */
  chownAllIn(dir: PinnedCgroup, uid: number, gid: number): string[] {
    dir.chown(undefined, uid, gid);
    const failed: string[] = [];
    for (const name of dir.readdir()) {
      try {
        dir.chown(name, uid, gid);
      } catch {
        failed.push(name);
      }
    }
    return failed;
  }

  stat(h: Hierarchy, cg: string, file?: string): FileOwner | undefined {
    const p = this.layout.toFsPath(h, cg);
    if (p === undefined) return undefined;
    try {
      // throwIfNoEntry: a missing cgroup (Create's usual case) costs no Error and stack trace.
      const st = fs.lstatSync(file ? `${p}/${file}` : p, { throwIfNoEntry: false });
      return st && { uid: st.uid, gid: st.gid, mode: st.mode };
    } catch {
      return undefined;
    }
  }

  isDirectory(h: Hierarchy, cg: string): boolean {
    const owner = this.stat(h, cg);
    return owner !== undefined && (owner.mode & fs.constants.S_IFMT) === fs.constants.S_IFDIR;
  }

  fileExists(h: Hierarchy, cg: string, file: string): boolean {
    const owner = this.stat(h, cg, file);
    return owner !== undefined && (owner.mode & fs.constants.S_IFMT) === fs.constants.S_IFREG;
  }

  /** Creates the cgroup directory (0755). Returns false if it already existed. */
  mkdir(h: Hierarchy, cg: string): boolean {
    try {
      fs.mkdirSync(this.dir(h, cg), 0o755);
      this.observer?.created(h, cg);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw errorFromErrno(err, `cannot create ${this.describe(h, cg)}`);
    }
  }

  rmdir(h: Hierarchy, cg: string): void {
    try {
      fs.rmdirSync(this.dir(h, cg));
      this.observer?.removed(h, cg);
    } catch (err) {
      throw errorFromErrno(err, `cannot remove ${this.describe(h, cg)}`);
    }
  }

  chown(h: Hierarchy, cg: string, file: string | undefined, uid: number, gid: number): void {
    try {
      fs.lchownSync(this.path(h, cg, file), uid, gid);
      if (file === undefined || file === '') this.observer?.ownerChanged(h, cg, uid);
    } catch (err) {
      throw errorFromErrno(err, `cannot chown ${this.describe(h, cg, file)}`);
    }
  }

  /** Chowns the directory and every entry in it (a new cgroup belongs wholly to its creator). Returns entries that failed. */
  chownAll(h: Hierarchy, cg: string, uid: number, gid: number): string[] {
    this.chown(h, cg, undefined, uid, gid);
    const failed: string[] = [];
    for (const name of this.readdir(h, cg)) {
      try {
        fs.lchownSync(`${this.dir(h, cg)}/${name}`, uid, gid);
      } catch {
        failed.push(name);
      }
    }
    return failed;
  }

  chmod(h: Hierarchy, cg: string, file: string | undefined, mode: number): void {
    try {
      fs.chmodSync(this.path(h, cg, file), mode);
    } catch (err) {
      throw errorFromErrno(err, `cannot chmod ${this.describe(h, cg, file)}`);
    }
  }

  readFile(h: Hierarchy, cg: string, file: string, maxBytes: number): string {
    try {
      return readText(this.path(h, cg, file), maxBytes);
    } catch (err) {
      if (err instanceof RangeError) throw new CgmError('LimitsExceeded', `${this.describe(h, cg, file)} holds more than ${maxBytes} bytes`);
      throw errorFromErrno(err, `cannot read ${this.describe(h, cg, file)}`);
    }
  }

  /** One write(2) of `value`, as the kernel expects for cgroup control files. */
  writeFile(h: Hierarchy, cg: string, file: string, value: string): void {
    let fd: number;
    try {
      fd = fs.openSync(this.path(h, cg, file), fs.constants.O_WRONLY);
    } catch (err) {
      throw errorFromErrno(err, `cannot open ${this.describe(h, cg, file)}`);
    }
    try {
      if (value.length > 0) fs.writeSync(fd, value);
    } catch (err) {
      const e = errorFromErrno(err, `cannot write ${JSON.stringify(value.replace(/\n$/, ''))} to ${this.describe(h, cg, file)}`);
      throw e;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Whitespace-separated decimal ids until the first non-number, sorted and de-duplicated. */
  readPids(h: Hierarchy, cg: string, file: string): number[] {
    const text = this.readFile(h, cg, file, 64 * 1024 * 1024);
    const pids: number[] = [];
    for (const word of text.split(/\s+/)) {
      if (word === '') continue;
      if (!/^\d+$/.test(word)) break;
      pids.push(Number(word));
    }
    return pids;
  }

  readdir(h: Hierarchy, cg: string): string[] {
    try {
      return fs.readdirSync(this.dir(h, cg));
    } catch (err) {
      throw errorFromErrno(err, `cannot list ${this.describe(h, cg)}`);
    }
  }

  /** Names of the child cgroups, the hidden leaf excluded. */
  children(h: Hierarchy, cg: string): string[] {
    const leaf = this.driver(h).leaf;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.dir(h, cg), { withFileTypes: true });
    } catch (err) {
      throw errorFromErrno(err, `cannot list ${this.describe(h, cg)}`);
    }
    return entries.filter((e) => e.isDirectory() && e.name !== leaf).map((e) => e.name);
  }

  /** Regular files of the cgroup with their owners (ListKeys). */
  keys(h: Hierarchy, cg: string): KeyEntry[] {
    const dir = this.dir(h, cg);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      throw errorFromErrno(err, `cannot list ${this.describe(h, cg)}`);
    }
    return entries
      .filter((e) => e.isFile())
      .map((e) => {
        try {
          const st = fs.lstatSync(`${dir}/${e.name}`);
          return { name: e.name, owner: { uid: st.uid, gid: st.gid, mode: st.mode } };
        } catch {
          return { name: e.name, owner: undefined };
        }
      });
  }
}
