// GetValue and SetValue plans shared by both drivers: the key itself when the cgroup has
// that file ("the real file name wins"), else its translation from the other version's
// vocabulary (limit-translation.ts), else the key as given, so an unknown key still
// fails as it always did (FileNotFound from the read or write).
import type { CgroupFs } from './cgroupfs';
import type { GetPlan, SetPlan } from './driver';
import type { Hierarchy } from './layout';
import { translationOf, type Current, type FileWrite, type Version } from './limit-translation';

/**
 * The files of one cgroup. Requests pass the cgroup's directory opened once (pinned.ts), so
 * that a rename between the access check and the write cannot redirect either.
 */
export interface CgroupFiles {
  read(file: string, maxBytes: number): string;
  write(file: string, value: string): void;
  exists(file: string): boolean;
  /**
   * Every process of the subtree below this cgroup (hidden leaves included): the kill
   * fallback's victims, looked up below the same directory as the check, in slices.
   */
  subtreePids(): Promise<number[]>;
  /** Whether no process runs anywhere in the subtree (Kill's wait, Stats' populated). */
  isSubtreeEmpty(): Promise<boolean>;
}

/** Current values of files of one cgroup, read as root (the request checks access to what it reveals or writes). */
export function currentValues(files: CgroupFiles): Current {
  return (file) => files.read(file, 64 * 1024).replace(/\n+$/, '');
}

export function planGetValue(version: Version, files: CgroupFiles, key: string, maxBytes: number): GetPlan {
  const t = translationOf(key, version);
  // Only keys the other version names pay for the existence check.
  if (t !== undefined && !files.exists(key)) {
    return { files: t.reads, run: () => t.get(currentValues(files)) };
  }
  return { files: [key], run: () => files.read(key, maxBytes).replace(/\n+$/, '') };
}

export function planSetValue(version: Version, files: CgroupFiles, key: string, value: string): SetPlan {
  const t = translationOf(key, version);
  const set = t?.set;
  if (t !== undefined && set !== undefined && t.writes !== undefined && !files.exists(key)) {
    return {
      files: t.writes,
      run: () => applyWrites(files, set(value.replace(/\n+$/, '').trim(), currentValues(files))),
    };
  }
  return { files: [key], run: () => files.write(key, value) };
}


/**
 * Applies writes in order; when one fails, the files already written get their earlier
 * contents back, so a translated limit is never left half set.
 */
export function applyWrites(files: CgroupFiles, writes: readonly FileWrite[]): void {
  const done: Array<{ file: string; before: string }> = [];
  try {
    for (const w of writes) {
      const before = files.read(w.file, 64 * 1024).replace(/\n+$/, '');
      files.write(w.file, `${w.value}\n`);
      done.push({ file: w.file, before });
    }
  } catch (err) {
    for (const { file, before } of done.reverse()) {
      try {
        files.write(file, `${before}\n`);
      } catch {
        // best effort: the earlier value may no longer be valid
      }
    }
    throw err;
  }
}
