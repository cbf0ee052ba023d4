// The v1 devices controller emulated on cgroup v2 (devices.allow, devices.deny, devices.list):
// each cgroup's rule list, kept in memory and in the state directory, compiled to a BPF
// program attached to the cgroup. A cgroup without its own list shows its nearest ancestor's
// (or "a *:* rwm"): it has no program of its own and the ancestors' programs apply to it.
// Never logs and never decides who may do what (the request layer does both).
import * as fs from 'node:fs';
import { CgmError } from '../../errors';
import { parentOf, type CgroupFs } from '../cgroupfs';
import type { Hierarchy } from '../layout';
import { attachedProgramIds, installDeviceProgram } from './attach';
import {
  ALLOW_ALL,
  applyDeviceRule,
  formatDeviceList,
  parseDeviceRule,
  propagateDeny,
  isSameRules,
  type DeviceRules,
} from './rules';
import type { DeviceAclEntry, DeviceAclStore } from './state';

/**
 * Most exceptions one cgroup's list may hold. The kernel verifier's time grows about with the
 * square of the program (measured here under load: 6 exceptions 0.6 ms, 256 about 110 ms,
 * 1024 about 340 ms, 4096 about 2.6 s), and it runs on the daemon's one thread.
 */
export const MAX_DEVICE_EXCEPTIONS = 256;

export const DEVICE_KEYS = { allow: 'devices.allow', deny: 'devices.deny', list: 'devices.list' } as const;

/** Whether `key` is one of the emulated v1 device files. */
export function isDeviceKey(key: string): key is (typeof DEVICE_KEYS)[keyof typeof DEVICE_KEYS] {
  return key === DEVICE_KEYS.allow || key === DEVICE_KEYS.deny || key === DEVICE_KEYS.list;
}

/** What a start found: lists whose program was still attached, re-attached, or dropped. */
export interface DeviceAclRestore {
  kept: number;
  reattached: number;
  /** cgroups gone (or removed and made again) since the list was set */
  dropped: number;
  failed: Array<{ cgroup: string; error: string }>;
}

function keyOf(hierarchy: string, cg: string): string {
  return `${hierarchy}:${cg}`;
}

function isUnder(cg: string, top: string): boolean {
  return top === '/' ? cg !== '/' : cg.startsWith(`${top}/`);
}

/** The directory's inode number as text (cgroup ids are 64-bit), or undefined when it is gone. */
function inodeOf(dir: string | undefined): string | undefined {
  if (dir === undefined) return undefined;
  try {
    return String(fs.statSync(dir, { bigint: true }).ino);
  } catch {
    return undefined;
  }
}

function depth(cg: string): number {
  return cg === '/' ? 0 : cg.split('/').length - 1;
}

export class DeviceAcl {
  private readonly entries = new Map<string, DeviceAclEntry>();

  constructor(
    private readonly cgfs: () => CgroupFs,
    private readonly store: DeviceAclStore,
  ) {}

  /** The cgroup's own list, else its nearest ancestor's, else allow-all; `overlay` holds pending changes. */
  rulesOf(h: Hierarchy, cg: string, overlay?: ReadonlyMap<string, DeviceRules>): DeviceRules {
    for (let at = cg; ; at = parentOf(at)) {
      const rules = overlay?.get(at) ?? this.liveEntry(h, at)?.rules;
      if (rules) return rules;
      if (at === '/') return ALLOW_ALL;
    }
  }

  /** The saved list of `cg`, unless that cgroup was removed (and perhaps made again) behind our back. */
  private liveEntry(h: Hierarchy, cg: string): DeviceAclEntry | undefined {
    const key = keyOf(h.primaryName, cg);
    const e = this.entries.get(key);
    if (e === undefined || inodeOf(this.cgfs().layout.toFsPath(h, cg)) === e.ino) return e;
    this.entries.delete(key);
    this.save();
    return undefined;
  }

  /** devices.list: the v1 kernel's format. */
  list(h: Hierarchy, cg: string): string {
    return formatDeviceList(this.rulesOf(h, cg));
  }

  /**
   * One write to devices.allow or devices.deny of cgroup `cg` with v1's semantics: checked
   * against the parent's list, a new restriction carried down to the descendants that have
   * lists, each changed list compiled and swapped in (the cgroup's own first), then saved.
   */
  write(h: Hierarchy, cg: string, file: 'allow' | 'deny', value: string): void {
    const cgfs = this.cgfs();
    const parsed = parseDeviceRule(value);
    if (!parsed.ok) throw new CgmError('InvalidArgs', `${cgfs.describe(h, cg, DEVICE_KEYS[file])}: ${parsed.reason}`);
    const applied = applyDeviceRule(this.rulesOf(h, cg), file, parsed.rule, {
      parent: cg === '/' ? undefined : this.rulesOf(h, parentOf(cg)),
      hasChildren: cgfs.children(h, cg).length > 0,
    });
    if (!applied.ok) {
      throw new CgmError(applied.errno === 'EPERM' ? 'AccessDenied' : 'InvalidArgs', `cannot write to ${cgfs.describe(h, cg, DEVICE_KEYS[file])}: ${applied.reason}`);
    }
    if (applied.rules.exceptions.length > MAX_DEVICE_EXCEPTIONS) {
      throw new CgmError('LimitsExceeded', `${cgfs.describe(h, cg)} would hold more than ${MAX_DEVICE_EXCEPTIONS} device exceptions; use wildcards`);
    }
    const changes = new Map<string, DeviceRules>([[cg, applied.rules]]);
    if (file === 'deny' && !parsed.rule.all) {
      const below = [...this.entries.values()]
        .filter((e) => e.hierarchy === h.primaryName && isUnder(e.cgroup, cg) && this.liveEntry(h, e.cgroup) !== undefined)
        .sort((a, b) => depth(a.cgroup) - depth(b.cgroup));
      for (const e of below) {
        const next = propagateDeny(e.rules, this.rulesOf(h, parentOf(e.cgroup), changes), applied.rules.behavior, parsed.rule.exception);
        if (!isSameRules(next, e.rules)) changes.set(e.cgroup, next);
      }
    }
    // The cgroup's own program first: if it fails nothing has changed. A descendant's failure
    // leaves that descendant's older, wider list in place, which the new ancestor program
    // still overrides (ALLOW_MULTI), so no device opens that the new rules deny.
    let failure: CgmError | undefined;
    for (const [at, rules] of changes) {
      try {
        this.install(h, at, rules);
      } catch (err) {
        if (at === cg) throw err;
        const why = err instanceof CgmError ? err : new CgmError('Failed', String(err));
        failure ??= new CgmError(why.code, `${cgfs.describe(h, cg, DEVICE_KEYS[file])} was changed, but not yet the list of ${cgfs.describe(h, at)} below it: ${why.message}`);
      }
    }
    this.save();
    if (failure) throw failure;
  }

  private install(h: Hierarchy, cg: string, rules: DeviceRules): void {
    const cgfs = this.cgfs();
    const dir = cgfs.dir(h, cg);
    const ino = inodeOf(dir);
    if (ino === undefined) throw new CgmError('FileNotFound', `cgroup ${cgfs.describe(h, cg)} does not exist`);
    const key = keyOf(h.primaryName, cg);
    const old = this.entries.get(key);
    const progId = installDeviceProgram(dir, cgfs.describe(h, cg), rules, old?.ino === ino ? old.progId : undefined);
    this.entries.set(key, { hierarchy: h.primaryName, cgroup: cg, ino, progId, rules });
  }

  /** Drops the lists of `cg` and everything below it (the cgroups were removed; the kernel dropped the programs). */
  forget(h: Hierarchy, cg: string): void {
    let changed = false;
    for (const [key, e] of this.entries) {
      if (e.hierarchy === h.primaryName && (e.cgroup === cg || isUnder(e.cgroup, cg))) {
        this.entries.delete(key);
        changed = true;
      }
    }
    if (changed) this.save();
  }

  private save(): void {
    this.store.save([...this.entries.values()]);
  }

  /**
   * At start: reads the saved lists; a cgroup that is gone or was made again loses its list;
   * one whose program is still attached (programs outlive the daemon) keeps it; any other
   * gets its program compiled and attached again.
   */
  restore(): DeviceAclRestore {
    const cgfs = this.cgfs();
    const report: DeviceAclRestore = { kept: 0, reattached: 0, dropped: 0, failed: [] };
    for (const e of this.store.load().sort((a, b) => depth(a.cgroup) - depth(b.cgroup))) {
      const h = cgfs.layout.find(e.hierarchy);
      const dir = h?.version === 2 ? cgfs.layout.toFsPath(h, e.cgroup) : undefined;
      const ino = inodeOf(dir);
      if (h === undefined || dir === undefined || ino !== e.ino) {
        // A hierarchy that is not mounted now keeps its lists for a later start.
        if (h === undefined) this.entries.set(keyOf(e.hierarchy, e.cgroup), e);
        else report.dropped++;
        continue;
      }
      this.entries.set(keyOf(e.hierarchy, e.cgroup), e);
      try {
        if (attachedProgramIds(dir, cgfs.describe(h, e.cgroup)).includes(e.progId)) {
          report.kept++;
        } else {
          this.install(h, e.cgroup, e.rules);
          report.reattached++;
        }
      } catch (err) {
        report.failed.push({ cgroup: cgfs.describe(h, e.cgroup), error: (err as Error).message });
      }
    }
    if (report.dropped > 0 || report.reattached > 0) this.save();
    return report;
  }
}
