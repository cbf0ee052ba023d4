// GetValue and SetValue (reference §5.8, §5.9, SPEC §2.2): one existing file of one
// cgroup inside the caller's subtree; the key is a plain file name, and the files that
// move tasks or steer the release agent cannot be set.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import { assertKey, assertSettableKey, assertValue, MAX_VALUE_BYTES } from '../policy';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertCgroupAccess, assertPinnedKeyAccess, assertUnderProxy, pinCgroup, resolveTarget, testOnlyCheckPause } from './checks';
import { singleHierarchy } from './hierarchies';

/** Largest value GetValue returns (memory.stat and friends are a few KiB). */
export const MAX_READ_BYTES = 1024 * 1024;

/** Resolves a readable-form cgroup argument and applies the checks every read makes. */
export function readableCgroup(rt: Runtime, caller: Caller, h: Hierarchy, cgroup: string): string {
  const { path } = resolveTarget(caller, h, cgroup, 'readable');
  assertUnderProxy(rt, caller, h, path);
  assertCgroupAccess(rt, caller, h, path, 'read');
  return path;
}

// The cgroup is opened once (pinned.ts): the key checked is the key read or written, even if
// the caller renames its cgroups meanwhile.
export function getValue(rt: Runtime, caller: Caller, controller: string, cgroup: string, key: string): string {
  const h = singleHierarchy(rt, controller);
  assertKey(key);
  const cg = readableCgroup(rt, caller, h, cgroup);
  const pinned = pinCgroup(rt, h, cg);
  try {
    assertPinnedKeyAccess(rt, caller, h, cg, pinned, key, 'read');
    return pinned.read(key, MAX_READ_BYTES).replace(/\n+$/, '');
  } finally {
    pinned.close();
  }
}

export function setValue(rt: Runtime, caller: Caller, controller: string, cgroup: string, key: string, value: string): void {
  const h = singleHierarchy(rt, controller);
  assertSettableKey(key);
  assertValue(value);
  const cg = readableCgroup(rt, caller, h, cgroup);
  const text = value === '' || value.endsWith('\n') ? value : `${value}\n`;
  if (Buffer.byteLength(text) > MAX_VALUE_BYTES) throw new CgmError('LimitsExceeded', `value is longer than ${MAX_VALUE_BYTES} bytes`);
  const pinned = pinCgroup(rt, h, cg);
  try {
    assertPinnedKeyAccess(rt, caller, h, cg, pinned, key, 'write');
    testOnlyCheckPause(rt);
    pinned.write(key, text);
  } finally {
    pinned.close();
  }
}
