// Borrowing notify_on_release for v1 Emptied, on an in-memory hierarchy: a watched cgroup's
// release (and that of a child created meanwhile, which inherits the flag) is kept, a
// RemoveOnEmpty mark (before the watch or claimed during it) is removed; giving the borrow
// back puts 0 where the watch caused 1 and nowhere else; a dead run's borrows are given back.
import { describe, expect, it } from 'vitest';
import { BORROWS_MEMORY_ONLY, ReleaseFlags, type BorrowStore, type SavedBorrow } from '../../../daemon/cgroupfs/release-flags';
import type { CgroupFs } from '../../../daemon/cgroupfs/cgroupfs';
import type { Hierarchy } from '../../../daemon/cgroupfs/layout';

const h = { primaryName: 'name=n', version: 1 } as Hierarchy;

function fakeFs(initial: Record<string, string>): { cgfs: CgroupFs; flags: Record<string, string>; mkdir(cg: string): void } {
  const flags: Record<string, string> = { ...initial };
  const cgfs = {
    describe: (_h: Hierarchy, cg: string) => `n:${cg}`,
    readFile: (_h: Hierarchy, cg: string) => {
      if (!(cg in flags)) throw new Error('ENOENT');
      return `${flags[cg]}\n`;
    },
    writeFile: (_h: Hierarchy, cg: string, _f: string, v: string) => {
      flags[cg] = v.trim();
    },
    children: (_h: Hierarchy, cg: string) =>
      Object.keys(flags)
        .filter((c) => c !== cg && c.startsWith(cg === '/' ? '/' : `${cg}/`) && !c.slice(cg === '/' ? 1 : cg.length + 1).includes('/'))
        .map((c) => c.slice(c.lastIndexOf('/') + 1)),
    layout: { find: (n: string) => (n === h.primaryName ? h : undefined) },
  } as unknown as CgroupFs;
  // mkdir inherits the parent's flag, as the kernel does.
  const mkdir = (cg: string): void => {
    flags[cg] = flags[cg.slice(0, cg.lastIndexOf('/')) || '/'] ?? '0';
  };
  return { cgfs, flags, mkdir };
}

describe('borrowed notify_on_release', () => {
  it('keeps what the watch flagged, removes marks, and gives back only its own flags', () => {
    const { cgfs, flags, mkdir } = fakeFs({ '/': '0', '/w': '0', '/w/old': '1', '/w/plain': '0' });
    const rf = new ReleaseFlags(() => cgfs, BORROWS_MEMORY_ONLY);
    rf.borrow(h, '/w');
    rf.borrow(h, '/w'); // a second watcher
    expect(flags['/w']).toBe('1');
    mkdir('/w/new');
    mkdir('/w/claimed');
    rf.claim(h, '/w/claimed'); // RemoveOnEmpty during the watch
    expect(rf.keep(h, '/w')).toBe(true);
    expect(rf.keep(h, '/w/new')).toBe(true);
    expect(rf.keep(h, '/w/old')).toBe(false); // marked before the watch
    expect(rf.keep(h, '/w/claimed')).toBe(false);
    expect(rf.keep(h, '/elsewhere')).toBe(false);
    rf.giveBack(h, '/w');
    expect(flags['/w']).toBe('1'); // still watched once
    rf.giveBack(h, '/w');
    expect(flags).toEqual({ '/': '0', '/w': '0', '/w/old': '1', '/w/plain': '0', '/w/new': '0', '/w/claimed': '1' });
    expect(rf.keep(h, '/w/new')).toBe(false);
  });

  it('a flag that was already set is not ours: its release still removes, and it stays set', () => {
    const { cgfs, flags } = fakeFs({ '/': '0', '/m': '1' });
    const rf = new ReleaseFlags(() => cgfs, BORROWS_MEMORY_ONLY);
    rf.borrow(h, '/m');
    expect(rf.keep(h, '/m')).toBe(false);
    rf.giveBack(h, '/m');
    expect(flags['/m']).toBe('1');
  });

  it('saves borrows before setting the flag, and a restart gives a dead run\'s back', () => {
    const { cgfs, flags, mkdir } = fakeFs({ '/': '0', '/w': '0', '/w/old': '1' });
    let saved: SavedBorrow[] = [];
    const writes: string[] = [];
    const store: BorrowStore = {
      load: () => saved,
      save: (b) => {
        saved = JSON.parse(JSON.stringify(b)) as SavedBorrow[];
        writes.push(flags['/w'] ?? '');
      },
    };
    new ReleaseFlags(() => cgfs, store).borrow(h, '/w');
    expect(writes[0]).toBe('0'); // saved while the flag was still 0
    expect(saved).toEqual([{ hierarchy: 'name=n', cgroup: '/w', markedBefore: ['/w/old'], claimed: [] }]);
    mkdir('/w/new');
    // The daemon dies; the next one restores.
    const next = new ReleaseFlags(() => cgfs, store);
    expect(next.restore()).toBe(1);
    expect(next.keep(h, '/w/new')).toBe(true); // releases spooled meanwhile remove nothing
    next.finishRestore();
    expect(next.keep(h, '/w/new')).toBe(false);
    expect(flags).toEqual({ '/': '0', '/w': '0', '/w/old': '1', '/w/new': '0' });
    expect(saved).toEqual([]);
  });
});
