// Unit tests for the mountinfo parser: real fixture texts, optional fields, octal escapes and
// malformed lines.
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeMountField, parseMountinfo, visibleMounts } from '../../../daemon/proc/mountinfo';

function readFixture(name: string): string {
  return fs.readFileSync(path.resolve(__dirname, '../../fixtures', name), 'utf8');
}

describe('parseMountinfo', () => {
  it('parses every field of a line with an optional field', () => {
    const [entry] = parseMountinfo(
      '32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate\n',
    );
    expect(entry).toEqual({
      mountId: 32,
      parentId: 31,
      device: '0:27',
      root: '/',
      mountPoint: '/sys/fs/cgroup/unified',
      mountOptions: ['rw', 'nosuid', 'nodev', 'noexec', 'relatime'],
      fsType: 'cgroup2',
      source: 'cgroup2',
      superOptions: ['rw', 'nsdelegate'],
    });
  });

  it.each([
    ['no optional fields', '29 28 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu'],
    ['one optional field', '29 28 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:3 - cgroup cgroup rw,cpu'],
    ['several optional fields', '29 28 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:3 master:1 propagate_from:2 unbindable - cgroup cgroup rw,cpu'],
  ])('ends optional fields at the separator (%s)', (_case, line) => {
    expect(parseMountinfo(line)).toEqual([expect.objectContaining({
      mountPoint: '/sys/fs/cgroup/cpu', fsType: 'cgroup', source: 'cgroup', superOptions: ['rw', 'cpu'],
    })]);
  });

  it('keeps a bind-mounted subtree root', () => {
    const [entry] = parseMountinfo(readFixture('container-bind.mountinfo').split('\n')[4] ?? '');
    expect(entry).toMatchObject({ root: '/lxc/c1', mountPoint: '/sys/fs/cgroup/cpuset', superOptions: ['rw', 'cpuset', 'clone_children'] });
  });

  it.each([
    ['\\040', 'a b'],
    ['\\011', 'a\tb'],
    ['\\012', 'a\nb'],
    ['\\134', 'a\\b'],
  ])('decodes the kernel escape %s', (escape, decoded) => {
    expect(decodeMountField(`a${escape}b`)).toBe(decoded);
    const [entry] = parseMountinfo(`40 1 0:40 /x${escape}y /mnt/a${escape}b rw - cgroup src${escape}x rw,name=a${escape}b`);
    expect(entry).toMatchObject({
      root: `/x${decoded.slice(1, -1)}y`,
      mountPoint: `/mnt/${decoded}`,
      source: `src${decoded.slice(1, -1)}x`,
      superOptions: ['rw', `name=${decoded}`],
    });
  });

  it('leaves a backslash that is not an octal escape alone', () => {
    expect(decodeMountField('a\\9b\\04')).toBe('a\\9b\\04');
  });

  it('decodes the escaped space in the legacy-mixed fixture', () => {
    const mounts = parseMountinfo(readFixture('legacy-mixed.mountinfo'));
    expect(mounts.find((m) => m.mountId === 29)).toMatchObject({
      device: '0:22', mountPoint: '/srv/cg memory', fsType: 'cgroup', superOptions: ['rw', 'memory'],
    });
  });

  it.each([
    ['an empty line', ''],
    ['no separator', '29 28 0:26 / /sys/fs/cgroup/cpu rw,relatime cgroup cgroup rw,cpu'],
    ['too few fields after the separator', '29 28 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup'],
    ['too many fields after the separator', '29 28 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu extra'],
    ['too few fields before the separator', '29 28 0:26 / rw,relatime - cgroup cgroup rw,cpu'],
    ['a non-numeric mount id', 'x 28 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu'],
    ['a non-numeric parent id', '29 -1 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu'],
    ['a malformed device', '29 28 26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu'],
    ['garbage', 'not a mountinfo line at all'],
  ])('skips %s without throwing', (_case, line) => {
    const good = '30 28 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory';
    expect(parseMountinfo(`${line}\n${good}\n`).map((m) => m.mountId)).toEqual([30]);
  });

  it.each([
    ['pure-v2', 5],
    ['hybrid-systemd', 17],
    ['hybrid-plain', 14],
    ['legacy-separate', 14],
    ['legacy-comounted', 6],
    ['legacy-mixed', 10],
    ['container-bind', 12],
    ['container-cgns', 4],
    ['this-host', 20],
  ])('parses every line of the %s fixture', (fixture, count) => {
    const text = readFixture(`${fixture}.mountinfo`);
    const mounts = parseMountinfo(text);
    expect(mounts).toHaveLength(count);
    expect(mounts).toHaveLength(text.split('\n').filter((l) => l !== '').length);
  });

  it('keeps super options that are not controllers', () => {
    const mounts = parseMountinfo(readFixture('legacy-comounted.mountinfo'));
    expect(mounts.find((m) => m.mountId === 26)?.superOptions).toEqual([
      'rw', 'release_agent=/lib/rc/sh/cgroup-release-agent.sh', 'name=openrc',
    ]);
  });
});

describe('visibleMounts', () => {
  // This host's mountinfo as seen from a private namespace that mounted a tmpfs over
  // /sys/fs/cgroup and one named hierarchy below it: the host's hierarchies are still
  // listed, but covered.
  const covered = [
    '22 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw',
    '17 22 0:16 / /sys rw - sysfs sysfs rw',
    '31 17 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '600 31 0:70 / /sys/fs/cgroup rw,relatime - tmpfs none rw',
    '601 600 0:71 / /sys/fs/cgroup/n rw,relatime - cgroup cgroup rw,name=cgmt_x',
    '602 600 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    '700 22 0:29 / /srv/cpu rw,relatime - cgroup cgroup rw,cpu',
  ].join('\n');

  it('drops mounts covered by a later mount at or above their mount point', () => {
    const ids = visibleMounts(parseMountinfo(covered)).map((m) => m.mountId);
    expect(ids).toEqual([22, 17, 600, 601, 602, 700]);
  });

  it('keeps every cgroup mount of this host, where only /dev/shm and /dev/pts are mounted twice', () => {
    const mounts = parseMountinfo(readFixture('this-host.mountinfo'));
    const hidden = mounts.filter((m) => !visibleMounts(mounts).includes(m)).map((m) => `${m.mountId} ${m.mountPoint}`);
    expect(hidden).toEqual(['25 /dev/shm', '26 /dev/pts']);
  });

  it('drops the lower of two mounts stacked on one mount point', () => {
    const stacked = parseMountinfo([
      '22 1 8:2 / / rw - ext4 /dev/sda2 rw',
      '40 22 0:40 / /cg rw - cgroup cgroup rw,name=a',
      '41 40 0:41 / /cg rw - cgroup cgroup rw,name=b',
    ].join('\n'));
    expect(visibleMounts(stacked).map((m) => m.mountId)).toEqual([22, 41]);
  });
});
