// Walks over cgroup trees in bounded time slices that yield to the event loop, so that a call
// over tens of thousands of cgroups never stalls the daemon's other connections (issue 12).
// A tree may change while it is walked: descendants that vanish are skipped, only a missing
// top is an error. Like cgroupfs.ts it never logs and never decides who may do what.
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CgmError, errorFromErrno } from '../errors';
import { childOf, type CgroupFs } from './cgroupfs';
import type { Hierarchy } from './layout';

/**
 * How long one slice may run before other connections get a turn. A Ping waits at most about
 * one slice plus one syscall, far under the 20 ms p99 target; shorter slices only add turns
 * of the event loop (a few µs each) to the big call.
 */
export const SLICE_MS = 2;

/** Paces a long operation: past its budget, it gives the event loop one turn (I/O included). */
export class Pacer {
  private sliceStart = performance.now();
  /** how many times it yielded, for tests and the benchmark's log */
  yields = 0;

  constructor(private readonly budgetMs = SLICE_MS) {}

  /** Whether the current slice has used its budget. */
  get due(): boolean {
    return performance.now() - this.sliceStart >= this.budgetMs;
  }

  /**
   * A promise to await when the slice is over, else undefined (so that a hot loop pays no
   * microtask per step): `const p = pacer.pace(); if (p) await p;`.
   */
  pace(): Promise<void> | undefined {
    return this.due ? this.yieldNow() : undefined;
  }

  /** setImmediate runs after the poll phase, so the connections' pending reads are served first. */
  async yieldNow(): Promise<void> {
    this.yields++;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.sliceStart = performance.now();
  }
}

/** Opens the directory of `cg` for reading `bufferSize` entries at a time. */
function openListing(cgfs: CgroupFs, h: Hierarchy, cg: string, bufferSize: number): fs.Dir {
  try {
    return fs.opendirSync(cgfs.dir(h, cg), { bufferSize });
  } catch (err) {
    throw errorFromErrno(err, `cannot list ${cgfs.describe(h, cg)}`);
  }
}

/**
 * Names of the child cgroups of `cg` (the hidden v2 leaf excluded), read a few entries at a
 * time through opendir so that even a directory of 20 000 children is listed in slices.
 */
export async function readChildren(cgfs: CgroupFs, h: Hierarchy, cg: string, pacer: Pacer): Promise<string[]> {
  const leaf = cgfs.driver(h).leaf;
  const dir = openListing(cgfs, h, cg, 128);
  const names: string[] = [];
  try {
    for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
      if (entry.isDirectory() && entry.name !== leaf) names.push(entry.name);
      const turn = pacer.pace();
      if (turn) await turn;
    }
  } catch (err) {
    throw errorFromErrno(err, `cannot list ${cgfs.describe(h, cg)}`);
  } finally {
    dir.closeSync();
  }
  return names;
}

/** Whether `cg` has at least one child cgroup; reads no further than the first one. */
export function hasChildren(cgfs: CgroupFs, h: Hierarchy, cg: string): string | undefined {
  const leaf = cgfs.driver(h).leaf;
  const dir = openListing(cgfs, h, cg, 32);
  try {
    for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
      if (entry.isDirectory() && entry.name !== leaf) return entry.name;
    }
    return undefined;
  } finally {
    dir.closeSync();
  }
}

export interface WalkOptions {
  pacer: Pacer;
  /** more cgroups than this in the subtree is LimitsExceeded, before `visit` sees the one too many */
  maxNodes: number;
  /** the name of that limit in the refusal (`max-walk`) */
  limitName?: string;
}

function tooBig(cgfs: CgroupFs, h: Hierarchy, top: string, options: WalkOptions): CgmError {
  return new CgmError(
    'LimitsExceeded',
    `${cgfs.describe(h, top)} has more than ${options.maxNodes} cgroups, the most one call may walk (limit ${options.limitName ?? 'max-walk'}=${options.maxNodes})`,
  );
}

/**
 * Visits `top` and every cgroup below it in pre-order (a parent before its children), in
 * slices. A descendant that vanished, or cannot be read, is skipped with its subtree; a
 * missing top throws FileNotFound. `visit` may be async (it is awaited).
 */
export async function walkSubtree(
  cgfs: CgroupFs,
  h: Hierarchy,
  top: string,
  options: WalkOptions,
  visit: (cg: string) => void | Promise<void>,
): Promise<number> {
  const stack = [top];
  let visited = 0;
  while (stack.length > 0) {
    const cg = stack.pop() as string;
    let names: string[];
    try {
      names = await readChildren(cgfs, h, cg, options.pacer);
    } catch (err) {
      if (cg === top) throw err;
      continue; // removed (or made unreadable) while we walked
    }
    visited++;
    if (visited + stack.length + names.length > options.maxNodes) throw tooBig(cgfs, h, top, options);
    const outcome = visit(cg);
    if (outcome) await outcome;
    for (let i = names.length - 1; i >= 0; i--) stack.push(childOf(cg, names[i] as string));
    const turn = options.pacer.pace();
    if (turn) await turn;
  }
  return visited;
}

/** The subtree's cgroups in pre-order; reversed, every child comes before its parent (removal order). */
export async function listSubtree(cgfs: CgroupFs, h: Hierarchy, top: string, options: WalkOptions): Promise<string[]> {
  const nodes: string[] = [];
  await walkSubtree(cgfs, h, top, options, (cg) => {
    nodes.push(cg);
  });
  return nodes;
}
