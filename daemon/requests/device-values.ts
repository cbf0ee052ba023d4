// GetValue, SetValue and ListKeys of the v1 device files (devices.allow, devices.deny,
// devices.list) on a cgroup v2 hierarchy, which has no such files: the rule lists live in
// rt.deviceAcl and are enforced with BPF programs. Access mirrors v1, where those files are
// root's unless Create gave the creator every file: on v2 the stand-in is the cgroup's
// `cgroup.max.depth`, which Create hands over and Chown (the delegate list) does not, so a
// delegatee may set the devices of cgroups it created below the one it was given, never of
// that one itself.
import { constants } from 'node:fs';
import { CgmError } from '../errors';
import type { KeyEntry } from '../cgroupfs/cgroupfs';
import type { Hierarchy } from '../cgroupfs/layout';
import { DEVICE_KEYS, isDeviceKey } from '../cgroupfs/device-acl/device-acl';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertPinnedKeyAccess, pinCgroup } from './checks';

/** The v2 file whose owner and mode stand for the device files' (see above). */
export const DEVICE_ACCESS_FILE = 'cgroup.max.depth';

/** Whether GetValue/SetValue of `key` on `h` goes to the device emulation instead of a file. */
export function isEmulatedDeviceKey(h: Hierarchy, key: string): boolean {
  return h.version === 2 && isDeviceKey(key);
}

export function getDeviceValue(rt: Runtime, h: Hierarchy, cg: string, key: string): string {
  if (key !== DEVICE_KEYS.list) throw new CgmError('AccessDenied', `${rt.cgfs.describe(h, cg, key)} is write-only (as on v1); read ${DEVICE_KEYS.list}`);
  return rt.deviceAcl.list(h, cg);
}

export function setDeviceValue(rt: Runtime, caller: Caller, h: Hierarchy, cg: string, key: string, value: string): void {
  if (key === DEVICE_KEYS.list) throw new CgmError('AccessDenied', `${rt.cgfs.describe(h, cg, key)} is read-only (as on v1); write ${DEVICE_KEYS.allow} or ${DEVICE_KEYS.deny}`);
  const pinned = pinCgroup(rt, h, cg);
  try {
    assertPinnedKeyAccess(rt, caller, h, cg, pinned, DEVICE_ACCESS_FILE, 'write');
  } finally {
    pinned.close();
  }
  rt.deviceAcl.write(h, cg, key === DEVICE_KEYS.allow ? 'allow' : 'deny', value);
}

/** ListKeys rows for the emulated files, owned like the stand-in file, with v1's modes. */
export function deviceKeyEntries(rt: Runtime, h: Hierarchy, cg: string): KeyEntry[] {
  if (h.version !== 2) return [];
  const owner = rt.cgfs.stat(h, cg, DEVICE_ACCESS_FILE);
  const row = (name: string, perm: number): KeyEntry => ({ name, owner: owner && { uid: owner.uid, gid: owner.gid, mode: constants.S_IFREG | perm } });
  return [row(DEVICE_KEYS.allow, 0o200), row(DEVICE_KEYS.deny, 0o200), row(DEVICE_KEYS.list, 0o444)];
}
