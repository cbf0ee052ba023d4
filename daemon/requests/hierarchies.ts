// Turning a controller argument into hierarchies, and running an operation over a
// list of them with the reference's rules (§3.3): a denial on one of several is
// skipped, any other failure stops the call.
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import type { Runtime } from '../runtime';
import { quoteArg } from '../policy';

function assertControllerArg(arg: string): void {
  if (arg.includes('\0')) throw new CgmError('InvalidArgs', 'controller must not contain a NUL byte');
  if (arg.length > 4096) throw new CgmError('InvalidArgs', 'controller argument is too long');
}

/** Single-hierarchy methods: one controller, or a comma list naming one hierarchy (`cpu,cpuacct`). */
export function singleHierarchy(rt: Runtime, arg: string): Hierarchy {
  assertControllerArg(arg);
  const found = rt.layout.resolveSingle(arg);
  if ('multiple' in found) throw new CgmError('InvalidArgs', `controller ${quoteArg(arg)} names several hierarchies; this method takes one`);
  if ('unknown' in found) throw new CgmError('NoSuchController', `no hierarchy named ${quoteArg(found.unknown)} is mounted`);
  return found;
}

/** List-capable methods: `all`, one controller, or a comma list; co-mounted names collapse. */
export function hierarchyList(rt: Runtime, arg: string): Hierarchy[] {
  assertControllerArg(arg);
  const found = rt.layout.resolveList(arg);
  if ('unknown' in found) throw new CgmError('NoSuchController', `no hierarchy named ${quoteArg(found.unknown)} is mounted`);
  // An empty list would make the call a silent no-op that reports success.
  if (found.length === 0 && arg !== 'all') throw new CgmError('NoSuchController', `controller ${quoteArg(arg)} names no hierarchy`);
  return found;
}

export function isDenial(err: unknown): err is CgmError {
  return err instanceof CgmError && err.code === 'AccessDenied';
}

/**
 * The rule both loops below share: with several hierarchies, an AccessDenied on one is
 * skipped (the first is kept); when every one was denied, the call is denied.
 */
class Outcomes<T> {
  readonly results: T[] = [];
  private denial: CgmError | undefined;

  constructor(private readonly several: boolean) {}

  /** Whether `err` is a denial to skip; any other error is the caller's to rethrow. */
  skips(err: unknown): boolean {
    if (!this.several || !isDenial(err)) return false;
    this.denial ??= err;
    return true;
  }

  /** The results, or the first denial when every hierarchy was denied. */
  finish(): T[] {
    if (this.results.length === 0 && this.denial) throw this.denial;
    return this.results;
  }
}

/**
 * Runs `fn` on each hierarchy. With several, an AccessDenied on one is skipped (the
 * reference's "permission denied is silently ignored for the element"); when every one
 * was denied, the call is denied rather than reporting a success that did nothing.
 * Any other error stops at once and is rethrown.
 */
export function forEachHierarchy<T>(hierarchies: readonly Hierarchy[], fn: (h: Hierarchy) => T): T[] {
  const outcomes = new Outcomes<T>(hierarchies.length > 1);
  for (const h of hierarchies) {
    try {
      outcomes.results.push(fn(h));
    } catch (err) {
      if (!outcomes.skips(err)) throw err;
    }
  }
  return outcomes.finish();
}

/** forEachHierarchy for sliced operations: the same rules, one hierarchy after the other. */
export async function forEachHierarchyAsync<T>(hierarchies: readonly Hierarchy[], fn: (h: Hierarchy) => Promise<T>): Promise<T[]> {
  const outcomes = new Outcomes<T>(hierarchies.length > 1);
  for (const h of hierarchies) {
    try {
      outcomes.results.push(await fn(h));
    } catch (err) {
      if (!outcomes.skips(err)) throw err;
    }
  }
  return outcomes.finish();
}
