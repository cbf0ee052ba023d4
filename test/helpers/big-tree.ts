// A tree of 20 000 cgroups made directly in a private hierarchy (fast: no daemon round trips),
// and a second client that keeps pinging the daemon while a big call runs, for the fair-sharing
// test and benchmark (issue 12).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { RawClient } from './raw-client';

export interface BigTreeShape {
  /** children of `<top>/flat` (one directory with many entries: ListChildren) */
  flat: number;
  /** `<top>/dNN` groups ... */
  groups: number;
  /** ... each with this many children `<top>/dNN/cNNN` */
  perGroup: number;
}

/** 1 + 1 + 10 000 + 100 + 100 x 99 = 20 002 cgroups. */
export const BIG_TREE: BigTreeShape = { flat: 10_000, groups: 100, perGroup: 99 };

export function bigTreeSize(shape: BigTreeShape = BIG_TREE): number {
  return 2 + shape.flat + shape.groups * (1 + shape.perGroup);
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** The group children's relative paths, e.g. 'd07/c042', for placing tasks. */
export function groupChild(group: number, child: number): string {
  return `d${pad(group, 2)}/c${pad(child, 3)}`;
}

/** mkdir of the whole tree below `top` (a host path); returns how long it took. */
export function buildBigTree(top: string, shape: BigTreeShape = BIG_TREE): number {
  const started = performance.now();
  fs.mkdirSync(top);
  fs.mkdirSync(path.join(top, 'flat'));
  for (let i = 0; i < shape.flat; i++) fs.mkdirSync(path.join(top, 'flat', `c${pad(i, 5)}`));
  for (let g = 0; g < shape.groups; g++) {
    fs.mkdirSync(path.join(top, `d${pad(g, 2)}`));
    for (let c = 0; c < shape.perGroup; c++) fs.mkdirSync(path.join(top, groupChild(g, c)));
  }
  return performance.now() - started;
}

/** How many directories (cgroups) there are at and below `top`; 0 when it is gone. */
export function countCgroups(top: string): number {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(top, { withFileTypes: true });
  } catch {
    return 0;
  }
  let n = 1;
  for (const e of entries) if (e.isDirectory()) n += countCgroups(path.join(top, e.name));
  return n;
}

export interface PingsDuring<T> {
  result: T;
  /** Pings answered before the big call's reply arrived */
  pingsBefore: number;
  /** the round trip of each Ping sent before the big call's reply arrived, ms */
  latencies: number[];
  /** the big call's duration from the first Ping, ms */
  ms: number;
}

/**
 * Keeps `pinger` (its own connection) calling Ping, one at a time, until `big` (already sent
 * on another connection) settles; counts the Pings answered before it did.
 */
export async function pingDuring<T>(pinger: RawClient, big: Promise<T>): Promise<PingsDuring<T>> {
  let settled = false;
  let pingsBefore = 0;
  const latencies: number[] = [];
  const started = performance.now();
  let ms = 0;
  const watched = big.finally(() => {
    settled = true;
    ms = performance.now() - started;
  });
  const pinging = (async () => {
    while (!settled) {
      const t = performance.now();
      const reply = await pinger.call('org.freedesktop.DBus.Peer.Ping', '', [], { timeoutMs: 120_000 });
      if (!reply.ok) throw new Error(`Ping failed: ${reply.errorName ?? ''}`);
      // The Ping waiting when the big call ended counts too: its wait is what a stall costs.
      latencies.push(performance.now() - t);
      if (settled) break;
      pingsBefore++;
    }
  })();
  const [result] = await Promise.all([watched, pinging]);
  return { result, pingsBefore, latencies, ms };
}

/** The p-th percentile (0-100) of `values`, nearest rank. */
export function percentileOf(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}
