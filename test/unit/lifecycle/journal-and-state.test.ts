// The files that carry the daemon's promises across restarts: the create journal (what an
// interrupted Create may have made) and the remove-on-empty state file (atomic replacement).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileJournal, parseJournal, rollBackInterrupted, type JournalEntry } from '../../../daemon/create-journal';
import { CgroupFs } from '../../../daemon/cgroupfs/cgroupfs';
import { buildLayout } from '../../../daemon/cgroupfs/layout';
import { parseMountinfo } from '../../../daemon/proc/mountinfo';
import type { Logger } from '../../../daemon/logger';
import { formatState, parseState, StateFile } from '../../../daemon/state-file';
import { writeFileAtomic } from '../../../daemon/atomic-file';
import type { Hierarchy } from '../../../daemon/cgroupfs/layout';

const mkdir = (cg: string, hierarchy = 'memory'): string => JSON.stringify({ op: 'mkdir', hierarchy, mountPoint: `/sys/fs/cgroup/${hierarchy}`, cgroup: cg, uid: 1000, gid: 1000 });
const entry = (cg: string, outcome: JournalEntry['outcome'], hierarchy = 'memory'): JournalEntry => ({ hierarchy, mountPoint: `/sys/fs/cgroup/${hierarchy}`, cgroup: cg, uid: 1000, gid: 1000, outcome });
const EXISTED = '{"op":"existed"}';

describe('parseJournal', () => {
  it.each<[string, string[], JournalEntry[]]>([
    ['empty', [], []],
    ['one mkdir', [mkdir('/a')], [entry('/a', 'attempted')]],
    ['one that found the cgroup there', [mkdir('/a'), EXISTED], [entry('/a', 'existed')]],
    ['a walk down a path', [mkdir('/a'), mkdir('/a/b')], [entry('/a', 'attempted'), entry('/a/b', 'attempted')]],
    ['two hierarchies', [mkdir('/a'), mkdir('/a', 'unified')], [entry('/a', 'attempted'), entry('/a', 'attempted', 'unified')]],
    ['a torn last line (killed mid-write)', [mkdir('/a'), '{"op":"mkd'], [entry('/a', 'attempted')]],
    ['an outcome without an intent', [EXISTED, mkdir('/a')], [entry('/a', 'attempted')]],
    ['a path with ..', [mkdir('/a/../b')], []],
    ['a relative path', [mkdir('a')], []],
    ['a record with missing fields', ['{"op":"mkdir","cgroup":"/a"}'], []],
    ['a bad uid', ['{"op":"mkdir","hierarchy":"memory","mountPoint":"/m","cgroup":"/a","uid":-1,"gid":0}'], []],
  ])('%s', (_name, lines, expected) => {
    expect(parseJournal(lines.join('\n') + (lines.length > 0 ? '\n' : ''))).toEqual(expected);
  });
});

describe('FileJournal', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-journal-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const h = { primaryName: 'memory', mountPoint: '/sys/fs/cgroup/memory' } as Hierarchy;

  it('records intents and outcomes, and is empty again once the Create finished', () => {
    const j = FileJournal.inDir(dir);
    try {
      j.intend(h, '/a', 1000, 1000);
      j.intend(h, '/a/b', 1000, 1000);
      expect(j.pending()).toEqual([entry('/a', 'attempted'), entry('/a/b', 'attempted')]);
      j.finish();
      expect(fs.readFileSync(j.file, 'utf8')).toBe('');
      expect(j.pending()).toEqual([]);
      // Appends after a truncate start at offset 0 (O_APPEND), not after a hole.
      j.intend(h, '/c', 1000, 1000);
      j.existed();
      expect(fs.readFileSync(j.file, 'utf8').startsWith('{')).toBe(true);
      expect(j.pending()).toEqual([entry('/c', 'existed')]);
    } finally {
      j.close();
    }
  });

  it('finish() without any write of its own leaves an earlier run\'s records for the rollback', () => {
    const j = FileJournal.inDir(dir);
    try {
      fs.writeFileSync(j.file, `${mkdir('/left')}\n`);
      j.finish();
      expect(j.pending()).toEqual([entry('/left', 'attempted')]);
    } finally {
      j.close();
    }
  });
});

describe('the remove-on-empty state file', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-state-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips the marks', () => {
    const marks = [{ hierarchy: 'unified', cgroup: '/a' }, { hierarchy: 'unified', cgroup: '/b/c' }];
    expect(parseState(formatState(marks))).toEqual(marks);
    const file = new StateFile(dir);
    expect(file.load()).toEqual([]);
    file.save(marks);
    expect(file.load()).toEqual(marks);
    expect(fs.statSync(file.file).mode & 0o777).toBe(0o600);
    // Nothing but the file itself is left behind (the temporary was renamed).
    expect(fs.readdirSync(dir)).toEqual(['remove-on-empty.json']);
  });

  it.each<[string, string, RegExp | unknown[]]>([
    ['another version', '{"version":2,"removeOnEmpty":[]}', /not a version 1/],
    ['no list', '{"version":1}', /not a version 1/],
    ['not JSON', 'garbage', /JSON|Unexpected/],
    ['bad entries are dropped', '{"version":1,"removeOnEmpty":[{"hierarchy":"unified","cgroup":"/ok"},{"hierarchy":"unified","cgroup":"rel"},{"hierarchy":"unified","cgroup":"/a/../b"},{"cgroup":"/x"},7]}', [{ hierarchy: 'unified', cgroup: '/ok' }]],
  ])('%s', (_name, text, expected) => {
    if (expected instanceof RegExp) expect(() => parseState(text)).toThrow(expected);
    else expect(parseState(text)).toEqual(expected);
  });

  it('writeFileAtomic replaces the file whole and keeps the mode it was asked for', () => {
    const file = path.join(dir, 'agent');
    const old = process.umask(0o077);
    try {
      writeFileAtomic(file, 'one', 0o755);
      writeFileAtomic(file, 'two', 0o755);
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('two');
    expect(fs.statSync(file).mode & 0o777).toBe(0o755);
    expect(fs.readdirSync(dir)).toEqual(['agent']);
  });
});

describe('rollBackInterrupted', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-rollback-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('removes what the interrupted Create made while it is empty and owned as our mkdir leaves it, newest first', () => {
    // A plain directory standing in for a named hierarchy's mount: rmdir behaves alike
    // (refused while something is inside, as the kernel refuses a cgroup with tasks).
    const layout = buildLayout(parseMountinfo(`40 20 0:99 / ${dir} rw - cgroup cgroup rw,name=t`), { readV2Controllers: () => [] });
    const cgfs = new CgroupFs(layout);
    const uid = process.getuid?.() ?? 0;
    for (const d of ['a/b', 'keep', 'busy', 'theirs']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    fs.writeFileSync(path.join(dir, 'busy', 'tasks'), '');
    const chowned = uid === 0;
    if (chowned) fs.chownSync(path.join(dir, 'theirs'), 4321, 4321);
    const rec = (cg: string, owner = 1000): string => JSON.stringify({ op: 'mkdir', hierarchy: 'name=t', mountPoint: dir, cgroup: cg, uid: owner, gid: owner });
    const journal = FileJournal.inDir(dir);
    try {
      fs.writeFileSync(journal.file, [rec('/a'), rec('/a/b'), rec('/keep'), EXISTED, rec('/busy'), rec('/theirs'), rec('/never-made'), ''].join('\n'));
      const log = { warn: vi.fn(), error: vi.fn() } as unknown as Logger;
      expect(rollBackInterrupted(journal, cgfs, log)).toBe(2);
      expect(fs.existsSync(path.join(dir, 'a'))).toBe(false);
      expect(fs.existsSync(path.join(dir, 'keep'))).toBe(true);
      expect(fs.existsSync(path.join(dir, 'busy'))).toBe(true);
      if (chowned) expect(fs.existsSync(path.join(dir, 'theirs'))).toBe(true);
      expect(fs.readFileSync(journal.file, 'utf8')).toBe('');
    } finally {
      journal.close();
    }
  });
});
