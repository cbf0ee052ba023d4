// Pure path logic on hierarchy-absolute cgroup paths ('/' or '/a/b', never a trailing slash):
// subtree bounds, argument resolution (reference §3.4), proxy-suffix chopping (§4.4), depth. No I/O.

import { CgmError } from '../errors';
import { MAX_CGROUP_ARG_BYTES, quoteArg } from './arguments';
import { allow, deny, type Decision } from './types';

/** SPEC §4 `--max-depth` default: the depth a created cgroup may reach (reference §3.5 kept 16). */
export const DEFAULT_MAX_DEPTH = 16;

/**
 * The suffixes reference §4.4 removes from r's or p's cgroup before it is used as a MovePid,
 * MovePidAbs or GetPidCgroupAbs base, so that systemd's PID 1 (in /init.scope) and a cgproxy
 * run by systemd are treated as sitting in their parent.
 */
const PROXY_SUFFIXES: readonly string[] = ['/init.scope', '/system.slice/cgproxy.service'];

/**
 * Is `path` at or below `base`? Boundary-aware (SPEC §2.2, fixing reference §14.2 item 5):
 * '/a' contains '/a' and '/a/b' but not '/ab'; '/' contains every path.
 */
export function isUnder(path: string, base: string): boolean {
  if (base === '/') return path.startsWith('/');
  return path === base || path.startsWith(`${base}/`);
}

/** The original's `sane_cgroup` (reference §3.4): the substring '..' anywhere is refused, even in 'a..b'. */
export function hasDotDot(arg: string): boolean {
  return arg.includes('..');
}

/**
 * Appends a relative argument to a base: repeated slashes collapse, '' and '.' components vanish,
 * and the result has no trailing slash ('/' when nothing remains). A '..' component is refused here
 * too, although callers have rejected it already: paths are walked one component at a time and
 * never trusted to have been checked upstream (LXC's rule, STYLE.md).
 */
export function joinCgroup(base: string, relative: string): string {
  const components: string[] = [];
  for (const component of `${base}/${relative}`.split('/')) {
    if (component === '' || component === '.') continue;
    if (component === '..') throw new CgmError('InvalidArgs', `cgroup ${quoteArg(relative)} must not contain '..'`);
    components.push(component);
  }
  return `/${components.join('/')}`;
}

/**
 * The argument forms of reference §3.4:
 * - 'relative' (form B: Create, Remove, RemoveOnEmpty, Prune, Chown, Chmod): always below r's
 *   cgroup; a leading '/' does not make it absolute.
 * - 'readable' (form A: GetValue, SetValue, GetTasks, GetTasksRecursive, ListChildren, ListKeys):
 *   below r's cgroup, or from the hierarchy root when it starts with '/'.
 * - 'movepid' (form C, MovePid): below r's chopped cgroup; a leading '/' is refused.
 * - 'movepidabs' (form C, MovePidAbs): below p's chopped cgroup; a leading '/' is harmless.
 */
export type CgroupArgForm = 'relative' | 'readable' | 'movepid' | 'movepidabs';

/**
 * The own cgroups of r and p in this hierarchy, as read from /proc/<pid>/cgroup, unchopped
 * (resolveCgroupArg applies §4.4 chopping for the forms that need it). For a plain MovePidAbs
 * the daemon stands in for p, so `proxy` is '/'.
 */
export interface CgroupBases {
  requestor: string;
  proxy: string;
}

/** `path` is the resolved hierarchy-absolute cgroup; `base` the (chopped where due) cgroup it was appended to. */
export type ResolvedCgroup = { path: string; base: string } | { error: CgmError };

function cgroupArgError(arg: string, form: CgroupArgForm): CgmError | undefined {
  const bytes = Buffer.byteLength(arg, 'utf8');
  if (bytes > MAX_CGROUP_ARG_BYTES) {
    return new CgmError('InvalidArgs', `cgroup argument is ${bytes} bytes, longer than ${MAX_CGROUP_ARG_BYTES}`);
  }
  if (arg.includes('\0')) return new CgmError('InvalidArgs', `cgroup ${quoteArg(arg)} must not contain a NUL byte`);
  if (hasDotDot(arg)) return new CgmError('InvalidArgs', `cgroup ${quoteArg(arg)} must not contain '..'`);
  if (form === 'movepid' && arg.startsWith('/')) {
    // Reference §5.4 step 1: MovePid names targets relative to r; escapes go through MovePidAbs.
    return new CgmError('InvalidArgs', `cgroup ${quoteArg(arg)} must be relative for MovePid (use MovePidAbs)`);
  }
  return undefined;
}

function baseFor(arg: string, form: CgroupArgForm, bases: CgroupBases): string {
  switch (form) {
    case 'relative':
      return bases.requestor;
    case 'readable':
      return arg.startsWith('/') ? '/' : bases.requestor;
    case 'movepid':
      return chopProxySuffix(bases.requestor);
    case 'movepidabs':
      return chopProxySuffix(bases.proxy);
  }
}

/**
 * Validates a cgroup argument (length, NUL, '..', and the leading '/' of MovePid) and resolves it
 * per reference §3.4 into a normalised hierarchy-absolute path. A bad argument is returned as an
 * InvalidArgs error value. The caller still checks existence and the subtree bound with isUnder
 * (against p's cgroup for form A, against `base` for the MovePid forms).
 */
export function resolveCgroupArg(arg: string, form: CgroupArgForm, bases: CgroupBases): ResolvedCgroup {
  const error = cgroupArgError(arg, form);
  if (error !== undefined) return { error };
  const base = baseFor(arg, form, bases);
  // A joined path beyond PATH_MAX is left to the kernel (ENAMETOOLONG maps to InvalidArgs).
  return { path: joinCgroup(base, arg), base };
}

/** Reference §4.4: removes one trailing '/init.scope' or '/system.slice/cgproxy.service'; '' becomes '/'. */
export function chopProxySuffix(path: string): string {
  for (const suffix of PROXY_SUFFIXES) {
    if (path.endsWith(suffix)) {
      const chopped = path.slice(0, -suffix.length);
      return chopped === '' ? '/' : chopped;
    }
  }
  return path;
}

/**
 * The answer of GetPidCgroup (no leading slash, reference §5.2: 'xxx/b') and GetPidCgroupAbs
 * (leading slash, §5.3: '/xxx/b'): the victim's cgroup relative to `base`, '/' when equal.
 * Undefined when the victim is not under base (boundary-aware, SPEC §2.2).
 */
export function relativeAnswer(victimPath: string, base: string, withLeadingSlash: boolean): string | undefined {
  if (!isUnder(victimPath, base)) return undefined;
  if (victimPath === base) return '/';
  const relative = base === '/' ? victimPath.slice(1) : victimPath.slice(base.length + 1);
  return withLeadingSlash ? `/${relative}` : relative;
}

/** The number of components of a hierarchy-absolute path: '/' is 0, '/a/b' is 2. */
export function depthOf(path: string): number {
  return path.split('/').filter((component) => component !== '').length;
}

/**
 * SPEC §2.2 (fixing reference §3.5, which counted the requestor's depth instead): the cgroup being
 * created may be at most `maxDepth` components below the hierarchy root, counted on its
 * hierarchy-absolute path as the daemon sees it in /proc/<pid>/cgroup. A denial maps to LimitsExceeded.
 */
export function mayCreateAtDepth(newPath: string, maxDepth: number): Decision {
  const depth = depthOf(newPath);
  if (depth <= maxDepth) return allow;
  return deny(`cgroup ${newPath} would be ${depth} levels deep, more than the limit of ${maxDepth}`);
}
