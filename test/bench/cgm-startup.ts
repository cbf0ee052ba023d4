// `npm run bench:cgm`: how long `cgm ping` takes against a real daemon, next to Node's own
// start-up floor (`node -e 0`), measured side by side. Runs are interleaved (floor, cgm,
// floor, cgm, ...) so that load from elsewhere on the machine hits both alike; prints the
// median and p90 wall time of each and the ratio of the medians, and CPU time per run
// (from /proc/self/stat's cutime+cstime, so a busy machine shows in wall but not in CPU).
// Needs root (it starts the daemon, on a temporary socket with its own state directory;
// Ping touches no cgroup). Options: --runs N (default 40), --cgm PATH (a cgm to measure
// instead of this build's; repeatable), --socket PATH (use a running daemon instead).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

function args(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === name && process.argv[i + 1] !== undefined) out.push(process.argv[i + 1] as string);
  });
  return out;
}

const RUNS = Number(args('--runs')[0] ?? 40);
const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux

/** CPU time (ms) used so far by our reaped children. */
function childrenCpuMs(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); cutime and cstime are fields 16 and 17.
  return (Number(fields[13]) + Number(fields[14])) * TICK_MS;
}

interface Sample {
  wallMs: number[];
  cpuMs: number;
}

function runOnce(argv: readonly string[], sample: Sample): void {
  const cpuBefore = childrenCpuMs();
  const start = process.hrtime.bigint();
  const r = spawnSync(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${String(r.status)}: ${r.stderr.toString().trim()}`);
  sample.wallMs.push(wall);
  sample.cpuMs += childrenCpuMs() - cpuBefore;
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function startDaemon(dir: string): Promise<{ socket: string; child: ChildProcess }> {
  const socket = path.join(dir, 'sock');
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'daemon', 'main.js'), '--socket', socket, '--state-dir', path.join(dir, 'state'), '--log-level', 'warn', '--log-file', path.join(dir, 'daemon.log'), '--mount-poll-interval', '0'], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 25));
  if (!fs.existsSync(socket)) {
    child.kill('SIGTERM');
    throw new Error(`the daemon did not start; see ${path.join(dir, 'daemon.log')}`);
  }
  return { socket, child };
}

async function main(): Promise<void> {
  const given = args('--socket')[0];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-startup-'));
  const daemon = given === undefined ? await startDaemon(dir) : undefined;
  const socket = given ?? (daemon?.socket as string);
  const cgms = args('--cgm');
  // By default what `npm install -g` puts on PATH (the bundle, from `npm run build`), and the
  // unbundled entry the tests run, side by side.
  if (cgms.length === 0) {
    const bundle = path.join(ROOT, 'dist', 'client', 'cgm-bundle.js');
    if (fs.existsSync(bundle)) cgms.push(bundle);
    else console.log('(no dist/client/cgm-bundle.js: run `npm run build` to measure the installed cgm)');
    cgms.push(path.join(ROOT, 'dist', 'client', 'cgm.js'));
  }
  const variants: Array<{ label: string; argv: string[] }> = [
    { label: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    ...cgms.map((cgm) => ({ label: `cgm ping (${path.relative(ROOT, cgm) || cgm})`, argv: [process.execPath, cgm, '--socket', socket, 'ping'] })),
  ];
  try {
    const samples = variants.map((): Sample => ({ wallMs: [], cpuMs: 0 }));
    for (const [i, v] of variants.entries()) runOnce(v.argv, samples[i] as Sample); // warm the page cache
    for (const s of samples) {
      s.wallMs.length = 0;
      s.cpuMs = 0;
    }
    for (let run = 0; run < RUNS; run++) {
      for (const [i, v] of variants.entries()) runOnce(v.argv, samples[i] as Sample);
    }
    const floor = quantile((samples[0] as Sample).wallMs, 0.5);
    console.log(`cgm start-up, ${RUNS} interleaved runs each (node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(2)})`);
    for (const [i, v] of variants.entries()) {
      const s = samples[i] as Sample;
      const p50 = quantile(s.wallMs, 0.5);
      const ratio = (p50 / floor).toFixed(2);
      console.log(`${v.label.padEnd(40)} wall p50 ${p50.toFixed(1).padStart(6)} ms  p90 ${quantile(s.wallMs, 0.9).toFixed(1).padStart(6)} ms  cpu ${(s.cpuMs / RUNS).toFixed(1).padStart(5)} ms/run  ratio ${ratio}x`);
    }
  } finally {
    daemon?.child.kill('SIGTERM');
    if (daemon) await new Promise((r) => daemon.child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench:cgm: ${(err as Error).message}`);
  process.exitCode = 1;
});
