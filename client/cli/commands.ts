// The cgm subcommands: the original's (reference §10) with their arguments, output and
// --json shapes, plus `tree`. Each validates its arguments before it connects.
import type { CgmanagerClient } from '../client';
import { formatApiVersion, formatCreate, formatKeys, formatNames, formatPidCgroup, formatPids, formatRemove, formatSetup, formatStats, formatValue, type Output } from './format';
import { commandText } from './report';
import { parseCount, parseDepth, parseId, parseLimit, parseOctalMode, parseOwner, parsePid, parseRecursive } from './parse';
import { collectTree, renderTrees, treesJson, TREE_LIMIT_KEYS, type HierarchyTree } from './tree';

export interface CommandContext {
  /** connects on first use */
  client(): Promise<CgmanagerClient>;
  /** reports a failure that does not stop the command (stderr line, exit status 1) */
  fail(err: unknown, command: string): void;
  /** prints one result now (text, or one JSON line with --json), for commands that stream */
  print(output: Output): void;
}

export interface CgmCommand {
  name: string;
  /** commander argument syntax, e.g. '<controller>', '[cgroup]' */
  args: readonly string[];
  summary: string;
  /** output and --json shape, shown by `cgm help <command>` */
  prints?: string;
  /** the original ignored extra arguments of ping, listcontrollers and apiversion */
  ignoresExtraArgs?: boolean;
  /** extra options: [flags, description, repeatable (each use adds to a list)] */
  options?: ReadonlyArray<readonly [flags: string, description: string, repeatable?: 'repeatable']>;
  /** prints data, so takes --json */
  printsData: boolean;
  run(ctx: CommandContext, args: ReadonlyArray<string | undefined>, options: Record<string, unknown>): Promise<Output | undefined>;
}

const a = (args: ReadonlyArray<string | undefined>, i: number): string => args[i] ?? '';

const NOTHING = 'Prints nothing on success.';

export const COMMANDS: readonly CgmCommand[] = [
  {
    name: 'ping',
    args: [],
    summary: 'check that the daemon answers',
    prints: NOTHING,
    ignoresExtraArgs: true,
    printsData: false,
    run: async (ctx) => {
      await (await ctx.client()).ping(0);
      return undefined;
    },
  },
  {
    name: 'create',
    args: ['<controller>', '<cgroup>'],
    summary: 'create a cgroup (and missing parents), owned by you',
    prints: '"Path existed" if the cgroup already existed, else nothing.  --json: {"existed": boolean}',
    printsData: true,
    run: async (ctx, args) => formatCreate(await (await ctx.client()).create(a(args, 0), a(args, 1))),
  },
  {
    name: 'chown',
    args: ['<controller>', '<cgroup>', '<uid>', '<gid>'],
    summary: 'hand a cgroup (directory and task files) to uid:gid (root only)',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      const uid = parseId(a(args, 2), 'uid');
      const gid = parseId(a(args, 3), 'gid');
      await (await ctx.client()).chown(a(args, 0), a(args, 1), uid, gid);
      return undefined;
    },
  },
  {
    name: 'chmod',
    args: ['<controller>', '<cgroup>', '<mode>'],
    summary: 'change the mode of a cgroup directory (mode in octal)',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      const mode = parseOctalMode(a(args, 2));
      await (await ctx.client()).chmod(a(args, 0), a(args, 1), '', mode);
      return undefined;
    },
  },
  {
    name: 'chmodfile',
    args: ['<controller>', '<cgroup>', '<file>', '<mode>'],
    summary: 'change the mode of a file in a cgroup (mode in octal)',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      const mode = parseOctalMode(a(args, 3));
      await (await ctx.client()).chmod(a(args, 0), a(args, 1), a(args, 2), mode);
      return undefined;
    },
  },
  {
    name: 'remove',
    args: ['<controller>', '<cgroup>', '[recursive]'],
    summary: 'remove a cgroup; recursive unless the last argument is exactly 0',
    prints: '"Path did not exist" if there was nothing to remove, else nothing.  --json: {"existed": boolean}',
    printsData: true,
    run: async (ctx, args) => formatRemove(await (await ctx.client()).remove(a(args, 0), a(args, 1), parseRecursive(args[2]))),
  },
  {
    name: 'removeonempty',
    args: ['<controller>', '<cgroup>'],
    summary: 'remove the cgroup once its last task has left',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      await (await ctx.client()).removeOnEmpty(a(args, 0), a(args, 1));
      return undefined;
    },
  },
  {
    name: 'getpidcgroup',
    args: ['<controller>', '<pid>'],
    summary: "print a process's cgroup relative to yours",
    prints: '"/" or a relative path such as "xxx/b", and a newline.  --json: {"cgroup": string}',
    printsData: true,
    run: async (ctx, args) => {
      const pid = parsePid(a(args, 1));
      return formatPidCgroup(await (await ctx.client()).getPidCgroup(a(args, 0), pid));
    },
  },
  {
    name: 'getpidcgroupabs',
    args: ['<controller>', '<pid>'],
    summary: "print a process's cgroup from the hierarchy root (or the proxy's cgroup)",
    prints: '"/" or a path such as "/xxx/b", and a newline.  --json: {"cgroup": string}',
    printsData: true,
    run: async (ctx, args) => {
      const pid = parsePid(a(args, 1));
      return formatPidCgroup(await (await ctx.client()).getPidCgroupAbs(a(args, 0), pid));
    },
  },
  {
    name: 'movepid',
    args: ['<controller>', '<cgroup>', '<pid>'],
    summary: 'move a process into a cgroup below yours',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      const pid = parsePid(a(args, 2));
      await (await ctx.client()).movePid(a(args, 0), a(args, 1), pid);
      return undefined;
    },
  },
  {
    name: 'movepidabs',
    args: ['<controller>', '<cgroup>', '<pid>'],
    summary: 'move a process into a cgroup named from the hierarchy root',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      const pid = parsePid(a(args, 2));
      await (await ctx.client()).movePidAbs(a(args, 0), a(args, 1), pid);
      return undefined;
    },
  },
  {
    name: 'getvalue',
    args: ['<controller>', '<cgroup>', '<file>'],
    summary: 'print the content of a cgroup file',
    prints: 'The value (trailing newlines removed) and a newline.  --json: {"value": string}',
    printsData: true,
    run: async (ctx, args) => formatValue(await (await ctx.client()).getValue(a(args, 0), a(args, 1), a(args, 2))),
  },
  {
    name: 'setvalue',
    args: ['<controller>', '<cgroup>', '<file>', '<value>'],
    summary: 'write a value to a cgroup file',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      await (await ctx.client()).setValue(a(args, 0), a(args, 1), a(args, 2), a(args, 3));
      return undefined;
    },
  },
  {
    name: 'gettasks',
    args: ['<controller>', '[cgroup]'],
    summary: 'print the tasks of a cgroup',
    prints: 'One pid per line, ascending.  --json: [pid, ...]',
    printsData: true,
    run: async (ctx, args) => formatPids(await (await ctx.client()).getTasks(a(args, 0), a(args, 1))),
  },
  {
    name: 'gettasksrecursive',
    args: ['<controller>', '[cgroup]'],
    summary: 'print the tasks of a cgroup and all its descendants',
    prints: 'One pid per line, ascending.  --json: [pid, ...]',
    printsData: true,
    run: async (ctx, args) => formatPids(await (await ctx.client()).getTasksRecursive(a(args, 0), a(args, 1))),
  },
  {
    name: 'listchildren',
    args: ['<controller>', '[cgroup]'],
    summary: 'print the child cgroups of a cgroup',
    prints: 'One name per line.  --json: [name, ...]',
    printsData: true,
    run: async (ctx, args) => formatNames(await (await ctx.client()).listChildren(a(args, 0), a(args, 1))),
  },
  {
    name: 'prune',
    args: ['<controller>', '[cgroup]'],
    summary: 'remove empty descendants now and busy ones once they empty',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      await (await ctx.client()).prune(a(args, 0), a(args, 1));
      return undefined;
    },
  },
  {
    name: 'listcontrollers',
    args: [],
    summary: 'print the hierarchies, one per line (co-mounted controllers comma-joined)',
    prints: 'One hierarchy per line, e.g. "cpu,cpuacct", "name=systemd", "unified,memory,pids".  --json: [entry, ...]',
    ignoresExtraArgs: true,
    printsData: true,
    run: async (ctx) => formatNames(await (await ctx.client()).listControllers()),
  },
  {
    name: 'listkeys',
    args: ['<controller>', '[cgroup]'],
    summary: 'print the files of a cgroup with owner and mode',
    prints:
      'One line per file: "name uid gid mode", uid/gid in decimal (4294967295: unmapped in your user namespace), mode in octal with the file type, e.g. "tasks 0 0 100644".\n' +
      '--json: [{"name": string, "uid": number, "gid": number, "mode": number, "modeOctal": string}, ...]',
    printsData: true,
    run: async (ctx, args) => formatKeys(await (await ctx.client()).listKeys(a(args, 0), a(args, 1))),
  },
  {
    name: 'setup',
    args: ['<controllers>', '<cgroup>'],
    summary: 'create, delegate, limit and populate a container cgroup in one call (all or nothing)',
    prints:
      'One line per item: "created <hierarchy>", "existed <hierarchy>", "applied <key> <file(s) written>", "moved <pid>".\n' +
      '--json: {"created": [hierarchy], "existed": [hierarchy], "applied": {key: files}, "moved": [pid]}.\n' +
      'On any failure nothing is left changed and the failing step\'s error is printed.',
    options: [
      ['--owner <uid:gid>', 'hand the cgroup to uid:gid (as chown)'],
      ['--limit <key=value>', 'a limit, in either cgroup version\'s key names (repeatable)', 'repeatable'],
      ['--pid <pid>', 'a process to move in, after the limits (repeatable)', 'repeatable'],
    ],
    printsData: true,
    run: async (ctx, args, options) => {
      const owner = options.owner === undefined ? undefined : parseOwner(String(options.owner));
      const limits: Record<string, string> = {};
      for (const text of (options.limit as string[] | undefined) ?? []) {
        const [key, value] = parseLimit(text);
        limits[key] = value;
      }
      const pids = ((options.pid as string[] | undefined) ?? []).map(parsePid);
      return formatSetup(await (await ctx.client()).setup(a(args, 0), a(args, 1), { owner, limits, pids }));
    },
  },
  {
    name: 'stats',
    args: ['<controllers>', '<cgroup>'],
    summary: "print a cgroup's usage in cgroup v2's names, on any layout",
    prints:
      'One "key value" line each for memory.current, memory.peak, cpu.usage_usec, pids.current (numbers), populated, frozen\n' +
      '(true/false), leaving out what the layout lacks.  --json: {key: number|boolean}',
    printsData: true,
    run: async (ctx, args) => formatStats(await (await ctx.client()).stats(a(args, 0), a(args, 1))),
  },
  {
    name: 'freeze',
    args: ['<cgroup>'],
    summary: 'freeze every task of a cgroup subtree (returns once frozen)',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      await (await ctx.client()).freeze(a(args, 0));
      return undefined;
    },
  },
  {
    name: 'thaw',
    args: ['<cgroup>'],
    summary: 'thaw a frozen cgroup subtree (returns once thawed)',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      await (await ctx.client()).thaw(a(args, 0));
      return undefined;
    },
  },
  {
    name: 'kill',
    args: ['<cgroup>'],
    summary: 'SIGKILL every task of a cgroup subtree (returns once they are gone)',
    prints: NOTHING,
    printsData: false,
    run: async (ctx, args) => {
      await (await ctx.client()).kill(a(args, 0));
      return undefined;
    },
  },
  {
    name: 'apiversion',
    args: [],
    summary: "print the daemon's api_version",
    prints: 'The number and a newline, e.g. "10".  --json: {"apiVersion": number}',
    ignoresExtraArgs: true,
    printsData: true,
    run: async (ctx) => formatApiVersion(await (await ctx.client()).apiVersion()),
  },
  {
    name: 'tree',
    args: ['[controller]', '[cgroup]'],
    summary: 'draw a cgroup subtree with owners, task counts and main limits',
    prints:
      'Without a controller, every hierarchy (ListControllers); without a cgroup, your own.\n' +
      'Per hierarchy a table: a header row "<hierarchy> OWNER TASKS LIMITS", then the cgroup and its descendants drawn\n' +
      'with ├── └── │, children sorted by name. OWNER is uid:gid of cgroup.procs (or tasks), TASKS the GetTasks count,\n' +
      `LIMITS key=value for ${TREE_LIMIT_KEYS.v1.join(', ')} (v1) or ${TREE_LIMIT_KEYS.v2.join(', ')} (v2), where present.\n` +
      '"?" marks what could not be read, with "(Call: ErrorCode)" notes; "[+N below]" counts children beyond --depth.\n' +
      'Hierarchies are separated by an empty line. Exit status 1 if a root cannot be listed.\n' +
      '--json: [{"hierarchy": string, "controller": string, "root": node}], node = {"name", "cgroup", "owner": {"uid","gid"}|null,\n' +
      '"tasks": number|null, "limits": {key: value|null}, "children": [node], "hiddenChildren"?: number, "errors"?: [{"call","code","message"}]}',
    options: [['--depth <n>', 'levels to draw below the cgroup (default: all)']],
    printsData: true,
    run: async (ctx, args, options) => {
      const maxDepth = options.depth === undefined ? Infinity : parseDepth(String(options.depth));
      const client = await ctx.client();
      const cgroup = a(args, 1);
      const targets: Array<{ hierarchy: string; controller: string }> =
        args[0] !== undefined
          ? [{ hierarchy: args[0], controller: args[0] }]
          : (await client.listControllers()).map((entry) => ({ hierarchy: entry, controller: entry.split(',')[0] ?? entry }));
      const results = await Promise.allSettled(
        targets.map(async (t): Promise<HierarchyTree> => ({ ...t, root: await collectTree(client, t.controller, cgroup, { maxDepth }) })),
      );
      const trees: HierarchyTree[] = [];
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') trees.push(r.value);
        else if (targets.length === 1) throw r.reason;
        else ctx.fail(r.reason, commandText('tree', [targets[i]?.controller, cgroup]));
      });
      return { text: renderTrees(trees), json: treesJson(trees) };
    },
  },
  {
    name: 'watch',
    args: ['<cgroup>'],
    summary: "print a cgroup's events (emptied, oom, frozen) as they happen",
    prints:
      'One line per event, as it happens: "emptied CGROUP", "oom CGROUP COUNT" (the cumulative OOM kill count),\n' +
      '"frozen CGROUP 1" or "frozen CGROUP 0". Runs until interrupted, or until --count events were printed.\n' +
      'The cgroup is relative to your own, in every hierarchy with an event source (README "Events").\n' +
      '--json: one JSON object per line: {"type": "emptied"|"oom"|"frozen", "cgroup": string, "count"?: number, "frozen"?: boolean}',
    options: [['--count <n>', 'exit after n events']],
    printsData: true,
    run: async (ctx, args, options) => {
      const count = options.count === undefined ? Infinity : parseCount(String(options.count));
      const w = (await ctx.client()).watch(a(args, 0));
      let seen = 0;
      for await (const e of w) {
        const words = e.type === 'oom' ? [e.type, e.cgroup, e.count] : e.type === 'frozen' ? [e.type, e.cgroup, e.frozen ? 1 : 0] : [e.type, e.cgroup];
        ctx.print({ text: `${words.join(' ')}\n`, json: e });
        if (++seen >= count) break;
      }
      return undefined;
    },
  },
];
