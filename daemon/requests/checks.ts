// The checks every request makes, in one place: resolve a cgroup argument, require it to
// exist, require the subtree bound, and ask policy for file access. Each throws a named
// CgmError whose message says which cgroup or file and why.
import { constants } from 'node:fs';
import { CgmError } from '../errors';
import { HIDDEN_LEAF, type Hierarchy } from '../cgroupfs/layout';
import { chopProxySuffix, isHostRoot, isUnder, mayAccess, quoteArg, resolveCgroupArg, type Access, type CgroupArgForm, type FileOwner } from '../policy';
import type { Runtime } from '../runtime';
import type { PinnedCgroup } from '../cgroupfs/pinned';
import type { Caller } from './caller';

const { S_IFMT, S_IFDIR, S_IFREG } = constants;

/** Resolves `arg` in form `form` against the caller's cgroups in h. */
export function resolveTarget(caller: Caller, h: Hierarchy, arg: string, form: CgroupArgForm): { path: string; base: string } {
  const needsProxy = form === 'movepidabs';
  const resolved = resolveCgroupArg(arg, form, {
    requestor: form === 'movepidabs' ? '/' : caller.requestorCgroup(h),
    proxy: needsProxy ? caller.proxyCgroup(h) : '/',
  });
  if ('error' in resolved) throw resolved.error;
  // The hidden v2 leaf is ours: it never appears in answers and cannot be named.
  if (resolved.path.includes(HIDDEN_LEAF) && resolved.path.split('/').includes(HIDDEN_LEAF)) {
    throw new CgmError('FileNotFound', `cgroup ${quoteArg(arg)} does not exist`);
  }
  return resolved;
}

/** Validates a cgroup argument without any hierarchy (for checks that must precede all work). */
export function assertCgroupArg(arg: string, form: CgroupArgForm): void {
  const resolved = resolveCgroupArg(arg, form, { requestor: '/', proxy: '/' });
  if ('error' in resolved) throw resolved.error;
}

export function assertCgroupExists(rt: Runtime, h: Hierarchy, cg: string): void {
  if (!rt.cgfs.isDirectory(h, cg)) throw new CgmError('FileNotFound', `cgroup ${rt.cgfs.describe(h, cg)} does not exist`);
}

/** Form A reads are bounded by p's cgroup (reference §3.4; SPEC §2.2 extends it to ListKeys). */
export function assertUnderProxy(rt: Runtime, caller: Caller, h: Hierarchy, cg: string): void {
  // p's cgroup with §4.4's init.scope / cgproxy.service suffix chopped, as for MovePidAbs.
  const bound = chopProxySuffix(caller.proxyCgroup(h));
  if (!isUnder(cg, bound)) {
    throw new CgmError('AccessDenied', `cgroup ${rt.cgfs.describe(h, cg)} is outside the caller's subtree ${bound}`);
  }
}

/** The cgroup must exist and r needs `access` to its directory: one stat answers both. */
export function assertCgroupAccess(rt: Runtime, caller: Caller, h: Hierarchy, cg: string, access: Access): void {
  const owner = rt.cgfs.stat(h, cg);
  if (!owner || (owner.mode & S_IFMT) !== S_IFDIR) throw new CgmError('FileNotFound', `cgroup ${rt.cgfs.describe(h, cg)} does not exist`);
  assertOwnerAccess(rt, caller, h, cg, undefined, owner, access);
}

/** Opens cgroup `cg` for the rest of the request (close it in a finally); FileNotFound if it is no cgroup. */
export function pinCgroup(rt: Runtime, h: Hierarchy, cg: string): PinnedCgroup {
  const pinned = rt.cgfs.pin(h, cg);
  if (!pinned) throw new CgmError('FileNotFound', `cgroup ${rt.cgfs.describe(h, cg)} does not exist`);
  return pinned;
}

/**
 * The cgroups a request of several steps (Setup) has already opened, by hierarchy: each step
 * checks and acts through the same opening instead of looking the path up again.
 */
export type OpenCgroups = ReadonlyMap<Hierarchy, OpenCgroup>;

export interface OpenCgroup {
  readonly path: string;
  readonly pinned: PinnedCgroup;
  /** when the request made this cgroup itself: the owner of every file in it as made (create.ts) */
  readonly filesOwner?: { readonly uid: number; readonly gid: number };
}

/**
 * A step's cgroup `cg` in h: the request's own opening when it is that cgroup (`own` false: the
 * request closes it), else opened now (`own` true: the step closes it).
 */
export function pinFor(rt: Runtime, h: Hierarchy, cg: string, open: OpenCgroups | undefined): { pinned: PinnedCgroup; own: boolean; filesOwner?: OpenCgroup['filesOwner'] } {
  const held = open?.get(h);
  if (held !== undefined && held.path === cg) return { pinned: held.pinned, own: false, filesOwner: held.filesOwner };
  return { pinned: pinCgroup(rt, h, cg), own: true };
}

/** r needs `access` to `file` of the opened cgroup (the directory itself for none), as it is now. */
export function assertPinnedAccess(rt: Runtime, caller: Caller, h: Hierarchy, cg: string, pinned: PinnedCgroup, file: string | undefined, access: Access): void {
  assertOwnerAccess(rt, caller, h, cg, file, pinned.stat(file), access);
}

/**
 * r needs `access` to file `key` of the opened cgroup: it must be a regular file there. Host
 * root may touch any file, so for it the stat is skipped and the read or write itself reports
 * a missing key (ENOENT).
 */
export function assertPinnedKeyAccess(rt: Runtime, caller: Caller, h: Hierarchy, cg: string, pinned: PinnedCgroup, key: string, access: Access): void {
  if (isHostRoot(caller.requestor)) return;
  const owner = pinned.stat(key);
  if (!owner || (owner.mode & S_IFMT) !== S_IFREG) throw new CgmError('FileNotFound', `no key ${quoteArg(key)} in ${rt.cgfs.describe(h, cg)}`);
  assertOwnerAccess(rt, caller, h, cg, key, owner, access);
}

export function assertAccess(rt: Runtime, caller: Caller, h: Hierarchy, cg: string, file: string | undefined, access: Access): void {
  assertOwnerAccess(rt, caller, h, cg, file, rt.cgfs.stat(h, cg, file), access);
}

/** assertAccess with the file's lstat already in hand (one lstat serving several checks). */
export function assertOwnerAccess(rt: Runtime, caller: Caller, h: Hierarchy, cg: string, file: string | undefined, owner: FileOwner | undefined, access: Access): void {
  const decision = mayAccess(caller.requestor, owner, access);
  if (!decision.allow) {
    throw new CgmError('AccessDenied', `${access} access to ${rt.cgfs.describe(h, cg, file)} denied: ${decision.reason}`);
  }
}

/**
 * --test-check-pause (hidden, tests only): blocks the whole daemon between a request's permission
 * check and its write, so that the hostile suite can rename cgroups in that window and show that
 * the write still lands on what was checked.
 */
export function testOnlyCheckPause(rt: Runtime): void {
  const ms = rt.options.testCheckPauseMs;
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
