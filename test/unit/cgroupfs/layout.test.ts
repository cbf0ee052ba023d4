// Unit tests for the hierarchy model: every fixture layout, name and list resolution, a task's
// cgroup from /proc/PID/cgroup and the mapping of cgroup paths to filesystem paths.
import { describe, it, expect, vi } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMountinfo } from '../../../daemon/proc/mountinfo';
import { parseProcCgroup } from '../../../daemon/proc/proc-cgroup';
import { allNames, buildLayout, type Hierarchy, type Layout } from '../../../daemon/cgroupfs/layout';

function readFixture(name: string): string {
  return fs.readFileSync(path.resolve(__dirname, '../../fixtures', name), 'utf8');
}

const PURE_V2_CONTROLLERS = ['cpu', 'cpuset', 'hugetlb', 'io', 'memory', 'pids'];

/** The v2 controllers each fixture's cgroup.controllers would realistically hold. */
const V2_CONTROLLERS: Record<string, string[]> = {
  'pure-v2': PURE_V2_CONTROLLERS,
  'container-cgns': ['cpu', 'io', 'memory', 'pids'],
  'this-host': ['hugetlb'],
};

function layoutOf(fixture: string, skip?: readonly string[]): Layout {
  return buildLayout(parseMountinfo(readFixture(`${fixture}.mountinfo`)), {
    ...(skip === undefined ? {} : { skip }),
    readV2Controllers: () => V2_CONTROLLERS[fixture] ?? [],
  });
}

function layoutOfLines(lines: string[], v2: string[] = []): Layout {
  return buildLayout(parseMountinfo(lines.join('\n')), { readV2Controllers: () => v2 });
}

function summarise(h: Hierarchy): [string, string, string] {
  return [h.label, h.mountPoint, h.mountRoot];
}

/** Hierarchies as labels, anything else (unknown, multiple) as it is, so tables read plainly. */
function labelsOf(result: Hierarchy | Hierarchy[] | { unknown: string } | { multiple: true } | undefined): unknown {
  if (result === undefined) return undefined;
  if (Array.isArray(result)) return result.map((h) => h.label);
  return 'label' in result ? result.label : result;
}

const FS = '/sys/fs/cgroup';

interface LayoutCase {
  fixture: string;
  hierarchies: [label: string, mountPoint: string, mountRoot: string][];
  all: string;
}

const LAYOUTS: LayoutCase[] = [
  {
    fixture: 'pure-v2',
    hierarchies: [['unified,cpu,cpuset,hugetlb,io,memory,pids', FS, '/']],
    all: 'unified',
  },
  {
    fixture: 'hybrid-systemd',
    hierarchies: [
      ['blkio', `${FS}/blkio`, '/'],
      ['cpu,cpuacct', `${FS}/cpu,cpuacct`, '/'],
      ['cpuset', `${FS}/cpuset`, '/'],
      ['devices', `${FS}/devices`, '/'],
      ['freezer', `${FS}/freezer`, '/'],
      ['hugetlb', `${FS}/hugetlb`, '/'],
      ['memory', `${FS}/memory`, '/'],
      ['net_cls,net_prio', `${FS}/net_cls,net_prio`, '/'],
      ['perf_event', `${FS}/perf_event`, '/'],
      ['pids', `${FS}/pids`, '/'],
      ['rdma', `${FS}/rdma`, '/'],
      ['name=systemd', `${FS}/systemd`, '/'],
      ['unified', `${FS}/unified`, '/'],
    ],
    // The reference's systemd-host example, plus rdma (newer than its list) and unified.
    all: 'blkio,cpu,cpuset,devices,freezer,hugetlb,memory,net_cls,perf_event,pids,rdma,name=systemd,unified',
  },
  {
    fixture: 'hybrid-plain',
    hierarchies: [
      ['blkio', `${FS}/blkio`, '/'],
      ['cpu', `${FS}/cpu`, '/'],
      ['cpuacct', `${FS}/cpuacct`, '/'],
      ['cpuset', `${FS}/cpuset`, '/'],
      ['devices', `${FS}/devices`, '/'],
      ['freezer', `${FS}/freezer`, '/'],
      ['memory', `${FS}/memory`, '/'],
      ['pids', `${FS}/pids`, '/'],
      ['name=systemd', `${FS}/systemd`, '/'],
      ['unified', `${FS}/unified`, '/'],
    ],
    all: 'blkio,cpu,cpuacct,cpuset,devices,freezer,memory,pids,name=systemd,unified',
  },
  {
    fixture: 'this-host',
    hierarchies: [
      ['blkio', `${FS}/blkio`, '/'],
      ['cpu', `${FS}/cpu`, '/'],
      ['cpuacct', `${FS}/cpuacct`, '/'],
      ['cpuset', `${FS}/cpuset`, '/'],
      ['devices', `${FS}/devices`, '/'],
      ['freezer', `${FS}/freezer`, '/'],
      // v2 holds hugetlb here, so it sorts by 'hugetlb', not by 'unified'.
      ['unified,hugetlb', `${FS}/unified`, '/'],
      ['memory', `${FS}/memory`, '/'],
      ['pids', `${FS}/pids`, '/'],
      ['name=systemd', `${FS}/systemd`, '/'],
    ],
    all: 'blkio,cpu,cpuacct,cpuset,devices,freezer,unified,memory,pids,name=systemd',
  },
  {
    fixture: 'legacy-separate',
    hierarchies: [
      ['blkio', `${FS}/blkio`, '/'],
      ['cpu', `${FS}/cpu`, '/'],
      ['cpuacct', `${FS}/cpuacct`, '/'],
      ['cpuset', `${FS}/cpuset`, '/'],
      ['devices', `${FS}/devices`, '/'],
      ['freezer', `${FS}/freezer`, '/'],
      ['hugetlb', `${FS}/hugetlb`, '/'],
      ['memory', `${FS}/memory`, '/'],
      ['perf_event', `${FS}/perf_event`, '/'],
      ['name=systemd', `${FS}/systemd`, '/'],
    ],
    all: 'blkio,cpu,cpuacct,cpuset,devices,freezer,hugetlb,memory,perf_event,name=systemd',
  },
  {
    fixture: 'legacy-comounted',
    hierarchies: [
      ['blkio,cpu,cpuacct,cpuset,devices,freezer,hugetlb,memory,net_cls,net_prio,perf_event,pids', `${FS}/all`, '/'],
      ['name=openrc', `${FS}/openrc`, '/'],
    ],
    all: 'blkio,name=openrc',
  },
  {
    fixture: 'legacy-mixed',
    hierarchies: [
      ['blkio', `${FS}/blkio`, '/'],
      ['cpu,cpuacct,cpuset', `${FS}/cpu,cpuacct,cpuset`, '/'],
      ['devices,freezer', `${FS}/devices,freezer`, '/'],
      // Mounted twice; the first mount in file order is kept.
      ['memory', `${FS}/memory`, '/'],
      ['name=systemd', `${FS}/systemd`, '/'],
    ],
    all: 'blkio,cpu,devices,memory,name=systemd',
  },
  {
    fixture: 'container-bind',
    hierarchies: [
      ['cpu', `${FS}/cpu`, '/lxc/c1'],
      ['cpuacct', `${FS}/cpuacct`, '/lxc/c1'],
      ['cpuset', `${FS}/cpuset`, '/lxc/c1'],
      ['devices', `${FS}/devices`, '/lxc/c1'],
      ['freezer', `${FS}/freezer`, '/lxc/c1'],
      ['memory', `${FS}/memory`, '/lxc/c1'],
      ['name=systemd', `${FS}/systemd`, '/lxc/c1'],
      ['unified', `${FS}/unified`, '/lxc/c1'],
    ],
    all: 'cpu,cpuacct,cpuset,devices,freezer,memory,name=systemd,unified',
  },
  {
    fixture: 'container-cgns',
    hierarchies: [['unified,cpu,io,memory,pids', FS, '/']],
    all: 'unified',
  },
];

describe.each(LAYOUTS)('buildLayout on $fixture', ({ fixture, hierarchies, all }) => {
  const layout = layoutOf(fixture);

  it('finds exactly the expected hierarchies, in order', () => {
    expect(layout.hierarchies.map(summarise)).toEqual(hierarchies);
  });

  it('lists the labels as ListControllers', () => {
    expect(layout.listControllers()).toEqual(hierarchies.map(([label]) => label));
  });

  it('spells `all` with one primary name per hierarchy', () => {
    expect(allNames(layout)).toBe(all);
  });

  it("resolves 'all' to every hierarchy", () => {
    expect(layout.resolveList('all')).toEqual(layout.hierarchies);
  });

  it('finds every hierarchy by each of its names and its primary name', () => {
    for (const h of layout.hierarchies) {
      expect(layout.find(h.primaryName)).toBe(h);
      for (const name of h.names) expect(layout.find(name)).toBe(h);
    }
  });

  it('finds a distinct device for each hierarchy', () => {
    expect(new Set(layout.hierarchies.map((h) => h.device)).size).toBe(hierarchies.length);
  });

  it('finds a cgroup for every hierarchy in the matching .cgroup fixture', () => {
    const lines = parseProcCgroup(readFixture(`${fixture}.cgroup`));
    for (const h of layout.hierarchies) expect(layout.cgroupOf(lines, h)).toMatch(/^\//);
  });
});

describe('hierarchy fields', () => {
  it('describes a v1 co-mounted hierarchy', () => {
    expect(layoutOf('hybrid-systemd').find('cpuacct')).toEqual({
      version: 1,
      controllers: ['cpu', 'cpuacct'],
      mountPoint: `${FS}/cpu,cpuacct`,
      mountRoot: '/',
      label: 'cpu,cpuacct',
      primaryName: 'cpu',
      names: ['cpu', 'cpuacct'],
      device: '0:31',
    });
  });

  it('describes a named hierarchy', () => {
    expect(layoutOf('hybrid-systemd').find('systemd')).toEqual({
      version: 1,
      controllers: [],
      name: 'systemd',
      mountPoint: `${FS}/systemd`,
      mountRoot: '/',
      label: 'name=systemd',
      primaryName: 'name=systemd',
      names: ['systemd', 'name=systemd'],
      device: '0:28',
    });
  });

  it('describes a controller-less v2 hierarchy', () => {
    expect(layoutOf('hybrid-systemd').find('unified')).toEqual({
      version: 2,
      controllers: [],
      mountPoint: `${FS}/unified`,
      mountRoot: '/',
      label: 'unified',
      primaryName: 'unified',
      names: ['unified'],
      device: '0:27',
    });
  });

  it('describes a v2 hierarchy with controllers', () => {
    expect(layoutOf('pure-v2').find('io')).toMatchObject({
      version: 2,
      controllers: PURE_V2_CONTROLLERS,
      label: 'unified,cpu,cpuset,hugetlb,io,memory,pids',
      primaryName: 'unified',
      names: ['unified', ...PURE_V2_CONTROLLERS],
      device: '0:28',
    });
  });

  it('puts controllers before the name of a named hierarchy that also has controllers', () => {
    const layout = layoutOfLines(['30 1 0:30 / /cg/x rw - cgroup cgroup rw,name=x,memory,cpu']);
    expect(layout.hierarchies[0]).toMatchObject({
      controllers: ['cpu', 'memory'], name: 'x', label: 'cpu,memory,name=x', primaryName: 'cpu', names: ['cpu', 'memory', 'x', 'name=x'],
    });
  });
});

describe('find', () => {
  const hybrid = layoutOf('hybrid-systemd');
  it.each([
    ['memory', 'memory'],
    ['cpu', 'cpu,cpuacct'],
    ['cpuacct', 'cpu,cpuacct'],
    ['net_prio', 'net_cls,net_prio'],
    ['systemd', 'name=systemd'],
    ['name=systemd', 'name=systemd'],
    ['unified', 'unified'],
    ['rdma', 'rdma'],
    ['name=cpu', undefined],
    ['name=unified', undefined],
    ['name=', undefined],
    ['all', undefined],
    ['io', undefined],
    ['', undefined],
    ['Memory', undefined],
    ['cpu,cpuacct', undefined],
  ])('hybrid-systemd: %j -> %j', (name, label) => {
    expect(hybrid.find(name)?.label).toBe(label);
  });

  const pureV2 = layoutOf('pure-v2');
  it.each([
    ['unified', 'unified,cpu,cpuset,hugetlb,io,memory,pids'],
    ['io', 'unified,cpu,cpuset,hugetlb,io,memory,pids'],
    ['memory', 'unified,cpu,cpuset,hugetlb,io,memory,pids'],
    ['blkio', undefined],
    ['systemd', undefined],
    ['name=systemd', undefined],
  ])('pure-v2: %j -> %j', (name, label) => {
    expect(pureV2.find(name)?.label).toBe(label);
  });

  const thisHost = layoutOf('this-host');
  it.each([
    ['hugetlb', 'unified,hugetlb'],
    ['unified', 'unified,hugetlb'],
    ['cpuacct', 'cpuacct'],
    ['systemd', 'name=systemd'],
  ])('this-host: %j -> %j', (name, label) => {
    expect(thisHost.find(name)?.label).toBe(label);
  });

  it('legacy-comounted: every controller names the one hierarchy, openrc the named one', () => {
    const layout = layoutOf('legacy-comounted');
    const [comounted, openrc] = layout.hierarchies;
    for (const c of ['cpu', 'cpuacct', 'memory', 'net_prio', 'pids']) expect(layout.find(c)).toBe(comounted);
    expect(layout.find('openrc')).toBe(openrc);
    expect(layout.find('name=openrc')).toBe(openrc);
    expect(layout.find('systemd')).toBeUndefined();
  });

  it("keeps 'name=X' for named hierarchies: a hierarchy named like a controller is still apart", () => {
    const layout = layoutOfLines([
      '30 1 0:30 / /cg/memory rw - cgroup cgroup rw,memory',
      '31 1 0:31 / /cg/named rw - cgroup cgroup rw,name=memory',
    ]);
    expect(layout.find('memory')?.mountPoint).toBe('/cg/memory');
    expect(layout.find('name=memory')?.mountPoint).toBe('/cg/named');
  });
});

describe('resolveList', () => {
  const hybrid = layoutOf('hybrid-systemd');
  it.each([
    ['cpu,cpuacct,memory', ['cpu,cpuacct', 'memory']],
    ['cpuacct,cpu', ['cpu,cpuacct']],
    ['memory,cpu', ['memory', 'cpu,cpuacct']],
    ['memory,memory', ['memory']],
    ['net_prio,net_cls', ['net_cls,net_prio']],
    ['name=systemd,systemd', ['name=systemd']],
    ['unified,memory', ['unified', 'memory']],
    ['memory,', ['memory']],
    [',memory,,pids', ['memory', 'pids']],
    ['', []],
    [',', []],
    ['cpu,bogus,memory', { unknown: 'bogus' }],
    ['bogus,nope', { unknown: 'bogus' }],
    ['all,memory', { unknown: 'all' }],
    ['io', { unknown: 'io' }],
    ['name=cpu', { unknown: 'name=cpu' }],
  ])('hybrid-systemd: %j -> %j', (arg, expected) => {
    expect(labelsOf(hybrid.resolveList(arg))).toEqual(expected);
  });

  it.each([
    ['cpu,memory,io', ['unified,cpu,cpuset,hugetlb,io,memory,pids']],
    ['unified,cpu', ['unified,cpu,cpuset,hugetlb,io,memory,pids']],
    ['cpu,blkio', { unknown: 'blkio' }],
  ])('pure-v2: %j -> %j', (arg, expected) => {
    expect(labelsOf(layoutOf('pure-v2').resolveList(arg))).toEqual(expected);
  });

  it('legacy-mixed: co-mounted names collapse, separate ones do not', () => {
    expect(labelsOf(layoutOf('legacy-mixed').resolveList('cpuset,cpu,memory,freezer,devices,systemd'))).toEqual([
      'cpu,cpuacct,cpuset', 'memory', 'devices,freezer', 'name=systemd',
    ]);
  });
});

describe('resolveSingle', () => {
  const hybrid = layoutOf('hybrid-systemd');
  it.each([
    ['memory', 'memory'],
    ['cpuacct', 'cpu,cpuacct'],
    ['cpu,cpuacct', 'cpu,cpuacct'],
    ['cpuacct,cpu,', 'cpu,cpuacct'],
    ['memory,', 'memory'],
    ['systemd', 'name=systemd'],
    ['name=systemd,systemd', 'name=systemd'],
    ['unified', 'unified'],
    ['cpu,memory', { multiple: true }],
    ['memory,unified', { multiple: true }],
    ['all', { unknown: 'all' }],
    ['bogus', { unknown: 'bogus' }],
    ['cpu,bogus', { unknown: 'bogus' }],
    ['memory,cpu,bogus', { unknown: 'bogus' }],
    ['memory,,', { unknown: '' }],
    ['', { unknown: '' }],
    [',', { unknown: '' }],
  ])('hybrid-systemd: %j -> %j', (arg, expected) => {
    expect(labelsOf(hybrid.resolveSingle(arg))).toEqual(expected);
  });

  it.each([
    ['cpu,memory', 'unified,cpu,cpuset,hugetlb,io,memory,pids'],
    ['io,unified', 'unified,cpu,cpuset,hugetlb,io,memory,pids'],
    ['all', { unknown: 'all' }],
  ])('pure-v2 (every controller is one hierarchy): %j -> %j', (arg, expected) => {
    expect(labelsOf(layoutOf('pure-v2').resolveSingle(arg))).toEqual(expected);
  });

  it.each([
    ['cpu,memory', 'blkio,cpu,cpuacct,cpuset,devices,freezer,hugetlb,memory,net_cls,net_prio,perf_event,pids'],
    ['cpu,openrc', { multiple: true }],
  ])('legacy-comounted: %j -> %j', (arg, expected) => {
    expect(labelsOf(layoutOf('legacy-comounted').resolveSingle(arg))).toEqual(expected);
  });

  it.each([['cpu,cpuacct'], ['cpuacct,cpu,']])('hybrid-plain: separately mounted %j is multiple', (arg) => {
    expect(layoutOf('hybrid-plain').resolveSingle(arg)).toEqual({ multiple: true });
  });
});

describe('cgroupOf', () => {
  function cgroupsOf(fixture: string): Record<string, string | undefined> {
    const layout = layoutOf(fixture);
    const lines = parseProcCgroup(readFixture(`${fixture}.cgroup`));
    return Object.fromEntries(layout.hierarchies.map((h) => [h.label, layout.cgroupOf(lines, h)]));
  }

  it('hybrid-systemd', () => {
    const service = '/system.slice/cgmanager.service';
    expect(cgroupsOf('hybrid-systemd')).toEqual({
      blkio: service, 'cpu,cpuacct': service, cpuset: '/', devices: service, freezer: '/', hugetlb: '/',
      memory: service, 'net_cls,net_prio': '/', perf_event: '/', pids: service, rdma: '/',
      'name=systemd': service, unified: service,
    });
  });

  it('this-host', () => {
    expect(cgroupsOf('this-host')).toEqual({
      blkio: '/', cpu: '/', cpuacct: '/', cpuset: '/', devices: '/', freezer: '/', 'unified,hugetlb': '/',
      memory: '/process_api/e3ff622f7b074a111e6e0e2559d6e460', pids: '/', 'name=systemd': '/',
    });
  });

  it('legacy-comounted: matches the controller set whatever the kernel order', () => {
    expect(cgroupsOf('legacy-comounted')).toEqual({
      'blkio,cpu,cpuacct,cpuset,devices,freezer,hugetlb,memory,net_cls,net_prio,perf_event,pids': '/lxc/web',
      'name=openrc': '/sshd',
    });
  });

  it('legacy-mixed', () => {
    expect(cgroupsOf('legacy-mixed')).toEqual({
      blkio: '/', 'cpu,cpuacct,cpuset': '/build', 'devices,freezer': '/build', memory: '/build', 'name=systemd': '/',
    });
  });

  it('legacy-separate', () => {
    const session = '/user/1000.user/c2.session';
    expect(cgroupsOf('legacy-separate')).toEqual({
      blkio: session, cpu: session, cpuacct: session, cpuset: '/', devices: session, freezer: session,
      hugetlb: session, memory: session, perf_event: session, 'name=systemd': session,
    });
  });

  it('container-bind: paths are hierarchy-absolute, below the mount root', () => {
    expect(cgroupsOf('container-bind')).toEqual({
      cpu: '/lxc/c1', cpuacct: '/lxc/c1', cpuset: '/lxc/c1', devices: '/lxc/c1', freezer: '/lxc/c1', memory: '/lxc/c1',
      'name=systemd': '/lxc/c1/init.scope', unified: '/lxc/c1/init.scope',
    });
  });

  it.each([
    ['pure-v2', '/system.slice/cgmanager.service'],
    ['container-cgns', '/init.scope'],
  ])('%s', (fixture, expected) => {
    expect(cgroupsOf(fixture)).toEqual({ [layoutOf(fixture).listControllers()[0] ?? '']: expected });
  });

  it.each([
    ['0::/system.slice/cgmanager.service/.cgm_leaf', '/system.slice/cgmanager.service'],
    ['0::/.cgm_leaf', '/'],
    ['0::/a/.cgm_leaf/b', '/a/.cgm_leaf/b'],
    ['0::/a/x.cgm_leaf', '/a/x.cgm_leaf'],
  ])('strips the v2 hidden leaf: %j -> %j', (line, expected) => {
    const layout = layoutOf('pure-v2');
    const [h] = layout.hierarchies;
    if (h === undefined) throw new Error('pure-v2 has a hierarchy');
    expect(layout.cgroupOf(parseProcCgroup(line), h)).toBe(expected);
  });

  it('does not strip a v1 directory that happens to be called .cgm_leaf', () => {
    const layout = layoutOf('legacy-separate');
    const memory = layout.find('memory');
    if (memory === undefined) throw new Error('legacy-separate has memory');
    expect(layout.cgroupOf(parseProcCgroup('4:memory:/a/.cgm_leaf'), memory)).toBe('/a/.cgm_leaf');
  });

  it('needs the exact controller set: a co-mounted line does not match one controller', () => {
    const layout = layoutOf('hybrid-plain');
    const cpu = layout.find('cpu');
    if (cpu === undefined) throw new Error('hybrid-plain has cpu');
    expect(layout.cgroupOf(parseProcCgroup('2:cpu,cpuacct:/x'), cpu)).toBeUndefined();
    expect(layout.cgroupOf(parseProcCgroup('2:cpu,cpuacct:/x\n1:cpu:/y'), cpu)).toBe('/y');
  });

  it('ignores tokens of controllers it does not model', () => {
    const layout = layoutOf('hybrid-plain');
    const memory = layout.find('memory');
    if (memory === undefined) throw new Error('hybrid-plain has memory');
    expect(layout.cgroupOf(parseProcCgroup('4:memory,newfangled:/z'), memory)).toBe('/z');
  });

  it('returns undefined when no line matches', () => {
    const layout = layoutOf('hybrid-systemd');
    const lines = parseProcCgroup(readFixture('pure-v2.cgroup'));
    const memory = layout.find('memory');
    const systemd = layout.find('systemd');
    if (memory === undefined || systemd === undefined) throw new Error('hybrid-systemd has memory and systemd');
    expect(layout.cgroupOf(lines, memory)).toBeUndefined();
    expect(layout.cgroupOf(lines, systemd)).toBeUndefined();
    const unified = layout.find('unified');
    if (unified === undefined) throw new Error('hybrid-systemd has unified');
    expect(layout.cgroupOf(parseProcCgroup(readFixture('legacy-separate.cgroup')), unified)).toBeUndefined();
  });
});

describe('toFsPath', () => {
  const hybrid = layoutOf('hybrid-systemd');
  const bind = layoutOf('container-bind');
  const mixed = layoutOf('legacy-mixed');
  it.each([
    [hybrid, 'cpuacct', '/', `${FS}/cpu,cpuacct`],
    [hybrid, 'memory', '/system.slice/cgmanager.service', `${FS}/memory/system.slice/cgmanager.service`],
    [hybrid, 'systemd', '/a/b/c', `${FS}/systemd/a/b/c`],
    [hybrid, 'unified', '/user.slice', `${FS}/unified/user.slice`],
    [hybrid, 'memory', '/a//b/', `${FS}/memory/a/b`],
    [hybrid, 'memory', '/a/../b', undefined],
    [hybrid, 'memory', '/a/./b', undefined],
    [hybrid, 'memory', 'relative', undefined],
    [hybrid, 'memory', '', undefined],
    [mixed, 'memory', '/build', `${FS}/memory/build`],
    [bind, 'cpu', '/lxc/c1', `${FS}/cpu`],
    [bind, 'cpu', '/lxc/c1/', `${FS}/cpu`],
    [bind, 'cpu', '/lxc/c1/a/b', `${FS}/cpu/a/b`],
    [bind, 'unified', '/lxc/c1/init.scope', `${FS}/unified/init.scope`],
    [bind, 'cpu', '/lxc/c10', undefined],
    [bind, 'cpu', '/lxc/c10/a', undefined],
    [bind, 'cpu', '/lxc', undefined],
    [bind, 'cpu', '/', undefined],
    [bind, 'cpu', '/lxc/c2/a', undefined],
    [bind, 'cpu', '/other', undefined],
    [bind, 'cpu', '/lxc/c1/../c2', undefined],
  ])('%#: %s %j -> %j', (layout, name, cgPath, expected) => {
    const h = layout.find(name);
    if (h === undefined) throw new Error(`no hierarchy ${name}`);
    expect(layout.toFsPath(h, cgPath)).toBe(expected);
  });

  it('handles a hierarchy mounted at /', () => {
    const layout = layoutOfLines(['30 1 0:30 / / rw - cgroup2 cgroup2 rw']);
    const [h] = layout.hierarchies;
    if (h === undefined) throw new Error('a hierarchy');
    expect(layout.toFsPath(h, '/')).toBe('/');
    expect(layout.toFsPath(h, '/a/b')).toBe('/a/b');
  });
});

describe('choosing among mounts', () => {
  it('keeps the first of two mounts with the same root (legacy-mixed memory)', () => {
    expect(layoutOf('legacy-mixed').find('memory')?.mountPoint).toBe(`${FS}/memory`);
  });

  it('keeps the first in file order when that is the second mount point', () => {
    const layout = layoutOfLines([
      '29 22 0:22 / /srv/cg\\040memory rw - cgroup cgroup rw,memory',
      '26 24 0:22 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
    ]);
    expect(layout.hierarchies.map(summarise)).toEqual([['memory', '/srv/cg memory', '/']]);
  });

  it('prefers the mount with the shortest root over file order', () => {
    const layout = layoutOfLines([
      '40 1 0:22 /lxc/c1 /mnt/c1-memory rw - cgroup cgroup rw,memory',
      '41 1 0:22 /lxc /mnt/lxc-memory rw - cgroup cgroup rw,memory',
      '42 1 0:22 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
      '43 1 0:22 / /elsewhere rw - cgroup cgroup rw,memory',
    ]);
    expect(layout.hierarchies.map(summarise)).toEqual([['memory', `${FS}/memory`, '/']]);
  });

  it('takes the first cgroup2 device when several appear', () => {
    const layout = layoutOfLines([
      '40 1 0:40 / /first rw - cgroup2 cgroup2 rw',
      '41 1 0:41 / /second rw - cgroup2 cgroup2 rw',
    ]);
    expect(layout.hierarchies.map(summarise)).toEqual([['unified', '/first', '/']]);
  });

  it('ignores v1 mounts with neither a known controller nor a name, and other filesystems', () => {
    const layout = layoutOfLines([
      '40 1 0:40 / /cg/odd rw - cgroup cgroup rw,xattr,clone_children',
      '41 1 0:41 / /cg/empty-name rw - cgroup cgroup rw,name=',
      '42 1 0:42 / /sys/fs/cgroup rw - tmpfs cgroup rw,mode=755',
      '43 1 0:43 / /cg/pids rw - cgroup cgroup rw,pids',
    ]);
    expect(layout.listControllers()).toEqual(['pids']);
  });

  it('reads v2 controllers from the chosen mount point only, sorted and de-duplicated', () => {
    const readV2Controllers = vi.fn((_mountPoint: string) => ['pids', 'memory', 'io', 'memory']);
    const layout = buildLayout(parseMountinfo([
      '40 1 0:40 /sub /inner rw - cgroup2 cgroup2 rw',
      '41 1 0:40 / /outer rw - cgroup2 cgroup2 rw',
    ].join('\n')), { readV2Controllers });
    expect(readV2Controllers.mock.calls).toEqual([['/outer']]);
    expect(layout.listControllers()).toEqual(['unified,io,memory,pids']);
  });

  it('does not read v2 controllers when there is no cgroup2 mount', () => {
    const readV2Controllers = vi.fn((_mountPoint: string) => []);
    buildLayout(parseMountinfo(readFixture('legacy-separate.mountinfo')), { readV2Controllers });
    expect(readV2Controllers).not.toHaveBeenCalled();
  });

  it('builds an empty layout from no cgroup mounts', () => {
    const layout = layoutOfLines(['27 1 254:0 / / rw - ext4 /dev/vda rw']);
    expect(layout.hierarchies).toEqual([]);
    expect(allNames(layout)).toBe('');
    expect(layout.resolveList('all')).toEqual([]);
    expect(layout.resolveSingle('memory')).toEqual({ unknown: 'memory' });
  });
});

describe('skip (-M)', () => {
  it.each([
    [['name=systemd'], 'blkio,cpu,cpuset,devices,freezer,hugetlb,memory,net_cls,perf_event,pids,rdma,unified'],
    [['systemd'], 'blkio,cpu,cpuset,devices,freezer,hugetlb,memory,net_cls,perf_event,pids,rdma,unified'],
    [['cpuacct'], 'blkio,cpuset,devices,freezer,hugetlb,memory,net_cls,perf_event,pids,rdma,name=systemd,unified'],
    [['unified', 'memory'], 'blkio,cpu,cpuset,devices,freezer,hugetlb,net_cls,perf_event,pids,rdma,name=systemd'],
    [['bogus'], 'blkio,cpu,cpuset,devices,freezer,hugetlb,memory,net_cls,perf_event,pids,rdma,name=systemd,unified'],
  ])('hybrid-systemd skipping %j', (skip, all) => {
    expect(allNames(layoutOf('hybrid-systemd', skip))).toBe(all);
  });

  it('makes a skipped hierarchy unknown by every name', () => {
    const layout = layoutOf('hybrid-systemd', ['cpu']);
    expect(layout.find('cpuacct')).toBeUndefined();
    expect(layout.resolveList('memory,cpuacct')).toEqual({ unknown: 'cpuacct' });
    expect(layout.resolveSingle('cpu')).toEqual({ unknown: 'cpu' });
  });

  it('skips the v2 hierarchy by a controller it holds', () => {
    expect(layoutOf('this-host', ['hugetlb']).listControllers()).not.toContain('unified,hugetlb');
  });
});
