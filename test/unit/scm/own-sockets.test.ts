// The registry of our own Scm socket addresses, and the conversation's refusal of a
// datagram from one of them even when it carries somebody else's pid (a GetTasks result
// names each task's pid with uid 0).
import { describe, expect, it } from 'vitest';
import { socketAddresses, socketPair, setPassCred, openSocket, closeFd, type Ucred } from '../../../addon';
import { OwnSocketRegistry, ownScmSockets } from '../../../daemon/scm/own-sockets';
import { admitScmSocket, ScmConversation } from '../../../daemon/scm/conversation';
import { CgmError } from '../../../daemon/errors';
import * as R from '../../../daemon/scm/results';

const addr = (s: string): Buffer => Buffer.from(`\0${s}`, 'latin1');

describe('OwnSocketRegistry', () => {
  it('knows an address while its socket is open, and unnamed senders never', () => {
    const reg = new OwnSocketRegistry();
    const a = reg.register(addr('a'));
    expect(reg.isOwn(addr('a'))).toBe(true);
    expect(reg.isOwn(addr('b'))).toBe(false);
    expect(reg.isOwn(undefined)).toBe(false);
    expect(reg.isOwn(Buffer.alloc(0))).toBe(false);
    a.release();
    expect(reg.isOwn(addr('a'))).toBe(false);
    expect(reg.size).toBe(0);
  });

  it('remembers a closed address while a socket that was open before it closed is still open', () => {
    const reg = new OwnSocketRegistry();
    const s = reg.register(addr('s'));
    const t = reg.register(addr('t'));
    t.release(); // t may have written into s's queue before closing
    expect(reg.isOwn(addr('t'))).toBe(true);
    const later = reg.register(addr('u')); // opened after t closed: drained on arrival
    s.release();
    expect(reg.isOwn(addr('t'))).toBe(false);
    expect(reg.isOwn(addr('s')), 's closed while u was open').toBe(true);
    expect(reg.isOwn(addr('u'))).toBe(true);
    later.release();
    expect(reg.isOwn(addr('s'))).toBe(false);
    expect(reg.size).toBe(0);
  });

  it('counts two sockets with the same name (a path reused after unlink) separately', () => {
    const reg = new OwnSocketRegistry();
    const one = reg.register(Buffer.from('/tmp/x'));
    const two = reg.register(Buffer.from('/tmp/x'));
    one.release();
    expect(reg.isOwn(Buffer.from('/tmp/x'))).toBe(true);
    two.release();
    expect(reg.isOwn(Buffer.from('/tmp/x'))).toBe(false);
  });

  it('release is idempotent', () => {
    const reg = new OwnSocketRegistry();
    const a = reg.register(addr('a'));
    a.release();
    a.release();
    expect(reg.size).toBe(0);
  });
});

describe('admitScmSocket', () => {
  it('names an unnamed socket and refuses the other end of a pair it already holds', () => {
    const [a, b] = socketPair(true);
    expect(socketAddresses(a, false).local).toBeUndefined();
    const own = admitScmSocket(a);
    const { local } = socketAddresses(a, false);
    expect(local?.[0]).toBe(0); // an abstract name
    expect(() => admitScmSocket(b)).toThrow(expect.objectContaining({ code: 'ReflectedCredentials' }));
    own.release();
    closeFd(a);
    closeFd(b);
  });
});

describe('a conversation refuses datagrams sent from our own sockets', () => {
  it('even one carrying another pid with uid 0, as a GetTasks result does', async () => {
    // s: the conversation under attack, admitted while its peer t was nobody's; t then
    // becomes one of ours (as when an attacker reconnects two sockets the daemon holds).
    const [s, t] = socketPair(true);
    setPassCred(s, true);
    setPassCred(t, true);
    const sOwn = admitScmSocket(s);
    const { local } = socketAddresses(t, true);
    const tOwn = ownScmSockets.register(local as Buffer);
    const refused: Array<Ucred | undefined> = [];
    const ended = new Promise<unknown>((resolve) => {
      new ScmConversation(s, sOwn, {
        needsVictim: false,
        timeoutMs: 2000,
        failure: R.failed,
        refused: (cred) => refused.push(cred),
        run: () => {
          throw new Error('must not run');
        },
        done: resolve,
      });
    });
    // What a GetTasks result written on t looks like: a task's pid (our parent's), uid 0.
    const writer = openSocket(t, true, () => undefined, () => undefined);
    const task: Ucred = { pid: process.ppid, uid: 0, gid: 0 };
    expect(writer.write(Buffer.from('p'), undefined, task)).toBeGreaterThanOrEqual(0);
    const error = await ended;
    expect(error).toBeInstanceOf(CgmError);
    expect((error as CgmError).code).toBe('ReflectedCredentials');
    expect(refused).toEqual([task]);
    writer.close();
    tOwn.release();
  });
});
