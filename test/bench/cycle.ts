// One lifecycle cycle through the daemon, the same steps as floor.c: create, chown,
// set a value, move a pid in, read the value, move the pid back, remove. Shared by the
// single-client run and the worker processes of the concurrent runs.
import type { CgmanagerClient } from '../../client';

export interface CycleTarget {
  controller: string;
  /** the base cgroup, relative to the caller's own cgroup */
  base: string;
  key: string;
  values: [string, string];
  victimPid: number;
  uid: number;
  gid: number;
}

export type Latencies = Record<string, number[]>;

export function record(latencies: Latencies, method: string, startNs: bigint): void {
  const us = Number(process.hrtime.bigint() - startNs) / 1000;
  (latencies[method] ??= []).push(us);
}

async function timed<T>(latencies: Latencies, method: string, call: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  const result = await call();
  record(latencies, method, start);
  return result;
}

export async function runCycle(client: CgmanagerClient, t: CycleTarget, name: string, i: number, latencies: Latencies): Promise<void> {
  const cg = `${t.base}/${name}`;
  const start = process.hrtime.bigint();
  await timed(latencies, 'Create', () => client.create(t.controller, cg));
  await timed(latencies, 'Chown', () => client.chown(t.controller, cg, t.uid, t.gid));
  await timed(latencies, 'SetValue', () => client.setValue(t.controller, cg, t.key, t.values[i % 2] as string));
  await timed(latencies, 'MovePid', () => client.movePid(t.controller, cg, t.victimPid));
  await timed(latencies, 'GetValue', () => client.getValue(t.controller, cg, t.key));
  await timed(latencies, 'MovePid', () => client.movePid(t.controller, t.base, t.victimPid));
  await timed(latencies, 'Remove', () => client.remove(t.controller, cg, false));
  record(latencies, 'cycle', start);
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}
