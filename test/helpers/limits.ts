// A writable file per kind of hierarchy for tests to set, with a valid value other than the
// kernel's default; core files where a hierarchy has no controller (named v1, bare cgroup2).
import type { HierarchyLabel } from './cgroup-fs';

export interface SampleLimit {
  key: string;
  value: string;
}

const BY_CONTROLLER: Readonly<Record<string, SampleLimit>> = {
  cpu: { key: 'cpu.shares', value: '512' },
  memory: { key: 'memory.limit_in_bytes', value: String(64 * 1024 * 1024) },
  pids: { key: 'pids.max', value: '64' },
};

export function sampleLimit(label: HierarchyLabel): SampleLimit {
  if (label === 'unified') return { key: 'cgroup.max.descendants', value: '7' };
  // Every v1 hierarchy, named ones included, has this core file.
  return BY_CONTROLLER[label] ?? { key: 'cgroup.clone_children', value: '1' };
}
