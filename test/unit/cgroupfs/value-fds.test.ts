// The kept value fds (daemon/cgroupfs/value-fds.ts) on plain files: what is kept, what is
// read afresh, when a kept fd is given up, and the bound. (On cgroupfs, test/hostile/kept-fds.)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { closeKeptValueFds, IDLE_MS, isKeepable, keptValueFdCount, MAX_KEPT, readValueFile } from '../../../daemon/cgroupfs/value-fds';

describe('kept value fds', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-value-fds-'));
    closeKeptValueFds();
  });
  afterEach(() => {
    closeKeptValueFds();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps no fd for files with state per open file', () => {
    for (const file of ['cgroup.procs', 'tasks', 'cgroup.threads', 'cgroup.events', 'cpu.pressure', 'a/b']) expect(isKeepable(file), file).toBe(false);
    for (const file of ['memory.max', 'cpu.shares', 'notify_on_release', 'memory.stat']) expect(isKeepable(file), file).toBe(true);
  });

  it('reads the file as it is now on every read through the kept fd', () => {
    const file = path.join(dir, 'v');
    fs.writeFileSync(file, '1\n');
    expect(readValueFile('d:1', 'v', file, 1024)).toBe('1\n');
    expect(keptValueFdCount()).toBe(1);
    fs.writeFileSync(file, '22\n'); // same inode, new contents
    expect(readValueFile('d:1', 'v', file, 1024)).toBe('22\n');
    expect(keptValueFdCount()).toBe(1);
  });

  it('files the fd under the directory identity: another identity opens afresh', () => {
    fs.writeFileSync(path.join(dir, 'a'), 'A');
    fs.writeFileSync(path.join(dir, 'b'), 'B');
    expect(readValueFile('d:1', 'v', path.join(dir, 'a'), 1024)).toBe('A');
    expect(readValueFile('d:2', 'v', path.join(dir, 'b'), 1024)).toBe('B');
    expect(keptValueFdCount()).toBe(2);
  });

  it('keeps nothing for an empty answer', () => {
    const file = path.join(dir, 'empty');
    fs.writeFileSync(file, '');
    expect(readValueFile('d:1', 'empty', file, 1024)).toBe('');
    expect(keptValueFdCount()).toBe(0);
  });

  it('a missing file is the error of the open, and nothing is kept', () => {
    expect(() => readValueFile('d:1', 'v', path.join(dir, 'missing'), 1024)).toThrow(/ENOENT/);
    expect(keptValueFdCount()).toBe(0);
  });

  it('closes an fd left unused for a while, and keeps one in use', () => {
    vi.useFakeTimers();
    try {
      fs.writeFileSync(path.join(dir, 'idle'), 'i');
      fs.writeFileSync(path.join(dir, 'busy'), 'b');
      readValueFile('d:1', 'idle', path.join(dir, 'idle'), 1024);
      readValueFile('d:1', 'busy', path.join(dir, 'busy'), 1024);
      for (let t = 0; t < 5; t++) {
        vi.advanceTimersByTime(IDLE_MS / 2);
        readValueFile('d:1', 'busy', path.join(dir, 'busy'), 1024);
      }
      // 2.5 x IDLE_MS later: the idle one is closed, the busy one still kept.
      expect(keptValueFdCount()).toBe(1);
      vi.advanceTimersByTime(3 * IDLE_MS);
      expect(keptValueFdCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it(`keeps at most ${MAX_KEPT} fds, closing the least recently used`, () => {
    const file = path.join(dir, 'v');
    fs.writeFileSync(file, '1');
    for (let i = 0; i < MAX_KEPT + 10; i++) readValueFile(`d:${i}`, 'v', file, 1024);
    expect(keptValueFdCount()).toBe(MAX_KEPT);
  });
});
