// Unit tests for the /proc/PID/cgroup parser: v1, co-mounted, named and v2 lines, colons in
// paths and malformed lines.
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseProcCgroup } from '../../../daemon/proc/proc-cgroup';

function readFixture(name: string): string {
  return fs.readFileSync(path.resolve(__dirname, '../../fixtures', name), 'utf8');
}

describe('parseProcCgroup', () => {
  it.each([
    ['a single controller', '4:memory:/build', { hierarchyId: 4, controllers: ['memory'], path: '/build' }],
    ['co-mounted controllers', '2:cpu,cpuacct:/a', { hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/a' }],
    ['a named hierarchy', '1:name=systemd:/init.scope', { hierarchyId: 1, controllers: ['name=systemd'], path: '/init.scope' }],
    ['the v2 line', '0::/', { hierarchyId: 0, controllers: [], path: '/' }],
    ['colons in the path', '0::/a:b/c:', { hierarchyId: 0, controllers: [], path: '/a:b/c:' }],
    ['a path outside the cgroup namespace', '0::/../../x', { hierarchyId: 0, controllers: [], path: '/../../x' }],
  ])('parses %s', (_case, line, expected) => {
    expect(parseProcCgroup(`${line}\n`)).toEqual([expected]);
  });

  it.each([
    ['an empty line', ''],
    ['no colon', 'memory'],
    ['one colon', '4:memory'],
    ['a non-numeric id', 'x:memory:/'],
    ['a negative id', '-1:memory:/'],
    ['an empty path', '4:memory:'],
  ])('skips %s without throwing', (_case, line) => {
    expect(parseProcCgroup(`${line}\n0::/ok\n`)).toEqual([{ hierarchyId: 0, controllers: [], path: '/ok' }]);
  });

  it('parses the hybrid-systemd fixture in file order', () => {
    const lines = parseProcCgroup(readFixture('hybrid-systemd.cgroup'));
    expect(lines).toHaveLength(13);
    expect(lines[0]).toEqual({ hierarchyId: 12, controllers: ['rdma'], path: '/' });
    expect(lines[10]).toEqual({ hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/system.slice/cgmanager.service' });
    expect(lines[12]).toEqual({ hierarchyId: 0, controllers: [], path: '/system.slice/cgmanager.service' });
  });

  it('keeps the kernel order of co-mounted controllers', () => {
    const [comounted] = parseProcCgroup(readFixture('legacy-comounted.cgroup')).filter((l) => l.hierarchyId === 1);
    expect(comounted?.controllers).toEqual([
      'cpuset', 'cpu', 'cpuacct', 'memory', 'devices', 'freezer', 'net_cls', 'blkio', 'perf_event', 'net_prio', 'hugetlb', 'pids',
    ]);
    expect(comounted?.path).toBe('/lxc/web');
  });

  it.each([
    ['pure-v2', 1], ['hybrid-systemd', 13], ['hybrid-plain', 10], ['legacy-separate', 10], ['legacy-comounted', 2],
    ['legacy-mixed', 5], ['container-bind', 8], ['container-cgns', 1], ['this-host', 10],
  ])('parses every line of the %s fixture', (fixture, count) => {
    expect(parseProcCgroup(readFixture(`${fixture}.cgroup`))).toHaveLength(count);
  });
});
