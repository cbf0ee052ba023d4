// Unit tests for the saved device rule lists: a round trip, malformed entries dropped, a
// malformed file refused, and the atomic file store in a temporary directory.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEVICE_ACL_FILE, DeviceAclFile, formatDeviceAclState, parseDeviceAclState, type DeviceAclEntry } from '../../../../daemon/cgroupfs/device-acl/state';
import { ACC_ALL, ACC_READ, ANY, DEV_BLOCK, DEV_CHAR } from '../../../../daemon/cgroupfs/device-acl/rules';

const ENTRY: DeviceAclEntry = {
  hierarchy: 'unified',
  cgroup: '/lxc/c1',
  ino: '18446744073709551',
  progId: 42,
  rules: { behavior: 'deny', exceptions: [{ type: DEV_CHAR, major: 1, minor: 3, access: ACC_ALL }, { type: DEV_BLOCK, major: 8, minor: ANY, access: ACC_READ }] },
};

describe('device ACL state', () => {
  it('round-trips, exceptions in devices.list format', () => {
    const text = formatDeviceAclState([ENTRY]);
    expect(JSON.parse(text).cgroups[0].exceptions).toEqual(['c 1:3 rwm', 'b 8:* r']);
    expect(parseDeviceAclState(text)).toEqual([ENTRY]);
  });

  it.each([
    ['a relative cgroup', { cgroup: 'lxc/c1' }],
    ['a cgroup with ..', { cgroup: '/lxc/../c1' }],
    ['a numeric inode', { ino: 5 }],
    ['no program id', { progId: undefined }],
    ['an unknown default', { behavior: 'maybe' }],
    ['a bad exception', { exceptions: ['c 1:3'] }],
    ['an "a" exception', { exceptions: ['a'] }],
  ])('drops an entry with %s', (_name, patch) => {
    const doc = JSON.parse(formatDeviceAclState([ENTRY, { ...ENTRY, cgroup: '/other' }]));
    Object.assign(doc.cgroups[0], patch);
    expect(parseDeviceAclState(JSON.stringify(doc)).map((e) => e.cgroup)).toEqual(['/other']);
  });

  it.each([['{"version":2,"cgroups":[]}'], ['{"version":1}'], ['not json']])('refuses the file %s', (text) => {
    expect(() => parseDeviceAclState(text)).toThrow();
  });

  it('the file store replaces the file whole and reads it back', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-devacl-'));
    try {
      const store = new DeviceAclFile(dir);
      expect(store.load()).toEqual([]);
      store.save([ENTRY]);
      store.save([{ ...ENTRY, progId: 43 }]);
      expect(store.load()).toEqual([{ ...ENTRY, progId: 43 }]);
      expect(fs.readdirSync(dir)).toEqual([DEVICE_ACL_FILE]);
      expect(fs.statSync(path.join(dir, DEVICE_ACL_FILE)).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
