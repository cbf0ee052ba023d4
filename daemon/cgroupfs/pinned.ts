// A cgroup directory opened once (O_PATH) for the length of a request, so that its checks and
// its writes are about the same directory: cgroup v1 lets a delegatee rename the cgroups in a
// directory it owns, and a path looked up twice may name another cgroup the second time (the
// hostile suite swaps its own child with root's between the check and the write). Everything
// goes through /proc/self/fd/N/<file>, which the kernel resolves from the opened directory, not
// from its name; files in a cgroup directory cannot be renamed, created or removed by anyone, so
// a file looked up below the pinned directory is the file that was checked. Node has no openat(2);
// the /proc/self/fd path gives the same guarantee (see proc(5), /proc/pid/fd).
// It never logs and never decides who may do what.
import * as fs from 'node:fs';
import { CgmError, errorFromErrno } from '../errors';
import type { FileOwner } from '../policy';
import { readText } from '../proc/read-text';
import type { CgroupFiles } from './value-plans';
import { isKeepable, readValueFile } from './value-fds';
import { Pacer } from './walk';

/** How far a subtree walk below an opened directory may go, and its pacing (walk.ts). */
export interface SubtreeWalk {
  pacer?: Pacer;
  /** more cgroups than this in the subtree is LimitsExceeded (the caller's max-walk) */
  maxNodes?: number;
}

/** O_PATH (open(2)); not in fs.constants, and 010000000 on every architecture Node runs on under Linux. */
const O_PATH = 0o10000000;
const OPEN_DIR = O_PATH | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

export class PinnedCgroup {
  private open = true;

  private constructor(
    private readonly fd: number,
    /** the owner and mode of the directory when it was opened, kept up to date with our own chown/chmod of it */
    private current: FileOwner,
    /** 'memory:/a/b', for messages */
    private readonly described: string,
    /** told when the directory itself changes owner (quota counts follow owners) */
    private readonly onOwnerChanged: ((uid: number) => void) | undefined,
    /** st_dev:st_ino of the opened directory: what kept value fds are filed under (value-fds.ts) */
    private readonly id: string | undefined,
  ) {}

  /** The owner and mode of the opened directory (as opened, and as this opening changed them since). */
  get owner(): FileOwner {
    return this.current;
  }

  /** Opens `dir` (the cgroup's directory); undefined when there is no directory there. */
  static open(dir: string, described: string, onOwnerChanged?: (uid: number) => void): PinnedCgroup | undefined {
    let fd: number;
    try {
      fd = fs.openSync(dir, OPEN_DIR);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
      throw errorFromErrno(err, `cannot open ${described}`);
    }
    try {
      const st = fs.fstatSync(fd);
      // An inode number past 2^53 would not survive as a JS number: no kept fds then.
      const id = Number.isSafeInteger(st.ino) ? `${st.dev}:${st.ino}` : undefined;
      return new PinnedCgroup(fd, { uid: st.uid, gid: st.gid, mode: st.mode }, described, onOwnerChanged, id);
    } catch (err) {
      fs.closeSync(fd);
      throw errorFromErrno(err, `cannot examine ${described}`);
    }
  }

  /** st_dev:st_ino of the opened directory (undefined where the inode number is too large for JS). */
  get identity(): string | undefined {
    return this.id;
  }

  /**
   * Its files as the value plans use them (value-plans.ts). `walk` bounds the subtree walks
   * (the kill fallback, Kill's wait, Stats' v1 populated): the request's caller's max-walk.
   */
  files(walk: SubtreeWalk = {}): CgroupFiles {
    return {
      read: (file, maxBytes) => this.read(file, maxBytes),
      write: (file, value) => this.write(file, value),
      exists: (file) => this.stat(file) !== undefined,
      subtreePids: () => this.subtreePids(walk),
      isSubtreeEmpty: () => this.isSubtreeEmpty(walk),
    };
  }

  /**
   * Every process in the cgroups below the opened directory (itself included), found by
   * walking below it: renames inside the subtree stay inside it (cgroupfs never moves a
   * directory to another parent), so nothing outside the checked cgroup is ever listed.
   * The walk runs in slices (walk.ts's Pacer) so that a caller's huge subtree never stalls
   * the other clients; more than `walk.maxNodes` cgroups is LimitsExceeded.
   */
  subtreePids(walk: SubtreeWalk = {}): Promise<number[]> {
    return this.walkTasks(walk, false);
  }

  /**
   * Whether no process runs anywhere below the opened directory: cgroup.events on v2 (the
   * kernel's own count), else a walk that stops at the first process.
   */
  async isSubtreeEmpty(walk: SubtreeWalk = {}): Promise<boolean> {
    if (this.stat('cgroup.events') !== undefined) return /^populated 0$/m.test(this.read('cgroup.events', 4096));
    return (await this.walkTasks(walk, true)).length === 0;
  }

  private async walkTasks(walk: SubtreeWalk, firstOnly: boolean): Promise<number[]> {
    const pacer = walk.pacer ?? new Pacer();
    const maxNodes = walk.maxNodes ?? Number.POSITIVE_INFINITY;
    const pids = new Set<number>();
    // Paths relative to the opened directory (undefined: itself), so each step is looked up below it.
    const stack: Array<string | undefined> = [undefined];
    let visited = 0;
    while (stack.length > 0) {
      const rel = stack.pop();
      visited++;
      try {
        for (const word of readText(this.path(rel === undefined ? 'cgroup.procs' : `${rel}/cgroup.procs`), 64 * 1024 * 1024).split(/\s+/)) {
          if (/^\d+$/.test(word)) pids.add(Number(word));
        }
      } catch {
        // removed while we walked: nothing there
      }
      if (firstOnly && pids.size > 0) break;
      let dir: fs.Dir | undefined;
      try {
        dir = fs.opendirSync(this.path(rel), { bufferSize: 128 });
        for (let e = dir.readSync(); e !== null; e = dir.readSync()) {
          // Every directory is a cgroup (the v2 hidden leaf too: it holds the tasks).
          if (e.isDirectory()) {
            if (visited + stack.length >= maxNodes) throw this.tooBig(maxNodes);
            stack.push(rel === undefined ? e.name : `${rel}/${e.name}`);
          }
          const turn = pacer.pace();
          if (turn) await turn;
        }
      } catch (err) {
        if (err instanceof CgmError) throw err;
        // removed (or made unreadable) while we walked: skipped with its subtree
      } finally {
        dir?.closeSync();
      }
      const turn = pacer.pace();
      if (turn) await turn;
    }
    return [...pids];
  }

  private tooBig(maxNodes: number): CgmError {
    return new CgmError('LimitsExceeded', `${this.described} has more than ${maxNodes} cgroups, the most one call may walk (limit max-walk=${maxNodes})`);
  }

  /** The path of `file` below the opened directory (the directory itself for none). */
  path(file?: string): string {
    if (!this.open) throw new CgmError('Failed', `${this.described} was used after it was closed`);
    if (file === undefined || file === '') return `/proc/self/fd/${this.fd}`;
    if (file.split('/').some((c) => c === '..' || c === '.' || c === '')) throw new CgmError('InvalidArgs', `bad file name ${file}`);
    return `/proc/self/fd/${this.fd}/${file}`;
  }

  private describe(file?: string): string {
    return file ? `${this.described}/${file}` : this.described;
  }

  /** The owner of `file` in the directory (the directory's own for none); undefined if missing. */
  stat(file?: string): FileOwner | undefined {
    if (file === undefined || file === '') return this.owner;
    try {
      const st = fs.lstatSync(this.path(file), { throwIfNoEntry: false }); // missing: no Error built
      return st && { uid: st.uid, gid: st.gid, mode: st.mode };
    } catch {
      return undefined;
    }
  }

  isDirectory(name: string): boolean {
    const st = this.stat(name);
    return st !== undefined && (st.mode & fs.constants.S_IFMT) === fs.constants.S_IFDIR;
  }

  read(file: string, maxBytes: number): string {
    try {
      const path = this.path(file); // checks the name, and that we are still open
      if (this.id !== undefined && isKeepable(file)) return readValueFile(this.id, file, path, maxBytes);
      return readText(path, maxBytes);
    } catch (err) {
      if (err instanceof RangeError) throw new CgmError('LimitsExceeded', `${this.describe(file)} holds more than ${maxBytes} bytes`);
      throw errorFromErrno(err, `cannot read ${this.describe(file)}`);
    }
  }

  /** One write(2) of `value`, as the kernel expects for cgroup control files. */
  write(file: string, value: string): void {
    let fd: number;
    try {
      fd = fs.openSync(this.path(file), fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      throw errorFromErrno(err, `cannot open ${this.describe(file)}`);
    }
    try {
      if (value.length > 0) fs.writeSync(fd, value);
    } catch (err) {
      throw errorFromErrno(err, `cannot write ${JSON.stringify(value.replace(/\n$/, ''))} to ${this.describe(file)}`);
    } finally {
      fs.closeSync(fd);
    }
  }

  chmod(file: string | undefined, mode: number): void {
    try {
      fs.chmodSync(this.path(file), mode);
    } catch (err) {
      throw errorFromErrno(err, `cannot chmod ${this.describe(file)}`);
    }
    if (file === undefined || file === '') this.current = { ...this.current, mode: (this.current.mode & fs.constants.S_IFMT) | (mode & 0o7777) };
  }

  chown(file: string | undefined, uid: number, gid: number): void {
    try {
      // chown, not lchown: /proc/self/fd/N is a magic link to the directory itself.
      fs.chownSync(this.path(file), uid, gid);
    } catch (err) {
      throw errorFromErrno(err, `cannot chown ${this.describe(file)}`);
    }
    if (file === undefined || file === '') {
      // What fstat would say now (chown(2) leaves a directory's mode alone; -1 changes nothing),
      // for the checks of a request that goes on using this opening after its chown (Setup).
      const was = this.current;
      this.current = { uid: uid === -1 ? was.uid : uid, gid: gid === -1 ? was.gid : gid, mode: was.mode };
      this.onOwnerChanged?.(uid);
    }
  }

  /** Makes child `name` (0755); false if it existed. */
  mkdir(name: string): boolean {
    try {
      fs.mkdirSync(this.path(name), 0o755);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw errorFromErrno(err, `cannot create ${this.describe(name)}`);
    }
  }

  /** Removes child cgroup `name` (it must be empty). */
  rmdir(name: string): void {
    try {
      fs.rmdirSync(this.path(name));
    } catch (err) {
      throw errorFromErrno(err, `cannot remove ${this.describe(name)}`);
    }
  }

  readdir(name?: string): string[] {
    try {
      return fs.readdirSync(this.path(name));
    } catch (err) {
      throw errorFromErrno(err, `cannot list ${this.describe(name)}`);
    }
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    fs.closeSync(this.fd);
  }
}
