// Parser for /proc/PID/mountinfo text into typed mount entries (proc(5), "mountinfo").
// Pure: it never reads files and never throws on bad input; malformed lines are skipped.

export interface MountEntry {
  mountId: number;
  parentId: number;
  /** st_dev of the mounted filesystem as "major:minor"; equal for every mount of one cgroup hierarchy */
  device: string;
  /** the path inside the filesystem that is shown at mountPoint ('/' unless a subtree was bind-mounted) */
  root: string;
  mountPoint: string;
  mountOptions: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

const DEVICE = /^\d+:\d+$/;
const DECIMAL = /^\d+$/;

/**
 * The kernel escapes space, tab, newline and backslash in paths and option values as three-digit
 * octal (`\040`, `\011`, `\012`, `\134`; fs/proc_namespace.c uses mangle()/seq_escape()), so a
 * mount point with a space in it is still one whitespace-separated field.
 */
export function decodeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_escape, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Option lists are split before decoding, so an escaped comma inside a value stays in that value. */
function splitOptions(field: string): string[] {
  return field === '' ? [] : field.split(',').map(decodeMountField);
}

function parseMountLine(line: string): MountEntry | undefined {
  const fields = line.split(' ');
  // Optional fields (shared:N, master:N, ...) vary in number and end at a lone '-'.
  const separator = fields.indexOf('-', 6);
  if (separator < 0 || fields.length !== separator + 4) return undefined;
  const [mountId, parentId, device, root, mountPoint, mountOptions] = fields;
  const [fsType, source, superOptions] = fields.slice(separator + 1);
  if (
    mountId === undefined || !DECIMAL.test(mountId) ||
    parentId === undefined || !DECIMAL.test(parentId) ||
    device === undefined || !DEVICE.test(device) ||
    root === undefined || root === '' ||
    mountPoint === undefined || mountPoint === '' ||
    mountOptions === undefined ||
    fsType === undefined || fsType === '' ||
    source === undefined || superOptions === undefined
  ) {
    return undefined;
  }
  return {
    mountId: Number(mountId),
    parentId: Number(parentId),
    device,
    root: decodeMountField(root),
    mountPoint: decodeMountField(mountPoint),
    mountOptions: splitOptions(mountOptions),
    fsType: decodeMountField(fsType),
    source: decodeMountField(source),
    superOptions: splitOptions(superOptions),
  };
}

/** One entry per well-formed line, in file order (which is mount order). */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const entry = parseMountLine(line);
    if (entry !== undefined) entries.push(entry);
  }
  return entries;
}

function isPathAtOrAbove(dir: string, path: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/**
 * The mounts a path lookup can still reach. mountinfo also lists mounts that a later
 * mount covered (a tmpfs mounted over /sys/fs/cgroup in a private namespace hides the
 * hierarchies below it): a mount is covered when another mount that is not one of its
 * ancestors sits at or above its mount point (including one stacked on the same point).
 */
export function visibleMounts(mounts: readonly MountEntry[]): MountEntry[] {
  const byId = new Map(mounts.map((m) => [m.mountId, m]));
  const ancestorsOf = (m: MountEntry): Set<number> => {
    const seen = new Set<number>();
    for (let p = byId.get(m.parentId); p && !seen.has(p.mountId); p = byId.get(p.parentId)) seen.add(p.mountId);
    return seen;
  };
  return mounts.filter((m) => {
    const ancestors = ancestorsOf(m);
    return !mounts.some((n) => n !== m && !ancestors.has(n.mountId) && isPathAtOrAbove(n.mountPoint, m.mountPoint));
  });
}
