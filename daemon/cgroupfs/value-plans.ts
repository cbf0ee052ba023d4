// GetValue and SetValue plans shared by both drivers: the key itself when the cgroup has
// that file ("the real file name wins"), else its translation from the other version's
// vocabulary (limit-translation.ts), else the key as given, so an unknown key still
// fails as it always did (FileNotFound from the read or write).
import type { CgroupFs } from './cgroupfs';
import type { GetPlan, SetPlan } from './driver';
import type { Hierarchy } from './layout';
import { translationOf, type Current, type FileWrite, type Version } from './limit-translation';

/** Current values of files of one cgroup, read as root (the request checks access to what it reveals or writes). */
export function currentValues(cgfs: CgroupFs, h: Hierarchy, cg: string): Current {
  return (file) => cgfs.readFile(h, cg, file, 64 * 1024).replace(/\n+$/, '');
}

export function planGetValue(version: Version, cgfs: CgroupFs, h: Hierarchy, cg: string, key: string, maxBytes: number): GetPlan {
  const t = translationOf(key, version);
  // Only keys the other version names pay for the existence check.
  if (t !== undefined && !cgfs.fileExists(h, cg, key)) {
    return { files: t.reads, run: () => t.get(currentValues(cgfs, h, cg)) };
  }
  return { files: [key], run: () => cgfs.readFile(h, cg, key, maxBytes).replace(/\n+$/, '') };
}

export function planSetValue(version: Version, cgfs: CgroupFs, h: Hierarchy, cg: string, key: string, value: string): SetPlan {
  const t = translationOf(key, version);
  const set = t?.set;
  if (t !== undefined && set !== undefined && t.writes !== undefined && !cgfs.fileExists(h, cg, key)) {
    return {
      files: t.writes,
      run: () => applyWrites(cgfs, h, cg, set(value.replace(/\n+$/, '').trim(), currentValues(cgfs, h, cg))),
    };
  }
  return { files: [key], run: () => cgfs.writeFile(h, cg, key, value) };
}


/**
 * Applies writes in order; when one fails, the files already written get their earlier
 * contents back, so a translated limit is never left half set.
 */
export function applyWrites(cgfs: CgroupFs, h: Hierarchy, cg: string, writes: readonly FileWrite[]): void {
  const done: Array<{ file: string; before: string }> = [];
  try {
    for (const w of writes) {
      const before = cgfs.readFile(h, cg, w.file, 64 * 1024).replace(/\n+$/, '');
      cgfs.writeFile(h, cg, w.file, `${w.value}\n`);
      done.push({ file: w.file, before });
    }
  } catch (err) {
    for (const { file, before } of done.reverse()) {
      try {
        cgfs.writeFile(h, cg, file, `${before}\n`);
      } catch {
        // best effort: the earlier value may no longer be valid
      }
    }
    throw err;
  }
}
