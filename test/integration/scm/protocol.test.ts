// The …Scm methods against the real daemon, byte for byte (reference §6, SPEC §2.4): with a
// raw datagram socketpair peer (the immediate empty D-Bus reply, the '1' kicks, the
// requestor and victim credentials, every result encoding of §6.4 and our error detail),
// with the client library forced onto the Scm route, and the robustness rules: a silent
// peer times out without holding up anyone else, a passed fd that is not a datagram
// socket is refused at once, and no fd is left behind in the daemon.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketPair, type Ucred } from '../../../addon';
import { connect, isCgmanagerError, type CgmanagerClient } from '../../../client';
import {
  availableV1Controllers, daemonErrors, okValues, RawClient, skipReason, startTestDaemon, titled, waitFor, type LongLived, type TestDaemon,
} from '../../helpers';
import { callScm, int32Bytes, openFdCount, ScmPeer, uint32Bytes, type ReceivedDatagram } from '../../helpers/scm-peer';

const SCM_TIMEOUT_MS = 500;
const ERR = 'org.freedesktop.DBus.Error.';
const reason = skipReason({ cgroup2: true, named: 1 });

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
const textDatagram = (s: string): Buffer => Buffer.concat([bytes(s), Buffer.from([0])]);
const signed = (n: number): number => (n > 0x7fffffff ? n - 0x100000000 : n);

/** Parses our error-detail datagram: 'cgmanager.error\n<name>\n<message>'. */
function detailOf(d: ReceivedDatagram | undefined): { name: string; message: string } {
  const text = d?.data.toString('utf8') ?? '';
  const [tag, name, ...rest] = text.split('\n');
  expect(tag).toBe('cgmanager.error');
  return { name: name ?? '', message: rest.join('\n') };
}

describe.skipIf(reason !== undefined)(titled('Scm methods against the daemon', reason), () => {
  let env: TestDaemon;
  let raw: RawClient;
  let N: string;
  let anchor: LongLived; // the requestor of the raw exchanges: a task in the base cgroup
  let victim: LongLived;
  let user: LongLived; // a uid 1000 task in the base cgroup
  let r: Ucred;

  beforeAll(async () => {
    env = await startTestDaemon({
      named: 1,
      cgroup2: true,
      controllers: availableV1Controllers(['cpu']),
      daemonArgs: (layout) => ['--scm-timeout', String(SCM_TIMEOUT_MS), '--allow-autoremove-premounted', layout.named[0] as string],
    });
    N = env.named[0] as string;
    [anchor, victim, user] = await Promise.all([env.spawn(['sleep', '600']), env.spawn(['sleep', '600']), env.spawn(['sleep', '600'], { uid: 1000 })]);
    r = { pid: anchor.pid, uid: 0, gid: 0 };
    raw = await RawClient.connect(env.socket);
  });

  afterAll(async () => {
    raw?.close();
    await env?.stop();
  });

  interface Exchange {
    peer: ScmPeer;
    /** the next `n` datagrams of the result */
    read(n: number): Promise<ReceivedDatagram[]>;
    /** after the result: nothing more queued, and the daemon has closed its end */
    assertFinished(): Promise<void>;
  }

  /** Sends the call, checks the immediate empty reply and the kick, sends r (and after a second kick v). */
  async function exchange(method: string, signature: string, args: readonly unknown[], requestor: Ucred, v?: Ucred): Promise<Exchange> {
    const peer = ScmPeer.create();
    const reply = await callScm(raw, method, signature, args, peer.theirs);
    peer.closeTheirs();
    // The D-Bus reply comes before any credential was sent: an empty method return.
    expect(reply.ok, String(reply.values[0])).toBe(true);
    expect(reply.message.signature ?? '').toBe('');
    expect((await peer.next()).data).toEqual(bytes('1'));
    expect(peer.send(requestor)).toBeGreaterThanOrEqual(0);
    if (v) {
      expect((await peer.next()).data, 'second kick').toEqual(bytes('1'));
      expect(peer.send(v)).toBeGreaterThanOrEqual(0);
    }
    return {
      peer,
      read: async (n) => {
        const out: ReceivedDatagram[] = [];
        for (let i = 0; i < n; i++) out.push(await peer.next());
        return out;
      },
      assertFinished: async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(peer.unread, 'datagrams after the result').toBe(0);
        expect(peer.send(), 'the daemon closed its end').toBeLessThan(0);
        peer.close();
      },
    };
  }

  /** A one-datagram result followed by nothing. */
  async function single(method: string, signature: string, args: readonly unknown[], v?: Ucred, requestor = r): Promise<Buffer> {
    const x = await exchange(method, signature, args, requestor, v);
    const [d] = await x.read(1);
    await x.assertFinished();
    return (d as ReceivedDatagram).data;
  }

  /** A failure result and its error detail. */
  async function failure(method: string, signature: string, args: readonly unknown[], v?: Ucred, requestor = r): Promise<{ result: Buffer; name: string; message: string }> {
    const x = await exchange(method, signature, args, requestor, v);
    const [d, detail] = await x.read(2);
    await x.assertFinished();
    return { result: (d as ReceivedDatagram).data, ...detailOf(detail) };
  }

  const vOf = (pid: number): Ucred => ({ pid, uid: 0, gid: 0 });
  const owner = (file: string): [number, number] => {
    const st = fs.statSync(file);
    return [st.uid, st.gid];
  };

  describe('raw peer: each method, the exact bytes', () => {
    it('CreateScm: 1 when made, 2 when it existed; the cgroup belongs to the requestor', async () => {
      expect(await single('CreateScm', 'ssh', [N, 'a'])).toEqual(bytes('1'));
      expect(fs.statSync(env.fsPath(N, 'a')).isDirectory()).toBe(true);
      expect(await single('CreateScm', 'ssh', [N, 'a'])).toEqual(bytes('2'));
      expect(await single('CreateScm', 'ssh', ['all', 'a/b'])).toEqual(bytes('1'));
      for (const h of env.labels) expect(fs.existsSync(env.fsPath(h, 'a/b')), h).toBe(true);
    });

    it('ChmodScm: 1', async () => {
      expect(await single('ChmodScm', 'sssih', [N, 'a', '', 0o750])).toEqual(bytes('1'));
      expect(fs.statSync(env.fsPath(N, 'a')).mode & 0o7777).toBe(0o750);
    });

    it('ChownScm: the new owner is the second credential', async () => {
      expect(await single('ChownScm', 'ssh', [N, 'a/b'], { pid: anchor.pid, uid: 1000, gid: 1001 })).toEqual(bytes('1'));
      expect(owner(env.fsPath(N, 'a/b'))).toEqual([1000, 1001]);
      expect(owner(env.fsPath(N, 'a/b', 'tasks'))).toEqual([1000, 1001]);
      expect(owner(env.fsPath(N, 'a/b', 'cgroup.procs'))).toEqual([1000, 1001]);
      expect(owner(env.fsPath(N, 'a/b', 'notify_on_release'))).toEqual([0, 0]);
    });

    it('MovePidScm and MovePidAbsScm: the victim is the second credential', async () => {
      expect(await single('MovePidScm', 'ssh', [N, 'a'], vOf(victim.pid))).toEqual(bytes('1'));
      expect(env.cgroupOf(victim.pid, N)).toBe(env.cgPath(N, 'a'));
      // Abs: from p's cgroup; p is this test process, at the hierarchy root.
      expect(await single('MovePidAbsScm', 'ssh', [N, env.cgPath(N, 'a/b')], vOf(victim.pid))).toEqual(bytes('1'));
      expect(env.cgroupOf(victim.pid, N)).toBe(env.cgPath(N, 'a/b'));
    });

    it('GetPidCgroupScm and GetPidCgroupAbsScm: the string and one NUL', async () => {
      expect(await single('GetPidCgroupScm', 'sh', [N], vOf(victim.pid))).toEqual(textDatagram('a/b'));
      expect(await single('GetPidCgroupScm', 'sh', [N], vOf(anchor.pid))).toEqual(textDatagram('/'));
      expect(await single('GetPidCgroupAbsScm', 'sh', [N], vOf(victim.pid))).toEqual(textDatagram(env.cgPath(N, 'a/b')));
    });

    it('GetValueScm and SetValueScm', async () => {
      expect(await single('GetValueScm', 'sssh', [N, 'a', 'notify_on_release'])).toEqual(textDatagram('0'));
      expect(await single('SetValueScm', 'ssssh', [N, 'a', 'cgroup.clone_children', '1'])).toEqual(bytes('1'));
      expect(fs.readFileSync(env.fsPath(N, 'a', 'cgroup.clone_children'), 'utf8')).toBe('1\n');
    });

    it('GetTasksScm and GetTasksRecursiveScm: an int32 count, then one pid credential each', async () => {
      let x = await exchange('GetTasksScm', 'ssh', [N, 'a/b'], r);
      const [count, pid] = await x.read(2);
      await x.assertFinished();
      expect(count?.data).toEqual(int32Bytes(1));
      expect(pid?.data).toEqual(bytes('p'));
      expect(pid?.cred).toEqual({ pid: victim.pid, uid: 0, gid: 0 });

      x = await exchange('GetTasksRecursiveScm', 'ssh', [N, ''], r);
      const [n, ...pids] = await x.read(4);
      await x.assertFinished();
      expect(n?.data).toEqual(int32Bytes(3));
      expect(pids.map((d) => d.cred?.pid)).toEqual([anchor.pid, victim.pid, user.pid].sort((a, b) => a - b));
    });

    it('ListChildrenScm: count, length, then the names each NUL-terminated', async () => {
      const x = await exchange('ListChildrenScm', 'ssh', [N, 'a'], r);
      const d = await x.read(3);
      await x.assertFinished();
      expect(d.map((g) => g.data)).toEqual([int32Bytes(1), uint32Bytes(2), textDatagram('b')]);
      // An empty cgroup: the count 0 alone.
      expect(await single('ListChildrenScm', 'ssh', [N, 'a/b'])).toEqual(int32Bytes(0));
    });

    it('ListKeysScm: count, length, then name/uid/gid/mode lines, ids signed', async () => {
      const x = await exchange('ListKeysScm', 'ssh', [N, 'a/b'], r);
      const [count, length, payload] = await x.read(3);
      await x.assertFinished();
      const dir = env.fsPath(N, 'a/b');
      const files = fs.readdirSync(dir).filter((f) => fs.statSync(`${dir}/${f}`).isFile());
      expect(count?.data).toEqual(int32Bytes(files.length));
      expect(length?.data).toEqual(uint32Bytes(payload?.data.length ?? -1));
      const text = payload?.data.toString('utf8') ?? '';
      expect(text.endsWith('\n')).toBe(true);
      const lines = text.slice(0, -1).split('\n');
      expect(lines.length).toBe(files.length * 4);
      const rows = new Map<string, string[]>();
      for (let i = 0; i < lines.length; i += 4) rows.set(lines[i] as string, lines.slice(i + 1, i + 4));
      for (const f of files) {
        const st = fs.statSync(`${dir}/${f}`);
        expect(rows.get(f), f).toEqual([String(st.uid), String(st.gid), String(signed(st.mode))]);
      }
    });

    it('RemoveOnEmptyScm, PruneScm: 1', async () => {
      expect(await single('RemoveOnEmptyScm', 'ssh', [N, 'a/b'])).toEqual(bytes('1'));
      expect(fs.readFileSync(env.fsPath(N, 'a/b', 'notify_on_release'), 'utf8')).toBe('1\n');
      okValues(await env.dbusSend('Create', 'ss', [N, 'p/q']), env);
      expect(await single('PruneScm', 'ssh', [N, 'p'])).toEqual(bytes('1'));
      expect(fs.existsSync(env.fsPath(N, 'p'))).toBe(false);
    });

    it('RemoveScm: 2 when it existed, 1 when it did not', async () => {
      okValues(await env.dbusSend('Create', 'ss', [N, 'gone']), env);
      expect(await single('RemoveScm', 'ssih', [N, 'gone', 1])).toEqual(bytes('2'));
      expect(fs.existsSync(env.fsPath(N, 'gone'))).toBe(false);
      expect(await single('RemoveScm', 'ssih', [N, 'gone', 1])).toEqual(bytes('1'));
    });

    it('failures: the reference encoding, then the error detail datagram (api_version 11)', async () => {
      let f = await failure('CreateScm', 'ssh', [N, '../x']);
      expect(f.result).toEqual(bytes('0'));
      expect(f.name).toBe(`${ERR}InvalidArgs`);
      expect(f.message).toMatch(/\.\./);
      f = await failure('GetValueScm', 'sssh', [N, 'a', 'no.such.key']);
      expect(f.result).toEqual(Buffer.alloc(0));
      expect(f.name).toBe(`${ERR}FileNotFound`);
      f = await failure('GetPidCgroupScm', 'sh', [N], vOf(process.pid)); // this process sits above the anchor
      expect(f.result).toEqual(Buffer.alloc(0));
      expect(f.name).toBe(`${ERR}AccessDenied`);
      for (const m of ['GetTasksScm', 'ListChildrenScm', 'ListKeysScm']) {
        f = await failure(m, 'ssh', [N, 'missing']);
        expect(f.result, m).toEqual(int32Bytes(-1));
        expect(f.name, m).toBe(`${ERR}FileNotFound`);
      }
      f = await failure('RemoveScm', 'ssih', [N, 'a', 1]); // the victim is still in a/b
      expect(f.result).toEqual(bytes('0'));
      expect(f.name).toBe('org.linuxcontainers.cgmanager.Error.Busy');
    });

    it('the daemon acts for the requestor credential, not for the connection', async () => {
      // The connection is host root's; the requestor claims uid 1000 (the kernel lets root claim it).
      const u: Ucred = { pid: user.pid, uid: 1000, gid: 1000 };
      let f = await failure('CreateScm', 'ssh', [N, 'x'], undefined, u);
      expect(f.result).toEqual(bytes('0'));
      expect(f.name).toBe(`${ERR}AccessDenied`);
      f = await failure('ChownScm', 'ssh', [N, 'a'], { pid: user.pid, uid: 1000, gid: 1000 }, u);
      expect(f.name).toBe(`${ERR}AccessDenied`);
      expect(fs.existsSync(env.fsPath(N, 'x'))).toBe(false);
      expect(owner(env.fsPath(N, 'a'))).toEqual([0, 0]);
    });
  });

  describe('robustness', () => {
    it('a regular file or a stream socket as the fd: InvalidArgs at once', async () => {
      const file = fs.openSync('/dev/null', 'r');
      const [s1, s2] = socketPair(false);
      try {
        for (const fd of [file, s1]) {
          const started = Date.now();
          const reply = await callScm(raw, 'CreateScm', 'ssh', [N, 'never'], fd);
          expect(reply.ok).toBe(false);
          expect(reply.errorName).toBe(`${ERR}InvalidArgs`);
          expect(String(reply.values[0])).toMatch(/datagram unix socket/);
          expect(Date.now() - started).toBeLessThan(SCM_TIMEOUT_MS);
        }
      } finally {
        fs.closeSync(file);
        for (const fd of [s1, s2]) fs.closeSync(fd);
      }
      expect(fs.existsSync(env.fsPath(N, 'never'))).toBe(false);
    });

    it('a silent peer times out after --scm-timeout while other requests are served', async () => {
      const silent = ScmPeer.create();
      const started = Date.now();
      const reply = await callScm(raw, 'CreateScm', 'ssh', [N, 'silent'], silent.theirs);
      silent.closeTheirs();
      expect(reply.ok).toBe(true);
      expect((await silent.next()).data).toEqual(bytes('1'));
      // Meanwhile: a plain call on another connection and a whole Scm exchange on this one.
      const other = await RawClient.connect(env.socket);
      try {
        const ping = await other.call('Ping', 'i', [0]);
        expect(ping.ok).toBe(true);
        expect(await single('GetValueScm', 'sssh', [N, 'a', 'cgroup.clone_children'])).toEqual(textDatagram('1'));
        expect(Date.now() - started, 'served while the silent peer was pending').toBeLessThan(SCM_TIMEOUT_MS);
      } finally {
        other.close();
      }
      // The daemon gives up (the request is logged as a Timeout) and closes its end.
      // (Sending anything to find out would be taken as the credential.)
      const logged = (): Record<string, unknown> | undefined => env.logLines().find((l) => l.method === 'CreateScm' && l.cgroup === 'silent');
      expect(await waitFor(() => logged() !== undefined, 3000, 20)).toBe(true);
      expect(logged()?.outcome).toBe('Timeout');
      expect(logged()?.durationMs as number).toBeGreaterThanOrEqual(SCM_TIMEOUT_MS - 5);
      expect(logged()?.durationMs as number).toBeLessThan(SCM_TIMEOUT_MS + 500);
      expect(silent.send(), 'the daemon closed its end').toBeLessThan(0);
      expect(fs.existsSync(env.fsPath(N, 'silent'))).toBe(false);
      silent.close();
    });

    it('a peer silent after the requestor credential times out too (victim phase)', async () => {
      const x = await exchange('MovePidScm', 'ssh', [N, 'a'], r);
      expect((await x.peer.next()).data).toEqual(bytes('1')); // the second kick, never answered
      const logged = (): Record<string, unknown> | undefined => env.logLines().find((l) => l.method === 'MovePidScm' && l.outcome === 'Timeout');
      expect(await waitFor(() => logged() !== undefined, 3000, 20)).toBe(true);
      expect(logged()?.reason).toMatch(/victim/);
      expect(x.peer.send(), 'the daemon closed its end').toBeLessThan(0);
      x.peer.close();
      expect(env.cgroupOf(victim.pid, N)).toBe(env.cgPath(N, 'a/b'));
    });

    it('leaves no fd behind after successes, failures, timeouts, bad fds and vanished peers', async () => {
      const pid = env.daemonPid;
      raw.close();
      // Baseline once the connection above is gone.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const baseline = openFdCount(pid);
      raw = await RawClient.connect(env.socket);
      const client = await connect({ socket: env.socket, route: 'scm' });
      try {
        const work: Array<Promise<unknown>> = [];
        for (let i = 0; i < 5; i++) {
          work.push(client.getValue(N, `${env.baseName}/a`, 'notify_on_release'));
          work.push(client.create(N, `${env.baseName}/../x`).catch(() => undefined));
          work.push(client.getTasks(N, `${env.baseName}/a/b`));
        }
        // Silent peers, peers that leave at once, and fds that are no datagram sockets.
        const silent = [ScmPeer.create(), ScmPeer.create(), ScmPeer.create()];
        for (const s of silent) work.push(callScm(raw, 'ListKeysScm', 'ssh', [N, 'a'], s.theirs).then(() => s.closeTheirs()));
        const gone = [ScmPeer.create(), ScmPeer.create()];
        for (const g of gone) {
          work.push(callScm(raw, 'GetTasksScm', 'ssh', [N, 'a'], g.theirs).then(() => g.close()));
        }
        const file = fs.openSync('/dev/null', 'r');
        work.push(callScm(raw, 'CreateScm', 'ssh', [N, 'y'], file));
        await Promise.all(work);
        fs.closeSync(file);
        await new Promise((resolve) => setTimeout(resolve, SCM_TIMEOUT_MS + 200));
        silent.forEach((s) => s.close());
      } finally {
        await client.close();
        raw.close();
      }
      const back = await waitFor(() => openFdCount(pid) <= baseline, 3000, 20);
      expect(back, `daemon fds: ${openFdCount(pid)}, before: ${baseline}`).toBe(true);
      raw = await RawClient.connect(env.socket);
    });
  });

  describe('the client library on the Scm route', () => {
    let client: CgmanagerClient;
    let B: string;
    const cg = (rel: string): string => `${B}/${rel}`;

    beforeAll(async () => {
      client = await connect({ socket: env.socket, route: 'scm' });
      B = env.baseName;
    });

    afterAll(async () => {
      await client?.close();
    });

    it('uses the Scm route when asked', () => {
      expect(client.route).toBe('scm');
    });

    it('every method that has an Scm variant gives the plain method\'s answer', async () => {
      const mover = await env.spawn(['sleep', '600']);
      try {
        await expect(client.create('all', cg('lib'))).resolves.toBe(false);
        await expect(client.create(N, cg('lib'))).resolves.toBe(true);
        await client.chmod(N, cg('lib'), '', 0o755);
        await client.create(N, cg('lib/kid'));
        await client.chown(N, cg('lib/kid'), 1000, 1000);
        expect(owner(env.fsPath(N, 'lib/kid'))).toEqual([1000, 1000]);
        await client.movePid(N, cg('lib'), mover.pid);
        expect(env.cgroupOf(mover.pid, N)).toBe(env.cgPath(N, 'lib'));
        await expect(client.getPidCgroup(N, mover.pid)).resolves.toBe(cg('lib'));
        await client.movePidAbs(N, env.cgPath(N, 'lib/kid'), mover.pid);
        await expect(client.getPidCgroupAbs(N, mover.pid)).resolves.toBe(env.cgPath(N, 'lib/kid'));
        await client.setValue(N, cg('lib'), 'cgroup.clone_children', '1');
        await expect(client.getValue(N, cg('lib'), 'cgroup.clone_children')).resolves.toBe('1');
        await expect(client.getTasks(N, cg('lib/kid'))).resolves.toEqual([mover.pid]);
        await expect(client.getTasksRecursive(N, cg('lib'))).resolves.toEqual([mover.pid]);
        await expect(client.listChildren(N, cg('lib'))).resolves.toEqual(['kid']);
        const keys = await client.listKeys(N, cg('lib/kid'));
        expect(keys.find((k) => k.name === 'tasks')).toMatchObject({ uid: 1000, gid: 1000 });
        expect(keys.find((k) => k.name === 'notify_on_release')).toMatchObject({ uid: 0, gid: 0, mode: 0o100644 });
        await client.removeOnEmpty(N, cg('lib/kid'));
        await client.create(N, cg('lib/empty/deeper'));
        await client.prune(N, cg('lib/empty'));
        expect(fs.existsSync(env.fsPath(N, 'lib/empty'))).toBe(false);
        await client.movePidAbs(N, env.cgPath(N), mover.pid);
        await expect(client.remove('all', cg('lib'), true)).resolves.toBe(true);
        await expect(client.remove('all', cg('lib'), true)).resolves.toBe(false);
        // Methods without an Scm variant go out plain.
        await client.ping();
        expect((await client.listControllers()).length).toBe(env.labels.length);
      } finally {
        await mover.stop();
      }
    });

    it('the daemon\'s named errors come back through the error detail', async () => {
      const codes: Array<[Promise<unknown>, string]> = [
        [client.create(N, cg('../x')), 'InvalidArgs'],
        [client.getValue(N, cg('a'), 'no.such.key'), 'FileNotFound'],
        [client.listChildren(N, cg('missing')), 'FileNotFound'],
        [client.remove(N, cg('a'), true), 'Busy'],
        [client.create('nosuch', cg('x')), 'NoSuchController'],
      ];
      for (const [promise, code] of codes) {
        const err = await promise.then(() => undefined, (e: unknown) => e);
        expect(isCgmanagerError(err), String(err)).toBe(true);
        expect((err as { code: string }).code).toBe(code);
      }
      // A pid this process cannot name: the kernel refuses it at our end.
      const err = await client.movePid(N, cg('a'), 2147483647).then(() => undefined, (e: unknown) => e);
      expect((err as { code: string }).code).toBe('UnixProcessIdUnknown');
    });
  });

  it('the daemon logged no fault of its own', () => {
    expect(daemonErrors(env)).toBe('');
  });
});
