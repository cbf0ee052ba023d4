// The release agents' generated executables and spool entries, which hierarchies may be
// auto-removed, the mount watch and the layout comparison behind run-time mount changes.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { agentFileName, parsePending, renderAgentScript } from '../../../daemon/release-agent';
import { isAutoRemoveSupported, isHierarchyTop, isMountedByDaemon } from '../../../daemon/cgroupfs/auto-remove';
import { MountWatch } from '../../../daemon/cgroupfs/mount-watch';
import { compareLayouts } from '../../../daemon/runtime';
import { buildLayout, type Hierarchy, type Layout } from '../../../daemon/cgroupfs/layout';
import { parseMountinfo } from '../../../daemon/proc/mountinfo';

const line = (id: number, dev: string, mp: string, fsType: string, superOpts: string, root = '/'): string =>
  `${id} 20 ${dev} ${root} ${mp} rw,relatime shared:${id} - ${fsType} ${fsType} ${superOpts}`;

function layoutOf(lines: string[]): Layout {
  return buildLayout(parseMountinfo(lines.join('\n')), { readV2Controllers: () => [] });
}

const HOST = [
  line(30, '0:26', '/sys/fs/cgroup/unified', 'cgroup2', 'rw'),
  line(31, '0:27', '/sys/fs/cgroup/systemd', 'cgroup', 'rw,xattr,name=systemd'),
  line(32, '0:28', '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
  line(33, '0:29', '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
];

function hierarchy(layout: Layout, name: string): Hierarchy {
  const h = layout.find(name);
  if (!h) throw new Error(`no ${name}`);
  return h;
}

describe('the generated release agent', () => {
  it.each<[string, string]>([
    ['memory', 'cgm-release-agent.memory'],
    ['cpu', 'cgm-release-agent.cpu,cpuacct'],
    ['name=systemd', 'cgm-release-agent.systemd'],
  ])('%s is served by %s', (name, file) => {
    expect(agentFileName(hierarchy(layoutOf(HOST), name))).toBe(file);
  });

  it('spools the controller and its one argument, under the kernel\'s bare environment, leaving no half-written entry', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-agent-'));
    try {
      const pending = path.join(dir, "pend'ing dir");
      fs.mkdirSync(pending);
      const agent = path.join(dir, 'agent');
      fs.writeFileSync(agent, renderAgentScript({ pending, controller: 'name=systemd', label: 'name=systemd' }), { mode: 0o755 });
      const env = { PATH: '/sbin:/bin:/usr/sbin:/usr/bin', HOME: '/' };
      execFileSync(agent, ['/lxc/c1 x'], { env });
      execFileSync(agent, ['/lxc/c1 x'], { env });
      const entries = fs.readdirSync(pending);
      expect(entries).toHaveLength(2);
      for (const e of entries) {
        expect(e).toMatch(/^[A-Za-z0-9]{10}\.release$/);
        const text = fs.readFileSync(path.join(pending, e), 'utf8');
        expect(text).toBe('name=systemd\n/lxc/c1 x');
        expect(parsePending(text)).toEqual({ controller: 'name=systemd', cgroup: '/lxc/c1 x' });
        expect(fs.statSync(path.join(pending, e)).mode & 0o777).toBe(0o600);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each<[string, string, ReturnType<typeof parsePending>]>([
    ['a release', 'memory\n/a/b', { controller: 'memory', cgroup: '/a/b' }],
    ['slashes are collapsed', 'memory\na//b/', { controller: 'memory', cgroup: '/a/b' }],
    ['a newline inside a cgroup name is kept', 'memory\n/a\nb', { controller: 'memory', cgroup: '/a\nb' }],
    ['.. is refused', 'memory\n/a/../b', undefined],
    ['no controller', '\n/a', undefined],
    ['no path line', 'memory', undefined],
  ])('spool entry: %s', (_name, text, expected) => {
    expect(parsePending(text)).toEqual(expected);
  });
});

describe('which hierarchies may be auto-removed', () => {
  const layout = layoutOf([...HOST, line(40, '0:40', '/run/cgmanager/fs/name=x', 'cgroup', 'rw,name=x')]);
  const options = (allowed: string[]) => ({ mountDir: '/run/cgmanager/fs', allowAutoremovePremounted: allowed });
  it.each<[string, string[], boolean]>([
    ['unified', [], true],
    ['name=x', [], true], // mounted by the daemon (-m)
    ['memory', [], false],
    ['memory', ['memory'], true],
    ['cpuacct', ['cpu'], true], // any name of the co-mounted hierarchy
    ['name=systemd', ['all'], true],
    ['name=systemd', ['memory'], false],
  ])('%s with --allow-autoremove-premounted %j: %s', (name, allowed, expected) => {
    expect(isAutoRemoveSupported(hierarchy(layout, name), options(allowed))).toBe(expected);
  });

  it('knows its own mounts by the mount directory, boundary-aware', () => {
    expect(isMountedByDaemon(hierarchy(layout, 'name=x'), '/run/cgmanager/fs')).toBe(true);
    expect(isMountedByDaemon(hierarchy(layout, 'name=x'), '/run/cgmanager/f')).toBe(false);
  });

  it('never treats the top of what it sees as removable', () => {
    const bound = layoutOf([line(50, '0:50', '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory', '/lxc/c1')]);
    const h = hierarchy(bound, 'memory');
    expect(isHierarchyTop(h, '/')).toBe(true);
    expect(isHierarchyTop(h, '/lxc/c1')).toBe(true);
    expect(isHierarchyTop(h, '/lxc/c1/a')).toBe(false);
  });
});

describe('compareLayouts', () => {
  const named = line(40, '0:40', '/sys/fs/cgroup/x', 'cgroup', 'rw,name=x');
  it.each<[string, string[], string[], ReturnType<typeof compareLayouts>]>([
    ['the same', HOST, [...HOST], undefined],
    ['a mount elsewhere that is no cgroup', HOST, [...HOST, line(60, '0:60', '/mnt', 'tmpfs', 'rw')], undefined],
    ['a hierarchy mounted', HOST, [...HOST, named], { added: ['name=x'], removed: [], moved: [] }],
    ['a hierarchy unmounted', [...HOST, named], HOST, { added: [], removed: ['name=x'], moved: [] }],
    ['a hierarchy reached through another mount', HOST, [...HOST.slice(0, 2), line(32, '0:28', '/srv/memory', 'cgroup', 'rw,memory'), ...HOST.slice(3)], { added: [], removed: [], moved: ['memory'] }],
  ])('%s', (_name, before, after, expected) => {
    expect(compareLayouts(layoutOf(before), layoutOf(after))).toEqual(expected);
  });
});

describe('MountWatch', () => {
  it('calls back only when the mount table text changed', () => {
    let text = 'a';
    const onChange = vi.fn();
    const watch = new MountWatch(1000, onChange, () => text);
    watch.start();
    try {
      expect(watch.check()).toBe(false);
      text = 'b';
      expect(watch.check()).toBe(true);
      expect(watch.check()).toBe(false);
      expect(onChange).toHaveBeenCalledTimes(1);
    } finally {
      watch.stop();
    }
  });

  it('polls on its interval, survives a failed read, and stops', async () => {
    let text = 'a';
    let fail = false;
    const onChange = vi.fn();
    const watch = new MountWatch(10, onChange, () => {
      if (fail) throw new Error('EIO');
      return text;
    });
    watch.start();
    fail = true;
    await new Promise((r) => setTimeout(r, 30));
    fail = false;
    text = 'b';
    await vi.waitFor(() => expect(onChange).toHaveBeenCalledTimes(1));
    watch.stop();
    text = 'c';
    await new Promise((r) => setTimeout(r, 30));
    expect(onChange).toHaveBeenCalledTimes(1);
  });

  it('does nothing with interval 0', () => {
    const read = vi.fn(() => 'x');
    const watch = new MountWatch(0, () => undefined, read);
    watch.start();
    expect(read).not.toHaveBeenCalled();
  });
});
