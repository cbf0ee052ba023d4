// The remove-on-empty promises the kernel does not keep for us (cgroup v2 has no
// notify_on_release): one JSON file under the state directory, replaced atomically on
// every change, read once at start so that a restart or a crash loses none of them.
import * as path from 'node:path';
import { ListFile, memoryOnly, type ListStore } from './state-list';

/** One cgroup to remove once empty: the hierarchy's primary name ('unified') and its hierarchy path. */
export interface RemoveOnEmptyMark {
  hierarchy: string;
  cgroup: string;
}

interface StateDocument {
  version: 1;
  removeOnEmpty: RemoveOnEmptyMark[];
}

export const STATE_FILE_NAME = 'remove-on-empty.json';

function isMark(value: unknown): value is RemoveOnEmptyMark {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return typeof m.hierarchy === 'string' && typeof m.cgroup === 'string' && m.cgroup.startsWith('/') && !m.cgroup.split('/').includes('..');
}

/** Parses the state file's text; malformed entries are dropped, a malformed file throws. */
export function parseState(text: string): RemoveOnEmptyMark[] {
  const doc = JSON.parse(text) as Partial<StateDocument>;
  if (doc.version !== 1 || !Array.isArray(doc.removeOnEmpty)) throw new Error('not a version 1 cgmanager state file');
  return doc.removeOnEmpty.filter(isMark);
}

export function formatState(marks: readonly RemoveOnEmptyMark[]): string {
  const doc: StateDocument = { version: 1, removeOnEmpty: [...marks] };
  return `${JSON.stringify(doc, null, 1)}\n`;
}

/** Where the marks live; the daemon's only writer of this file. */
export type MarkStore = ListStore<RemoveOnEmptyMark>;

export class StateFile extends ListFile<RemoveOnEmptyMark> {
  constructor(stateDir: string) {
    super(path.join(stateDir, STATE_FILE_NAME), parseState, formatState);
  }
}

/** For a daemon without a usable state directory: promises then last only as long as the process. */
export const MEMORY_ONLY: MarkStore = memoryOnly();
