// The bench's Setup row: one container's cgroup (3 hierarchies where the layout has them,
// chown, 3 limits, 1 pid) made by one Setup call, against floor.c --setup doing the same
// syscalls directly. The cgroups are made below the bench's own base cgroup in each
// hierarchy and undone between calls (untimed, by the bench itself: it made them).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CgmanagerClient } from '../../client';
import type { Hierarchy, Layout } from '../../daemon/cgroupfs/layout';

/** One limit per controller, v1 and v2 names (Setup takes either version's). */
const LIMITS: Array<{ controller: string; v1: [string, string]; v2: [string, string] }> = [
  { controller: 'cpu', v1: ['cpu.shares', '512'], v2: ['cpu.weight', '50'] },
  { controller: 'memory', v1: ['memory.limit_in_bytes', '268435456'], v2: ['memory.max', '268435456'] },
  { controller: 'pids', v1: ['pids.max', '100'], v2: ['pids.max', '100'] },
];

export interface SetupTarget {
  controllers: string;
  /** each hierarchy's base directory (the bench's own cgroup's child baseName) with its limit */
  dirs: Array<{ h: Hierarchy; dir: string; key: string; value: string }>;
  limits: Record<string, string>;
}

/** The hierarchies and limits of the Setup row; undefined when the layout lacks a controller. */
export function setupTarget(layout: Layout, ownOf: (h: Hierarchy) => string | undefined, baseName: string): SetupTarget | undefined {
  const dirs: SetupTarget['dirs'] = [];
  const limits: Record<string, string> = {};
  for (const l of LIMITS) {
    const h = layout.find(l.controller);
    if (!h) return undefined;
    const [key, value] = h.version === 2 ? l.v2 : l.v1;
    limits[key] = value;
    const own = ownOf(h);
    if (own === undefined) return undefined;
    const dir = layout.toFsPath(h, own === '/' ? `/${baseName}` : `${own}/${baseName}`);
    if (!dir) return undefined;
    dirs.push({ h, dir, key, value });
  }
  return { controllers: LIMITS.map((l) => l.controller).join(','), dirs, limits };
}

/** floor.c --setup: µs per container. */
export function setupFloorUs(floor: string, t: SetupTarget, pid: number, uid: number, gid: number, cycles: number): number {
  // A comounted layout (or v2) puts several controllers in one directory: one mkdir there.
  const byDir = new Map<string, Array<[string, string]>>();
  for (const d of t.dirs) (byDir.get(d.dir) ?? byDir.set(d.dir, []).get(d.dir)!).push([d.key, d.value]);
  if ([...byDir.values()].some((keys) => keys.length > 1)) return NaN; // floor.c writes one key per directory
  const args = ['--setup', String(cycles), String(pid), String(uid), String(gid)];
  for (const [dir, keys] of byDir) args.push(dir, ...(keys[0] as [string, string]));
  return Number(execFileSync(floor, args).toString()) / 1000;
}

type SetupCall = (controllers: string, cgroup: string, spec: { owner?: { uid: number; gid: number }; limits?: Record<string, string>; pids?: number[] }) => Promise<unknown>;

/** The client's setup method, where this build has one (cgmanager1). */
export function setupCall(client: CgmanagerClient): SetupCall | undefined {
  const fn = (client as unknown as { setup?: SetupCall }).setup;
  return typeof fn === 'function' ? fn.bind(client) : undefined;
}

/** Setup through the daemon, `cycles` times: latencies in µs (undone between calls). */
export async function setupThroughDaemon(client: CgmanagerClient, t: SetupTarget, baseName: string, pid: number, uid: number, gid: number, cycles: number): Promise<number[]> {
  const setup = setupCall(client);
  if (!setup) throw new Error('this build has no Setup');
  const out: number[] = [];
  const dirs = [...new Set(t.dirs.map((d) => d.dir))];
  for (let i = 0; i < cycles; i++) {
    const name = `setup${i}`;
    const start = process.hrtime.bigint();
    await setup(t.controllers, `${baseName}/${name}`, { owner: { uid, gid }, limits: t.limits, pids: [pid] });
    out.push(Number(process.hrtime.bigint() - start) / 1000);
    for (const dir of dirs) fs.writeFileSync(path.join(dir, 'cgroup.procs'), `${pid}\n`);
    for (const dir of dirs) removeTree(path.join(dir, name));
  }
  return out;
}

/** Removes a cgroup the bench made, deepest first (a v2 hidden leaf included). */
export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(path.join(dir, e.name));
  fs.rmdirSync(dir);
}
