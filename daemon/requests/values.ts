// GetValue and SetValue (reference §5.8, §5.9, SPEC §2.2): one existing file of one
// cgroup inside the caller's subtree; the key is a plain file name, and the files that
// move tasks or steer the release agent cannot be set. The other cgroup version's key
// names are translated, and freeze/kill settle before the reply (the hierarchy's driver).
import { CgmError } from '../errors';
import type { Hierarchy } from '../cgroupfs/layout';
import { assertKey, assertSettableKey, assertValue, isHostRoot, isUnder, MAX_VALUE_BYTES, quoteArg } from '../policy';
import { subtreeActionOf } from '../cgroupfs/limit-translation';
import { processCgroup } from './caller';
import type { Runtime } from '../runtime';
import type { Caller } from './caller';
import { assertCgroupAccess, assertPinnedAccess, assertPinnedKeyAccess, assertUnderProxy, pinCgroup, pinFor, resolveTarget, testOnlyCheckPause, type OpenCgroups } from './checks';
import { singleHierarchy } from './hierarchies';
import type { CgroupFiles } from '../cgroupfs/value-plans';
import { Pacer } from '../cgroupfs/walk';
import { walkLimitFor } from '../quota/limits';
import { getDeviceValue, isEmulatedDeviceKey, setDeviceValue } from './device-values';

/** Largest value GetValue returns (memory.stat and friends are a few KiB). */
export const MAX_READ_BYTES = 1024 * 1024;

/** Resolves a readable-form cgroup argument and applies the checks every read makes. */
export function readableCgroup(rt: Runtime, caller: Caller, h: Hierarchy, cgroup: string): string {
  const { path } = resolveTarget(caller, h, cgroup, 'readable');
  assertUnderProxy(rt, caller, h, path);
  assertCgroupAccess(rt, caller, h, path, 'read');
  return path;
}

// The cgroup is opened once (pinned.ts): the key checked is the key read or written, even if
// the caller renames its cgroups meanwhile.
export function getValue(rt: Runtime, caller: Caller, controller: string, cgroup: string, key: string): string {
  const h = singleHierarchy(rt, controller);
  assertKey(key);
  if (isEmulatedDeviceKey(h, key)) return getDeviceValue(rt, h, readableCgroup(rt, caller, h, cgroup), key); // v2: BPF, not a file
  const { path: cg } = resolveTarget(caller, h, cgroup, 'readable');
  assertUnderProxy(rt, caller, h, cg);
  // The directory is opened first and the caller checked against what was opened: one
  // lookup of the path instead of a stat and then an open (which a rename could tell apart).
  const pinned = pinCgroup(rt, h, cg);
  try {
    assertPinnedAccess(rt, caller, h, cg, pinned, undefined, 'read');
    // The key itself, or its translation from the other cgroup version's names (driver);
    // every file it reads is checked and read through the one opened directory.
    const plan = rt.cgfs.driver(h).planGet(rt.cgfs, h, cg, pinned.files(), key, MAX_READ_BYTES);
    for (const file of plan.files) assertPinnedKeyAccess(rt, caller, h, cg, pinned, file, 'read');
    return plan.run();
  } finally {
    pinned.close();
  }
}

/**
 * Returns a promise only where the kernel's state must settle first (freezing, and
 * killing through a freeze); every other write is done when this returns.
 */
export function setValue(rt: Runtime, caller: Caller, controller: string, cgroup: string, key: string, value: string): void | Promise<void> {
  return setValueIn(rt, caller, singleHierarchy(rt, controller), cgroup, key, value);
}

/**
 * SetValue in a hierarchy already resolved (Freeze, Thaw and Kill pick theirs). `settle`, when
 * given, runs after the write on the same opened cgroup (Kill waits there for its tasks to go).
 */
export function setValueIn(
  rt: Runtime, caller: Caller, h: Hierarchy, cgroup: string, key: string, value: string,
  settle?: (files: CgroupFiles, cg: string) => Promise<void>,
): void | Promise<void> {
  assertSettableKey(key);
  assertValue(value);
  const cg = readableCgroup(rt, caller, h, cgroup);
  assertNotDaemonsOwn(rt, h, cg, key, value);
  if (isEmulatedDeviceKey(h, key)) return setDeviceValue(rt, caller, h, cg, key, value); // v2: BPF, not a file
  const text = value === '' || value.endsWith('\n') ? value : `${value}\n`;
  if (Buffer.byteLength(text) > MAX_VALUE_BYTES) throw new CgmError('LimitsExceeded', `value is longer than ${MAX_VALUE_BYTES} bytes`);
  const pinned = pinCgroup(rt, h, cg);
  // Freeze-kill and Kill's wait walk the subtree: in slices, at most the caller's max-walk.
  const files = pinned.files({ pacer: new Pacer(), maxNodes: walkLimitFor(rt.options.limits, caller.r.uid) });
  let done: void | Promise<void>;
  try {
    // The key itself, its translation, or freeze/kill (driver); the caller needs write
    // access to every file the plan writes, exactly as for a plain SetValue.
    const plan = rt.cgfs.driver(h).planSet(rt.cgfs, h, cg, files, key, text);
    for (const file of plan.files) assertPinnedKeyAccess(rt, caller, h, cg, pinned, file, 'write');
    testOnlyCheckPause(rt);
    done = plan.run();
    if (settle) done = Promise.resolve(done).then(() => settle(files, cg));
  } catch (err) {
    pinned.close();
    throw err;
  }
  if (done instanceof Promise) return done.finally(() => pinned.close());
  pinned.close();
}

/**
 * Freezing or killing a subtree that holds the daemon itself is refused, whoever asks: a
 * frozen daemon cannot answer, nor thaw itself (on v1 its kill is freeze-kill-thaw), and a
 * killed one serves nobody. A caller may freeze or kill its own cgroup (it asked to stop
 * itself); host root can still write the file directly.
 */
function assertNotDaemonsOwn(rt: Runtime, h: Hierarchy, cg: string, key: string, value: string): void {
  let action;
  try {
    action = subtreeActionOf(key, value);
  } catch {
    return; // a bad value: the plan reports it
  }
  if (action === undefined || (action.kind === 'freeze' && !action.frozen)) return;
  let own: string;
  try {
    own = processCgroup(rt, process.pid, h);
  } catch {
    return; // not in this hierarchy
  }
  if (isUnder(own, cg)) {
    throw new CgmError('AccessDenied', `${rt.cgfs.describe(h, cg)} holds the daemon itself (in ${own}): it does not ${action.kind} itself`);
  }
}

/** A limit Setup wrote: the files the driver's plan wrote, and how to put back what they held. */
export interface LimitDone {
  /** the files written, in order (the key itself, or its translation) */
  readonly files: readonly string[];
  /** restores the files' earlier contents (nothing when the cgroup is new: its removal undoes it) */
  undo(): void;
  release(): void;
}

/**
 * SetValue of one limit in one resolved hierarchy, for Setup: the same checks and the same
 * driver plan (translation included), but a key that names no file (after translation) is
 * InvalidArgs naming it, freeze/kill and emulated device keys are refused (Setup has its own
 * calls for those), and with `remember` the files' contents are read first so undo() can
 * restore them. Checked and written through the cgroup Setup opened (`open`) when it is this one.
 */
export function setLimitIn(rt: Runtime, caller: Caller, h: Hierarchy, cgroup: string, key: string, value: string, remember: boolean, open?: OpenCgroups): LimitDone {
  assertSettableKey(key);
  assertValue(value);
  if (isEmulatedDeviceKey(h, key)) throw new CgmError('InvalidArgs', `limit ${quoteArg(key)}: device rules on cgroup v2 are set with SetValue, not Setup`);
  // readableCgroup's checks, the directory's own (read access) made on what was opened.
  const { path: cg } = resolveTarget(caller, h, cgroup, 'readable');
  assertUnderProxy(rt, caller, h, cg);
  const text = value === '' || value.endsWith('\n') ? value : `${value}\n`;
  if (Buffer.byteLength(text) > MAX_VALUE_BYTES) throw new CgmError('LimitsExceeded', `value of ${quoteArg(key)} is longer than ${MAX_VALUE_BYTES} bytes`);
  const { pinned, own } = pinFor(rt, h, cg, open);
  const close = (): void => {
    if (own) pinned.close();
  };
  try {
    assertPinnedAccess(rt, caller, h, cg, pinned, undefined, 'read');
    const files = pinned.files();
    const plan = rt.cgfs.driver(h).planSet(rt.cgfs, h, cg, files, key, text);
    const namesNoFile = (): CgmError => new CgmError('InvalidArgs', `limit ${quoteArg(key)} names no file of ${rt.cgfs.describe(h, cg)} (nor does its translation)`);
    // Host root may write any file, and a cgroup made by this Setup is removed again if a write
    // fails: there, a missing file is left to the write to find (and then named as below),
    // sparing an lstat per limit. Anywhere else every file is looked at first.
    const lookFirst = remember || !isHostRoot(caller.requestor);
    for (const file of lookFirst ? plan.files : []) {
      if (!files.exists(file)) throw namesNoFile();
      assertPinnedKeyAccess(rt, caller, h, cg, pinned, file, 'write');
    }
    const before: Array<{ file: string; text: string }> = [];
    if (remember) {
      for (const file of plan.files) {
        try {
          before.push({ file, text: files.read(file, MAX_READ_BYTES).replace(/\n+$/, '') });
        } catch {
          throw new CgmError('InvalidArgs', `limit ${quoteArg(key)}: ${file} of the existing ${rt.cgfs.describe(h, cg)} cannot be read back, so Setup could not undo it; set it with SetValue`);
        }
      }
    }
    let ran: void | Promise<void>;
    try {
      ran = plan.run();
    } catch (err) {
      if (!lookFirst && plan.files.some((file) => !files.exists(file))) throw namesNoFile();
      throw err;
    }
    if (ran instanceof Promise) throw new Error(`${key} settled asynchronously`); // refused by the caller before
    return {
      files: plan.files,
      undo: () => {
        for (const b of before.reverse()) {
          try {
            files.write(b.file, `${b.text}\n`);
          } catch {
            // best effort: an earlier value the kernel no longer takes stays as it is
          }
        }
        close();
      },
      release: close,
    };
  } catch (err) {
    close();
    throw err;
  }
}
