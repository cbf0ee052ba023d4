// Where the daemon listens and clients connect (SPEC §2.6): --socket, then
// CGMANAGER_SOCKET, then /sys/fs/cgroup/cgmanager/sock when /sys/fs/cgroup is a tmpfs
// (v1 and hybrid hosts) or /run/cgmanager/sock when it is itself cgroup2.
import { statfsSync } from 'node:fs';

export const CGROUP_BASE = '/sys/fs/cgroup';
export const LEGACY_SOCKET = '/sys/fs/cgroup/cgmanager/sock';
export const UNIFIED_SOCKET = '/run/cgmanager/sock';
export const LOWER_SOCKET = '/sys/fs/cgroup/cgmanager.lower/sock';

const CGROUP2_SUPER_MAGIC = 0x63677270;

export function isCgroup2Mount(dir: string): boolean {
  try {
    return statfsSync(dir).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.CGMANAGER_SOCKET;
  if (fromEnv) return fromEnv;
  return isCgroup2Mount(CGROUP_BASE) ? UNIFIED_SOCKET : LEGACY_SOCKET;
}
