// The pure model of the host's cgroup hierarchies (from parsed mountinfo) and the name and path
// resolution every request needs. It never touches the filesystem itself and never logs.
import { visibleMounts, type MountEntry } from '../proc/mountinfo';
import type { ProcCgroupLine } from '../proc/proc-cgroup';

/**
 * Controller names we recognise in a v1 mount's super options. Everything else there is a mount
 * option (rw, xattr, clone_children, release_agent=...), so this list is what tells them apart.
 */
export const KNOWN_V1_CONTROLLERS: ReadonlySet<string> = new Set([
  'blkio', 'cpu', 'cpuacct', 'cpuset', 'debug', 'devices', 'freezer', 'hugetlb', 'memory', 'misc',
  'net_cls', 'net_prio', 'perf_event', 'pids', 'rdma',
]);

/** The name that always addresses the cgroup2 hierarchy, even when it holds no controllers (SPEC §2.3). */
export const UNIFIED = 'unified';

/** v2 tasks live in this hidden child so every cgroup may enable controllers (reference §7.4). */
export const HIDDEN_LEAF = '.cgm_leaf';

const NAME_PREFIX = 'name=';

export interface Hierarchy {
  version: 1 | 2;
  /** kernel controllers attached, sorted; may be empty for v2 (hybrid hosts) and for named v1 */
  controllers: readonly string[];
  /** for a named v1 hierarchy (`name=systemd`), the name without `name=` */
  name?: string;
  /** where the daemon reaches it: the chosen mount's mount point */
  mountPoint: string;
  /** the hierarchy path shown at mountPoint: '/' on hosts, '/lxc/c1' for bind-mounted subtrees */
  mountRoot: string;
  /** one entry of ListControllers ('cpu,cpuacct', 'name=systemd', 'unified,cpu,io') */
  label: string;
  /** the single name that stands for this hierarchy in `all` */
  primaryName: string;
  /** every name find() accepts for it */
  names: readonly string[];
  /** the device of the mount ("0:29"), which identifies the hierarchy */
  device: string;
}

export interface Layout {
  readonly hierarchies: readonly Hierarchy[];
  find(name: string): Hierarchy | undefined;
  resolveList(arg: string): Hierarchy[] | { unknown: string };
  resolveSingle(arg: string): Hierarchy | { unknown: string } | { multiple: true };
  listControllers(): string[];
  cgroupOf(lines: ProcCgroupLine[], h: Hierarchy): string | undefined;
  toFsPath(h: Hierarchy, cgPath: string): string | undefined;
}

export interface BuildLayoutOptions {
  /** the daemon's -M list: 'memory', 'name=systemd', 'systemd', 'unified', ... */
  skip?: readonly string[];
  /** reads `<mountPoint>/cgroup.controllers` of the v2 root; injected so the model stays pure */
  readV2Controllers: (mountPoint: string) => string[];
}

interface HierarchyMounts {
  fsType: 'cgroup' | 'cgroup2';
  mounts: MountEntry[];
}

function sortUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(compareCodeUnits);
}

/** strcmp order, as the reference's controller table uses; localeCompare would differ ('_' vs letters). */
function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The same hierarchy may be mounted several times (bind mounts, a second mount); group by device. */
function groupByDevice(mounts: readonly MountEntry[]): HierarchyMounts[] {
  const groups = new Map<string, HierarchyMounts>();
  for (const mount of mounts) {
    if (mount.fsType !== 'cgroup' && mount.fsType !== 'cgroup2') continue;
    const group = groups.get(mount.device);
    if (group === undefined) groups.set(mount.device, { fsType: mount.fsType, mounts: [mount] });
    else group.mounts.push(mount);
  }
  return [...groups.values()];
}

/** The mount showing the most of the hierarchy (shortest root, '/' first) reaches the most cgroups. */
function chooseMount(mounts: readonly MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const mount of mounts) {
    if (best === undefined || mount.root.length < best.root.length) best = mount;
  }
  return best;
}

function createHierarchy(
  version: 1 | 2,
  controllers: string[],
  name: string | undefined,
  mount: MountEntry,
): Hierarchy {
  const namedLabel = name === undefined ? [] : [NAME_PREFIX + name];
  const label = version === 2 ? [UNIFIED, ...controllers] : [...controllers, ...namedLabel];
  const names = version === 2
    ? [UNIFIED, ...controllers]
    : [...controllers, ...(name === undefined ? [] : [name, NAME_PREFIX + name])];
  const primaryName = version === 2 ? UNIFIED : controllers[0] ?? NAME_PREFIX + (name ?? '');
  const hierarchy: Hierarchy = {
    version,
    controllers,
    mountPoint: mount.mountPoint,
    mountRoot: mount.root,
    label: label.join(','),
    primaryName,
    names,
    device: mount.device,
  };
  if (name !== undefined) hierarchy.name = name;
  return hierarchy;
}

function createV1Hierarchy(mount: MountEntry): Hierarchy | undefined {
  const controllers = sortUnique(mount.superOptions.filter((option) => KNOWN_V1_CONTROLLERS.has(option)));
  const named = mount.superOptions.find((option) => option.startsWith(NAME_PREFIX));
  const name = named === undefined || named === NAME_PREFIX ? undefined : named.slice(NAME_PREFIX.length);
  // Neither a controller we know nor a name: nothing a client could address it by.
  if (controllers.length === 0 && name === undefined) return undefined;
  return createHierarchy(1, controllers, name, mount);
}

function createV2Hierarchy(mount: MountEntry, readV2Controllers: (mountPoint: string) => string[]): Hierarchy {
  const controllers = sortUnique(readV2Controllers(mount.mountPoint).filter((c) => c !== '' && c !== UNIFIED));
  return createHierarchy(2, controllers, undefined, mount);
}

/**
 * A hierarchy sorts by its smallest key, where a named hierarchy's key is its bare name (the
 * reference files `name=systemd` under `systemd`), so `all` and ListControllers keep the
 * reference's order: blkio,cpu,cpuset,...,pids,name=systemd.
 */
function sortKeyOf(h: Hierarchy): string {
  const keys = h.version === 2 ? [UNIFIED, ...h.controllers] : [...h.controllers, ...(h.name === undefined ? [] : [h.name])];
  return keys.sort(compareCodeUnits)[0] ?? '';
}

function isSkipped(h: Hierarchy, skip: readonly string[]): boolean {
  return h.names.some((name) => skip.includes(name));
}

/** Splits a hierarchy-absolute path into components, refusing '.' and '..' whoever checked it before. */
function splitCgroupPath(path: string): string[] | undefined {
  if (!path.startsWith('/')) return undefined;
  const components = path.split('/').filter((component) => component !== '');
  return components.some((c) => c === '.' || c === '..') ? undefined : components;
}

function stripHiddenLeaf(path: string): string {
  if (path === '/' + HIDDEN_LEAF) return '/';
  return path.endsWith('/' + HIDDEN_LEAF) ? path.slice(0, -(HIDDEN_LEAF.length + 1)) : path;
}

/** `b` is already sorted and unique. */
function isSameTokenSet(a: readonly string[], b: readonly string[]): boolean {
  const left = sortUnique(a);
  return left.length === b.length && left.every((token, i) => token === b[i]);
}

const expectedTokenCache = new WeakMap<Hierarchy, string[]>();

/** The tokens of a hierarchy's line in /proc/PID/cgroup, sorted: its controllers and `name=X`. */
function expectedTokens(h: Hierarchy): string[] {
  let tokens = expectedTokenCache.get(h);
  if (!tokens) {
    tokens = sortUnique([...h.controllers, ...(h.name === undefined ? [] : [NAME_PREFIX + h.name])]);
    expectedTokenCache.set(h, tokens);
  }
  return tokens;
}

class HostLayout implements Layout {
  readonly hierarchies: readonly Hierarchy[];
  /** controller names and 'unified'; kept apart from names so 'name=memory' can never mean 'memory' */
  private readonly byController = new Map<string, Hierarchy>();
  private readonly byName = new Map<string, Hierarchy>();

  constructor(hierarchies: Hierarchy[]) {
    this.hierarchies = hierarchies;
    // The kernel binds a controller to one hierarchy only, so first-wins never has to choose.
    for (const h of hierarchies) {
      for (const controller of h.controllers) if (!this.byController.has(controller)) this.byController.set(controller, h);
      if (h.version === 2 && !this.byController.has(UNIFIED)) this.byController.set(UNIFIED, h);
      if (h.name !== undefined && !this.byName.has(h.name)) this.byName.set(h.name, h);
    }
  }

  find(name: string): Hierarchy | undefined {
    if (name.startsWith(NAME_PREFIX)) return this.byName.get(name.slice(NAME_PREFIX.length));
    return this.byController.get(name) ?? this.byName.get(name);
  }

  resolveList(arg: string): Hierarchy[] | { unknown: string } {
    if (arg === 'all') return [...this.hierarchies];
    const resolved: Hierarchy[] = [];
    for (const entry of arg.split(',')) {
      if (entry === '') continue;
      const h = this.find(entry);
      if (h === undefined) return { unknown: entry };
      // Co-mounted names ('cpu,cpuacct') are one hierarchy; acting on it twice would be wrong.
      if (!resolved.includes(h)) resolved.push(h);
    }
    return resolved;
  }

  resolveSingle(arg: string): Hierarchy | { unknown: string } | { multiple: true } {
    const list = arg.endsWith(',') ? arg.slice(0, -1) : arg;
    const resolved: Hierarchy[] = [];
    // Every entry is resolved before judging "multiple", so a typo is reported as the typo it is.
    for (const entry of list.split(',')) {
      const h = this.find(entry);
      if (h === undefined) return { unknown: entry };
      resolved.push(h);
    }
    const [first] = resolved;
    if (first === undefined) return { unknown: list };
    return resolved.every((h) => h === first) ? first : { multiple: true };
  }

  listControllers(): string[] {
    return this.hierarchies.map((h) => h.label);
  }

  cgroupOf(lines: ProcCgroupLine[], h: Hierarchy): string | undefined {
    if (h.version === 2) {
      const line = lines.find((l) => l.hierarchyId === 0 && l.controllers.length === 0);
      return line === undefined ? undefined : stripHiddenLeaf(line.path);
    }
    const expected = expectedTokens(h);
    const probe = expected[0];
    // Tokens we do not model (a controller newer than our list) must not hide the line.
    const line = lines.find((l) => l.hierarchyId !== 0 && (probe === undefined || l.controllers.includes(probe)) && isSameTokenSet(
      l.controllers.filter((t) => KNOWN_V1_CONTROLLERS.has(t) || t.startsWith(NAME_PREFIX)),
      expected,
    ));
    return line?.path;
  }

  toFsPath(h: Hierarchy, cgPath: string): string | undefined {
    // The common case, a host mount of the whole hierarchy and a normalised path, needs no splitting.
    if (h.mountRoot === '/' && cgPath.startsWith('/') && !cgPath.includes('/.') && !cgPath.includes('//') && !cgPath.endsWith('/')) {
      return h.mountPoint === '/' ? cgPath : h.mountPoint + cgPath;
    }
    if (h.mountRoot === '/' && cgPath === '/') return h.mountPoint;
    const path = splitCgroupPath(cgPath);
    const root = splitCgroupPath(h.mountRoot);
    if (path === undefined || root === undefined) return undefined;
    // Component-wise, so mount root '/lxc/c1' does not contain '/lxc/c10'.
    if (path.length < root.length || root.some((component, i) => path[i] !== component)) return undefined;
    const below = path.slice(root.length);
    if (below.length === 0) return h.mountPoint;
    return (h.mountPoint.endsWith('/') ? h.mountPoint : h.mountPoint + '/') + below.join('/');
  }
}

/**
 * One hierarchy per cgroup device among `mounts` (parsed mountinfo), minus the skipped ones,
 * in the reference's table order.
 */
export function buildLayout(mounts: MountEntry[], options: BuildLayoutOptions): Layout {
  const skip = options.skip ?? [];
  const hierarchies: Hierarchy[] = [];
  let haveV2 = false;
  for (const group of groupByDevice(visibleMounts(mounts))) {
    const mount = chooseMount(group.mounts);
    if (mount === undefined) continue;
    if (group.fsType === 'cgroup2') {
      // A host has exactly one cgroup2 hierarchy; another cgroup2 device would be a stale or
      // foreign-namespace mount, and the first one in mount order is the one systemd set up.
      if (haveV2) continue;
      haveV2 = true;
      hierarchies.push(createV2Hierarchy(mount, options.readV2Controllers));
    } else {
      const h = createV1Hierarchy(mount);
      if (h !== undefined) hierarchies.push(h);
    }
  }
  const kept = hierarchies.filter((h) => !isSkipped(h, skip));
  // Array.prototype.sort is stable, so equal keys keep mount order.
  const keyed = kept.map((h) => ({ h, key: sortKeyOf(h) }));
  keyed.sort((a, b) => compareCodeUnits(a.key, b.key));
  return new HostLayout(keyed.map(({ h }) => h));
}

/** The `all` list as the reference spells it: one primary name per hierarchy, comma-joined. */
export function allNames(layout: Layout): string {
  return layout.hierarchies.map((h) => h.primaryName).join(',');
}
