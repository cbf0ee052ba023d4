// `npm run bench`: measures, in one run on one hierarchy, the raw-syscall floor of a
// cgroup lifecycle cycle (floor.c, compiled here) and the same cycle through the daemon
// with 1, 8 and 64 clients; per-method p50/p99; the daemon's CPU time per call for
// Ping and GetValue; connection setup plus first call; and every figure's ratio to
// the floor. Needs root. Creates its cgroups only below its own cgroup and removes them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, type CgmanagerClient } from '../../client';
import { discoverLayout, readProcCgroup } from '../../daemon/cgroupfs/discover';
import type { Hierarchy } from '../../daemon/cgroupfs/layout';
import { percentile, record, runCycle, type CycleTarget, type Latencies } from './cycle';
import { DAEMON_NODE_FLAGS } from '../../daemon/node-flags';
import { closedRun, compileTools, getValueMessage, holdConnections, rssMiB, runLoad, startReference, type LoadResult } from './reference';
import { removeTree as removeSetupTree, setupCall, setupFloorUs, setupTarget, setupThroughDaemon, type SetupTarget } from './setup-bench';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CYCLE_STEPS = 7;

interface KeyChoice {
  key: string;
  values: [string, string];
}

const KEYS: Record<string, KeyChoice> = {
  cpu: { key: 'cpu.shares', values: ['512', '1024'] },
  memory: { key: 'memory.limit_in_bytes', values: ['268435456', '536870912'] },
  pids: { key: 'pids.max', values: ['100', '200'] },
  unified: { key: 'cgroup.max.descendants', values: ['100', '200'] },
};

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const CYCLES = Number(arg("--cycles") ?? 1000);
/** --only cycle,reference,setup: the parts to run (default all) */
const ONLY = new Set((arg('--only') ?? 'cycle,reference,setup').split(','));
/** seconds per load-generator run in the reference comparison */
const LOAD_SECONDS = Number(arg('--seconds') ?? 3);
/** connections the daemon holds for the memory figure */
const HELD_CONNECTIONS = Number(arg('--connections') ?? 5000);
/** How long the held connections stay quiet before RSS is read again: V8's memory reducer starts after 8 s. */
const HOLD_QUIET_S = 12;
const progress = (msg: string): void => {
  if (process.env.CGM_BENCH_VERBOSE) process.stderr.write(`bench: ${msg}\n`);
};

function chooseHierarchy(): { h: Hierarchy; controller: string; choice: KeyChoice } {
  const layout = discoverLayout();
  const wanted = arg('--controller');
  const candidates = wanted ? [wanted] : ['cpu', 'unified'];
  for (const name of candidates) {
    const h = layout.find(name);
    const choice = KEYS[name] ?? KEYS[h?.version === 2 ? 'unified' : 'cpu'];
    if (h && choice) return { h, controller: name, choice };
  }
  throw new Error(`no usable hierarchy among ${candidates.join(', ')}`);
}

function sleeper(): ChildProcess {
  return spawn('sleep', ['100000'], { stdio: 'ignore' });
}

function compileFloor(dir: string): string {
  const out = path.join(dir, 'floor');
  execFileSync('cc', ['-O2', '-o', out, path.join(ROOT, 'test', 'bench', 'floor.c')]);
  return out;
}

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

const CLK_TCK = 100;

async function waitForSocket(socket: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const c = await connect({ socket, timeoutMs: 2000 });
      await c.ping();
      await c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`daemon did not answer on ${socket}`);
}

/** CGM_BENCH_DAEMON: another build's dist/daemon/main.js to measure instead (before/after). */
const COMPARED_DAEMON = process.env.CGM_BENCH_DAEMON;

function startDaemon(dir: string, level: string, name = level, extra: string[] = [], main = COMPARED_DAEMON ?? path.join(ROOT, 'dist', 'daemon', 'main.js')): { child: ChildProcess; socket: string } {
  const socket = path.join(dir, `sock-${name}`);
  // Through sh for `ulimit -n`: thousands of held connections need as many fds (and as
  // many /proc/PID/cgroup fds); exec keeps the daemon's pid the child's.
  // The V8 options the installed daemon runs with (its shebang and systemd unit).
  const argv = [...DAEMON_NODE_FLAGS, main, '--socket', socket, '--log-level', level, '--log-file', path.join(dir, `daemon-${name}.log`), ...extra];
  const child = spawn('/bin/sh', ['-c', 'ulimit -n 65536 2>/dev/null; exec "$0" "$@"', process.execPath, ...argv], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { child, socket };
}

async function stopDaemon(child: ChildProcess): Promise<void> {
  // signalCode: the C reference server dies of SIGTERM instead of exiting.
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

function summary(values: readonly number[]): { p50: number; p99: number; mean: number; n: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean, n: sorted.length };
}

async function concurrentRun(socket: string, target: Omit<CycleTarget, 'victimPid'>, victims: number[], clients: number, cyclesPerClient: number): Promise<{ latencies: Latencies; errors: number; wallUs: number }> {
  const workers = Math.min(4, clients);
  const per = Math.ceil(clients / workers);
  const procs: ChildProcess[] = [];
  const outputs: Array<Promise<string>> = [];
  for (let w = 0; w < workers; w++) {
    const mine = victims.slice(w * per, Math.min(clients, (w + 1) * per));
    const job = { socket, target, victims: mine, cycles: cyclesPerClient, id: w };
    const p = spawn(process.execPath, [path.join(__dirname, 'worker.js'), JSON.stringify(job)], { stdio: ['pipe', 'pipe', 'inherit'] });
    procs.push(p);
    outputs.push(
      new Promise((resolve, reject) => {
        let out = '';
        p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
        p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker ${w} exited ${code}`))));
      }),
    );
  }
  await new Promise((r) => setTimeout(r, 300 + clients * 5)); // let every worker connect
  const started = process.hrtime.bigint();
  for (const p of procs) p.stdin?.write('go\n');
  const results = (await Promise.all(outputs)).map((o) => JSON.parse(o) as { latencies: Latencies; errors: number });
  const wallUs = Number(process.hrtime.bigint() - started) / 1000;
  const latencies: Latencies = {};
  let errors = 0;
  for (const r of results) {
    errors += r.errors;
    for (const [m, v] of Object.entries(r.latencies)) (latencies[m] ??= []).push(...v);
  }
  return { latencies, errors, wallUs };
}

/**
 * Daemon CPU per call: `conns` connections issue `total` calls back to back, each
 * keeping `depth` calls in flight (depth 1: every call waits for the previous reply).
 */
async function cpuPerCall(socket: string, daemonPid: number, call: (c: CgmanagerClient) => Promise<unknown>, total: number, depth = 1, conns = 8): Promise<{ cpuUs: number; wallUs: number }> {
  const clients = await Promise.all(Array.from({ length: conns }, () => connect({ socket })));
  for (const c of clients) await call(c);
  const before = cpuTicks(daemonPid);
  const started = process.hrtime.bigint();
  let remaining = total;
  await Promise.all(
    clients.flatMap((c) =>
      Array.from({ length: depth }, async () => {
        while (remaining-- > 0) await call(c);
      }),
    ),
  );
  const wallUs = Number(process.hrtime.bigint() - started) / 1000;
  const cpuUs = ((cpuTicks(daemonPid) - before) / CLK_TCK) * 1e6;
  await Promise.all(clients.map((c) => c.close()));
  return { cpuUs: cpuUs / total, wallUs: wallUs / total };
}

function line(label: string, value: string, ratio?: number): string {
  return `${label.padEnd(52)} ${value.padStart(22)}${ratio === undefined ? '' : `   ${ratio.toFixed(2).padStart(7)}x floor`}`;
}

const fmt = (us: number): string => `${us.toFixed(1)} µs`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (it creates cgroups and moves pids)');
  const { h, controller, choice } = chooseHierarchy();
  const layout = discoverLayout();
  const ownLines = readProcCgroup(process.pid) ?? [];
  const ownOf = (x: Hierarchy): string | undefined => layout.cgroupOf(ownLines, x);
  const own = ownOf(h);
  if (own === undefined) throw new Error(`not in hierarchy ${h.label}`);
  const baseName = `cgm-bench-${process.pid}`;
  const baseCg = own === '/' ? `/${baseName}` : `${own}/${baseName}`;
  const baseFs = layout.toFsPath(h, baseCg);
  if (!baseFs) throw new Error('the bench cgroup is outside the mounted part of the hierarchy');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-bench-'));
  const victims: ChildProcess[] = [];
  const daemons: ChildProcess[] = [];
  const extraBases: string[] = [];
  const out: string[] = [];
  const load0 = os.loadavg();
  fs.mkdirSync(baseFs);
  try {
    for (let i = 0; i < 65; i++) victims.push(sleeper());
    await new Promise((r) => setTimeout(r, 100));
    for (const v of victims) fs.writeFileSync(path.join(baseFs, 'cgroup.procs'), `${v.pid}\n`);
    const victimPids = victims.map((v) => v.pid as number);
    const uid = 1000;
    const gid = 1000;

    progress('compiling the floor and the C tools');
    const floor = compileFloor(tmp);
    const tools = compileTools(tmp);
    out.push(`cgmanager benchmark: ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? '?'}, kernel ${os.release()}, node ${process.version}`);
    out.push(`hierarchy ${h.label} (cgroup v${h.version}), key ${choice.key}, ${CYCLES} cycles; request log at info to a file unless noted`);
    out.push(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')}`);
    out.push('');

    if (ONLY.has('cycle')) await cycleSection(out, { floor, h, controller, choice, baseFs, baseName, victimPids, uid, gid, tmp, daemons });
    if (ONLY.has('reference')) await referenceSection(out, { tools, controller, choice, baseName, baseFs, tmp, daemons });
    if (ONLY.has('setup')) {
      const t = setupTarget(layout, ownOf, baseName);
      if (!t) {
        out.push(line('Setup (3 hierarchies, chown, 3 limits, 1 pid)', 'n/a: no cpu, memory and pids hierarchies'));
      } else {
        // The victim waits in the bench's base cgroup of every hierarchy Setup uses.
        for (const d of t.dirs) {
          if (d.dir === baseFs || extraBases.includes(d.dir)) continue;
          fs.mkdirSync(d.dir);
          extraBases.push(d.dir);
        }
        for (const d of t.dirs) fs.writeFileSync(path.join(d.dir, 'cgroup.procs'), `${victimPids[64]}\n`);
        await setupSection(out, { floor, t, baseName, pid: victimPids[64] as number, uid, gid, tmp, daemons });
      }
    }
    out.push('');
    out.push(`load average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    for (const d of daemons) await stopDaemon(d).catch(() => undefined);
    for (const v of victims) v.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    for (const dir of extraBases) removeTree(dir);
    removeTree(baseFs);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

interface CycleContext {
  floor: string;
  h: Hierarchy;
  controller: string;
  choice: KeyChoice;
  baseFs: string;
  baseName: string;
  victimPids: number[];
  uid: number;
  gid: number;
  tmp: string;
  daemons: ChildProcess[];
}

/** The lifecycle cycle against its raw-syscall floor (the bench's original figures). */
async function cycleSection(out: string[], x: CycleContext): Promise<void> {
  const { floor, controller, choice, baseFs, baseName, victimPids, uid, gid, tmp, daemons } = x;
  const floorRuns = [0, 1, 2].map(() => Number(execFileSync(floor, [baseFs, choice.key, choice.values[0], String(victimPids[0]), String(uid), String(gid), String(CYCLES)]).toString()) / 1000);
  const floorUs = floorRuns.sort((a, b) => a - b)[1] as number;
  const floorOpUs = floorUs / CYCLE_STEPS;
  const getValueFloorUs = Number(execFileSync(floor, ['--getvalue', baseFs, choice.key, String(CYCLES * 20)]).toString()) / 1000;

  progress(`floor ${floorUs.toFixed(1)} µs`);
  const info = startDaemon(tmp, 'info');
  daemons.push(info.child);
  await waitForSocket(info.socket);
  const target: Omit<CycleTarget, 'victimPid'> = { controller, base: baseName, key: choice.key, values: choice.values, uid, gid };

  progress('daemon up');
  // One client, one connection.
  const single = await connect({ socket: info.socket });
  const warm: Latencies = {};
  for (let i = 0; i < 100; i++) await runCycle(single, { ...target, victimPid: victimPids[64] as number }, `warm${i}`, i, warm);
  const one: Latencies = {};
  for (let i = 0; i < CYCLES; i++) await runCycle(single, { ...target, victimPid: victimPids[64] as number }, `one${i}`, i, one);
  await single.close();

  progress('one client done');
  const eight = await concurrentRun(info.socket, target, victimPids.slice(0, 8), 8, Math.ceil(CYCLES / 8) * 2);
  progress('8 clients done');
  const sixtyFour = await concurrentRun(info.socket, target, victimPids.slice(0, 64), 64, Math.max(20, Math.ceil(CYCLES / 32)));

  progress('64 clients done');
  const pingInfo = await cpuPerCall(info.socket, info.child.pid as number, (c) => c.ping(), 20000);
  const getInfo = await cpuPerCall(info.socket, info.child.pid as number, (c) => c.getValue(controller, baseName, choice.key), 20000);
  const pingDeep = await cpuPerCall(info.socket, info.child.pid as number, (c) => c.ping(), 40000, 16);
  const getDeep = await cpuPerCall(info.socket, info.child.pid as number, (c) => c.getValue(controller, baseName, choice.key), 40000, 16);

  progress('cpu per call done');
  const setup: Latencies = {};
  for (let i = 0; i < 300; i++) {
    const start = process.hrtime.bigint();
    const c = await connect({ socket: info.socket });
    await c.ping();
    record(setup, 'setup', start);
    await c.close();
  }
  await stopDaemon(info.child);

  const quiet = startDaemon(tmp, 'warn');
  daemons.push(quiet.child);
  await waitForSocket(quiet.socket);
  const pingWarn = await cpuPerCall(quiet.socket, quiet.child.pid as number, (c) => c.ping(), 20000);
  const getWarn = await cpuPerCall(quiet.socket, quiet.child.pid as number, (c) => c.getValue(controller, baseName, choice.key), 20000);
  await stopDaemon(quiet.child);

  const cycle1 = summary(one.cycle ?? []);
  out.push(line('floor: one lifecycle cycle in C (raw syscalls)', fmt(floorUs), 1));
  out.push(line('daemon: cycle, 1 client, 1 connection (p50)', fmt(cycle1.p50), cycle1.p50 / floorUs));
  out.push(line('daemon: cycle, 1 client, 1 connection (mean)', fmt(cycle1.mean), cycle1.mean / floorUs));
  for (const [label, run] of [['8 clients', eight], ['64 clients', sixtyFour]] as const) {
    const cycles = run.latencies.cycle?.length ?? 0;
    const perCycle = run.wallUs / Math.max(1, cycles);
    out.push(line(`daemon: cycle throughput, ${label} (wall per cycle)`, fmt(perCycle), perCycle / floorUs));
    const c = summary(run.latencies.cycle ?? []);
    out.push(line(`daemon: cycle latency, ${label} p50 / p99`, `${fmt(c.p50)} / ${fmt(c.p99)}`, c.p50 / floorUs));
    out.push(line(`daemon: errors under load, ${label}`, String(run.errors)));
  }
  out.push('');
  out.push(`per-method latency (floor per step = ${fmt(floorOpUs)}):`);
  out.push(`${'method'.padEnd(12)} ${'1 client p50'.padStart(14)} ${'p99'.padStart(10)} ${'64 clients p50'.padStart(16)} ${'p99'.padStart(10)} ${'p50/floor step'.padStart(16)}`);
  for (const m of ['Create', 'Chown', 'SetValue', 'MovePid', 'GetValue', 'Remove']) {
    const a = summary(one[m] ?? []);
    const b = summary(sixtyFour.latencies[m] ?? []);
    out.push(`${m.padEnd(12)} ${fmt(a.p50).padStart(14)} ${fmt(a.p99).padStart(10)} ${fmt(b.p50).padStart(16)} ${fmt(b.p99).padStart(10)} ${(a.p50 / floorOpUs).toFixed(2).padStart(15)}x`);
  }
  const all64 = summary(Object.entries(sixtyFour.latencies).filter(([m]) => m !== 'cycle').flatMap(([, v]) => v));
  out.push(line('all calls, 64 clients, p50 / p99', `${fmt(all64.p50)} / ${fmt(all64.p99)}`));
  out.push('');
  out.push(line('daemon CPU per call: Ping (log at info)', fmt(pingInfo.cpuUs), pingInfo.cpuUs / floorOpUs));
  out.push(line('daemon CPU per call: GetValue (log at info)', fmt(getInfo.cpuUs), getInfo.cpuUs / floorOpUs));
  out.push(line('  GetValue syscall floor (pread /proc, lstat, open/read/close)', fmt(getValueFloorUs), getValueFloorUs / floorOpUs));
  out.push(line('  GetValue CPU relative to its own syscall floor', `${(getInfo.cpuUs / getValueFloorUs).toFixed(2)}x`));
  out.push(line('daemon CPU per call: Ping, 16 in flight per connection', fmt(pingDeep.cpuUs), pingDeep.cpuUs / floorOpUs));
  out.push(line('daemon CPU per call: GetValue, 16 in flight per conn.', fmt(getDeep.cpuUs), getDeep.cpuUs / floorOpUs));
  out.push(line('daemon CPU per call: Ping (log at warn)', fmt(pingWarn.cpuUs), pingWarn.cpuUs / floorOpUs));
  out.push(line('daemon CPU per call: GetValue (log at warn)', fmt(getWarn.cpuUs), getWarn.cpuUs / floorOpUs));
  out.push(line('throughput: Ping, 8 connections (wall per call)', fmt(pingInfo.wallUs), pingInfo.wallUs / floorOpUs));
  const s = summary(setup.setup ?? []);
  out.push(line('connection setup + first call (p50 / p99)', `${fmt(s.p50)} / ${fmt(s.p99)}`, s.p50 / floorOpUs));
  out.push('');
}

interface ReferenceContext {
  tools: ReturnType<typeof compileTools>;
  controller: string;
  choice: KeyChoice;
  baseName: string;
  baseFs: string;
  tmp: string;
  daemons: ChildProcess[];
}

const verdict = (ok: boolean): string => (ok ? 'meets target' : 'MISSES target');

function targetLine(label: string, value: string, ratio: number, target: string, ok: boolean): string {
  return `${label.padEnd(52)} ${value.padStart(22)}   ${ratio.toFixed(2).padStart(5)}x C ref  (target ${target}: ${verdict(ok)})`;
}

/**
 * Our daemon against the C libdbus reference, driven by the same load generator. Every
 * measurement runs on both servers back to back, twice (ABAB), and keeps each server's
 * better run, so that load from elsewhere on the machine hits both alike.
 */
async function referenceSection(out: string[], x: ReferenceContext): Promise<void> {
  const { tools, controller, choice, baseName, baseFs, tmp, daemons } = x;
  out.push('against the C libdbus reference server (reference-server.c; same load generator, loadgen.c; GetValue of one key):');
  if (!tools.reference) {
    out.push(`  not available: ${tools.missing}`);
    out.push('');
    return;
  }
  // The reference resolves the cgroup argument against the bench's own cgroup, as the daemon does.
  const ref = await startReference(tools.reference, path.join(tmp, 'ref.sock'), path.dirname(baseFs));
  daemons.push(ref);
  if (COMPARED_DAEMON) out.push(`  (daemon: ${COMPARED_DAEMON})`);
  const d = startDaemon(tmp, 'info', 'ref-compare', ['--max-connections-per-uid', String(HELD_CONNECTIONS + 100)], COMPARED_DAEMON);
  daemons.push(d.child);
  await waitForSocket(d.socket);
  const servers = { ref: { pid: ref.pid as number, socket: path.join(tmp, 'ref.sock') }, daemon: { pid: d.child.pid as number, socket: d.socket } };
  const msg = getValueMessage(controller, baseName, choice.key);
  const idleRss = rssMiB(servers.daemon.pid);

  type Closed = ReturnType<typeof closedRun>;
  const best = (a: Closed, b: Closed): Closed => (a.cpuPerCallUs <= b.cpuPerCallUs ? a : b);
  const both = (conns: number): { ref: Closed; daemon: Closed } => {
    const r1 = closedRun(tools.loadgen, servers.ref, msg, conns, LOAD_SECONDS);
    const d1 = closedRun(tools.loadgen, servers.daemon, msg, conns, LOAD_SECONDS);
    const r2 = closedRun(tools.loadgen, servers.ref, msg, conns, LOAD_SECONDS);
    const d2 = closedRun(tools.loadgen, servers.daemon, msg, conns, LOAD_SECONDS);
    return { ref: best(r1, r2), daemon: best(d1, d2) };
  };
  progress('reference: CPU per call');
  const eight = both(8);
  progress('reference: saturation');
  const sat = both(64);
  const satRef = sat.ref.perSecond;
  const satDaemon = sat.daemon.perSecond;

  progress('reference: open loop at half of saturation');
  const open = (server: { pid: number; socket: string }, rate: number): LoadResult => runLoad(tools.loadgen, server.socket, msg, ['open', '64', String(Math.round(rate)), String(LOAD_SECONDS)]);
  const openDaemon = [open(servers.daemon, satDaemon / 2), open(servers.daemon, satDaemon / 2)].sort((a, b) => a.p99 - b.p99)[0] as LoadResult;
  const openRef = [open(servers.ref, satRef / 2), open(servers.ref, satRef / 2)].sort((a, b) => a.p99 - b.p99)[0] as LoadResult;

  progress(`reference: ${HELD_CONNECTIONS} connections`);
  const held = await holdConnections(tools.loadgen, servers.daemon, msg, HELD_CONNECTIONS, HOLD_QUIET_S);
  await stopDaemon(d.child);

  // The C reference logs nothing; the daemon logs every request at info by default.
  progress('reference: daemon with the request log at warn');
  const w = startDaemon(tmp, 'warn', 'ref-compare-warn', [], COMPARED_DAEMON);
  daemons.push(w.child);
  await waitForSocket(w.socket);
  const warnServer = { pid: w.child.pid as number, socket: w.socket };
  const warnRuns = [closedRun(tools.loadgen, servers.ref, msg, 8, LOAD_SECONDS), closedRun(tools.loadgen, warnServer, msg, 8, LOAD_SECONDS), closedRun(tools.loadgen, warnServer, msg, 8, LOAD_SECONDS)];
  const refWarnSide = warnRuns[0] as Closed;
  const warn8 = best(warnRuns[1] as Closed, warnRuns[2] as Closed);
  await stopDaemon(w.child);
  await stopDaemon(ref);

  const cpuRatio = eight.daemon.cpuPerCallUs / eight.ref.cpuPerCallUs;
  out.push(line('  C reference: CPU per GetValue, 8 connections', fmt(eight.ref.cpuPerCallUs)));
  out.push(targetLine('  daemon: CPU per GetValue, 8 connections', fmt(eight.daemon.cpuPerCallUs), cpuRatio, '<= 1.7x', cpuRatio <= 1.7));
  out.push(line('  C reference: CPU per GetValue, run next to the warn one', fmt(refWarnSide.cpuPerCallUs)));
  out.push(
    `${'  daemon, request log at warn: CPU per GetValue'.padEnd(52)} ${fmt(warn8.cpuPerCallUs).padStart(22)}   ${(warn8.cpuPerCallUs / refWarnSide.cpuPerCallUs).toFixed(2).padStart(5)}x C ref  (the reference logs nothing)`,
  );
  out.push(line('  C reference: saturation, 64 connections', `${satRef.toFixed(0)} calls/s`));
  out.push(targetLine('  daemon: saturation, 64 connections', `${satDaemon.toFixed(0)} calls/s`, satDaemon / satRef, '>= 0.7x', satDaemon / satRef >= 0.7));
  out.push(line('  C reference / daemon CPU per call at saturation', `${fmt(sat.ref.cpuPerCallUs)} / ${fmt(sat.daemon.cpuPerCallUs)}`));
  out.push(line('  C reference: open loop at half its saturation, p50/p99', `${fmt(openRef.p50)} / ${fmt(openRef.p99)}`));
  const okP99 = openDaemon.p99 <= 1000 && openDaemon.errors === 0 && openDaemon.overflow === 0;
  out.push(
    `${'  daemon: open loop at half its saturation, p50/p99'.padEnd(52)} ${`${fmt(openDaemon.p50)} / ${fmt(openDaemon.p99)}`.padStart(22)}   (${Math.round(satDaemon / 2)} calls/s, p99.9 ${fmt(openDaemon.p999)}; target p99 <= 1 ms: ${verdict(okP99)})`,
  );
  out.push(line('  errors (daemon, all runs)', String(eight.daemon.errors + sat.daemon.errors + openDaemon.errors + openDaemon.overflow)));
  const okRss = held.held === HELD_CONNECTIONS && held.steadyRssMiB <= 80 * 1.048576; // 80 MB = 76.3 MiB
  out.push(
    `${`  daemon RSS, ${held.held} connections held`.padEnd(52)} ${`${held.rssMiB.toFixed(1)} MiB`.padStart(22)}   (idle ${idleRss.toFixed(1)} MiB; half a second after the last connected)`,
  );
  out.push(
    `${`  daemon RSS, the same ${HOLD_QUIET_S} s later`.padEnd(52)} ${`${held.steadyRssMiB.toFixed(1)} MiB`.padStart(22)}   (V8's memory reducer has run; target <= 80 MB = 76.3 MiB: ${verdict(okRss)})`,
  );
  out.push('');
}

interface SetupContext {
  floor: string;
  t: SetupTarget;
  baseName: string;
  pid: number;
  uid: number;
  gid: number;
  tmp: string;
  daemons: ChildProcess[];
}

/** Setup of one container through the daemon against floor.c --setup. */
async function setupSection(out: string[], x: SetupContext): Promise<void> {
  const { floor, t, baseName, pid, uid, gid, tmp, daemons } = x;
  const label = `Setup (${t.dirs.length} hierarchies, chown, ${t.dirs.length} limits, 1 pid)`;
  const cycles = Math.max(50, Math.round(CYCLES / 5));
  const floorRuns = [0, 1, 2].map(() => setupFloorUs(floor, t, pid, uid, gid, cycles)).sort((a, b) => a - b);
  const floorUs = floorRuns[1] as number;
  out.push(line(`floor: ${label} in C`, fmt(floorUs)));
  const d = startDaemon(tmp, 'info', 'setup');
  daemons.push(d.child);
  await waitForSocket(d.socket);
  const client = await connect({ socket: d.socket });
  try {
    if (!setupCall(client)) {
      out.push(line(`daemon: ${label}`, 'n/a: this build has no Setup'));
      return;
    }
    let lat: number[];
    try {
      // Warmed up like the cycle section (100 cycles): a long-running daemon is measured once V8
      // has compiled the Setup path, not while it is still interpreting it.
      await setupThroughDaemon(client, t, baseName, pid, uid, gid, 100);
      lat = await setupThroughDaemon(client, t, baseName, pid, uid, gid, cycles);
    } catch (err) {
      out.push(line(`daemon: ${label}`, `n/a: ${(err as Error).message}`));
      for (const dir of new Set(t.dirs.map((x) => x.dir))) for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeSetupTree(path.join(dir, e.name));
      return;
    }
    const s = summary(lat);
    const ratio = s.p50 / floorUs;
    out.push(`${`daemon: ${label}, p50`.padEnd(52)} ${fmt(s.p50).padStart(22)}   ${ratio.toFixed(2).padStart(5)}x floor  (target <= 4x: ${verdict(ratio <= 4)}; p99 ${fmt(s.p99)})`);
  } finally {
    await client.close();
    await stopDaemon(d.child);
  }
}

/** Removes the bench's own cgroup tree (hidden v2 leaves included), deepest first. */
function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch (err) {
    process.stderr.write(`bench: could not remove ${dir}: ${(err as Error).message}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
