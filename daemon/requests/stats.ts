// Stats (cgmanager1): a container's usage in one call, in cgroup v2's names whatever the
// layout: memory.current, memory.peak, cpu.usage_usec, pids.current (uint64) and
// populated, frozen (boolean). On v1 they come from memory.usage_in_bytes,
// memory.max_usage_in_bytes, cpuacct.usage / 1000, pids.current, the subtree's tasks and
// freezer.state. What the layout lacks is left out. Every file is read with GetValue's
// checks (the caller's read access to the cgroup and to the file).
import type { Hierarchy } from '../cgroupfs/layout';
import type { PinnedCgroup } from '../cgroupfs/pinned';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertPinnedKeyAccess, pinCgroup } from './checks';
import { freezerHierarchy } from './freezing';
import { forEachHierarchyAsync, hierarchyList } from './hierarchies';
import { Pacer } from '../cgroupfs/walk';
import { walkLimitFor } from '../quota/limits';
import { readableCgroup } from './values';

export interface Stats {
  'memory.current'?: bigint;
  'memory.peak'?: bigint;
  'cpu.usage_usec'?: bigint;
  'pids.current'?: bigint;
  populated?: boolean;
  frozen?: boolean;
}

/** The a{sv} reply, keys in a fixed order. */
export function statsEntries(stats: Stats): Array<[string, [string, unknown]]> {
  const out: Array<[string, [string, unknown]]> = [];
  for (const key of ['memory.current', 'memory.peak', 'cpu.usage_usec', 'pids.current'] as const) {
    const v = stats[key];
    if (v !== undefined) out.push([key, ['t', v]]);
  }
  if (stats.populated !== undefined) out.push(['populated', ['b', stats.populated]]);
  if (stats.frozen !== undefined) out.push(['frozen', ['b', stats.frozen]]);
  return out;
}

/** A counter file's value as uint64 (the kernel prints decimal); undefined when unreadable as one. */
export function parseCounter(text: string): bigint | undefined {
  const t = text.trim();
  return /^\d{1,20}$/.test(t) ? BigInt(t) : undefined;
}

/** cpu.stat's usage_usec line. */
export function usageUsecOf(cpuStat: string): bigint | undefined {
  const m = /^usage_usec (\d{1,20})$/m.exec(cpuStat);
  return m ? BigInt(m[1] as string) : undefined;
}

/** cgroup.events' `populated` or `frozen` line. */
export function eventFlag(events: string, name: 'populated' | 'frozen'): boolean | undefined {
  const m = new RegExp(`^${name} ([01])$`, 'm').exec(events);
  return m ? m[1] === '1' : undefined;
}

// v1 file → the v2 name it is reported under; cpuacct.usage is in nanoseconds.
const V1_COUNTERS: ReadonlyArray<[file: string, key: keyof Stats, divisor: bigint]> = [
  ['memory.usage_in_bytes', 'memory.current', 1n],
  ['memory.max_usage_in_bytes', 'memory.peak', 1n],
  ['cpuacct.usage', 'cpu.usage_usec', 1000n],
  ['pids.current', 'pids.current', 1n],
];
const V2_COUNTERS: ReadonlyArray<[file: string, key: keyof Stats]> = [
  ['memory.current', 'memory.current'],
  ['memory.peak', 'memory.peak'],
  ['pids.current', 'pids.current'],
];

export async function stats(rt: Runtime, caller: Caller, controllers: string, cgroup: string): Promise<Stats> {
  const hierarchies = hierarchyList(rt, controllers);
  const freezer = freezerHierarchy(rt);
  const out: Stats = {};
  const set = <K extends keyof Stats>(key: K, value: Stats[K] | undefined): void => {
    if (value !== undefined && out[key] === undefined) out[key] = value;
  };
  // v1's populated walks the subtree: in slices, at most the caller's max-walk (walk.ts).
  const walk = { pacer: new Pacer(), maxNodes: walkLimitFor(rt.options.limits, caller.r.uid) };
  await forEachHierarchyAsync(hierarchies, async (h) => {
    const cg = readableCgroup(rt, caller, h, cgroup);
    const pinned = pinCgroup(rt, h, cg);
    try {
      const read = (file: string): string | undefined => readIfPresent(rt, caller, h, cg, pinned, file);
      if (h.version === 2) {
        for (const [file, key] of V2_COUNTERS) set(key, optional(read(file), parseCounter));
        set('cpu.usage_usec', optional(read('cpu.stat'), usageUsecOf));
        const events = read('cgroup.events');
        const populated = optional(events, (e) => eventFlag(e, 'populated'));
        if (populated !== undefined) out.populated = (out.populated ?? false) || populated;
        if (h === freezer) set('frozen', optional(events, (e) => eventFlag(e, 'frozen')));
      } else {
        for (const [file, key, divisor] of V1_COUNTERS) {
          const n = optional(read(file), parseCounter);
          if (n !== undefined) set(key, (n / divisor) as never);
        }
        // "Populated": any task anywhere in the subtree (v1 has no cgroup.events), looked
        // up below the directory opened for the checks.
        const populated = !(await pinned.files(walk).isSubtreeEmpty());
        out.populated = (out.populated ?? false) || populated;
        if (h === freezer) set('frozen', optional(read('freezer.state'), (s) => s.trim() === 'FROZEN'));
      }
    } finally {
      pinned.close();
    }
  });
  return out;
}

function optional<T>(text: string | undefined, parse: (text: string) => T | undefined): T | undefined {
  return text === undefined ? undefined : parse(text);
}

function readIfPresent(rt: Runtime, caller: Caller, h: Hierarchy, cg: string, pinned: PinnedCgroup, file: string): string | undefined {
  if (!pinned.files().exists(file)) return undefined;
  assertPinnedKeyAccess(rt, caller, h, cg, pinned, file, 'read');
  return pinned.read(file, 64 * 1024);
}
