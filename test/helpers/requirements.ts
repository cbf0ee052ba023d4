// Why an integration test cannot run here (not root, a missing tool, a controller this host does
// not have as a v1 hierarchy, an unbuilt daemon), as a message for a visible skip.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hostCgroupMounts } from './leftovers';
import { bpfQueryDevicePrograms } from '../../addon';

/** The repository root (works from test/helpers and from dist/test/helpers). */
export const REPO_ROOT = ((): string => {
  let dir = __dirname;
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'cgmanager') return dir;
    } catch {
      // keep walking up
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the cgmanager repository root');
    dir = up;
  }
})();

export const DAEMON_MAIN = path.join(REPO_ROOT, 'dist', 'daemon', 'main.js');

export const BASE_TOOLS = ['unshare', 'nsenter', 'setpriv', 'mount', 'umount', 'mountpoint', 'find'] as const;
export const CLIENT_TOOLS = ['gdbus', 'busctl', 'dbus-send'] as const;

function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface Needs {
  controllers?: readonly string[];
  cgroup2?: boolean;
  named?: number;
  tools?: readonly string[];
  /** unprivileged user namespaces (the userns helpers unshare as the mapped host uid) */
  userns?: boolean;
}

function readNumber(file: string): number | undefined {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** undefined when everything `needs` asks for is here; otherwise the reason to skip. */
export function skipReason(needs: Needs = {}): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (creates cgroups, mounts, namespaces and other uids)';
  const missing = [...BASE_TOOLS, ...CLIENT_TOOLS, ...(needs.tools ?? [])].filter((t) => !hasTool(t));
  if (missing.length > 0) return `missing tools: ${missing.join(', ')}`;
  if (!fs.existsSync(DAEMON_MAIN)) return `the daemon is not built (${DAEMON_MAIN}); run npx tsc -p tsconfig.json`;
  const mounts = hostCgroupMounts();
  // Only hierarchies the host already has are re-attached: mounting a controller that is not yet
  // a v1 hierarchy would take it away from cgroup2, which is host state.
  const absent = (needs.controllers ?? []).filter((c) => !mounts.some((m) => m.controllers.includes(c)));
  if (absent.length > 0) return `controllers not mounted as v1 hierarchies on this host: ${absent.join(', ')}`;
  if (needs.cgroup2 && !mounts.some((m) => m.label === 'unified')) return 'no cgroup2 mount on this host';
  if (needs.userns) {
    if (readNumber('/proc/sys/user/max_user_namespaces') === 0) return 'user namespaces are disabled (user.max_user_namespaces = 0)';
    if (readNumber('/proc/sys/kernel/unprivileged_userns_clone') === 0) return 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)';
  }
  if ((needs.named ?? 0) > 0 && !fs.existsSync('/proc/self/cgroup')) return 'no /proc/self/cgroup';
  return undefined;
}

/**
 * Those of `wanted` that this host has as v1 hierarchies (the only ones a test may re-attach).
 * On a pure cgroup2 host this is empty and tests fall back to private named hierarchies.
 * CGMT_V1_CONTROLLERS (a comma list, '' for none) narrows it, to try that fallback anywhere.
 */
export function availableV1Controllers(wanted: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const mounts = hostCgroupMounts();
  const allowed = env.CGMT_V1_CONTROLLERS?.split(',');
  return wanted.filter((c) => mounts.some((m) => m.controllers.includes(c)) && (allowed === undefined || allowed.includes(c)));
}

/** A describe title that carries the skip reason, so the report says why. */
export function titled(title: string, reason: string | undefined): string {
  return reason === undefined ? title : `${title} [skipped: ${reason}]`;
}

/** A source file of the daemon (or of these helpers, which dist also holds) newer than dist: a stale build. */
export function staleBuild(): string | undefined {
  let built: number;
  try {
    built = fs.statSync(DAEMON_MAIN).mtimeMs;
  } catch {
    return DAEMON_MAIN;
  }
  const newer = (dir: string): string | undefined => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        const n = newer(p);
        if (n) return n;
      } else if (e.name.endsWith('.ts') && fs.statSync(p).mtimeMs > built) {
        return p;
      }
    }
    return undefined;
  };
  return newer(path.join(REPO_ROOT, 'daemon')) ?? newer(path.join(REPO_ROOT, 'test', 'helpers')) ?? (fs.statSync(path.join(REPO_ROOT, 'addon', 'index.ts')).mtimeMs > built ? 'addon/index.ts' : undefined);
}

/**
 * Why cgroup device programs cannot be tested here: without CONFIG_CGROUP_BPF, BPF_PROG_QUERY
 * on a cgroup2 directory fails with EINVAL (ENOSYS without bpf(2) at all).
 */
export function cgroupBpfSkipReason(): string | undefined {
  const v2 = hostCgroupMounts().find((m) => m.label === 'unified');
  if (!v2) return 'no cgroup2 mount on this host';
  try {
    const fd = fs.openSync(v2.mountPoint, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      bpfQueryDevicePrograms(fd);
    } finally {
      fs.closeSync(fd);
    }
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EINVAL' || code === 'ENOSYS' ? `this kernel has no cgroup BPF (bpf(BPF_PROG_QUERY) failed with ${code}; CONFIG_CGROUP_BPF)` : undefined;
  }
}
