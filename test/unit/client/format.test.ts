import { describe, expect, it } from 'vitest';
import { formatApiVersion, formatCreate, formatKeys, formatNames, formatPidCgroup, formatPids, formatRemove, formatValue, render } from '../../../client/cli/format';

// Text forms are reference §10 byte for byte; JSON shapes as documented in the README.
describe('cgm output formats', () => {
  it.each([
    ['create, existed', formatCreate(true), 'Path existed\n', { existed: true }],
    ['create, new', formatCreate(false), '', { existed: false }],
    ['remove, existed', formatRemove(true), '', { existed: true }],
    ['remove, did not exist', formatRemove(false), 'Path did not exist\n', { existed: false }],
    ['getpidcgroup /', formatPidCgroup('/'), '/\n', { cgroup: '/' }],
    ['getpidcgroup relative', formatPidCgroup('xxx/b'), 'xxx/b\n', { cgroup: 'xxx/b' }],
    ['getpidcgroupabs', formatPidCgroup('/xxx/b'), '/xxx/b\n', { cgroup: '/xxx/b' }],
    ['getvalue', formatValue('104857600'), '104857600\n', { value: '104857600' }],
    ['getvalue, empty', formatValue(''), '\n', { value: '' }],
    ['getvalue, inner newlines kept', formatValue('a 1\nb 2'), 'a 1\nb 2\n', { value: 'a 1\nb 2' }],
    ['gettasks', formatPids([1, 20, 300]), '1\n20\n300\n', [1, 20, 300]],
    ['gettasks, none', formatPids([]), '', []],
    ['listchildren', formatNames(['b', 'a']), 'b\na\n', ['b', 'a']],
    ['listcontrollers', formatNames(['cpu,cpuacct', 'name=systemd', 'unified,memory']), 'cpu,cpuacct\nname=systemd\nunified,memory\n', ['cpu,cpuacct', 'name=systemd', 'unified,memory']],
    ['apiversion', formatApiVersion(10), '10\n', { apiVersion: 10 }],
  ])('%s', (_name, output, text, json) => {
    expect(output.text).toBe(text);
    expect(output.json).toEqual(json);
    expect(render(output, false)).toBe(text);
    expect(render(output, true)).toBe(`${JSON.stringify(json)}\n`);
  });

  it('listkeys: name uid gid octal-mode, unmapped ids as 4294967295', () => {
    const out = formatKeys([
      { name: 'tasks', uid: 0, gid: 0, mode: 0o100644 },
      { name: 'cgroup.procs', uid: 1000, gid: 1000, mode: 0o100664 },
      { name: 'notify_on_release', uid: 4294967295, gid: 4294967295, mode: 0o100644 },
      { name: 'gone', uid: 4294967295, gid: 4294967295, mode: 0 },
    ]);
    expect(out.text).toBe('tasks 0 0 100644\ncgroup.procs 1000 1000 100664\nnotify_on_release 4294967295 4294967295 100644\ngone 4294967295 4294967295 0\n');
    expect(out.json).toEqual([
      { name: 'tasks', uid: 0, gid: 0, mode: 33188, modeOctal: '100644' },
      { name: 'cgroup.procs', uid: 1000, gid: 1000, mode: 33204, modeOctal: '100664' },
      { name: 'notify_on_release', uid: 4294967295, gid: 4294967295, mode: 33188, modeOctal: '100644' },
      { name: 'gone', uid: 4294967295, gid: 4294967295, mode: 0, modeOctal: '0' },
    ]);
  });

  it('JSON is one line', () => {
    expect(render(formatValue('a\nb'), true)).toBe('{"value":"a\\nb"}\n');
  });
});

describe('cgmanager1 outputs', () => {
  it('setup: one line per created/existed hierarchy, applied key and moved pid; --json is the report', async () => {
    const { formatSetup } = await import('../../../client/cli/format');
    const report = { created: ['memory', 'cpu'], existed: ['pids'], applied: { 'memory.max': 'memory.limit_in_bytes', 'cpu.max': 'cpu.cfs_period_us,cpu.cfs_quota_us' }, moved: [42] };
    const out = formatSetup(report);
    expect(out.text).toBe('created memory\ncreated cpu\nexisted pids\napplied memory.max memory.limit_in_bytes\napplied cpu.max cpu.cfs_period_us,cpu.cfs_quota_us\nmoved 42\n');
    expect(out.json).toEqual(report);
  });

  it('stats: "key value" lines in the order given', async () => {
    const { formatStats } = await import('../../../client/cli/format');
    expect(formatStats({ 'memory.current': 4096, 'pids.current': 1, populated: true, frozen: false }).text).toBe('memory.current 4096\npids.current 1\npopulated true\nfrozen false\n');
  });
});
