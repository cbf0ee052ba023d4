// Everything a request needs from the daemon: the layout and the cgroup filesystem (swapped
// as a pair when hierarchies are mounted or unmounted at run time), options, the daemon's
// own namespaces, the auto-removal machinery and the create journal. Requests receive it;
// nothing else is global. Most requests run synchronously, so a swap falls between two; the
// sliced ones (walk.ts) keep the cgfs they started with until they finish.
import * as fs from 'node:fs';
import type { Logger } from './logger';
import type { DaemonOptions } from './options';
import { discoverLayout } from './cgroupfs/discover';
import type { Hierarchy, Layout } from './cgroupfs/layout';
import { CgroupFs } from './cgroupfs/cgroupfs';
import { AutoRemover } from './cgroupfs/auto-remove';
import { NO_JOURNAL, type CreateJournal } from './create-journal';
import { MEMORY_ONLY, type MarkStore } from './state-file';
import { DeviceAcl } from './cgroupfs/device-acl/device-acl';
import { DEVICE_ACL_MEMORY_ONLY, type DeviceAclStore } from './cgroupfs/device-acl/state';
import { OwnerLedger } from './quota/ledger';
import { SubtreeClaims } from './requests/subtree-claims';
import { EventHub } from './events';
import { onFrozenChange } from './cgroupfs/freeze-kill';

export interface SelfFacts {
  pid: number;
  /** inode of /proc/self/ns/pid and ns/user (reference §1.5); undefined without namespace support */
  pidNs: number | undefined;
  userNs: number | undefined;
}

/** What a layout swap changed, by ListControllers entry. */
export interface LayoutChange {
  added: string[];
  removed: string[];
  /** hierarchies still there but now reached through another mount */
  moved: string[];
}

export interface Runtime {
  readonly options: DaemonOptions;
  readonly log: Logger;
  readonly self: SelfFacts;
  /** the current layout; may be replaced between requests (refreshLayout) */
  readonly layout: Layout;
  /** the cgroup filesystem over the current layout */
  readonly cgfs: CgroupFs;
  readonly autoRemove: AutoRemover;
  readonly journal: CreateJournal;
  /** device rule lists of v2 cgroups (devices.allow/deny/list emulated with BPF) */
  readonly deviceAcl: DeviceAcl;
  /** who owns how many cgroups per hierarchy (max-cgroups-per-uid), and the limits */
  readonly quota: OwnerLedger;
  /** subtrees a sliced request is removing or pruning right now */
  readonly claims: SubtreeClaims;
  /** Watch and its signals; its hooks hear of v1 releases and of the daemon's v1 freezer writes */
  readonly events: EventHub;
  /** Rediscovers the hierarchies; swaps layout and cgfs when they differ. Undefined when nothing changed. */
  refreshLayout(): LayoutChange | undefined;
  close(): Promise<void>;
}

export interface RuntimeParts {
  /** v2 remove-on-empty marks (default: memory only) */
  marks?: MarkStore;
  journal?: CreateJournal;
  /** where v2 device rule lists are saved (default: memory only) */
  deviceAcl?: DeviceAclStore;
  /** injected for tests */
  discover?: () => Layout;
}

export function namespaceInode(pid: number | 'self', kind: 'pid' | 'user'): number | undefined {
  try {
    return fs.statSync(`/proc/${pid}/ns/${kind}`).ino;
  } catch {
    return undefined;
  }
}

/** What identifies where a hierarchy is reached: a change here means a new cgfs. */
function signatureOf(h: Hierarchy): string {
  return `${h.device} ${h.mountPoint} ${h.mountRoot} ${h.label}`;
}

/** Differences between two layouts, by label; undefined when they are the same. */
export function compareLayouts(before: Layout, after: Layout): LayoutChange | undefined {
  const old = new Map(before.hierarchies.map((h) => [h.label, signatureOf(h)]));
  const now = new Map(after.hierarchies.map((h) => [h.label, signatureOf(h)]));
  const added = [...now.keys()].filter((l) => !old.has(l));
  const removed = [...old.keys()].filter((l) => !now.has(l));
  const moved = [...now.keys()].filter((l) => old.has(l) && old.get(l) !== now.get(l));
  const sameOrder = before.listControllers().join('\n') === after.listControllers().join('\n');
  if (added.length === 0 && removed.length === 0 && moved.length === 0 && sameOrder) return undefined;
  return { added, removed, moved };
}

export function createRuntime(options: DaemonOptions, log: Logger, parts: RuntimeParts = {}): Runtime {
  const discover = parts.discover ?? (() => discoverLayout({ skip: options.skip }));
  // One object, replaced whole, so a request never sees a layout with another layout's cgfs.
  let current = { layout: discover(), cgfs: undefined as unknown as CgroupFs };
  const quota = new OwnerLedger(() => current.cgfs, options.limits, log);
  const events = new EventHub(() => current.cgfs, log);
  // v1 freezer changes have no kernel notification: watches hear of the daemon's own.
  const stopFrozen = onFrozenChange((h, cg) => events.frozenChanged(h, cg));
  current.cgfs = new CgroupFs(current.layout, quota);
  const autoRemove = new AutoRemover(() => current.cgfs, options, log, parts.marks ?? MEMORY_ONLY, events.dirs, events.flags);
  const journal = parts.journal ?? NO_JOURNAL;
  const deviceAcl = new DeviceAcl(() => current.cgfs, parts.deviceAcl ?? DEVICE_ACL_MEMORY_ONLY);
  return {
    options,
    log,
    self: { pid: process.pid, pidNs: namespaceInode('self', 'pid'), userNs: namespaceInode('self', 'user') },
    get layout() {
      return current.layout;
    },
    get cgfs() {
      return current.cgfs;
    },
    autoRemove,
    journal,
    deviceAcl,
    quota,
    claims: new SubtreeClaims(),
    events,
    refreshLayout() {
      const layout = discover();
      const change = compareLayouts(current.layout, layout);
      if (change === undefined) return undefined;
      current = { layout, cgfs: new CgroupFs(layout, quota) };
      autoRemove.rebind();
      quota.rebind();
      return change;
    },
    async close() {
      stopFrozen();
      events.close();
      autoRemove.close();
      quota.close();
      journal.close();
    },
  };
}
