// `npm run bench:dos`: each denial-of-service attack of test/hostile/dos.test.ts at full
// scale, run as uid nobody against a real daemon (default limits) while this process, as
// root, Pings on an open connection and on a fresh connection every 100 ms. Prints per
// attack: Ping p50/p99 during it, the daemon's RSS and fd peaks, and fds/RSS once it is
// over. Needs root; about two minutes; stops by itself and removes what it made.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { RawClient } from '../helpers/raw-client';
import { startTestDaemon, type TestDaemon } from '../helpers/test-daemon';
import { cpuMs, fdCount, rssBytes, sampleMax, startAttack, startPythonFdFlood, type RunningAttack } from '../helpers/dos';
import { percentile } from './cycle';

const MIB = 1024 * 1024;
const PING = 'org.freedesktop.DBus.Peer.Ping';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Row {
  attack: string;
  ping: number[];
  fresh: number[];
  freshFailed: number;
  rssPeak: number;
  fdPeak: number;
  fdAfter: number;
  rssAfter: number;
  cpuMs: number;
  wallMs: number;
  note: string;
}

/** Pings on `client` back to back, and on a fresh connection every 100 ms, until stopped. */
function measurePings(env: TestDaemon, client: RawClient): { stop(): Promise<{ ping: number[]; fresh: number[]; freshFailed: number }> } {
  const ping: number[] = [];
  const fresh: number[] = [];
  let freshFailed = 0;
  let running = true;
  const onOpen = (async () => {
    while (running) {
      const t = process.hrtime.bigint();
      const r = await client.call(PING, '', [], { timeoutMs: 30_000 });
      if (!r.ok) throw new Error(`Ping failed: ${r.errorName}`);
      ping.push(Number(process.hrtime.bigint() - t) / 1e6);
      await sleep(2);
    }
  })();
  const onFresh = (async () => {
    while (running) {
      const t = process.hrtime.bigint();
      try {
        const c = await RawClient.connect(env.socket, { timeoutMs: 15_000 });
        await c.call(PING);
        c.close();
        fresh.push(Number(process.hrtime.bigint() - t) / 1e6);
      } catch {
        freshFailed++;
      }
      await sleep(100);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await Promise.all([onOpen, onFresh]);
      return { ping, fresh, freshFailed };
    },
  };
}

async function settle(pid: number, baselineFds: number): Promise<void> {
  const end = Date.now() + 15_000;
  while (Date.now() < end && fdCount(pid) > baselineFds) await sleep(50);
  await sleep(500);
}

async function measure(env: TestDaemon, client: RawClient, baselineFds: number, name: string, start: () => Promise<RunningAttack | undefined>, note = ''): Promise<Row> {
  const pid = env.daemonPid;
  const rss = sampleMax(() => rssBytes(pid));
  const fds = sampleMax(() => fdCount(pid));
  const cpu0 = cpuMs(pid);
  const t0 = Date.now();
  const pings = measurePings(env, client);
  const attack = await start();
  if (attack) {
    const report = await attack.done;
    process.stderr.write(`bench:dos ${name}: ${JSON.stringify(report)}\n`);
  } else {
    await sleep(3000);
  }
  const { ping, fresh, freshFailed } = await pings.stop();
  const wallMs = Date.now() - t0;
  const cpu = cpuMs(pid) - cpu0;
  const row: Row = { attack: name, ping, fresh, freshFailed, rssPeak: rss.stop(), fdPeak: fds.stop(), fdAfter: 0, rssAfter: 0, cpuMs: cpu, wallMs, note };
  await settle(pid, baselineFds);
  row.fdAfter = fdCount(pid);
  row.rssAfter = rssBytes(pid);
  return row;
}

function fmt(row: Row): string {
  const s = (xs: number[]): string => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted.length === 0 ? '      -/-' : `${percentile(sorted, 50).toFixed(1)}/${percentile(sorted, 99).toFixed(1)}`.padStart(13);
  };
  return [
    row.attack.padEnd(22),
    s(row.ping),
    String(row.ping.length).padStart(6),
    s(row.fresh),
    String(row.freshFailed).padStart(4),
    `${(row.rssPeak / MIB).toFixed(0)}`.padStart(6),
    `${row.fdPeak}`.padStart(6),
    `${row.fdAfter}`.padStart(6),
    `${(row.rssAfter / MIB).toFixed(0)}`.padStart(6),
    `${((row.cpuMs / row.wallMs) * 100).toFixed(0)}%`.padStart(5),
    row.note ? `  ${row.note}` : '',
  ].join(' ');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:dos needs root (it starts a daemon on private hierarchies and runs attacks as uid nobody)');
  const env = await startTestDaemon({ named: 1 });
  const rows: Row[] = [];
  let client: RawClient | undefined;
  try {
    const pid = env.daemonPid;
    client = await RawClient.connect(env.socket, { timeoutMs: 30_000 });
    await client.call(PING);
    await sleep(500);
    const baselineFds = fdCount(pid);
    // --only <substring>: run just the matching attacks (and the baseline)
    const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
    const run = async (name: string, start: () => Promise<RunningAttack | undefined>, note?: string): Promise<void> => {
      if (only !== undefined && !name.includes(only) && !name.startsWith('none')) return;
      process.stderr.write(`bench:dos ${name}...\n`);
      rows.push(await measure(env, client as RawClient, baselineFds, name, start, note));
    };
    await run('none (baseline)', async () => undefined);
    await run('half-open x5000', () => startAttack(env, { attack: 'half-open', connections: 5000, durationMs: 8000 }));
    await run('half-open AUTH x5000', () => startAttack(env, { attack: 'half-open', connections: 5000, durationMs: 8000, partialAuth: true }));
    await run('no-read 8x20000', () => startAttack(env, { attack: 'no-read', connections: 8, calls: 20_000, durationMs: 5000 }), '8 x 166 MB of replies asked');
    await run('partial 264 x 1 MiB', () => startAttack(env, { attack: 'partial', connections: 264, messageBytes: 1024 * 1024 - 64, durationMs: 5000 }));
    await run('no-reply flood x16', () => startAttack(env, { attack: 'no-reply-flood', connections: 16, durationMs: 8000 }));
    await run('fd flood 200k (16/msg)', () => startAttack(env, { attack: 'fd-flood', calls: 200_000, durationMs: 30_000 }));
    await run('fd flood 200k (253/msg)', () => startPythonFdFlood(env, 200_000, 30_000));
    await run('scm silent 32x64', () => startAttack(env, { attack: 'scm-silent', connections: 32, calls: 64, controller: env.named[0], durationMs: 6500 }));
    // EMFILE: the daemon's soft limit lowered to 200 more fds than it holds idle.
    const limits = /^Max open files\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
    const [soft, hard] = [Number(limits?.[1]), Number(limits?.[2])];
    if (only === undefined || 'EMFILE'.includes(only)) execFileSync('prlimit', ['--pid', String(pid), `--nofile=${baselineFds + 200}:${hard}`]);
    try {
      await run('EMFILE half-open x5000', () => startAttack(env, { attack: 'half-open', connections: 5000, durationMs: 8000 }), `RLIMIT_NOFILE ${baselineFds + 200}`);
    } finally {
      execFileSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`]);
    }
    const header = [
      'attack'.padEnd(22),
      'ping p50/p99'.padStart(13),
      'pings'.padStart(6),
      'fresh p50/p99'.padStart(13),
      'fail'.padStart(4),
      'RSSmax'.padStart(6),
      'fdmax'.padStart(6),
      'fd end'.padStart(6),
      'RSSend'.padStart(6),
      'cpu'.padStart(5),
    ].join(' ');
    process.stdout.write(
      [
        `bench:dos — daemon pid ${pid}, idle fds ${baselineFds}; latencies in ms (ping: open root connection; fresh: connect+handshake+Ping every 100 ms); RSS in MiB; cpu: daemon CPU / wall`,
        header,
        ...rows.map(fmt),
        '',
      ].join('\n'),
    );
  } finally {
    client?.close();
    await env.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:dos failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
