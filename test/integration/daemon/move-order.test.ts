// MovePid's write to cgroup.procs runs off the daemon's thread (it can block in the kernel for
// milliseconds); the calls a client sends behind it on the same connection must still be
// handled after it, as when the write ran inline: a GetPidCgroup pipelined right behind a
// MovePid sees the task where the MovePid put it, every time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, skipReason, startTestDaemon, titled, type LongLived, type TestDaemon } from '../../helpers';

const reason = skipReason({ named: 1 });

describe.skipIf(reason !== undefined)(titled('MovePid off the daemon thread keeps a connection in order', reason), () => {
  let env: TestDaemon;
  let victim: LongLived;
  let label: string;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1 });
    label = env.named[0] as string;
    for (const cg of ['a', 'b']) expect((await env.dbusSend('Create', 'ss', [label, cg])).ok).toBe(true);
    victim = await env.spawn(['sleep', '600']);
  });
  afterAll(async () => {
    await victim?.stop();
    await env?.stop();
  });

  it('a call pipelined behind a MovePid sees the move done', async () => {
    const client = await RawClient.connect(env.socket);
    try {
      for (let i = 0; i < 40; i++) {
        const target = i % 2 === 0 ? 'a' : 'b';
        // Both written before either reply comes back.
        const [moved, where] = await Promise.all([
          client.call('MovePid', 'ssi', [label, `${env.baseName}/${target}`, victim.pid]),
          client.call('GetPidCgroup', 'si', [label, victim.pid]),
        ]);
        expect(moved.ok, JSON.stringify(moved.values)).toBe(true);
        expect(where.ok, JSON.stringify(where.values)).toBe(true);
        expect(String(where.values[0]).endsWith(`/${target}`), `round ${i}: ${String(where.values[0])}`).toBe(true);
      }
    } finally {
      client.close();
    }
  });

  it('a MovePid that fails leaves the connection serving calls', async () => {
    const client = await RawClient.connect(env.socket);
    try {
      const [moved, ping] = await Promise.all([
        client.call('MovePid', 'ssi', [label, `${env.baseName}/missing`, victim.pid]),
        client.call('org.freedesktop.DBus.Peer.Ping'),
      ]);
      expect(moved.ok).toBe(false);
      expect(ping.ok).toBe(true);
    } finally {
      client.close();
    }
  });
});
