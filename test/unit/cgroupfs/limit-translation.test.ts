// The pure translation of limits between the cgroup versions' key names: one row per case.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  allTranslations, blkioToIoWeight, ioToBlkioWeight, sharesToWeight, subtreeActionOf, translateGet, translateSet, translationOf,
  weightToShares, type Current, type FileWrite, type Version,
} from '../../../daemon/cgroupfs/limit-translation';
import { CgmError } from '../../../daemon/errors';

/** Current values from a table; a file that is not there fails like a missing cgroup file. */
function current(files: Record<string, string>): Current {
  return (file) => {
    const v = files[file];
    if (v === undefined) throw new Error(`test reads ${file}, which the row does not give`);
    return v;
  };
}

const UNLIMITED_V1 = '9223372036854771712';

describe('translateSet', () => {
  it.each<[string, Version, string, Record<string, string>, FileWrite[]]>([
    // v1 names on v2
    ['cpu.shares', 2, '1024', {}, [{ file: 'cpu.weight', value: '39' }]],
    ['cpu.shares', 2, '2', {}, [{ file: 'cpu.weight', value: '1' }]],
    ['cpu.shares', 2, '262144', {}, [{ file: 'cpu.weight', value: '10000' }]],
    ['cpu.shares', 2, '1', {}, [{ file: 'cpu.weight', value: '1' }]],
    ['cpu.shares', 2, '1000000', {}, [{ file: 'cpu.weight', value: '10000' }]],
    ['cpu.cfs_quota_us', 2, '150000', { 'cpu.max': 'max 100000' }, [{ file: 'cpu.max', value: '150000 100000' }]],
    ['cpu.cfs_quota_us', 2, '-1', { 'cpu.max': '150000 100000' }, [{ file: 'cpu.max', value: 'max 100000' }]],
    ['cpu.cfs_quota_us', 2, '10000', { 'cpu.max': 'max 150000' }, [{ file: 'cpu.max', value: '10000 150000' }]],
    ['cpu.cfs_period_us', 2, '150000', { 'cpu.max': '10000 100000' }, [{ file: 'cpu.max', value: '10000 150000' }]],
    ['cpu.cfs_period_us', 2, '50000', { 'cpu.max': 'max 100000' }, [{ file: 'cpu.max', value: 'max 50000' }]],
    ['memory.limit_in_bytes', 2, '268435456', {}, [{ file: 'memory.max', value: '268435456' }]],
    ['memory.limit_in_bytes', 2, '256M', {}, [{ file: 'memory.max', value: '268435456' }]],
    ['memory.limit_in_bytes', 2, '-1', {}, [{ file: 'memory.max', value: 'max' }]],
    ['memory.soft_limit_in_bytes', 2, '1g', {}, [{ file: 'memory.low', value: '1073741824' }]],
    ['memory.soft_limit_in_bytes', 2, '-1', {}, [{ file: 'memory.low', value: 'max' }]],
    ['memory.memsw.limit_in_bytes', 2, '268435456', { 'memory.max': '268435456' }, [{ file: 'memory.swap.max', value: '0' }]],
    ['memory.memsw.limit_in_bytes', 2, '512M', { 'memory.max': '268435456' }, [{ file: 'memory.swap.max', value: '268435456' }]],
    ['memory.memsw.limit_in_bytes', 2, '-1', { 'memory.max': '268435456' }, [{ file: 'memory.swap.max', value: 'max' }]],
    ['blkio.weight', 2, '10', {}, [{ file: 'io.weight', value: 'default 1' }]],
    ['blkio.weight', 2, '500', {}, [{ file: 'io.weight', value: 'default 4950' }]],
    ['blkio.weight', 2, '1000', {}, [{ file: 'io.weight', value: 'default 10000' }]],
    // v2 names on v1
    ['cpu.weight', 1, '100', {}, [{ file: 'cpu.shares', value: '2598' }]],
    ['cpu.weight', 1, '1', {}, [{ file: 'cpu.shares', value: '2' }]],
    ['cpu.weight', 1, '10000', {}, [{ file: 'cpu.shares', value: '262144' }]],
    ['cpu.max', 1, '150000 100000', {}, [{ file: 'cpu.cfs_period_us', value: '100000' }, { file: 'cpu.cfs_quota_us', value: '150000' }]],
    ['cpu.max', 1, 'max 100000', {}, [{ file: 'cpu.cfs_period_us', value: '100000' }, { file: 'cpu.cfs_quota_us', value: '-1' }]],
    ['cpu.max', 1, 'max', {}, [{ file: 'cpu.cfs_quota_us', value: '-1' }]],
    ['cpu.max', 1, '10000', {}, [{ file: 'cpu.cfs_quota_us', value: '10000' }]],
    ['memory.max', 1, '256M', {}, [{ file: 'memory.limit_in_bytes', value: '268435456' }]],
    ['memory.max', 1, 'max', {}, [{ file: 'memory.limit_in_bytes', value: '-1' }]],
    ['memory.low', 1, '4096', {}, [{ file: 'memory.soft_limit_in_bytes', value: '4096' }]],
    ['memory.low', 1, 'max', {}, [{ file: 'memory.soft_limit_in_bytes', value: '-1' }]],
    ['memory.swap.max', 1, '0', { 'memory.limit_in_bytes': '268435456' }, [{ file: 'memory.memsw.limit_in_bytes', value: '268435456' }]],
    ['memory.swap.max', 1, '1M', { 'memory.limit_in_bytes': '268435456' }, [{ file: 'memory.memsw.limit_in_bytes', value: '269484032' }]],
    ['memory.swap.max', 1, 'max', { 'memory.limit_in_bytes': UNLIMITED_V1 }, [{ file: 'memory.memsw.limit_in_bytes', value: '-1' }]],
    ['io.weight', 1, '100', {}, [{ file: 'blkio.weight', value: '20' }]],
    ['io.weight', 1, 'default 10000', {}, [{ file: 'blkio.weight', value: '1000' }]],
    ['io.weight', 1, '1', {}, [{ file: 'blkio.weight', value: '10' }]],
  ])('%s on v%i = %j (current %j) writes %j', (key, version, value, files, writes) => {
    expect(translateSet(key, `${value}\n`, version, current(files))).toEqual(writes);
  });

  it.each<[string, Version, string, Record<string, string>, RegExp]>([
    ['cpu.shares', 2, 'lots', {}, /integer/],
    ['cpu.cfs_quota_us', 2, '1.5', { 'cpu.max': 'max 100000' }, /integer/],
    ['memory.limit_in_bytes', 2, '12 MB', {}, /bytes/],
    ['memory.memsw.limit_in_bytes', 2, '512M', { 'memory.max': 'max' }, /needs a memory limit/],
    ['memory.memsw.limit_in_bytes', 2, '1M', { 'memory.max': '268435456' }, /must not be below/],
    ['blkio.weight', 2, '5', {}, /between 10 and 1000/],
    ['blkio.weight', 2, '1001', {}, /between 10 and 1000/],
    ['cpu.weight', 1, '0', {}, /between 1 and 10000/],
    ['cpu.weight', 1, '10001', {}, /between 1 and 10000/],
    ['cpu.max', 1, '', {}, /QUOTA/],
    ['cpu.max', 1, '1 2 3', {}, /QUOTA/],
    ['cpu.max', 1, '0 100000', {}, /between 1/],
    ['memory.swap.max', 1, '0', { 'memory.limit_in_bytes': UNLIMITED_V1 }, /needs a memory limit/],
    ['io.weight', 1, '8:0 100', {}, /per-device/],
  ])('%s on v%i = %j (current %j) is refused: %s', (key, version, value, files, message) => {
    let error: unknown;
    try {
      translateSet(key, value, version, current(files));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CgmError);
    expect((error as CgmError).code).toBe('InvalidArgs');
    expect((error as CgmError).message).toMatch(message);
  });

  it.each<[string, Version]>([
    ['memory.max', 2], ['cpu.shares', 1], ['pids.max', 1], ['pids.max', 2], ['cpuset.cpus', 2], ['cpuset.cpus', 1],
    ['cpuset.cpus.effective', 1], ['freezer.state', 2], ['no.such.key', 2],
  ])('%s on v%i has no write translation (the key is used as it is)', (key, version) => {
    expect(translateSet(key, '1', version, current({}))).toBeUndefined();
  });
});

describe('translateGet', () => {
  it.each<[string, Version, Record<string, string>, string]>([
    ['cpu.shares', 2, { 'cpu.weight': '100' }, '2598'],
    ['cpu.shares', 2, { 'cpu.weight': '39' }, '999'],
    ['cpu.cfs_quota_us', 2, { 'cpu.max': 'max 100000' }, '-1'],
    ['cpu.cfs_quota_us', 2, { 'cpu.max': '150000 100000' }, '150000'],
    ['cpu.cfs_period_us', 2, { 'cpu.max': '10000 150000' }, '150000'],
    ['memory.limit_in_bytes', 2, { 'memory.max': 'max' }, '-1'],
    ['memory.limit_in_bytes', 2, { 'memory.max': '268435456' }, '268435456'],
    ['memory.soft_limit_in_bytes', 2, { 'memory.low': '0' }, '0'],
    ['memory.memsw.limit_in_bytes', 2, { 'memory.max': '268435456', 'memory.swap.max': '0' }, '268435456'],
    ['memory.memsw.limit_in_bytes', 2, { 'memory.max': '268435456', 'memory.swap.max': 'max' }, '-1'],
    ['memory.memsw.limit_in_bytes', 2, { 'memory.max': 'max', 'memory.swap.max': '0' }, '-1'],
    ['blkio.weight', 2, { 'io.weight': 'default 100\n8:0 200' }, '20'],
    ['cpuset.effective_cpus', 2, { 'cpuset.cpus.effective': '0-3' }, '0-3'],
    ['cpuset.effective_mems', 2, { 'cpuset.mems.effective': '0' }, '0'],
    ['freezer.state', 2, { 'cgroup.freeze': '0', 'cgroup.events': 'populated 1\nfrozen 0' }, 'THAWED'],
    ['freezer.state', 2, { 'cgroup.freeze': '1', 'cgroup.events': 'populated 1\nfrozen 0' }, 'FREEZING'],
    ['freezer.state', 2, { 'cgroup.freeze': '1', 'cgroup.events': 'populated 1\nfrozen 1' }, 'FROZEN'],
    ['cpu.weight', 1, { 'cpu.shares': '1024' }, '39'],
    ['cpu.max', 1, { 'cpu.cfs_quota_us': '-1', 'cpu.cfs_period_us': '100000' }, 'max 100000'],
    ['cpu.max', 1, { 'cpu.cfs_quota_us': '150000', 'cpu.cfs_period_us': '100000' }, '150000 100000'],
    ['memory.max', 1, { 'memory.limit_in_bytes': UNLIMITED_V1 }, 'max'],
    ['memory.max', 1, { 'memory.limit_in_bytes': '268435456' }, '268435456'],
    ['memory.low', 1, { 'memory.soft_limit_in_bytes': UNLIMITED_V1 }, 'max'],
    ['memory.swap.max', 1, { 'memory.limit_in_bytes': '268435456', 'memory.memsw.limit_in_bytes': '268435456' }, '0'],
    ['memory.swap.max', 1, { 'memory.limit_in_bytes': '268435456', 'memory.memsw.limit_in_bytes': UNLIMITED_V1 }, 'max'],
    ['io.weight', 1, { 'blkio.weight': '500' }, 'default 4950'],
    ['cpuset.cpus.effective', 1, { 'cpuset.effective_cpus': '0-1' }, '0-1'],
    ['cgroup.freeze', 1, { 'freezer.state': 'THAWED' }, '0'],
    ['cgroup.freeze', 1, { 'freezer.state': 'FREEZING' }, '1'],
    ['cgroup.freeze', 1, { 'freezer.state': 'FROZEN' }, '1'],
  ])('%s on v%i with %j reads %j', (key, version, files, value) => {
    expect(translateGet(key, version, current(files))).toBe(value);
  });

  it.each<[string, Version]>([['memory.max', 2], ['cpu.shares', 1], ['cgroup.kill', 1], ['pids.max', 2]])(
    '%s on v%i has no read translation',
    (key, version) => expect(translateGet(key, version, current({}))).toBeUndefined(),
  );
});

describe('formulas', () => {
  it.each([[2, 1], [1024, 39], [262144, 10000]])('shares %i ↔ weight %i (crun)', (shares, weight) => {
    expect(sharesToWeight(shares)).toBe(weight);
  });
  it.each([[1, 2], [100, 2598], [10000, 262144]])('weight %i → shares %i', (weight, shares) => {
    expect(weightToShares(weight)).toBe(shares);
  });
  it.each([[10, 1], [100, 910], [1000, 10000]])('blkio.weight %i → io.weight %i (runc)', (blkio, io) => {
    expect(blkioToIoWeight(blkio)).toBe(io);
  });
  it.each([[1, 10], [100, 20], [10000, 1000]])('io.weight %i → blkio.weight %i', (io, blkio) => {
    expect(ioToBlkioWeight(io)).toBe(blkio);
  });
  it('every weight survives a round trip through shares', () => {
    for (let w = 1; w <= 10000; w++) expect(sharesToWeight(weightToShares(w))).toBe(w);
  });
  it('every blkio.weight survives a round trip through io.weight', () => {
    for (let b = 10; b <= 1000; b++) expect(ioToBlkioWeight(blkioToIoWeight(b))).toBe(b);
  });
});

describe('subtreeActionOf', () => {
  it.each([
    ['freezer.state', 'FROZEN\n', { kind: 'freeze', frozen: true }],
    ['freezer.state', 'THAWED', { kind: 'freeze', frozen: false }],
    ['cgroup.freeze', '1\n', { kind: 'freeze', frozen: true }],
    ['cgroup.freeze', '0', { kind: 'freeze', frozen: false }],
    ['cgroup.kill', '1\n', { kind: 'kill' }],
    ['memory.max', '1', undefined],
  ])('%s = %j is %j', (key, value, action) => {
    expect(subtreeActionOf(key, value)).toEqual(action);
  });
  it.each([['freezer.state', 'FREEZING'], ['freezer.state', 'frozen'], ['cgroup.freeze', '2'], ['cgroup.kill', '0'], ['cgroup.kill', '']])(
    '%s = %j is refused',
    (key, value) => expect(() => subtreeActionOf(key, value)).toThrow(/takes/),
  );
});

describe('the table', () => {
  it('every row names a key of the other version and is found by translationOf', () => {
    for (const t of allTranslations()) {
      expect(translationOf(t.key, t.on)).toBe(t);
      expect(t.reads.length).toBeGreaterThan(0);
      expect(t.formula).not.toBe('');
    }
  });
});

describe('the README table', () => {
  it('lists every translation with its formula, and nothing else', () => {
    const readme = fs.readFileSync(path.join(__dirname, '../../../README.md'), 'utf8');
    const table = /<!-- limit-translations:start -->([\s\S]*?)<!-- limit-translations:end -->/.exec(readme)?.[1] ?? '';
    const rows = table.split('\n').filter((l) => l.startsWith('| `'));
    expect(rows.map((r) => r.split(' | ').slice(0, 2).join(' | '))).toEqual(allTranslations().map((t) => `| \`${t.key}\` | v${t.on}`));
    for (const t of allTranslations()) expect(table).toContain(t.formula.replace(/\|/g, '\\|'));
  });
});
