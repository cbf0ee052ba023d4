// The public face of the permission policy and argument validation; requests import policy from here only.
// Re-exports only: no logic and no I/O may be added to this file.

export { allow, deny, type Access, type Cred, type Decision, type FileOwner, type Requestor } from './types';
export { isHostRoot, isNsRoot, mayAccess } from './may-access';
export { mayMovePid, type Victim } from './may-move-pid';
export { mayChown } from './may-chown';
export { mayCallPlain, type CallerNamespaces } from './namespaces';
export {
  DEFAULT_MAX_DEPTH,
  chopProxySuffix,
  depthOf,
  hasDotDot,
  isUnder,
  joinCgroup,
  mayCreateAtDepth,
  relativeAnswer,
  resolveCgroupArg,
  type CgroupArgForm,
  type CgroupBases,
  type ResolvedCgroup,
} from './cgroup-paths';
export {
  MAX_CGROUP_ARG_BYTES,
  MAX_NAME_BYTES,
  MAX_VALUE_BYTES,
  assertChmodFile,
  assertIdArg,
  assertKey,
  assertMode,
  assertPid,
  assertSettableKey,
  assertValue,
  quoteArg,
} from './arguments';
