// The device rule list of one cgroup with the kernel's cgroup v1 semantics
// (Documentation/admin-guide/cgroup-v1/devices.rst, security/device_cgroup.c): parsing
// `devices.allow`/`devices.deny` lines, applying them against the parent's list, propagating
// new restrictions to descendants, the `devices.list` text and the access check the BPF
// program must reproduce. Pure: no I/O, no errors thrown; outcomes are values.

/** Access bits, the same numbers as the kernel's DEVCG_ACC_* and BPF_DEVCG_ACC_*. */
export const ACC_MKNOD = 1;
export const ACC_READ = 2;
export const ACC_WRITE = 4;
export const ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE;

/** Device type bits, the kernel's DEVCG_DEV_BLOCK/CHAR (and BPF_DEVCG_DEV_*); 'a' is both. */
export const DEV_BLOCK = 1;
export const DEV_CHAR = 2;
export const DEV_ALL = DEV_BLOCK | DEV_CHAR;

/** `*` in a major or minor: the kernel stores it as ~0. */
export const ANY = -1;

/** One exception of a rule list: type 'b' or 'c', numbers or ANY, access bits. */
export interface DeviceException {
  readonly type: typeof DEV_BLOCK | typeof DEV_CHAR;
  readonly major: number;
  readonly minor: number;
  readonly access: number;
}

/**
 * A cgroup's rules: a default and exceptions to it. With 'allow' the exceptions are what is
 * denied, with 'deny' what is allowed (devices.rst §2, "Hierarchy").
 */
export interface DeviceRules {
  readonly behavior: 'allow' | 'deny';
  readonly exceptions: readonly DeviceException[];
}

/** A new cgroup on v1 and any cgroup the daemon has no rules for: everything allowed. */
export const ALLOW_ALL: DeviceRules = { behavior: 'allow', exceptions: [] };

/** What one line written to devices.allow or devices.deny asks for. */
export type DeviceRule = { readonly all: true } | { readonly all: false; readonly exception: DeviceException };

export type Parsed = { ok: true; rule: DeviceRule } | { ok: false; reason: string };

/** The kernel answers EPERM for "more than the parent allows" and EINVAL for the rest. */
export type Applied = { ok: true; rules: DeviceRules } | { ok: false; errno: 'EPERM' | 'EINVAL'; reason: string };

const MAX_U32_NUMBER = 0xfffffffe; // 0xffffffff is the wildcard itself

function parseNumber(text: string): number | undefined {
  if (text === '*') return ANY;
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_U32_NUMBER ? n : undefined;
}

/**
 * Parses `a`, or `TYPE MAJOR:MINOR ACCESS` with TYPE b|c, numbers or `*`, ACCESS one to three
 * of r, w, m (the kernel's devcgroup_update_access; like the kernel, anything starting with
 * `a` means all devices, so `a *:* rwm` works too). Stricter than the kernel only in refusing
 * trailing garbage it would ignore. Surrounding whitespace is stripped, as the kernel does.
 */
export function parseDeviceRule(line: string): Parsed {
  const text = line.trim();
  if (text.startsWith('a') && (text.length === 1 || /^a\s/.test(text))) return { ok: true, rule: { all: true } };
  const m = /^([bc]) (\S+):(\S+) ([rwm]{1,3})$/.exec(text);
  if (!m) return { ok: false, reason: `${JSON.stringify(text)} is not a device rule ('a', or 'b|c MAJOR:MINOR ACCESS' with * wildcards and access from rwm)` };
  const major = parseNumber(m[2] as string);
  const minor = parseNumber(m[3] as string);
  if (major === undefined || minor === undefined) return { ok: false, reason: `${JSON.stringify(text)}: major and minor are numbers below 4294967295 or *` };
  let access = 0;
  for (const c of m[4] as string) access |= c === 'r' ? ACC_READ : c === 'w' ? ACC_WRITE : ACC_MKNOD;
  return { ok: true, rule: { all: false, exception: { type: m[1] === 'b' ? DEV_BLOCK : DEV_CHAR, major, minor, access } } };
}

function accessText(access: number): string {
  return `${access & ACC_READ ? 'r' : ''}${access & ACC_WRITE ? 'w' : ''}${access & ACC_MKNOD ? 'm' : ''}`;
}

function numberText(n: number): string {
  return n === ANY ? '*' : String(n);
}

/** One exception in devices.list format: `c 1:3 rwm`. */
export function formatException(ex: DeviceException): string {
  return `${ex.type === DEV_BLOCK ? 'b' : 'c'} ${numberText(ex.major)}:${numberText(ex.minor)} ${accessText(ex.access)}`;
}

/**
 * devices.list as the v1 kernel prints it (devcgroup_seq_show): `a *:* rwm` alone for a
 * default-allow list (its deny exceptions are not shown), else one line per exception.
 */
export function formatDeviceList(rules: DeviceRules): string {
  if (rules.behavior === 'allow') return 'a *:* rwm';
  return rules.exceptions.map(formatException).join('\n');
}

/** The kernel's match_exception: `ex` covers the request completely. */
function matchesFully(exceptions: readonly DeviceException[], type: number, major: number, minor: number, access: number): boolean {
  return exceptions.some(
    (ex) =>
      !((type & DEV_BLOCK) && !(ex.type & DEV_BLOCK)) &&
      !((type & DEV_CHAR) && !(ex.type & DEV_CHAR)) &&
      (ex.major === ANY || ex.major === major) &&
      (ex.minor === ANY || ex.minor === minor) &&
      (access & ~ex.access) === 0,
  );
}

/** The kernel's match_exception_partial: `ex` and the request overlap at all. */
function matchesPartly(exceptions: readonly DeviceException[], type: number, major: number, minor: number, access: number): boolean {
  return exceptions.some(
    (ex) =>
      !((type & DEV_BLOCK) && !(ex.type & DEV_BLOCK)) &&
      !((type & DEV_CHAR) && !(ex.type & DEV_CHAR)) &&
      (ex.major === ANY || major === ANY || ex.major === major) &&
      (ex.minor === ANY || minor === ANY || ex.minor === minor) &&
      (access & ex.access) !== 0,
  );
}

/** Whether a task under `rules` may access device type:major:minor with `access` (devcgroup_legacy_check_permission). */
export function isDeviceAllowed(rules: DeviceRules, type: typeof DEV_BLOCK | typeof DEV_CHAR, major: number, minor: number, access: number): boolean {
  return rules.behavior === 'allow'
    ? !matchesPartly(rules.exceptions, type, major, minor, access)
    : matchesFully(rules.exceptions, type, major, minor, access);
}

function sameDevice(a: DeviceException, b: DeviceException): boolean {
  return a.type === b.type && a.major === b.major && a.minor === b.minor;
}

/** dev_exception_add: merges access into an exception for the same devices, else appends. */
function addException(list: readonly DeviceException[], ex: DeviceException): DeviceException[] {
  if (list.some((e) => sameDevice(e, ex))) return list.map((e) => (sameDevice(e, ex) ? { ...e, access: e.access | ex.access } : e));
  return [...list, ex];
}

/** dev_exception_rm: takes the access bits away from the exception for the same devices. */
function removeException(list: readonly DeviceException[], ex: DeviceException): DeviceException[] {
  return list.map((e) => (sameDevice(e, ex) ? { ...e, access: e.access & ~ex.access } : e)).filter((e) => e.access !== 0);
}

/** verify_new_ex via parent_has_perm: may a child with `childBehavior` hold exception `ex` under `parent`? */
function parentHasPerm(parent: DeviceRules | undefined, ex: DeviceException, childBehavior: DeviceRules['behavior']): boolean {
  if (parent === undefined) return true;
  if (parent.behavior === 'allow') {
    // A deny exception of an allow-all child only restricts; an allow exception of a
    // deny-all child must not touch anything the parent denies.
    return childBehavior === 'allow' || !matchesPartly(parent.exceptions, ex.type, ex.major, ex.minor, ex.access);
  }
  return matchesFully(parent.exceptions, ex.type, ex.major, ex.minor, ex.access);
}

/** parent_allows_removal: an allow-all child may not drop a deny the parent also has. */
function parentAllowsRemoval(parent: DeviceRules | undefined, child: DeviceRules, ex: DeviceException): boolean {
  if (parent === undefined || child.behavior === 'deny') return true;
  return !matchesPartly(parent.exceptions, ex.type, ex.major, ex.minor, ex.access);
}

export interface ApplyContext {
  /** the parent's rules; undefined at the top of the hierarchy (no parent to respect) */
  parent: DeviceRules | undefined;
  /** whether the cgroup has child cgroups: `a` is refused then (EINVAL, as v1) */
  hasChildren: boolean;
}

/** One write of `rule` to devices.allow (`allow`) or devices.deny, as devcgroup_update_access does it. */
export function applyDeviceRule(current: DeviceRules, file: 'allow' | 'deny', rule: DeviceRule, ctx: ApplyContext): Applied {
  const { parent } = ctx;
  if (rule.all) {
    if (ctx.hasChildren) return { ok: false, errno: 'EINVAL', reason: `'${file} a' changes the default, which v1 refuses while the cgroup has child cgroups` };
    if (file === 'deny') return { ok: true, rules: { behavior: 'deny', exceptions: [] } };
    if (parent !== undefined && parent.behavior !== 'allow') return { ok: false, errno: 'EPERM', reason: "'allow a' needs a parent that allows all devices" };
    return { ok: true, rules: { behavior: 'allow', exceptions: parent ? [...parent.exceptions] : [] } };
  }
  const ex = rule.exception;
  if (file === 'allow') {
    if (!parentHasPerm(parent, ex, current.behavior) || !parentAllowsRemoval(parent, current, ex)) {
      return { ok: false, errno: 'EPERM', reason: `'allow ${formatException(ex)}' is more than the parent cgroup allows` };
    }
    const exceptions = current.behavior === 'allow' ? removeException(current.exceptions, ex) : addException(current.exceptions, ex);
    return { ok: true, rules: { behavior: current.behavior, exceptions } };
  }
  const exceptions = current.behavior === 'deny' ? removeException(current.exceptions, ex) : addException(current.exceptions, ex);
  return { ok: true, rules: { behavior: current.behavior, exceptions } };
}

/**
 * What a new restriction `ex` written to devices.deny of an ancestor whose default is
 * `rootBehavior` does to a descendant's list (propagate_exception, then
 * revalidate_active_exceptions against the descendant's already updated parent).
 */
export function propagateDeny(descendant: DeviceRules, parent: DeviceRules, rootBehavior: DeviceRules['behavior'], ex: DeviceException): DeviceRules {
  const exceptions =
    rootBehavior === 'allow' && descendant.behavior === 'allow' ? addException(descendant.exceptions, ex) : removeException(descendant.exceptions, ex);
  return { behavior: descendant.behavior, exceptions: exceptions.filter((e) => parentHasPerm(parent, e, descendant.behavior)) };
}

/** Whether two rule lists are the same (nothing to recompile or save). */
export function isSameRules(a: DeviceRules, b: DeviceRules): boolean {
  return a.behavior === b.behavior && a.exceptions.length === b.exceptions.length && a.exceptions.every((e, i) => {
    const o = b.exceptions[i];
    return o !== undefined && sameDevice(e, o) && e.access === o.access;
  });
}
