// The device rule lists the daemon has set on cgroup v2 cgroups, kept in one JSON file under
// the state directory (replaced atomically, like remove-on-empty.json) so that a restart
// knows each cgroup's list and which attached program is ours. Never touches cgroup files.
import * as path from 'node:path';
import { ListFile, memoryOnly, type ListStore } from '../../state-list';
import { formatException, parseDeviceRule, type DeviceException, type DeviceRules } from './rules';

/** One cgroup's rules, the cgroup's identity and the id of the program we attached. */
export interface DeviceAclEntry {
  /** the hierarchy's primary name ('unified') */
  hierarchy: string;
  /** the hierarchy path */
  cgroup: string;
  /** inode of the cgroup directory (decimal): a cgroup removed and made again is another one */
  ino: string;
  /** the BPF program id attached for these rules */
  progId: number;
  rules: DeviceRules;
}

interface StoredEntry {
  hierarchy: string;
  cgroup: string;
  ino: string;
  progId: number;
  behavior: 'allow' | 'deny';
  /** in devices.list format: 'c 1:3 rwm' */
  exceptions: string[];
}

interface Document {
  version: 1;
  cgroups: StoredEntry[];
}

export const DEVICE_ACL_FILE = 'device-acl.json';

function toEntry(value: unknown): DeviceAclEntry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Partial<StoredEntry>;
  if (typeof v.hierarchy !== 'string' || typeof v.cgroup !== 'string' || !v.cgroup.startsWith('/') || v.cgroup.split('/').includes('..')) return undefined;
  if (typeof v.ino !== 'string' || !/^\d+$/.test(v.ino) || !Number.isInteger(v.progId) || (v.behavior !== 'allow' && v.behavior !== 'deny') || !Array.isArray(v.exceptions)) return undefined;
  const exceptions: DeviceException[] = [];
  for (const line of v.exceptions) {
    const parsed = typeof line === 'string' ? parseDeviceRule(line) : undefined;
    if (!parsed?.ok || parsed.rule.all) return undefined;
    exceptions.push(parsed.rule.exception);
  }
  return { hierarchy: v.hierarchy, cgroup: v.cgroup, ino: v.ino, progId: v.progId as number, rules: { behavior: v.behavior, exceptions } };
}

/** Parses the file's text; malformed entries are dropped, a malformed file throws. */
export function parseDeviceAclState(text: string): DeviceAclEntry[] {
  const doc = JSON.parse(text) as Partial<Document>;
  if (doc.version !== 1 || !Array.isArray(doc.cgroups)) throw new Error('not a version 1 cgmanager device ACL file');
  return doc.cgroups.map(toEntry).filter((e): e is DeviceAclEntry => e !== undefined);
}

export function formatDeviceAclState(entries: readonly DeviceAclEntry[]): string {
  const doc: Document = {
    version: 1,
    cgroups: entries.map((e) => ({
      hierarchy: e.hierarchy,
      cgroup: e.cgroup,
      ino: e.ino,
      progId: e.progId,
      behavior: e.rules.behavior,
      exceptions: e.rules.exceptions.map(formatException),
    })),
  };
  return `${JSON.stringify(doc, null, 1)}\n`;
}

export type DeviceAclStore = ListStore<DeviceAclEntry>;

export class DeviceAclFile extends ListFile<DeviceAclEntry> {
  constructor(stateDir: string) {
    super(path.join(stateDir, DEVICE_ACL_FILE), parseDeviceAclState, formatDeviceAclState);
  }
}

/** Without a usable state directory: the lists last as long as the process (the programs stay attached). */
export const DEVICE_ACL_MEMORY_ONLY: DeviceAclStore = memoryOnly();
