// The UML lane (`npm run test:uml`, issue 9): runs integration test files inside throwaway
// User-Mode Linux kernels (test/uml/uml-run) whose cgroup controllers are all free, on each
// cgroup layout, and fails when a run fails or when a whole suite was skipped there (a skip
// is only honest where the layout cannot have what the suite needs, and the lane picks
// layouts that do). Never touches the host's cgroups: everything happens in the guests.
//
//   node dist/test/uml/lane.js                       the CI plan below
//   node dist/test/uml/lane.js --layout v1 FILE...   these files (or directories) on these layouts
//   node dist/test/uml/lane.js --full                the full plan (about 11 minutes on 2 CPUs)
//   options: --jobs N (guests at once; default: CPUs, at most 4), --timeout S (per guest)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../helpers/requirements';
import { findSkippedSuites, type VitestJsonReport } from './skipped-suites';

export const LAYOUTS = ['v2', 'v1', 'v1-comount', 'v1-all', 'hybrid'] as const;
export type Layout = (typeof LAYOUTS)[number];

interface Run {
  layout: Layout;
  /** files or directories (every *.test.ts below), relative to the repository root */
  paths: readonly string[];
  /** split the files over several guests run at once (worth it for long runs only: a guest boots in ~10 s) */
  split?: boolean;
  /** files under `paths` that cannot run on this layout, with the reason (printed: a visible skip) */
  exclude?: Readonly<Record<string, string>>;
}

/** Checks that the guest really has the layout asked for; runs first in every guest. */
const GUEST_CHECK = 'test/uml/guest-layout.test.ts';

/**
 * Smoke runs on the pure v1 layouts: most integration suites also need a cgroup2 mount (they
 * skip without one), so there only the suites that need named hierarchies alone can run.
 * cpuset.test.ts is not among them: the UML kernel has no cpuset controller.
 */
const SMOKE_V1 = ['test/integration/lifecycle/mount-change.test.ts', 'test/integration/scm/shutdown.test.ts'];
/** hybrid has v1 cpu and memory and a cgroup2: every method, cgm and the client library. */
const SMOKE_HYBRID = ['test/integration/daemon/methods.test.ts', 'test/integration/client/cgm.test.ts', 'test/integration/client/library.test.ts'];

const V1_SCENARIOS_EXCLUDE = { 'test/integration/scenarios/setup-rollback-leaf.test.ts': 'needs a cgroup2 mount (runs on v2 and on the host)' };

const NEEDS_V1_CPU_MEMORY = 'written against the v1 cpu and memory hierarchies (cpu.shares, memory.limit_in_bytes); runs in the hybrid smoke';

/**
 * What CI runs: the integration suites of the daemon, the clients and containers (and the
 * hostile-client suites) on pure cgroup v2 with real controllers, and a smoke run on the v1
 * layouts; cgm's and the client library's suites, still written against v1 keys, run on
 * hybrid. lifecycle/ and scm/ are left out: they test the daemon's own process and
 * protocol, which the layout does not change, and UML is slow (see README, Development).
 */
export const FULL_PLAN: readonly Run[] = [
  {
    layout: 'v2',
    paths: ['test/integration/daemon', 'test/integration/client', 'test/integration/containers', 'test/integration/scenarios', 'test/hostile'],
    split: true,
    exclude: {
      'test/integration/daemon/cpuset.test.ts': 'v1 cpuset only (and the UML kernel has no cpuset controller)',
      'test/integration/daemon/big-tree-stats-kill.test.ts': 'v1 trees (a named hierarchy and the v1 freezer); runs on the host',
      'test/integration/daemon/freeze-self.test.ts': 'needs a v1 freezer hierarchy holding the daemon; runs on the host',
      'test/integration/daemon/value-translation.test.ts': 'v2 key names on v1 hierarchies; runs on the host',
      'test/integration/client/cgm.test.ts': NEEDS_V1_CPU_MEMORY,
      'test/integration/client/library.test.ts': NEEDS_V1_CPU_MEMORY,
    },
  },
  { layout: 'v1', paths: SMOKE_V1 },
  // The scenarios' v1 halves (Docker-/LXD-style, freeze/kill, cgmanager1's Setup) with cpu,cpuacct
  // co-mounted, and with every controller in one hierarchy; the host's own separate v1
  // controllers run them in `npm test`.
  { layout: 'v1-comount', paths: [...SMOKE_V1, 'test/integration/scenarios'], exclude: V1_SCENARIOS_EXCLUDE },
  { layout: 'v1-all', paths: ['test/integration/scenarios'], exclude: V1_SCENARIOS_EXCLUDE },
  { layout: 'hybrid', paths: SMOKE_HYBRID, split: true },
];

/**
 * What CI runs (`npm run test:uml`): the full plan above takes about 11 minutes on a 2-CPU
 * machine (UML runs Node several times slower than the host), so CI runs on cgroup v2 the
 * suites whose behaviour depends on the layout most: every method, delegation, device ACLs, the seed
 * scenarios (Docker-style, LXD-style, freeze/kill, cgmanager1's container setup), cgproxy in
 * a container (classic and cgmanager1 calls), events (plain and through cgproxy), and every
 * hostile-client suite; plus the v1, v1-comount, v1-all and hybrid runs of FULL_PLAN. The v1 halves
 * of the scenarios run natively in `npm test` on this host's v1 controllers. `--full` runs
 * FULL_PLAN.
 */
export const CI_PLAN: readonly Run[] = [
  {
    layout: 'v2',
    paths: [
      'test/integration/daemon/methods.test.ts',
      'test/integration/daemon/delegation.test.ts',
      'test/integration/daemon/device-acl.test.ts',
      'test/integration/scenarios',
      'test/integration/containers/proxy.test.ts',
      // cgmanager1 (Setup/Stats/Freeze/Thaw/Kill in scenarios/ above, and through cgproxy), events
      'test/integration/containers/cgmanager1.test.ts',
      'test/integration/daemon/events.test.ts',
      'test/integration/containers/events-proxy.test.ts',
      // every attacker's test: about two minutes of guest time, and the reason the product exists
      'test/hostile',
    ],
    split: true,
  },
  ...FULL_PLAN.slice(1),
];

/** Test files named by `p` (a file, or every *.test.ts below a directory); [] if it does not exist. */
export function testFilesOf(p: string): string[] {
  const abs = path.join(REPO_ROOT, p);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    return [];
  }
  if (!st.isDirectory()) return [p];
  return fs
    .readdirSync(abs, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? testFilesOf(path.join(p, e.name)) : e.name.endsWith('.test.ts') ? [path.join(p, e.name)] : []))
    .sort();
}

/** Splits files into `n` shards of similar size (bytes of source as the cost estimate). */
export function shard(files: readonly string[], n: number): string[][] {
  const shards = Array.from({ length: Math.max(1, Math.min(n, files.length)) }, () => ({ cost: 0, files: [] as string[] }));
  const cost = (f: string): number => fs.statSync(path.join(REPO_ROOT, f)).size;
  for (const f of [...files].sort((a, b) => cost(b) - cost(a))) {
    const lightest = shards.reduce((a, b) => (b.cost < a.cost ? b : a));
    lightest.files.push(f);
    lightest.cost += cost(f);
  }
  return shards.map((s) => s.files.sort());
}

interface Job {
  layout: Layout;
  files: string[];
  index: number;
}

interface JobResult {
  job: Job;
  code: number | null;
  seconds: number;
  problems: string[];
}

/** The harness's timeouts are stretched this much in a guest (test/helpers/slack.ts). */
const TIME_SCALE = 8;

/** uml-run processes running now: SIGTERMed (they kill their guest) if we are interrupted. */
const running = new Set<ChildProcess>();
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = true;
    for (const child of running) child.kill('SIGTERM');
  });
}

function umlRunPath(): string {
  return process.env.UML_RUN ?? path.join(REPO_ROOT, 'test', 'uml', 'uml-run');
}

/** One guest: vitest on `files`, its JSON report written through a bind-mounted host directory. */
function runJob(job: Job, scratch: string, timeoutS: number): Promise<JobResult> {
  const report = path.join(scratch, `report-${job.layout}-${job.index}.json`);
  const tag = `[${job.layout}#${job.index}]`;
  const argv = [
    '--layout', job.layout, '--timeout', String(timeoutS), '--mem', '1G', '--bind', scratch,
    '--env', 'CI=1', '--env', `CGMT_UML_LAYOUT=${job.layout}`, '--env', `CGMT_TIME_SCALE=${TIME_SCALE}`,
    '--', process.execPath, path.join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run',
    '--config', 'test/vitest.config.ts', '--testTimeout=180000', '--hookTimeout=300000', '--no-isolate', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`,
    GUEST_CHECK, ...job.files,
  ];
  const started = Date.now();
  console.log(`${tag} starting: ${job.files.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(umlRunPath(), argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    // Prefix every line, so that guests running at once stay readable.
    const relay = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream): void => {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        const lines = (partial + d).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) out.write(`${tag} ${l}\n`);
      });
      stream.on('end', () => partial !== '' && out.write(`${tag} ${partial}\n`));
    };
    if (child.stdout) relay(child.stdout, process.stdout);
    if (child.stderr) relay(child.stderr, process.stderr);
    child.on('error', (err) => resolve({ job, code: null, seconds: 0, problems: [`cannot start ${umlRunPath()}: ${err.message}`] }));
    child.on('close', (code) => {
      running.delete(child);
      const seconds = Math.round((Date.now() - started) / 1000);
      const problems: string[] = [];
      if (code !== 0) problems.push(code === 124 ? `timed out after ${timeoutS} s` : `exit status ${String(code)}`);
      let parsed: VitestJsonReport | undefined;
      try {
        parsed = JSON.parse(fs.readFileSync(report, 'utf8')) as VitestJsonReport;
      } catch {
        problems.push('no vitest report came back');
      }
      if (parsed) problems.push(...findSkippedSuites(parsed, [GUEST_CHECK, ...job.files], REPO_ROOT));
      resolve({ job, code, seconds, problems });
    });
  });
}

async function runAll(jobs: Job[], parallel: number, timeoutS: number): Promise<JobResult[]> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cgmt-uml-'));
  try {
    const results: JobResult[] = [];
    const queue = [...jobs];
    const worker = async (): Promise<void> => {
      for (let job = queue.shift(); job && !interrupted; job = queue.shift()) results.push(await runJob(job, scratch, timeoutS));
    };
    await Promise.all(Array.from({ length: Math.min(parallel, jobs.length) }, worker));
    return results;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

interface Args {
  full: boolean;
  layouts: Layout[];
  paths: string[];
  jobs: number;
  timeoutS: number;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { full: false, layouts: [], paths: [], jobs: Math.max(1, Math.min(4, os.cpus().length)), timeoutS: 3000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--layout') {
      const l = value();
      if (!(LAYOUTS as readonly string[]).includes(l)) throw new Error(`unknown layout ${l} (have ${LAYOUTS.join(', ')})`);
      args.layouts.push(l as Layout);
    } else if (a === '--jobs') args.jobs = Math.max(1, Number(value()) || 1);
    else if (a === '--timeout') args.timeoutS = Math.max(1, Number(value()) || 1);
    else if (a === '--full') args.full = true;
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else args.paths.push(a);
  }
  return args;
}

/**
 * Debian's UML kernel (6.1) cannot run on a host CPU whose XSAVE area is larger than its
 * fixed buffer (Intel AMX, seen on Sapphire Rapids): its first user process dies with
 * "ptrace set fp regs failed, errno = 14" and the kernel panics. On exactly that failure
 * the lane builds test/uml/xstate-shim.c (an LD_PRELOAD for the kernel that widens UML's
 * FPU writes to the host's size) and boots with it. Where that cannot be built or still
 * does not boot, the lane is skipped loudly instead of failing CI for the machine's CPU
 * (CGMT_UML_REQUIRED=1 makes it fail); any other boot failure fails.
 */
export const UNBOOTABLE_CPU = /ptrace set fp regs failed, errno = 14/;

const XSTATE_SHIM_SOURCE = path.join(REPO_ROOT, 'test', 'uml', 'xstate-shim.c');

function probeBoot(): Promise<{ boots: boolean; log: string }> {
  return new Promise((resolve) => {
    const child = spawn(umlRunPath(), ['--layout', 'none', '--timeout', '300', '--verbose', '--', 'true'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    child.on('error', (err) => resolve({ boots: false, log: `cannot start ${umlRunPath()}: ${err.message}` }));
    child.on('close', (code) => resolve({ boots: code === 0, log }));
  });
}

/** Builds the XSTATE shim into `dir`; its path, or an error message. */
function buildXstateShim(dir: string): { lib?: string; error?: string } {
  const lib = path.join(dir, 'xstate-shim.so');
  const compiler = process.env.CC ?? 'cc';
  const cc = spawnSync(compiler, ['-O2', '-Wall', '-shared', '-fPIC', '-o', lib, XSTATE_SHIM_SOURCE, '-ldl'], { encoding: 'utf8' });
  if (cc.error) return { error: `cannot run ${compiler}: ${cc.error.message}` };
  if (cc.status !== 0) return { error: `building ${XSTATE_SHIM_SOURCE} failed:\n${cc.stderr}` };
  return { lib };
}

/** Boots a trivial guest, with the XSTATE shim where this CPU needs it; 0 to go on, else the lane's exit status. */
async function checkBoot(shimDir: string): Promise<number | undefined> {
  let probe = await probeBoot();
  let shimError: string | undefined;
  if (!probe.boots && UNBOOTABLE_CPU.test(probe.log)) {
    const shim = buildXstateShim(shimDir);
    shimError = shim.error;
    if (shim.lib) {
      process.env.UML_RUN_PRELOAD = shim.lib;
      probe = await probeBoot();
      if (probe.boots) console.log('UML lane: this CPU\'s XSAVE area is larger than UML 6.1 holds; the kernels run with test/uml/xstate-shim.c preloaded');
    }
  }
  if (probe.boots) return undefined;
  if (UNBOOTABLE_CPU.test(probe.log) && process.env.CGMT_UML_REQUIRED !== '1') {
    console.error(
      [
        '',
        '*** UML lane SKIPPED: the UML kernel cannot boot on this CPU ***',
        '*** (its XSAVE area, e.g. Intel AMX, is larger than UML 6.1 supports:',
        '***  "ptrace set fp regs failed, errno = 14"), and test/uml/xstate-shim.c did not help' + (shimError ? `: ${shimError}` : '') + '.',
        '*** No guest ran; set CGMT_UML_REQUIRED=1 to fail instead.',
        '',
      ].join('\n'),
    );
    return 0;
  }
  console.error(probe.log.split('\n').slice(-30).join('\n'));
  console.error('UML lane: a trivial guest did not boot (log above)');
  return 1;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const shimDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgmt-uml-shim-'));
  try {
    const stop = await checkBoot(shimDir);
    return stop ?? (await runPlan(args));
  } finally {
    fs.rmSync(shimDir, { recursive: true, force: true });
  }
}

async function runPlan(args: Args): Promise<number> {
  const plan: readonly Run[] =
    args.paths.length > 0 || args.layouts.length > 0
      ? (args.layouts.length > 0 ? args.layouts : (['v2'] as Layout[])).map((layout) => ({ layout, paths: args.paths.length > 0 ? args.paths : SMOKE_HYBRID, split: true }))
      : args.full
        ? FULL_PLAN
        : CI_PLAN;
  const jobs: Job[] = [];
  const problems: string[] = [];
  for (const run of plan) {
    const excluded = run.exclude ?? {};
    for (const [file, why] of Object.entries(excluded)) console.log(`[${run.layout}] not run there: ${file}: ${why}`);
    const files = [...new Set(run.paths.flatMap(testFilesOf))].filter((f) => excluded[f] === undefined);
    const missing = run.paths.filter((p) => testFilesOf(p).length === 0 && !p.startsWith('test/hostile'));
    if (missing.length > 0) problems.push(`${run.layout}: no test files at ${missing.join(', ')}`);
    const shards = run.split ? shard(files, args.jobs) : [files];
    shards.forEach((s, index) => jobs.push({ layout: run.layout, files: s, index }));
  }
  const started = Date.now();
  const results = await runAll(jobs, args.jobs, args.timeoutS);
  console.log(`\nUML lane: ${jobs.length} guests, ${args.jobs} at a time, ${Math.round((Date.now() - started) / 1000)} s in all`);
  for (const r of results.sort((a, b) => a.job.layout.localeCompare(b.job.layout) || a.job.index - b.job.index)) {
    console.log(`  ${r.problems.length === 0 ? 'ok  ' : 'FAIL'} ${r.job.layout}#${r.job.index} ${r.seconds} s: ${r.job.files.length} files`);
    for (const p of r.problems) problems.push(`${r.job.layout}#${r.job.index}: ${p}`);
  }
  if (interrupted) problems.push('interrupted');
  for (const p of problems) console.error(`UML lane: ${p}`);
  return problems.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`UML lane: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    },
  );
}
