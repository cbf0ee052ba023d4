// Denial of service by an unprivileged local user (issue 8, part 3): each attack runs
// briefly at small scale, as uid nobody, against the real daemon. The daemon must stay up,
// keep answering other callers, close what the attacker opened and hold no fd afterwards.
// Latency under full-scale attacks is measured by `npm run bench:dos`, not asserted here.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, skipReason, startTestDaemon, titled, waitFor, type TestDaemon } from '../helpers';
import { fdCount, rssBytes, sampleMax, startAttack, startPythonFdFlood } from '../helpers/dos';

const HANDSHAKE_TIMEOUT_MS = 1000;
const MAX_CONNECTIONS_PER_UID = 12;
const SCM_TIMEOUT_MS = 1500;
const MAX_PENDING_SCM_PER_UID = 20;
const MAX_QUEUED_OUTPUT = 64 * 1024;
const MIB = 1024 * 1024;
const MAX_MESSAGE = 2 * MIB;
/** what all connections of one uid may hold of messages not yet complete (server.ts: max(16 MiB, 4 messages)) */
const MAX_INPUT_PER_UID = 16 * MIB;

const reason = skipReason({ named: 1, tools: ['prlimit', 'python3'] });
const suite = reason ? describe.skip : describe;

suite(titled('denial of service', reason), () => {
  let env: TestDaemon;
  let pid: number;
  let baseline: number;

  beforeAll(async () => {
    env = await startTestDaemon({
      named: 1,
      daemonArgs: [
        '--handshake-timeout', String(HANDSHAKE_TIMEOUT_MS),
        '--max-connections-per-uid', String(MAX_CONNECTIONS_PER_UID),
        '--scm-timeout', String(SCM_TIMEOUT_MS),
        '--max-pending-scm-per-uid', String(MAX_PENDING_SCM_PER_UID),
        '--max-queued-output', String(MAX_QUEUED_OUTPUT),
        '--max-message-size', String(MAX_MESSAGE),
        // nothing but the attacks may open fds in the daemon (the EMFILE test counts them)
        '--mount-poll-interval', '0',
      ],
    });
    pid = env.daemonPid;
    baseline = fdCount(pid);
  });

  afterAll(async () => {
    await env?.stop();
  });

  /** A fresh root connection's Ping: the daemon serves others. */
  async function pingAsRoot(): Promise<void> {
    const c = await RawClient.connect(env.socket, { timeoutMs: 10_000 });
    try {
      const r = await c.call('org.freedesktop.DBus.Peer.Ping');
      expect(r.ok).toBe(true);
    } finally {
      c.close();
    }
  }

  async function expectFdsBackToBaseline(): Promise<void> {
    const back = await waitFor(() => fdCount(pid) <= baseline, 5000, 20);
    expect(back ? baseline : fdCount(pid), 'daemon fds after the attack').toBe(baseline);
  }

  it('closes half-open connections at the handshake deadline and refuses a uid over its limit', async () => {
    const opened = 4 * MAX_CONNECTIONS_PER_UID;
    const attack = await startAttack(env, { attack: 'half-open', connections: opened, durationMs: 10_000 });
    await attack.ready;
    await pingAsRoot();
    const report = await attack.done;
    expect(report.opened).toBe(opened);
    expect(report.closedByDaemon, 'every connection closed by the daemon, none held').toBe(opened);
    expect(report.recovered, 'the same uid is served again afterwards').toBe(true);
    expect(env.logLines().some((l) => l.msg === 'too many connections from one uid' && (l.peer as { uid?: number })?.uid === 65534)).toBe(true);
    await expectFdsBackToBaseline();
  });

  it('closes connections that stall in the middle of an AUTH line too', async () => {
    const attack = await startAttack(env, { attack: 'half-open', connections: MAX_CONNECTIONS_PER_UID, partialAuth: true, durationMs: 10_000 });
    const report = await attack.done;
    expect(report.closedByDaemon).toBe(MAX_CONNECTIONS_PER_UID);
    await expectFdsBackToBaseline();
  });

  it('stops reading from a client that never reads its replies, and delivers them all once it does', async () => {
    // 20 000 Introspect calls (~130 bytes each) ask for ~160 MiB of replies.
    const calls = 20_000;
    const rssBefore = rssBytes(pid);
    const rss = sampleMax(() => rssBytes(pid));
    const attack = await startAttack(env, { attack: 'no-read', connections: 1, calls, durationMs: 1500 });
    await attack.ready;
    await pingAsRoot();
    const report = await attack.done;
    const peak = rss.stop();
    expect(report.stalledBytes, 'the attacker could not write all its calls: the daemon stopped reading').toBeGreaterThan(0);
    expect(report.replies, 'every call answered once the client reads').toBe(calls);
    expect(peak - rssBefore, 'daemon RSS growth').toBeLessThan(64 * MIB);
    expect(report.recovered).toBe(true);
    await expectFdsBackToBaseline();
  }, 120_000);

  it('bounds what the connections of one uid may hold of incomplete messages', async () => {
    const size = MAX_MESSAGE - 64;
    const rssBefore = rssBytes(pid);
    const rss = sampleMax(() => rssBytes(pid));
    const attack = await startAttack(env, { attack: 'partial', connections: MAX_CONNECTIONS_PER_UID + 8, messageBytes: size, durationMs: 1000 });
    await attack.ready;
    await pingAsRoot();
    const report = await attack.done;
    const peak = rss.stop();
    const kept = report.opened - report.closedByDaemon;
    expect(kept * size, 'bytes of partial messages the daemon kept').toBeLessThanOrEqual(MAX_INPUT_PER_UID);
    expect(report.closedByDaemon).toBeGreaterThan(0);
    expect(peak - rssBefore, 'daemon RSS growth').toBeLessThan(MAX_INPUT_PER_UID + 32 * MIB);
    expect(env.logLines().some((l) => l.msg === 'too much buffered input from one uid')).toBe(true);
    expect(report.recovered).toBe(true);
    await expectFdsBackToBaseline();
  });

  it('keeps serving other callers through a NO_REPLY_EXPECTED flood', async () => {
    const attack = await startAttack(env, { attack: 'no-reply-flood', connections: 4, durationMs: 1500 });
    await attack.ready;
    for (let i = 0; i < 5; i++) await pingAsRoot();
    const report = await attack.done;
    expect(report.sent).toBeGreaterThan(0);
    expect(report.replies, 'no replies to NO_REPLY_EXPECTED calls').toBe(0);
    expect(report.recovered).toBe(true);
    await expectFdsBackToBaseline();
  });

  it('closes every fd passed with SCM_RIGHTS (16 per message, and 253 per message with truncation)', async () => {
    const fds = sampleMax(() => fdCount(pid));
    const attack = await startAttack(env, { attack: 'fd-flood', calls: 20_000, durationMs: 10_000 });
    await attack.ready;
    await pingAsRoot();
    const report = await attack.done;
    expect(report.fdsSent).toBe(20_000);
    expect(report.recovered).toBe(true);
    await expectFdsBackToBaseline();

    const py = await startPythonFdFlood(env, 20_000, 10_000);
    await py.ready;
    await pingAsRoot();
    const pyReport = await py.done;
    expect(pyReport.fdsSent).toBeGreaterThanOrEqual(20_000);
    expect(pyReport.closedByDaemon, 'the daemon dropped the flooding connections').toBeGreaterThan(0);
    await expectFdsBackToBaseline();
    // A connection holds at most one message's worth during the handshake and 64 after it
    // (plus one recvmsg's worth, 24): bounded by the per-uid connection limit.
    expect(fds.stop() - baseline).toBeLessThan((MAX_CONNECTIONS_PER_UID + 8) * 90);
    await pingAsRoot();
  });

  it('caps pending Scm requests per uid and closes their fds at the timeout', async () => {
    const fds = sampleMax(() => fdCount(pid));
    const attack = await startAttack(env, { attack: 'scm-silent', connections: 3, calls: 15, controller: env.named[0], durationMs: SCM_TIMEOUT_MS * 3 });
    await attack.ready;
    await pingAsRoot();
    const report = await attack.done;
    const limited = report.errors['org.freedesktop.DBus.Error.LimitsExceeded'] ?? 0;
    expect(report.replies).toBe(45);
    expect(45 - limited, 'Scm requests accepted').toBe(MAX_PENDING_SCM_PER_UID);
    expect(env.logLines().some((l) => l.method === 'GetValueScm' && l.outcome === 'Timeout')).toBe(true);
    // connections + accepted Scm sockets + the daemon's own /proc fds per connection
    expect(fds.stop() - baseline).toBeLessThanOrEqual(3 * 2 + MAX_PENDING_SCM_PER_UID + 2);
    await expectFdsBackToBaseline();
  });

  it('resumes accepting once fds free up after running out of them (EMFILE)', async () => {
    const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
    const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(limits);
    expect(m).not.toBeNull();
    const [soft, hard] = [Number(m?.[1]), Number(m?.[2])];
    const held: RawClient[] = [];
    let stuck: Promise<RawClient> | undefined;
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${baseline + 4}:${hard}`]);
    try {
      // Fill the daemon's fd table with connections; the next one waits in the backlog.
      for (let i = 0; i < 20 && stuck === undefined; i++) {
        const attempt = RawClient.connect(env.socket, { timeoutMs: 30_000 });
        const outcome = await Promise.race([attempt, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 1000))]);
        if (outcome === 'waiting') stuck = attempt;
        else held.push(outcome);
      }
      expect(stuck, 'a connection waits once the daemon is out of fds').toBeDefined();
      expect(await waitFor(() => env.logLines().some((l) => l.msg === 'accept failed, retrying shortly' && l.code === 'EMFILE'), 3000)).toBe(true);
      // Free two fds: the waiting connection is accepted and served.
      held.splice(0, 2).forEach((c) => c.close());
      const client = await (stuck as Promise<RawClient>);
      held.push(client);
      expect((await client.call('org.freedesktop.DBus.Peer.Ping')).ok).toBe(true);
    } finally {
      held.forEach((c) => c.close());
      if (stuck) void stuck.then((c) => c.close(), () => undefined);
      execFileSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:${hard}`]);
    }
    await pingAsRoot();
    await expectFdsBackToBaseline();
  });
});
