import { describe, expect, it } from 'vitest';
import type { KeyInfo } from '../../../client/client';
import { CgmanagerError } from '../../../client/errors';
import { childCgroup, collectTree, renderTree, renderTrees, treesJson, type TreeSource } from '../../../client/cli/tree';

const F = 0o100644;
const key = (name: string, uid = 0, gid = 0): KeyInfo => ({ name, uid, gid, mode: F });
const denied = (what: string): CgmanagerError =>
  new CgmanagerError('AccessDenied', `${what}: permission denied`, { dbusName: 'org.freedesktop.DBus.Error.AccessDenied' });

interface FakeCgroup {
  keys: KeyInfo[] | Error;
  tasks: number[] | Error;
  children: string[] | Error;
  values?: Record<string, string | Error>;
}

/** A small known v1 memory tree: '' with children b and a, a/child; b unreadable. */
const V1: Record<string, FakeCgroup> = {
  '': {
    keys: [key('cgroup.procs'), key('tasks'), key('memory.limit_in_bytes'), key('memory.usage_in_bytes')],
    tasks: [1, 2, 3],
    children: ['b', 'a'],
    values: { 'memory.limit_in_bytes': '9223372036854771712' },
  },
  a: {
    keys: [key('cgroup.procs', 1000, 1000), key('tasks', 1000, 1000), key('memory.limit_in_bytes')],
    tasks: [10],
    children: ['child'],
    values: { 'memory.limit_in_bytes': '104857600' },
  },
  'a/child': { keys: [key('cgroup.procs', 1000, 1000), key('tasks', 1000, 1000), key('memory.limit_in_bytes')], tasks: [], children: [], values: { 'memory.limit_in_bytes': '' } },
  b: { keys: denied('b'), tasks: [], children: [] },
};

function fakeSource(tree: Record<string, FakeCgroup>): TreeSource & { calls: string[] } {
  const calls: string[] = [];
  const get = <T>(cg: string, what: (c: FakeCgroup) => T | Error): Promise<T> => {
    const node = tree[cg];
    if (!node) return Promise.reject(new CgmanagerError('FileNotFound', `${cg} does not exist`, { dbusName: 'org.freedesktop.DBus.Error.FileNotFound' }));
    const v = what(node);
    return v instanceof Error ? Promise.reject(v) : Promise.resolve(v);
  };
  return {
    calls,
    listKeys: (c, cg) => (calls.push(`ListKeys ${c} ${cg}`), get(cg, (n) => n.keys)),
    getTasks: (c, cg) => (calls.push(`GetTasks ${c} ${cg}`), get(cg, (n) => n.tasks)),
    listChildren: (c, cg) => (calls.push(`ListChildren ${c} ${cg}`), get(cg, (n) => n.children)),
    getValue: (c, cg, k) => (calls.push(`GetValue ${c} ${cg} ${k}`), get(cg, (n) => n.values?.[k] ?? new Error(`no ${k}`))),
  };
}

describe('childCgroup', () => {
  it.each([
    ['', 'a', 'a'],
    ['a', 'b', 'a/b'],
    ['/', 'a', '/a'],
    ['/x/', 'a', '/x/a'],
  ])('%j + %j = %j', (parent, name, joined) => {
    expect(childCgroup(parent, name)).toBe(joined);
  });
});

describe('cgm tree', () => {
  it('collects owners, task counts and v1 limits, children sorted', async () => {
    const root = await collectTree(fakeSource(V1), 'memory', '', { maxDepth: Infinity });
    expect(root.name).toBe('.');
    expect(root.owner).toEqual({ uid: 0, gid: 0 });
    expect(root.tasks).toBe(3);
    expect(root.limits).toEqual([{ key: 'memory.limit_in_bytes', value: '9223372036854771712' }]);
    expect(root.children.map((c) => c.cgroup)).toEqual(['a', 'b']);
    expect(root.children[0]?.children[0]?.cgroup).toBe('a/child');
    expect(root.children[1]?.errors).toEqual([{ call: 'ListKeys', code: 'AccessDenied', message: 'b: permission denied' }]);
  });

  it('renders a known tree exactly', async () => {
    const root = await collectTree(fakeSource(V1), 'memory', '', { maxDepth: Infinity });
    expect(renderTree({ hierarchy: 'memory', controller: 'memory', root })).toBe(
      [
        'memory         OWNER      TASKS  LIMITS',
        '.              0:0            3  memory.limit_in_bytes=9223372036854771712',
        '├── a          1000:1000      1  memory.limit_in_bytes=104857600',
        '│   └── child  1000:1000      0  memory.limit_in_bytes=',
        '└── b          ?              0  (ListKeys: AccessDenied)',
        '',
      ].join('\n'),
    );
  });

  it('JSON of the same tree', async () => {
    const root = await collectTree(fakeSource(V1), 'memory', '', { maxDepth: Infinity });
    expect(treesJson([{ hierarchy: 'memory', controller: 'memory', root }])).toEqual([
      {
        hierarchy: 'memory',
        controller: 'memory',
        root: {
          name: '.',
          cgroup: '',
          owner: { uid: 0, gid: 0 },
          tasks: 3,
          limits: { 'memory.limit_in_bytes': '9223372036854771712' },
          children: [
            {
              name: 'a',
              cgroup: 'a',
              owner: { uid: 1000, gid: 1000 },
              tasks: 1,
              limits: { 'memory.limit_in_bytes': '104857600' },
              children: [{ name: 'child', cgroup: 'a/child', owner: { uid: 1000, gid: 1000 }, tasks: 0, limits: { 'memory.limit_in_bytes': '' }, children: [] }],
            },
            { name: 'b', cgroup: 'b', owner: null, tasks: 0, limits: {}, children: [], errors: [{ call: 'ListKeys', code: 'AccessDenied', message: 'b: permission denied' }] },
          ],
        },
      },
    ]);
  });

  it('starting below the caller: the root is named by its cgroup argument', async () => {
    const root = await collectTree(fakeSource(V1), 'memory', 'a', { maxDepth: Infinity });
    expect(renderTree({ hierarchy: 'memory', controller: 'memory', root })).toBe(
      ['memory     OWNER      TASKS  LIMITS', 'a          1000:1000      1  memory.limit_in_bytes=104857600', '└── child  1000:1000      0  memory.limit_in_bytes=', ''].join('\n'),
    );
  });

  it('v2: owner from cgroup.procs and the v2 limit table, in table order', async () => {
    const source = fakeSource({
      '': {
        keys: [key('cgroup.controllers'), key('cgroup.procs', 1000, 100), key('pids.max'), key('cpu.max'), key('memory.max'), key('memory.current')],
        tasks: [7],
        children: [],
        values: { 'pids.max': 'max', 'cpu.max': '50000 100000', 'memory.max': new Error('EACCES') as unknown as string },
      },
    });
    const root = await collectTree(source, 'unified', '', { maxDepth: Infinity });
    expect(root.limits).toEqual([
      { key: 'memory.max', value: null },
      { key: 'cpu.max', value: '50000 100000' },
      { key: 'pids.max', value: 'max' },
    ]);
    expect(renderTree({ hierarchy: 'unified,memory,pids', controller: 'unified', root })).toBe(
      'unified,memory,pids  OWNER     TASKS  LIMITS\n.                    1000:100      1  memory.max=? cpu.max=50000 100000 pids.max=max (GetValue memory.max: Failed)\n',
    );
    expect(source.calls).not.toContain('GetValue unified  memory.current');
  });

  it('--depth stops the walk and says how many children are below', async () => {
    const root = await collectTree(fakeSource(V1), 'memory', '', { maxDepth: 0 });
    expect(root.children).toEqual([]);
    expect(root.hiddenChildren).toBe(2);
    expect(renderTree({ hierarchy: 'memory', controller: 'memory', root }).split('\n')[1]).toBe('.       0:0        3  memory.limit_in_bytes=9223372036854771712 [+2 below]');
  });

  it('fails when the root cannot be listed', async () => {
    await expect(collectTree(fakeSource(V1), 'memory', 'nope', { maxDepth: Infinity })).rejects.toMatchObject({ code: 'FileNotFound' });
  });

  it('several hierarchies are separated by an empty line', async () => {
    const one = await collectTree(fakeSource({ '': { keys: [], tasks: [], children: [] } }), 'cpu', '', { maxDepth: Infinity });
    expect(renderTrees([{ hierarchy: 'cpu', controller: 'cpu', root: one }, { hierarchy: 'pids', controller: 'pids', root: one }])).toBe(
      'cpu  OWNER  TASKS  LIMITS\n.    ?          0\n\npids  OWNER  TASKS  LIMITS\n.     ?          0\n',
    );
  });

  it('keeps the number of calls in flight bounded', async () => {
    let inFlight = 0;
    let most = 0;
    const wide: Record<string, FakeCgroup> = { '': { keys: [], tasks: [], children: Array.from({ length: 200 }, (_, i) => `c${i}`) } };
    for (let i = 0; i < 200; i++) wide[`c${i}`] = { keys: [], tasks: [], children: [] };
    const base = fakeSource(wide);
    const slow = <A extends unknown[], T>(f: (...a: A) => Promise<T>) => async (...a: A): Promise<T> => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      return f(...a);
    };
    const root = await collectTree(
      { listKeys: slow(base.listKeys), getTasks: slow(base.getTasks), listChildren: slow(base.listChildren), getValue: slow(base.getValue) },
      'cpu',
      '',
      { maxDepth: Infinity, concurrency: 8 },
    );
    expect(root.children).toHaveLength(200);
    expect(most).toBeLessThanOrEqual(8);
  });
});
