// `npm run bench:fair`: how long other clients wait while one client makes the daemon work over
// a big tree (issue 12). Builds 20 002 cgroups in a private named v1 hierarchy, then runs
// GetTasksRecursive, ListChildren (10 000 children), a recursive Remove and a Prune over them on
// one connection while a second connection calls Ping back to back, and prints that client's
// Ping p50/p99/max during each call next to the same figures with the daemon idle. The big
// calls are made by a gdbus process, so that decoding their large replies never delays this
// process's Pings (a RawClient here would stall the Ping loop while it decodes 10 000 names).
// Needs root; everything it makes is removed (startTestDaemon's teardown).
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  BIG_TREE, bigTreeSize, buildBigTree, countCgroups, percentileOf, pingDuring, RawClient, startTestDaemon, type CallResult,
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

function check<T extends { ok: boolean; errorName?: string }>(reply: T, what: string): T {
  if (!reply.ok) throw new Error(`${what} failed: ${reply.errorName ?? ''} ${JSON.stringify(reply)}`);
  return reply;
}

async function main(): Promise<void> {
  const env = await startTestDaemon({ named: 1 });
  const rows: Row[] = [];
  try {
    const H = env.named[0] as string;
    const top = env.fsPath(H, 'big');
    const pinger = await RawClient.connect(env.socket, { timeoutMs: 600_000 });
    // gdbus runs in the base cgroup, so its cgroup arguments are relative to it.
    const gdbus = (method: string, sig: string, args: ReadonlyArray<string | number>): Promise<CallResult> =>
      env.gdbus(method, sig, args, { timeoutMs: 600_000 });

    // The idle baseline: the same Ping loop with nothing else to do.
    const idle: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = performance.now();
      check(await pinger.call('org.freedesktop.DBus.Peer.Ping'), 'Ping');
      idle.push(performance.now() - t);
    }
    rows.push(rowOf('(idle daemon)', 0, 0, idle));

    const measure = async (call: string, cgroups: number, send: () => Promise<CallResult>): Promise<void> => {
      const run = await pingDuring(pinger, send());
      check(run.result, call);
      rows.push(rowOf(call, cgroups, run.ms, run.latencies));
      process.stderr.write(`fair: ${call} done in ${Math.round(run.ms)} ms\n`);
    };

    const built = buildBigTree(top);
    process.stderr.write(`fair: made ${bigTreeSize()} cgroups in ${Math.round(built)} ms\n`);
    await measure('GetTasksRecursive', bigTreeSize(), () => gdbus('GetTasksRecursive', 'ss', [H, 'big']));
    await measure('ListChildren', BIG_TREE.flat, () => gdbus('ListChildren', 'ss', [H, 'big/flat']));
    await measure('Remove (recursive)', bigTreeSize(), () => gdbus('Remove', 'ssi', [H, 'big', 1]));
    if (countCgroups(top) !== 0) throw new Error('the recursive Remove left cgroups behind');
    buildBigTree(top);
    await measure('Prune', bigTreeSize(), () => gdbus('Prune', 'ss', [H, 'big']));
    if (countCgroups(top) !== 0) throw new Error('Prune left cgroups behind');
    pinger.close();
  } finally {
    await env.stop();
  }

  const [load1] = os.loadavg();
  console.log(`Other client's Ping while one connection works over a tree (${os.cpus().length} CPUs, load average ${load1?.toFixed(1)}):`);
  console.log('| call (by gdbus) | cgroups | call took (gdbus process) | Pings answered meanwhile | Ping p50 | Ping p99 | Ping max |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.call} | ${r.cgroups || '-'} | ${r.ms ? `${Math.round(r.ms)} ms` : '-'} | ${r.pings} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} |`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
