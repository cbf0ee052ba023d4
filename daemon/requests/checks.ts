// The checks every request makes, in one place: resolve a cgroup argument, require it to
// exist, require the subtree bound, and ask policy for file access. Each throws a named
// CgmError whose message says which cgroup or file and why.
import { CgmError } from '../errors';
import { HIDDEN_LEAF, type Hierarchy } from '../cgroupfs/layout';
import { chopProxySuffix, isUnder, mayAccess, quoteArg, resolveCgroupArg, type Access, type CgroupArgForm } from '../policy';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';

/** Resolves `arg` in form `form` against the caller's cgroups in h. */
export function resolveTarget(caller: Caller, h: Hierarchy, arg: string, form: CgroupArgForm): { path: string; base: string } {
  const needsProxy = form === 'movepidabs';
  const resolved = resolveCgroupArg(arg, form, {
    requestor: form === 'movepidabs' ? '/' : caller.requestorCgroup(h),
    proxy: needsProxy ? caller.proxyCgroup(h) : '/',
  });
  if ('error' in resolved) throw resolved.error;
  // The hidden v2 leaf is ours: it never appears in answers and cannot be named.
  if (resolved.path.split('/').includes(HIDDEN_LEAF)) {
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

export function assertAccess(rt: Runtime, caller: Caller, h: Hierarchy, cg: string, file: string | undefined, access: Access): void {
  const decision = mayAccess(caller.requestor, rt.cgfs.stat(h, cg, file), access);
  if (!decision.allow) {
    throw new CgmError('AccessDenied', `${access} access to ${rt.cgfs.describe(h, cg, file)} denied: ${decision.reason}`);
  }
}
