// The namespace rules for plain (non-Scm) calls, reference §4.6: which methods need the daemon's pid or user ns.
// Pure: the caller compares /proc/<pid>/ns links; Scm calls never come here (the kernel translated them).

import { allow, deny, type Decision } from './types';

/** The namespace facts of a plain caller relative to the daemon. */
export interface CallerNamespaces {
  samePidNs: boolean;
  sameUserNs: boolean;
}

interface NamespaceRule {
  needs: 'pid' | 'user' | 'both';
  message: string;
}

// The messages are the reference's own (§4.6), including the "Escape request" text the original
// also gives for plain MovePid (§14.2 item 12); the caller reports them as WrongNamespace.
// A pid from another pid ns would name a different task here; a uid from another user ns a different
// user, so these calls need the Scm variant (or cgproxy) for the kernel to translate.
// The original's extra MovePidAbs rule ("A proxy is required" on kernels without /proc/self/ns/pid)
// is not kept: every kernel with cgroup2 has pid namespaces.
const RULES: ReadonlyMap<string, NamespaceRule> = new Map([
  ['GetPidCgroup', { needs: 'pid', message: 'GetPidCgroup called from non-init namespace' }],
  ['GetPidCgroupAbs', { needs: 'pid', message: 'GetPidCgroupAbs called from non-init namespace' }],
  ['MovePid', { needs: 'pid', message: 'Escape request from different namespace requires a proxy' }],
  ['MovePidAbs', { needs: 'pid', message: 'Escape request from different namespace requires a proxy' }],
  ['Chown', { needs: 'user', message: 'chown called from different user namespace' }],
  // cgmanager1: Setup names pids and a uid/gid; the Scm form lets the kernel translate both.
  ['Setup', { needs: 'both', message: 'Setup called from a different pid or user namespace requires SetupScm (or a proxy)' }],
]);

/**
 * May a caller in these namespaces make this plain call? Every method not listed in reference §4.6
 * is allowed from anywhere ("not unsafe, just confusing": it gets untranslated host pids and uids).
 */
export function mayCallPlain(method: string, caller: CallerNamespaces): Decision {
  const rule = RULES.get(method);
  if (rule === undefined) return allow;
  const same = rule.needs === 'pid' ? caller.samePidNs : rule.needs === 'user' ? caller.sameUserNs : caller.samePidNs && caller.sameUserNs;
  return same ? allow : deny(rule.message);
}
