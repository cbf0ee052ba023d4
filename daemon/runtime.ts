// Everything a request needs from the daemon, gathered once at start-up: the layout,
// the cgroup filesystem, options, the daemon's own namespaces and the auto-removal
// machinery. Requests receive it; nothing else is global.
import * as fs from 'node:fs';
import type { Logger } from './logger';
import type { DaemonOptions } from './options';
import { discoverLayout } from './cgroupfs/discover';
import type { Layout } from './cgroupfs/layout';
import { CgroupFs } from './cgroupfs/cgroupfs';
import { AutoRemover } from './cgroupfs/auto-remove';

export interface SelfFacts {
  pid: number;
  /** inode of /proc/self/ns/pid and ns/user (reference §1.5); undefined without namespace support */
  pidNs: number | undefined;
  userNs: number | undefined;
}

export interface Runtime {
  readonly options: DaemonOptions;
  readonly log: Logger;
  readonly self: SelfFacts;
  readonly layout: Layout;
  readonly cgfs: CgroupFs;
  readonly autoRemove: AutoRemover;
  close(): Promise<void>;
}

export function namespaceInode(pid: number | 'self', kind: 'pid' | 'user'): number | undefined {
  try {
    return fs.statSync(`/proc/${pid}/ns/${kind}`).ino;
  } catch {
    return undefined;
  }
}

export function createRuntime(options: DaemonOptions, log: Logger): Runtime {
  const layout = discoverLayout({ skip: options.skip });
  const cgfs = new CgroupFs(layout);
  const autoRemove = new AutoRemover(cgfs, options, log);
  return {
    options,
    log,
    self: { pid: process.pid, pidNs: namespaceInode('self', 'pid'), userNs: namespaceInode('self', 'user') },
    layout,
    cgfs,
    autoRemove,
    async close() {
      autoRemove.close();
    },
  };
}
