// `npm run bench:fair`: how long other clients wait while one client makes the daemon work over
// a big tree (issue 12). Builds 20 002 cgroups in a private named v1 hierarchy, then runs
// GetTasksRecursive, ListChildren (10 000 children), a recursive Remove and a Prune over them on
// one connection while a second connection calls Ping back to back, and prints that client's
// Ping p50/p99/max during each call next to the same figures with the daemon idle.
// Needs root; everything it makes is removed (startTestDaemon's teardown).
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  BIG_TREE, bigTreeSize, buildBigTree, countCgroups, percentileOf, pingDuring, RawClient, startTestDaemon, type RawReply,
} from '../helpers';

interface Row {
  call: string;
  cgroups: number;
  ms: number;
  pings: number;
  p50: number;
  p99: number;
  max: number;
}

const fmt = (ms: number): string => (Number.isNaN(ms) ? '-' : ms < 1 ? `${Math.round(ms * 1000)} µs` : `${ms.toFixed(1)} ms`);

function rowOf(call: string, cgroups: number, ms: number, latencies: number[]): Row {
  return {
    call,
    cgroups,
    ms,
    pings: latencies.length,
    p50: percentileOf(latencies, 50),
    p99: percentileOf(latencies, 99),
    max: latencies.length ? Math.max(...latencies) : Number.NaN,
  };
}

function check(reply: RawReply, what: string): RawReply {
  if (!reply.ok) throw new Error(`${what} failed: ${reply.errorName ?? ''} ${String(reply.values[0] ?? '')}`);
  return reply;
}

async function main(): Promise<void> {
  const env = await startTestDaemon({ named: 1 });
  const rows: Row[] = [];
  try {
    const H = env.named[0] as string;
    const CG = (rel: string): string => `${env.baseName}/${rel}`;
    const top = env.fsPath(H, 'big');
    const connect = (): Promise<RawClient> => RawClient.connect(env.socket, { timeoutMs: 600_000 });
    const [worker, pinger] = await Promise.all([connect(), connect()]);

    // The idle baseline: the same Ping loop with nothing else to do.
    const idle: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = performance.now();
      check(await pinger.call('org.freedesktop.DBus.Peer.Ping'), 'Ping');
      idle.push(performance.now() - t);
    }
    rows.push(rowOf('(idle daemon)', 0, 0, idle));

    const measure = async (call: string, cgroups: number, send: () => Promise<RawReply>): Promise<void> => {
      const run = await pingDuring(pinger, send());
      check(run.result, call);
      rows.push(rowOf(call, cgroups, run.ms, run.latencies));
      process.stderr.write(`fair: ${call} done in ${Math.round(run.ms)} ms\n`);
    };

    const built = buildBigTree(top);
    process.stderr.write(`fair: made ${bigTreeSize()} cgroups in ${Math.round(built)} ms\n`);
    await measure('GetTasksRecursive', bigTreeSize(), () => worker.call('GetTasksRecursive', 'ss', [H, CG('big')], { timeoutMs: 600_000 }));
    await measure('ListChildren', BIG_TREE.flat, () => worker.call('ListChildren', 'ss', [H, CG('big/flat')], { timeoutMs: 600_000 }));
    await measure('Remove (recursive)', bigTreeSize(), () => worker.call('Remove', 'ssi', [H, CG('big'), 1], { timeoutMs: 600_000 }));
    if (countCgroups(top) !== 0) throw new Error('the recursive Remove left cgroups behind');
    buildBigTree(top);
    await measure('Prune', bigTreeSize(), () => worker.call('Prune', 'ss', [H, CG('big')], { timeoutMs: 600_000 }));
    if (countCgroups(top) !== 0) throw new Error('Prune left cgroups behind');
    worker.close();
    pinger.close();
  } finally {
    await env.stop();
  }

  const [load1] = os.loadavg();
  console.log(`Other client's Ping while one connection works over a tree (${os.cpus().length} CPUs, load average ${load1?.toFixed(1)}):`);
  console.log('| call | cgroups | call took | Pings answered meanwhile | Ping p50 | Ping p99 | Ping max |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.call} | ${r.cgroups || '-'} | ${r.ms ? `${Math.round(r.ms)} ms` : '-'} | ${r.pings} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} |`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
