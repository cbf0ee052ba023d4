// `cgm tree`: walks the subtree the caller can see with ListChildren, and shows for each
// cgroup the owner of its cgroup.procs (ListKeys), its task count (GetTasks) and its
// main limits (GetValue of the keys below that exist). Collection talks to the daemon;
// rendering is a pure function of the collected nodes.
import type { CgmanagerClient, KeyInfo } from '../client';
import { isCgmanagerError } from '../errors';

/** The limits shown per hierarchy version: only those the cgroup actually has are read. */
export const TREE_LIMIT_KEYS: Readonly<Record<'v1' | 'v2', readonly string[]>> = {
  v1: ['memory.limit_in_bytes', 'cpu.shares', 'cpu.cfs_quota_us', 'pids.max'],
  v2: ['memory.max', 'memory.high', 'cpu.weight', 'cpu.max', 'pids.max'],
};

/** The file whose owner is the cgroup's delegatee (Chown hands it over with the directory). */
const OWNER_FILES = ['cgroup.procs', 'tasks'];

export type TreeSource = Pick<CgmanagerClient, 'listKeys' | 'getTasks' | 'listChildren' | 'getValue'>;

export interface TreeError {
  call: string;
  code: string;
  message: string;
}

export interface TreeNode {
  /** '.' for the caller's own cgroup, the cgroup argument for the root, else the child's name */
  name: string;
  /** the cgroup argument that names this node in calls */
  cgroup: string;
  owner: { uid: number; gid: number } | null;
  tasks: number | null;
  limits: Array<{ key: string; value: string | null }>;
  children: TreeNode[];
  /** children that exist below the depth limit and were not walked */
  hiddenChildren: number;
  errors: TreeError[];
}

export interface HierarchyTree {
  /** what the header shows: the ListControllers entry, or the controller given */
  hierarchy: string;
  /** the controller used in the calls */
  controller: string;
  root: TreeNode;
}

export interface TreeOptions {
  /** levels below the root to walk (Infinity: all) */
  maxDepth: number;
  /** calls in flight at once over the one connection */
  concurrency?: number;
}

/** `parent` + `/` + `name`, where '' is the caller's own cgroup. */
export function childCgroup(parent: string, name: string): string {
  if (parent === '') return name;
  return parent.endsWith('/') ? `${parent}${name}` : `${parent}/${name}`;
}

function limiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: Array<() => void> = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => queue.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

function treeError(call: string, err: unknown): TreeError {
  if (isCgmanagerError(err)) return { call, code: err.code, message: err.message };
  return { call, code: 'Failed', message: (err as Error)?.message ?? String(err) };
}

/** Collects the tree of `cgroup` in `controller`. Fails only when the root cannot be listed. */
export async function collectTree(source: TreeSource, controller: string, cgroup: string, options: TreeOptions): Promise<TreeNode> {
  const limit = limiter(options.concurrency ?? 32);
  // The root's children decide whether there is anything to show: its failure is the command's.
  const rootChildren = await limit(() => source.listChildren(controller, cgroup));
  return collectNode(source, limit, controller, cgroup, cgroup === '' ? '.' : cgroup, 0, options.maxDepth, rootChildren);
}

async function collectNode(
  source: TreeSource,
  limit: <T>(task: () => Promise<T>) => Promise<T>,
  controller: string,
  cgroup: string,
  name: string,
  depth: number,
  maxDepth: number,
  knownChildren?: string[],
): Promise<TreeNode> {
  const node: TreeNode = { name, cgroup, owner: null, tasks: null, limits: [], children: [], hiddenChildren: 0, errors: [] };
  const attempt = async <T>(call: string, task: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await limit(task);
    } catch (err) {
      node.errors.push(treeError(call, err));
      return undefined;
    }
  };
  const [keys, tasks, children] = await Promise.all([
    attempt('ListKeys', () => source.listKeys(controller, cgroup)),
    attempt('GetTasks', () => source.getTasks(controller, cgroup)),
    knownChildren ?? attempt('ListChildren', () => source.listChildren(controller, cgroup)),
  ]);
  if (tasks) node.tasks = tasks.length;
  const limitsDone = keys ? readLimits(node, keys, (key) => attempt(`GetValue ${key}`, () => source.getValue(controller, cgroup, key))) : Promise.resolve();
  const names = [...(children ?? [])].sort(compareNames);
  if (depth >= maxDepth) {
    node.hiddenChildren = names.length;
  } else {
    node.children = await Promise.all(names.map((child) => collectNode(source, limit, controller, childCgroup(cgroup, child), child, depth + 1, maxDepth)));
  }
  await limitsDone;
  return node;
}

async function readLimits(node: TreeNode, keys: KeyInfo[], read: (key: string) => Promise<string | undefined>): Promise<void> {
  const byName = new Map(keys.map((k) => [k.name, k]));
  const ownerFile = OWNER_FILES.map((f) => byName.get(f)).find((k) => k !== undefined);
  if (ownerFile) node.owner = { uid: ownerFile.uid, gid: ownerFile.gid };
  const version = byName.has('cgroup.controllers') ? 'v2' : 'v1';
  const present = TREE_LIMIT_KEYS[version].filter((key) => byName.has(key));
  const values = await Promise.all(present.map(read));
  node.limits = present.map((key, i) => ({ key, value: values[i] ?? null }));
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Rendering

const BRANCH = '├── ';
const LAST = '└── ';
const PIPE = '│   ';
const SPACE = '    ';

type Row = [label: string, owner: string, tasks: string, rest: string];

function width(s: string): number {
  return [...s].length;
}

function padEnd(s: string, n: number): string {
  return s + ' '.repeat(Math.max(0, n - width(s)));
}

function padStart(s: string, n: number): string {
  return ' '.repeat(Math.max(0, n - width(s))) + s;
}

function nodeRow(node: TreeNode, label: string): Row {
  const owner = node.owner ? `${node.owner.uid}:${node.owner.gid}` : '?';
  const tasks = node.tasks === null ? '?' : String(node.tasks);
  const parts = node.limits.map(({ key, value }) => `${key}=${value ?? '?'}`);
  if (node.hiddenChildren > 0) parts.push(`[+${node.hiddenChildren} below]`);
  for (const e of node.errors) parts.push(`(${e.call}: ${e.code})`);
  return [label, owner, tasks, parts.join(' ')];
}

function collectRows(node: TreeNode, prefix: string, rows: Row[]): void {
  node.children.forEach((child, i) => {
    const last = i === node.children.length - 1;
    rows.push(nodeRow(child, prefix + (last ? LAST : BRANCH) + child.name));
    collectRows(child, prefix + (last ? SPACE : PIPE), rows);
  });
}

/**
 * One table per hierarchy: a header row (hierarchy, OWNER, TASKS, LIMITS), then the
 * root and its descendants drawn with box characters, children sorted by name. Owner is
 * uid:gid of cgroup.procs (or tasks); `?` where the call failed, with `(Call: Code)`
 * notes at the end of the line.
 */
export function renderTree(tree: HierarchyTree): string {
  const rows: Row[] = [[tree.hierarchy, 'OWNER', 'TASKS', 'LIMITS'], nodeRow(tree.root, tree.root.name)];
  collectRows(tree.root, '', rows);
  const w0 = Math.max(...rows.map((r) => width(r[0])));
  const w1 = Math.max(...rows.map((r) => width(r[1])));
  const w2 = Math.max(...rows.map((r) => width(r[2])));
  return rows.map(([label, owner, tasks, rest]) => `${padEnd(label, w0)}  ${padEnd(owner, w1)}  ${padStart(tasks, w2)}  ${rest}`.trimEnd() + '\n').join('');
}

export function renderTrees(trees: readonly HierarchyTree[]): string {
  return trees.map(renderTree).join('\n');
}

export interface TreeNodeJson {
  name: string;
  cgroup: string;
  owner: { uid: number; gid: number } | null;
  tasks: number | null;
  limits: Record<string, string | null>;
  children: TreeNodeJson[];
  hiddenChildren?: number;
  errors?: TreeError[];
}

export function treeNodeJson(node: TreeNode): TreeNodeJson {
  const out: TreeNodeJson = {
    name: node.name,
    cgroup: node.cgroup,
    owner: node.owner,
    tasks: node.tasks,
    limits: Object.fromEntries(node.limits.map(({ key, value }) => [key, value])),
    children: node.children.map(treeNodeJson),
  };
  if (node.hiddenChildren > 0) out.hiddenChildren = node.hiddenChildren;
  if (node.errors.length > 0) out.errors = node.errors;
  return out;
}

export function treesJson(trees: readonly HierarchyTree[]): Array<{ hierarchy: string; controller: string; root: TreeNodeJson }> {
  return trees.map((t) => ({ hierarchy: t.hierarchy, controller: t.controller, root: treeNodeJson(t.root) }));
}
