// The error detail (api_version 11) behind an Scm failure result may arrive late on a loaded
// machine: the peer may be descheduled between its two writes, or our timers may run before
// our reads. Past 100 ms the client asks the peer's api_version and, from a peer that sends
// details, waits for it within the exchange's timeout; an original daemon (api < 11) is not
// waited for further; a successful call, or a detail right behind the failure, never asks. Real datagram
// socketpairs; the peer is written out here so that it can delay its second datagram.
import { describe, expect, it } from 'vitest';
import { openSocket, setPassCred, type Ucred } from '../../../addon';
import { passFd } from '../../helpers/pass-fd';
import * as R from '../../../daemon/scm/results';
import { runScmExchange, ScmFailure } from '../../../client/scm-call';

const own: Ucred = { pid: process.ppid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const DENIED = 'org.linuxcontainers.cgmanager.Error.AccessDenied';
/** well past the 100 ms the client used to wait */
const LATE_MS = 400;


interface Peer {
  /** what it sends once the requestor's credential arrived */
  result: Buffer;
  /** the error detail, and after how many ms (0: right behind the result; none: as an original daemon) */
  detail?: { data: Buffer; afterMs: number };
}

/** A ChmodScm peer: kick, read the requestor's credential, answer `result`, maybe the detail later, close. */
function peer(p: Peer): (fd: number) => Promise<unknown> {
  return async (fd) => {
    const mine = await passFd(fd);
    setPassCred(mine, true);
    let answered = false;
    const socket = openSocket(
      mine,
      true,
      () => {
        if (answered) return;
        answered = true;
        socket.write(p.result);
        if (!p.detail) return socket.close();
        const { data, afterMs } = p.detail;
        if (afterMs === 0) {
          // in the same turn, as our daemon writes it
          socket.write(data);
          return socket.close();
        }
        setTimeout(() => {
          socket.write(data);
          socket.close();
        }, afterMs);
      },
      () => undefined,
    );
    socket.write(Buffer.from('1'));
    return [];
  };
}

function chmod(sendCall: (fd: number) => Promise<unknown>, api: number | undefined, timeoutMs: number, asked: { n: number }): Promise<unknown> {
  return runScmExchange({
    method: 'ChmodScm',
    requestor: own,
    timeoutMs,
    sendCall,
    ...(api === undefined
      ? {}
      : {
          peerApiVersion: async () => {
            asked.n++;
            return api;
          },
        }),
  }).then(
    (v) => v,
    (e: unknown) => e,
  );
}

describe('the error detail behind an Scm failure', () => {
  it(`arrives ${LATE_MS} ms after the failure from an api 11 peer: the failure still carries its name`, async () => {
    const asked = { n: 0 };
    const detail = R.errorDetail(DENIED, 'no write access').data;
    const err = await chmod(peer({ result: Buffer.from('0'), detail: { data: detail, afterMs: LATE_MS } }), 11, 30_000, asked);
    expect(err).toBeInstanceOf(ScmFailure);
    expect(err).toMatchObject({ errorName: DENIED, message: 'no write access' });
    expect(asked.n).toBe(1);
  });

  it('from an original daemon (api 10, no detail): a bare failure, not a wait for the exchange timeout', async () => {
    const asked = { n: 0 };
    // A 10-minute exchange timeout: waiting for it would fail this test by vitest's own timeout.
    const err = await chmod(peer({ result: Buffer.from('0') }), 10, 600_000, asked);
    expect(err).toBeInstanceOf(ScmFailure);
    expect((err as ScmFailure).errorName).toBeUndefined();
    expect(asked.n).toBe(1);
  });

  it('an api 11 peer that sends no detail after all: a bare failure once the exchange times out', async () => {
    const asked = { n: 0 };
    const err = await chmod(peer({ result: Buffer.from('0') }), 11, 300, asked);
    expect(err).toBeInstanceOf(ScmFailure);
    expect((err as ScmFailure).errorName).toBeUndefined();
  });

  it('a detail already queued behind the failure, or a success, never asks the api_version', async () => {
    const asked = { n: 0 };
    const detail = R.errorDetail(DENIED, 'no').data;
    const err = await chmod(peer({ result: Buffer.from('0'), detail: { data: detail, afterMs: 0 } }), 11, 30_000, asked);
    expect(err).toMatchObject({ errorName: DENIED });
    const ok = await chmod(peer({ result: Buffer.from('1') }), 11, 30_000, asked);
    expect(ok).toEqual({ kind: 'status' });
    expect(asked.n).toBe(0);
  });
});
