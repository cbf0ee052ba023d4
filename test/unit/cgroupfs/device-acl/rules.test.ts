// Unit tests for the v1 device rule semantics (security/device_cgroup.c): parsing, writes to
// devices.allow/devices.deny against a parent, propagation of new restrictions, devices.list.
import { describe, expect, it } from 'vitest';
import {
  ALLOW_ALL,
  applyDeviceRule,
  DEV_BLOCK,
  DEV_CHAR,
  formatDeviceList,
  isDeviceAllowed,
  parseDeviceRule,
  propagateDeny,
  ACC_MKNOD,
  ACC_READ,
  ACC_WRITE,
  type DeviceRule,
  type DeviceRules,
} from '../../../../daemon/cgroupfs/device-acl/rules';

function rule(text: string): DeviceRule {
  const p = parseDeviceRule(text);
  if (!p.ok) throw new Error(p.reason);
  return p.rule;
}

/** Applies writes like `allow c 1:3 rwm` / `deny a` in order, starting from `start`. */
function write(lines: readonly string[], start: DeviceRules = ALLOW_ALL, parent?: DeviceRules): DeviceRules {
  let rules = start;
  for (const line of lines) {
    const [file, ...rest] = line.split(' ');
    const r = applyDeviceRule(rules, file as 'allow' | 'deny', rule(rest.join(' ')), { parent, hasChildren: false });
    if (!r.ok) throw new Error(`${line}: ${r.errno} ${r.reason}`);
    rules = r.rules;
  }
  return rules;
}

const listOf = (lines: readonly string[], start?: DeviceRules, parent?: DeviceRules): string => formatDeviceList(write(lines, start, parent));

describe('parseDeviceRule', () => {
  it.each([
    ['a', { all: true }],
    ['a *:* rwm', { all: true }],
    ['  a\n', { all: true }],
    ['c 1:3 rwm', { all: false, exception: { type: DEV_CHAR, major: 1, minor: 3, access: ACC_READ | ACC_WRITE | ACC_MKNOD } }],
    ['b 8:* r', { all: false, exception: { type: DEV_BLOCK, major: 8, minor: -1, access: ACC_READ } }],
    ['c *:* m', { all: false, exception: { type: DEV_CHAR, major: -1, minor: -1, access: ACC_MKNOD } }],
    ['c 136:* rw\n', { all: false, exception: { type: DEV_CHAR, major: 136, minor: -1, access: ACC_READ | ACC_WRITE } }],
    ['c 4294967294:0 w', { all: false, exception: { type: DEV_CHAR, major: 4294967294, minor: 0, access: ACC_WRITE } }],
  ])('%j parses', (text, expected) => {
    expect(parseDeviceRule(text)).toEqual({ ok: true, rule: expected });
  });

  it.each([
    [''],
    ['x 1:3 rwm'],
    ['c 1:3'], // the kernel wants an access field
    ['c 1:3 '],
    ['c 1 rwm'],
    ['c 1:3 rwx'],
    ['c 1:3 rwmr'],
    ['c -1:3 r'],
    ['c 4294967295:3 r'], // ~0 is the wildcard's own value
    ['c 1:3 rwm\nc 1:5 rwm'],
    ['all'],
    ['c  1:3 r'],
  ])('%j is refused', (text) => {
    expect(parseDeviceRule(text)).toMatchObject({ ok: false });
  });
});

describe('writes and devices.list', () => {
  it.each<[string, string[], string]>([
    ['a new cgroup allows all', [], 'a *:* rwm'],
    ['deny a empties the list', ['deny a'], ''],
    ['deny a, then allows are listed in order', ['deny a', 'allow c 1:3 rwm', 'allow b 8:* r'], 'c 1:3 rwm\nb 8:* r'],
    ['allows for the same device merge their access', ['deny a', 'allow c 1:3 r', 'allow c 1:3 w'], 'c 1:3 rw'],
    ['a deny on a default-deny list removes access bits', ['deny a', 'allow c 1:3 rwm', 'deny c 1:3 w'], 'c 1:3 rm'],
    ['a deny of all bits drops the exception', ['deny a', 'allow c 1:3 rwm', 'allow c 1:5 r', 'deny c 1:3 rwm'], 'c 1:5 r'],
    ['deny of another device than listed changes nothing', ['deny a', 'allow c 1:3 rwm', 'deny c 1:4 rwm'], 'c 1:3 rwm'],
    ['a wildcard deny does not remove a specific allow (exact match only)', ['deny a', 'allow c 1:3 rwm', 'deny c *:* rwm'], 'c 1:3 rwm'],
    ['a default-allow list shows a *:* rwm whatever it denies', ['deny c 1:3 rwm'], 'a *:* rwm'],
    ['allow a switches back and clears the exceptions', ['deny a', 'allow c 1:3 rwm', 'allow a'], 'a *:* rwm'],
    ['deny a after allows starts from nothing again', ['deny a', 'allow c 1:3 rwm', 'allow a', 'deny a'], ''],
    ['libvirt', ['deny a', 'allow c 1:3 rwm', 'allow c 1:5 rwm', 'allow c 1:7 rwm', 'allow c 5:1 rwm', 'allow c 1:8 rwm', 'allow c 1:9 rwm'],
      'c 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 5:1 rwm\nc 1:8 rwm\nc 1:9 rwm'],
  ])('%s', (_name, lines, list) => {
    expect(listOf(lines)).toBe(list);
  });

  it('refuses a or allow a while the cgroup has children (EINVAL, as v1)', () => {
    for (const file of ['allow', 'deny'] as const) {
      expect(applyDeviceRule(ALLOW_ALL, file, { all: true }, { parent: undefined, hasChildren: true })).toMatchObject({ ok: false, errno: 'EINVAL' });
    }
    // Single-device rules are fine with children.
    expect(applyDeviceRule(ALLOW_ALL, 'deny', rule('c 1:3 r'), { parent: undefined, hasChildren: true })).toMatchObject({ ok: true });
  });
});

describe('access checks (what the BPF program must answer)', () => {
  const libvirt = write(['deny a', 'allow c 1:3 rwm', 'allow c 1:5 rwm', 'allow c 1:7 rwm', 'allow c 5:1 rwm', 'allow c 1:8 rwm', 'allow c 1:9 rwm']);
  const rw = ACC_READ | ACC_WRITE;
  it.each<[string, DeviceRules, 1 | 2, number, number, number, boolean]>([
    ['libvirt /dev/null rw', libvirt, DEV_CHAR, 1, 3, rw, true],
    ['libvirt /dev/zero r', libvirt, DEV_CHAR, 1, 5, ACC_READ, true],
    ['libvirt /dev/urandom mknod', libvirt, DEV_CHAR, 1, 9, ACC_MKNOD, true],
    ['libvirt /dev/console 5:1', libvirt, DEV_CHAR, 5, 1, rw, true],
    ['libvirt /dev/tty 5:0', libvirt, DEV_CHAR, 5, 0, rw, false],
    ['libvirt /dev/mem 1:1', libvirt, DEV_CHAR, 1, 1, ACC_READ, false],
    ['libvirt block 1:3 (type matters)', libvirt, DEV_BLOCK, 1, 3, ACC_READ, false],
    ['default deny, r only: read ok', write(['deny a', 'allow c 1:3 r']), DEV_CHAR, 1, 3, ACC_READ, true],
    ['default deny, r only: rw needs every bit', write(['deny a', 'allow c 1:3 r']), DEV_CHAR, 1, 3, rw, false],
    ['default deny, wildcard minor', write(['deny a', 'allow c 136:* rw']), DEV_CHAR, 136, 7, rw, true],
    ['default deny, wildcard major', write(['deny a', 'allow b *:0 r']), DEV_BLOCK, 8, 0, ACC_READ, true],
    ['default deny, c *:* m allows mknod of anything char', write(['deny a', 'allow c *:* m']), DEV_CHAR, 10, 200, ACC_MKNOD, true],
    ['default deny, c *:* m does not allow reading', write(['deny a', 'allow c *:* m']), DEV_CHAR, 10, 200, ACC_READ, false],
    ['default allow', ALLOW_ALL, DEV_BLOCK, 8, 0, rw, true],
    ['default allow, deny w: read ok', write(['deny c 1:3 w']), DEV_CHAR, 1, 3, ACC_READ, true],
    ['default allow, deny w: rw denied (any common bit)', write(['deny c 1:3 w']), DEV_CHAR, 1, 3, rw, false],
    ['default allow, deny b 8:*', write(['deny b 8:* rwm']), DEV_BLOCK, 8, 16, ACC_READ, false],
    ['default allow, deny b 8:* leaves char 8:16', write(['deny b 8:* rwm']), DEV_CHAR, 8, 16, ACC_READ, true],
    ['default allow, deny then allow again', write(['deny c 1:3 rwm', 'allow c 1:3 rwm']), DEV_CHAR, 1, 3, rw, true],
    ['big numbers', write(['deny a', 'allow c 4000000000:4294967294 r']), DEV_CHAR, 4000000000, 4294967294, ACC_READ, true],
  ])('%s', (_name, rules, type, major, minor, access, allowed) => {
    expect(isDeviceAllowed(rules, type, major, minor, access)).toBe(allowed);
  });
});

describe('a child never gets more than its parent', () => {
  const parentDeny = write(['deny a', 'allow c 1:3 rw', 'allow c 136:* rwm']);
  const childDeny: DeviceRules = { behavior: 'deny', exceptions: [] };
  it.each<[string, DeviceRules, DeviceRules, string, boolean]>([
    ['deny parent: allow what it allows', parentDeny, childDeny, 'allow c 1:3 r', true],
    ['deny parent: allow inside its wildcard', parentDeny, childDeny, 'allow c 136:5 rw', true],
    ['deny parent: allow more access than it has', parentDeny, childDeny, 'allow c 1:3 rwm', false],
    ['deny parent: allow another device', parentDeny, childDeny, 'allow c 1:5 r', false],
    ['deny parent: allow a wider wildcard', parentDeny, childDeny, 'allow c 1:* r', false],
    ['deny parent: allow a', parentDeny, childDeny, 'allow a', false],
    ['deny parent: deny anything', parentDeny, childDeny, 'deny c 1:3 r', true],
    ['allow parent with a deny: child may not allow it', write(['deny c 1:3 w']), childDeny, 'allow c 1:3 rw', false],
    ['allow parent with a deny: child may allow something else', write(['deny c 1:3 w']), childDeny, 'allow c 1:5 rw', true],
    ['allow parent with a deny: an allow-all child may not drop the copied deny', write(['deny c 1:3 w']), write(['deny c 1:3 w']), 'allow c 1:3 w', false],
    ['allow parent: allow a', ALLOW_ALL, childDeny, 'allow a', true],
  ])('%s', (_name, parent, child, line, ok) => {
    const [file, ...rest] = line.split(' ');
    const r = applyDeviceRule(child, file as 'allow' | 'deny', rule(rest.join(' ')), { parent, hasChildren: false });
    expect(r.ok, JSON.stringify(r)).toBe(ok);
    if (!r.ok) expect(r.errno).toBe('EPERM');
  });

  it('allow a copies the parent exceptions (a default-allow child keeps the parent denies)', () => {
    const parent = write(['deny c 1:3 rwm']);
    expect(write(['deny a', 'allow a'], ALLOW_ALL, parent).exceptions).toEqual(parent.exceptions);
  });

  it.each<[string, DeviceRules, DeviceRules, string, string]>([
    ['deny parent drops an allow: the child loses it', write(['deny a', 'allow c 1:3 rwm', 'allow c 1:5 rwm']), write(['deny a', 'allow c 1:3 rwm', 'allow c 1:5 r']), 'c 1:3 rwm', 'c 1:5 r'],
    ['deny parent narrows access: the child keeps what still fits', write(['deny a', 'allow c 1:3 rwm']), write(['deny a', 'allow c 1:3 rw']), 'c 1:3 w', 'c 1:3 r'],
    ['allow parent adds a deny: an allow child copies it', ALLOW_ALL, ALLOW_ALL, 'c 1:3 rwm', 'a *:* rwm'],
    ['allow parent adds a deny: a deny child loses a matching allow', ALLOW_ALL, write(['deny a', 'allow c 1:3 rwm', 'allow c 1:5 r']), 'b 8:* r', 'c 1:3 rwm\nc 1:5 r'],
  ])('propagation: %s', (_name, parentBefore, child, denied, list) => {
    const r = applyDeviceRule(parentBefore, 'deny', rule(denied), { parent: undefined, hasChildren: true });
    if (!r.ok) throw new Error(r.reason);
    const parsed = rule(denied);
    if (parsed.all) throw new Error('not a single-device rule');
    const ex = parsed.exception;
    const next = propagateDeny(child, r.rules, r.rules.behavior, ex);
    expect(formatDeviceList(next)).toBe(list);
    if (next.behavior === 'allow') expect(next.exceptions).toContainEqual(ex);
  });
});
