// A stopping daemon does not wait for Scm peers that never send their credentials (a
// datagram socket gives no hang-up, so a vanished client would otherwise hold the stop
// for the whole --scm-timeout), while a request that is already answered is unaffected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, skipReason, startTestDaemon, titled, type TestDaemon, slack } from '../../helpers';
import { callScm, ScmPeer } from '../../helpers/scm-peer';

const SCM_TIMEOUT_MS = 20_000;
const reason = skipReason({ named: 1 });

describe.skipIf(reason !== undefined)(titled('stopping the daemon with Scm requests waiting', reason), () => {
  let env: TestDaemon;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1, daemonArgs: ['--scm-timeout', String(SCM_TIMEOUT_MS)] });
  });

  afterAll(async () => {
    await env?.stop();
  });

  it('abandons requests still waiting for credentials instead of waiting out the timeout', async () => {
    const raw = await RawClient.connect(env.socket);
    const peers = [ScmPeer.create(), ScmPeer.create()];
    try {
      for (const peer of peers) {
        const reply = await callScm(raw, 'ListChildrenScm', 'ssh', [env.named[0], ''], peer.theirs);
        peer.closeTheirs();
        expect(reply.ok).toBe(true);
        expect((await peer.next()).data.toString()).toBe('1'); // the kick; we never answer it
      }
      const started = Date.now();
      await env.stopDaemon();
      // Without abandoning them the stop would wait for its 5 s grace (or the 20 s timeout).
      expect(Date.now() - started).toBeLessThan(slack(2000));
      const denied = env.logLines().filter((l) => l.method === 'ListChildrenScm');
      expect(denied.map((l) => l.outcome)).toEqual(['Unavailable', 'Unavailable']);
    } finally {
      raw.close();
      for (const peer of peers) peer.close();
    }
  });
});
