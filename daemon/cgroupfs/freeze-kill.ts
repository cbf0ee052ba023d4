// Helpers for freezing and killing a subtree, shared by both drivers: waiting for the
// kernel's freezer to settle without blocking other requests, and the kill fallback
// (freeze, SIGKILL every task of the subtree, thaw) for v1 and for v2 kernels before
// cgroup.kill (Linux 5.14). Frozen tasks cannot fork, so no task escapes the list.
import { CgmError } from '../errors';
import type { CgroupFs } from './cgroupfs';
import type { Hierarchy } from './layout';

/** How long a freeze may take to settle before SetValue gives up (tasks in D state can delay it). */
export const FREEZE_TIMEOUT_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `isDone` with growing pauses (1 ms to 50 ms) until true; Timeout error after `timeoutMs`. */
export async function waitUntil(isDone: () => boolean | Promise<boolean>, what: string, timeoutMs = FREEZE_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 1; !(await isDone()); pause = Math.min(pause * 2, 50)) {
    if (Date.now() > deadline) throw new CgmError('Timeout', `${what} did not settle within ${timeoutMs} ms`);
    await sleep(pause);
  }
}

/** How one version's freezer is driven: its write, and whether the state it asked for has settled. */
export interface FreezerFiles {
  write(frozen: boolean): void;
  isSettled(frozen: boolean): boolean;
}

/** Told of every freezer state the daemon set, once settled (hook for a Frozen signal). */
export type FrozenListener = (h: Hierarchy, cg: string, frozen: boolean) => void;
const frozenListeners = new Set<FrozenListener>();

/** Subscribes to every settled freezer change the daemon makes; returns the unsubscribe. */
export function onFrozenChange(listener: FrozenListener): () => void {
  frozenListeners.add(listener);
  return () => frozenListeners.delete(listener);
}

/**
 * The one function through which the daemon changes a freezer state (SetValue of
 * freezer.state or cgroup.freeze, Freeze, Thaw, and the freezes of a kill fallback, on
 * both versions): writes it, waits until the kernel reports it settled, undoes a freeze
 * that cannot finish, and tells the listeners.
 */
export async function setFreezerState(cgfs: CgroupFs, h: Hierarchy, cg: string, frozen: boolean, files: FreezerFiles): Promise<void> {
  files.write(frozen);
  try {
    await waitUntil(() => files.isSettled(frozen), `freezing ${cgfs.describe(h, cg)}`);
  } catch (err) {
    // A freeze that cannot finish is undone rather than left half-frozen (as runc does).
    if (frozen) thawQuietly(() => files.write(false));
    throw err;
  }
  for (const listener of frozenListeners) {
    try {
      listener(h, cg, frozen);
    } catch {
      // a listener's failure is its own; the freeze itself succeeded
    }
  }
}

/** Runs a thaw whose own failure must not hide the error that made it necessary. */
export function thawQuietly(thaw: () => void): void {
  try {
    thaw();
  } catch {
    // the cgroup may be gone; the caller reports the original failure
  }
}

/**
 * The kill fallback: freeze the subtree, SIGKILL every task in it, thaw it (v1's frozen
 * tasks only die once thawed). The subtree is thawed even when a kill fails.
 */
export async function killByFreezing(freeze: (frozen: boolean) => Promise<void>, pids: () => Promise<number[]>): Promise<void> {
  await freeze(true);
  try {
    // The whole list is gathered (and bounded) before the first kill: all or nothing.
    for (const pid of await pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // gone already is fine
      }
    }
  } finally {
    await freeze(false);
  }
}
