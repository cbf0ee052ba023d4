// Both ends of an Scm exchange in one process, over real datagram socketpairs: the
// client's runScmExchange against the daemon's ScmConversation (the kicks, the requestor
// and victim credentials, every result kind, failures with and without our error detail,
// timeouts on either side, results longer than the socket's queue), and cgproxy's
// re-encoding of results for its own Scm clients. The requestor's credential names our
// parent process: a conversation refuses credentials carrying its own pid (reflection),
// and naming another pid needs root, as the tests run.
import { describe, expect, it } from 'vitest';
import { openSocket, socketPair, setPassCred, closeFd, type Ucred } from '../../../addon';
import { passFd } from '../../helpers/pass-fd';
import { admitScmSocket, ScmConversation, type ConversationSpec, type ScmOutcome } from '../../../daemon/scm/conversation';
import * as R from '../../../daemon/scm/results';
import { CgmError } from '../../../daemon/errors';
import { runScmExchange, SCM_VICTIM_METHODS, ScmFailure, ScmTimeout, type ScmValue } from '../../../client/scm-call';
import { invokeAsScm } from '../../../client/scm-route';
import type { PeerConnection } from '../../../client/connection';
import { METHODS_BY_NAME } from '../../../daemon/dbus/interface';
import { encodeForScmClient } from '../../../proxy/forward';

const own: Ucred = { pid: process.ppid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };


const quietRefusal: Pick<ConversationSpec, 'failure' | 'refused'> = { failure: R.failed, refused: () => undefined };

interface FakeDaemon {
  sendCall(fd: number): Promise<unknown>;
  seen: { r?: Ucred; v?: Ucred };
  /** what the conversation ended with (undefined: success) */
  ended: Promise<unknown>;
}

/** The daemon side: a conversation on our copy of the passed fd, answering with `answer`. */
function fakeDaemon(answer: (r: Ucred, v: Ucred | undefined) => ScmOutcome, needsVictim = false, timeoutMs = 1000): FakeDaemon {
  const seen: FakeDaemon['seen'] = {};
  let end: (e: unknown) => void = () => undefined;
  const ended = new Promise<unknown>((resolve) => (end = resolve));
  return {
    seen,
    ended,
    sendCall: async (fd) => {
      const mine = await passFd(fd);
      setPassCred(mine, true); // as the daemon's acceptScmFd does
      new ScmConversation(mine, admitScmSocket(mine), {
        ...quietRefusal,
        needsVictim,
        timeoutMs,
        run: (r, v) => {
          seen.r = r;
          seen.v = v;
          return answer(r, v);
        },
        done: end,
      });
      return [];
    },
  };
}

function exchange(method: string, daemon: FakeDaemon, victim?: Ucred, timeoutMs = 1000): Promise<ScmValue> {
  return runScmExchange({ method, requestor: own, victim, timeoutMs, sendCall: (fd) => daemon.sendCall(fd) });
}

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
};

describe('an Scm exchange between the client and the daemon side', () => {
  it.each([
    ['CreateScm', R.existedByte(1), { kind: 'existed', existed: 1 }],
    ['CreateScm', R.existedByte(-1), { kind: 'existed', existed: -1 }],
    ['RemoveScm', R.existedByte(1), { kind: 'existed', existed: 1 }],
    ['SetValueScm', R.ok(), { kind: 'status' }],
    ['GetValueScm', R.text('line 1\nline 2'), { kind: 'string', value: 'line 1\nline 2' }],
    ['ListChildrenScm', R.childrenPayload(['a', 'b c']), { kind: 'names', names: ['a', 'b c'] }],
    ['ListChildrenScm', R.childrenPayload([]), { kind: 'names', names: [] }],
    ['ListKeysScm', R.keysPayload([['tasks', 4294967295, 5, 0o100644]]), { kind: 'keys', keys: [{ name: 'tasks', uid: 4294967295, gid: 5, mode: 0o100644 }] }],
    ['GetTasksScm', [{ data: int32(0) }], { kind: 'tasks', pids: [] }],
  ] as const)('%s decodes what the daemon encodes (%#)', async (method, datagrams, expected) => {
    const daemon = fakeDaemon(() => ({ datagrams: [...datagrams] }));
    await expect(exchange(method, daemon)).resolves.toEqual(expected);
    expect(daemon.seen.r).toEqual(own);
    await expect(daemon.ended).resolves.toBeUndefined();
  });

  it('the victim credential follows a second kick', async () => {
    const victim: Ucred = { ...own };
    const daemon = fakeDaemon(() => ({ datagrams: R.text('a/b') }), true);
    await expect(exchange('GetPidCgroupScm', daemon, victim)).resolves.toEqual({ kind: 'string', value: 'a/b' });
    expect(daemon.seen.v).toEqual(victim);
  });

  it('pids arrive as credentials, even more of them than the socket queues (reference: max_dgram_qlen)', async () => {
    const n = 300;
    const daemon = fakeDaemon(() => ({ datagrams: [{ data: int32(n) }, ...Array.from({ length: n }, () => ({ data: Buffer.from('p'), cred: own }))] }));
    const value = await exchange('GetTasksRecursiveScm', daemon);
    expect(value).toEqual({ kind: 'tasks', pids: Array.from({ length: n }, () => own.pid) });
  });

  it('a failure carries the daemon\'s error name when it sends the detail', async () => {
    const daemon = fakeDaemon(() => ({ datagrams: [...R.failed(), R.errorDetail('org.freedesktop.DBus.Error.AccessDenied', 'no')], error: new Error('x') }));
    const err = await exchange('ChmodScm', daemon).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ScmFailure);
    expect(err).toMatchObject({ errorName: 'org.freedesktop.DBus.Error.AccessDenied', message: 'no' });
    expect(await daemon.ended).toBeInstanceOf(Error);
  });

  it.each([
    ['GetValueScm', R.emptyDatagram()],
    ['ListKeysScm', R.countFailure()],
    ['GetTasksScm', R.countFailure()],
    ['RemoveScm', R.failed()],
  ] as const)('%s: a failure from a daemon that sends no detail (the original) has no name', async (method, datagrams) => {
    const daemon = fakeDaemon(() => ({ datagrams: [...datagrams] }));
    const err = await exchange(method, daemon).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ScmFailure);
    expect((err as ScmFailure).errorName).toBeUndefined();
  });

  it('a daemon that never kicks: the client gives up after its timeout', async () => {
    let held: number | undefined;
    const started = Date.now();
    const err = await runScmExchange({
      method: 'CreateScm',
      requestor: own,
      timeoutMs: 100,
      sendCall: async (fd) => {
        held = await passFd(fd);
        return [];
      },
    }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ScmTimeout);
    expect(Date.now() - started).toBeLessThan(1000);
    if (held !== undefined) closeFd(held);
  });

  it('a credential the kernel will refuse fails before the call is sent, so no daemon waits for it', async () => {
    let called = false;
    const sendCall = (): Promise<unknown> => ((called = true), Promise.resolve([]));
    const noSuchPid = await runScmExchange({ method: 'MovePidScm', requestor: own, victim: { ...own, pid: 2147483647 }, timeoutMs: 100, sendCall }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((noSuchPid as { errno?: number }).errno).toBe(3); // ESRCH
    const badUid = await runScmExchange({ method: 'ChownScm', requestor: own, victim: { ...own, uid: 4294967295 }, timeoutMs: 100, sendCall }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((badUid as { errno?: number }).errno).toBe(22); // EINVAL: (uid_t)-1 is no uid
    expect(called).toBe(false);
  });

  it('an error reply to the D-Bus call ends the exchange at once', async () => {
    const refused = new Error('InvalidArgs');
    const started = Date.now();
    const err = await runScmExchange({ method: 'CreateScm', requestor: own, timeoutMs: 5000, sendCall: () => Promise.reject(refused) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBe(refused);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a client that never sends its credential: the conversation times out and closes its end', async () => {
    const [daemonEnd, clientEnd] = socketPair(true);
    setPassCred(daemonEnd, true);
    setPassCred(clientEnd, true);
    const kicks: Buffer[] = [];
    const client = openSocket(clientEnd, true, (d) => kicks.push(d), () => undefined);
    const started = Date.now();
    const error = await new Promise<unknown>((resolve) => {
      new ScmConversation(daemonEnd, admitScmSocket(daemonEnd), { ...quietRefusal, needsVictim: false, timeoutMs: 80, run: () => ({ datagrams: R.ok() }), done: resolve });
    });
    expect(error).toBeInstanceOf(CgmError);
    expect((error as CgmError).code).toBe('Timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
    expect(kicks).toEqual([Buffer.from('1')]);
    expect(client.write(Buffer.from('p'))).toBeLessThan(0); // the daemon's end is closed
    client.close();
  });
});

describe('cgproxy re-encodes upstream results for its own Scm clients', () => {
  it.each([
    ['CreateScm', [1], { kind: 'existed', existed: 1 }],
    ['RemoveScm', [-1], { kind: 'existed', existed: -1 }],
    ['ChownScm', [], { kind: 'status' }],
    ['GetPidCgroupAbsScm', ['/x/y'], { kind: 'string', value: '/x/y' }],
    ['GetTasksScm', [[own.pid]], { kind: 'tasks', pids: [own.pid] }],
    ['ListChildrenScm', [['p', 'q']], { kind: 'names', names: ['p', 'q'] }],
    ['ListKeysScm', [[['tasks', 0, 4294967295, 33188]]], { kind: 'keys', keys: [{ name: 'tasks', uid: 0, gid: 4294967295, mode: 33188 }] }],
  ] as const)('%s', async (method, values, expected) => {
    const encoded = encodeForScmClient(method, [...values] as unknown[]).map((d) => (d.cred ? { ...d, cred: own } : d));
    const needsVictim = SCM_VICTIM_METHODS.has(method);
    const daemon = fakeDaemon(() => ({ datagrams: encoded }), needsVictim);
    await expect(exchange(method, daemon, needsVictim ? own : undefined)).resolves.toEqual(expected);
  });
});

describe('invokeAsScm', () => {
  it('refuses a Chown that would leave an id unchanged (-1): a credential always names both', async () => {
    let called = false;
    const connection = { socketPath: '/x', call: () => ((called = true), Promise.resolve([])) } as unknown as PeerConnection;
    const err = await invokeAsScm(connection, METHODS_BY_NAME.get('Chown') as never, ['cpu', 'x', -1, 5], own, 100).then(() => undefined, (e: unknown) => e);
    expect((err as { code?: string }).code).toBe('InvalidArgs');
    expect(called).toBe(false);
  });
});
