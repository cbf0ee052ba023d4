// The real DBusServer on a unix socket in a temp dir, with stub handlers, driven by a
// raw client: standard interfaces, error names and texts, fds, robustness, logging.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeFd, listenUnix, socketKind, socketPair } from '../../../addon';
import { API_VERSION, INTERFACE_NAME, OBJECT_PATH } from '../../../daemon/dbus/interface';
import { DBusServer, type CallContext, type MethodHandler } from '../../../daemon/dbus/server';
import { decodeBody, decodeIntVariant, Flag, MessageType, type Message } from '../../../daemon/dbus/wire';
import { CgmError } from '../../../daemon/errors';
import { buildMessage, ByteWriter, callFields } from './raw-message';
import { isError, RawClient, within, type Outgoing } from './raw-client';

type LogLine = Record<string, unknown> & { level: string; msg: string };

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

interface TestServer {
  server: DBusServer;
  socketPath: string;
  logs: LogLine[];
  teardown(): Promise<void>;
}

const tmpDirs: string[] = [];

function startServer(handlers: ReadonlyMap<string, MethodHandler>, opts: { maxConnectionsPerUid?: number; maxMessage?: number } = {}): TestServer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-server-test-'));
  tmpDirs.push(dir);
  const socketPath = path.join(dir, 'sock');
  const listenFd = listenUnix(socketPath);
  const logs: LogLine[] = [];
  const log = pino(
    { level: 'debug', base: undefined, formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  );
  const server = new DBusServer({
    listenFd,
    handlers,
    log,
    maxMessage: opts.maxMessage ?? 64 * 1024,
    maxConnectionsPerUid: opts.maxConnectionsPerUid ?? 1000,
  });
  return {
    server,
    socketPath,
    logs,
    async teardown() {
      await server.stop(100);
      closeFd(listenFd);
    },
  };
}

afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const str = (m: Message): string => decodeBody(m, [])[0] as string;
const errorOf = (m: Message): { name: string | undefined; text: string } => {
  expect(isError(m), `expected an error, got ${JSON.stringify({ type: m.type, sig: m.signature })}`).toBe(true);
  return { name: m.errorName, text: str(m) };
};
const ours = (member: string, signature = '', body: unknown[] = [], extra: Partial<Outgoing> = {}): Outgoing => ({
  type: MessageType.MethodCall,
  path: OBJECT_PATH,
  interface: INTERFACE_NAME,
  member,
  signature,
  body,
  ...extra,
});
const standard = (iface: string, member: string, signature = '', body: unknown[] = [], objectPath = OBJECT_PATH): Outgoing => ({
  type: MessageType.MethodCall,
  path: objectPath,
  interface: iface,
  member,
  signature,
  body,
});

const PROPS = 'org.freedesktop.DBus.Properties';
const PEER = 'org.freedesktop.DBus.Peer';
const INTROSPECTABLE = 'org.freedesktop.DBus.Introspectable';

describe('DBusServer', () => {
  let t: TestServer;
  let client: RawClient;
  const fdKinds: Array<ReturnType<typeof socketKind>> = [];
  const takenFds: number[] = [];
  let afterPeerLeft: Deferred<void> | undefined;
  let enteredAfterPeerLeft: Deferred<void> | undefined;

  const handlers = new Map<string, MethodHandler>([
    ['Ping', () => []],
    ['GetValue', (_ctx, [controller, cgroup, key]) => [`${String(controller)}|${String(cgroup)}|${String(key)}`]],
    ['GetPidCgroup', (ctx: CallContext, [, pid]) => [`pid ${String(pid)} asked by uid ${ctx.peer.uid}`]],
    ['ListControllers', () => [['unified', 'cpu', 'memory']]],
    ['ListChildren', () => [['a', 'b']]],
    ['ListKeys', () => [[['memory.max', 0, 0, 0o644], ['cgroup.procs', 1000, 1000, 0o664]]]],
    ['GetTasks', () => [[1, 2, 3]]],
    ['Chown', (ctx, [controller, cgroup]) => {
      throw new CgmError('AccessDenied', `uid ${ctx.peer.uid} may not chown ${String(controller)}:${String(cgroup)}`);
    }],
    ['Remove', () => {
      throw new Error('secret internal detail');
    }],
    ['RemoveOnEmpty', () => {
      throw new TypeError("Cannot read properties of undefined (reading 'x')");
    }],
    ['GetTasksRecursive', () => ['not an array of ints']],
    ['GetPidCgroupAbs', async () => {
      await sleep(1);
      return [42]; // not a string: the reply cannot be encoded
    }],
    ['SetValue', async (_ctx, [controller, cgroup, key]) => {
      await sleep(1);
      throw new CgmError('FileNotFound', `no key ${String(key)} in ${String(controller)}:${String(cgroup)}`);
    }],
    ['MovePid', async () => {
      await sleep(30);
      return [];
    }],
    ['Prune', async () => {
      enteredAfterPeerLeft?.resolve();
      await afterPeerLeft?.promise;
      return [];
    }],
    ['GetPidCgroupScm', (_ctx, [, fd]) => {
      fdKinds.push(socketKind(fd as number));
      return [];
    }],
    ['CreateScm', (ctx, [, , fd]) => {
      takenFds.push(ctx.takeFd(fd as number));
      return [];
    }],
  ]);

  beforeAll(async () => {
    t = startServer(handlers);
    client = await RawClient.open(t.socketPath);
  });

  afterAll(async () => {
    client.close();
    await t.teardown();
  });

  describe('standard interfaces', () => {
    it('answers Hello with a unique name', async () => {
      const hello = { type: MessageType.MethodCall, path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'Hello', destination: 'org.freedesktop.DBus' } as const;
      const first = await client.call(hello);
      const other = await RawClient.open(t.socketPath);
      const second = await other.call(hello);
      other.close();
      expect(first.type).toBe(MessageType.MethodReturn);
      expect(str(first)).toMatch(/^:1\.\d+$/);
      expect(str(second)).toMatch(/^:1\.\d+$/);
      expect(str(second)).not.toBe(str(first));
    });

    it.each([OBJECT_PATH, '/', '/some/other/path'])('answers Peer.Ping on %s', async (objectPath) => {
      const r = await client.call(standard(PEER, 'Ping', '', [], objectPath));
      expect(r.type).toBe(MessageType.MethodReturn);
      expect(r.signature).toBe('');
    });

    it.each([OBJECT_PATH, '/'])('answers Peer.GetMachineId on %s', async (objectPath) => {
      const r = await client.call(standard(PEER, 'GetMachineId', '', [], objectPath));
      expect(str(r)).toMatch(/^[0-9a-f]{32}$/);
      const noIface = await client.call({ type: MessageType.MethodCall, path: objectPath, member: 'GetMachineId' });
      expect(str(noIface)).toBe(str(r));
    });

    it('refuses Peer methods with arguments, and unknown Peer methods', async () => {
      expect(errorOf(await client.call(standard(PEER, 'Ping', 'i', [1])))).toEqual({ name: 'org.freedesktop.DBus.Error.InvalidArgs', text: 'Invalid arguments to Ping method' });
      expect(errorOf(await client.call(standard(PEER, 'Pong'))).name).toBe('org.freedesktop.DBus.Error.UnknownMethod');
    });

    it('introspects the object', async () => {
      const xml = str(await client.call(standard(INTROSPECTABLE, 'Introspect')));
      expect(xml).toContain(`<node name="${OBJECT_PATH}">`);
      expect(xml).toContain('<method name="ListKeys">');
      expect(xml).toContain('<property name="api_version" type="i" access="read"/>');
      const noIface = str(await client.call({ type: MessageType.MethodCall, path: OBJECT_PATH, member: 'Introspect' }));
      expect(noIface).toBe(xml);
    });

    it.each<[string, string]>([
      ['/', 'org'],
      ['/org', 'linuxcontainers'],
      ['/org/linuxcontainers', 'cgmanager'],
    ])('introspects the parent node %s', async (objectPath, child) => {
      const xml = str(await client.call(standard(INTROSPECTABLE, 'Introspect', '', [], objectPath)));
      expect(xml).toContain(`<node name="${objectPath}">`);
      expect(xml).toContain(`<node name="${child}"/>`);
      expect(xml).not.toContain('<interface');
    });

    it('refuses Introspect with arguments', async () => {
      expect(errorOf(await client.call(standard(INTROSPECTABLE, 'Introspect', 's', ['x'])))).toEqual({ name: 'org.freedesktop.DBus.Error.InvalidArgs', text: 'Invalid arguments to Introspect method' });
    });

    it.each(['/org/linux', '/nope', `${OBJECT_PATH}/child`, '/org/linuxcontainers/cgmanager0'])('answers UnknownObject for %s', async (objectPath) => {
      const e = errorOf(await client.call({ type: MessageType.MethodCall, path: objectPath, interface: INTERFACE_NAME, member: 'GetValue', signature: 'sss', body: ['a', 'b', 'c'] }));
      expect(e.name).toBe('org.freedesktop.DBus.Error.UnknownObject');
      expect(e.text).toContain(objectPath);
      const intro = errorOf(await client.call(standard(INTROSPECTABLE, 'Introspect', '', [], objectPath)));
      expect(intro.name).toBe('org.freedesktop.DBus.Error.UnknownObject');
    });
  });

  describe('Properties', () => {
    it.each(['', INTERFACE_NAME])('Get(%j, api_version) is the int32 API_VERSION', async (iface) => {
      const r = await client.call(standard(PROPS, 'Get', 'ss', [iface, 'api_version']));
      expect(r.signature).toBe('v');
      expect(decodeIntVariant(r)).toBe(API_VERSION);
    });

    it.each<[string, string]>([
      [INTERFACE_NAME, 'nope'],
      ['', 'API_VERSION'],
      ['org.example.Other', 'api_version'],
      [PROPS, 'api_version'],
    ])('Get(%j, %j) is UnknownProperty', async (iface, prop) => {
      const e = errorOf(await client.call(standard(PROPS, 'Get', 'ss', [iface, prop])));
      expect(e.name).toBe('org.freedesktop.DBus.Error.UnknownProperty');
      expect(e.text).toBe(`No such property '${prop}' on interface '${iface}'`);
    });

    // a{sv} = { "api_version": <int32 API_VERSION> }, byte by byte.
    const allProps = new ByteWriter(true).u32(24).u32(0).string('api_version').signature('i').i32(API_VERSION).toBuffer();

    it.each(['', INTERFACE_NAME])('GetAll(%j) is {api_version: <int32 API_VERSION>}', async (iface) => {
      const r = await client.call(standard(PROPS, 'GetAll', 's', [iface]));
      expect(r.signature).toBe('a{sv}');
      expect(r.body.toString('hex')).toBe(allProps.toString('hex'));
    });

    it('GetAll of another interface is empty', async () => {
      const r = await client.call(standard(PROPS, 'GetAll', 's', ['org.example.Other']));
      expect(r.signature).toBe('a{sv}');
      expect(r.body.readUInt32LE(0)).toBe(0);
    });

    it.each<[string, string, unknown[]]>([
      ['Get', 's', ['']],
      ['Get', 'sss', ['', 'api_version', 'x']],
      ['GetAll', '', []],
      ['GetAll', 'ss', ['', '']],
      ['Set', 'ss', ['', 'api_version']],
    ])('%s with signature %j is InvalidArgs', async (member, signature, body) => {
      expect(errorOf(await client.call(standard(PROPS, member, signature, body)))).toEqual({ name: 'org.freedesktop.DBus.Error.InvalidArgs', text: `Invalid arguments to ${member} method` });
    });

    it('Set is PropertyReadOnly', async () => {
      const e = errorOf(await client.call(standard(PROPS, 'Set', 'ssv', [INTERFACE_NAME, 'api_version', ['i', 11]])));
      expect(e.name).toBe('org.freedesktop.DBus.Error.PropertyReadOnly');
    });

    it.each(['r', 'ar', 'a()', 'm', 'v'])('Set never decodes its variant (one typed %s)', async (code) => {
      // dbus-next loops allocating on such a variant; the server must not look inside it.
      const body = Buffer.concat([new ByteWriter(true).string(INTERFACE_NAME).string('api_version').toBuffer(), new ByteWriter(true).signature(code).u32(16).toBuffer(), Buffer.alloc(16)]);
      const serial = client.reserveSerial();
      client.writeRaw(buildMessage({ type: MessageType.MethodCall, serial, fields: callFields({ path: OBJECT_PATH, iface: PROPS, member: 'Set', signature: 'ssv' }), body }));
      const e = errorOf(await client.reply(serial));
      expect(e.name).toBe('org.freedesktop.DBus.Error.PropertyReadOnly');
      expect((await client.call(standard(PEER, 'Ping'))).type).toBe(MessageType.MethodReturn);
    });

    it('an unknown Properties method is UnknownMethod', async () => {
      expect(errorOf(await client.call(standard(PROPS, 'Delete', 'ss', ['', 'api_version']))).name).toBe('org.freedesktop.DBus.Error.UnknownMethod');
    });
  });

  describe('method dispatch', () => {
    it.each<[string, string, unknown[], string, unknown[]]>([
      ['Ping', 'i', [0], '', []],
      ['GetValue', 'sss', ['memory', 'lxc/c1', 'memory.max'], 's', ['memory|lxc/c1|memory.max']],
      ['GetPidCgroup', 'si', ['cpu', 1234], 's', [`pid 1234 asked by uid ${process.getuid!()}`]],
      ['ListControllers', '', [], 'as', [['unified', 'cpu', 'memory']]],
      ['ListChildren', 'ss', ['cpu', ''], 'as', [['a', 'b']]],
      ['ListKeys', 'ss', ['memory', 'a'], 'a(suuu)', [[['memory.max', 0, 0, 0o644], ['cgroup.procs', 1000, 1000, 0o664]]]],
      ['GetTasks', 'ss', ['memory', 'a'], 'ai', [[1, 2, 3]]],
    ])('%s(%s) answers with its out signature', async (member, signature, body, outSig, out) => {
      const r = await client.call(ours(member, signature, body));
      expect(r.type).toBe(MessageType.MethodReturn);
      expect(r.signature).toBe(outSig);
      expect(decodeBody(r, [])).toEqual(out);
    });

    it('dispatches a call without an interface field (libdbus semantics)', async () => {
      const r = await client.call(ours('GetValue', 'sss', ['cpu', 'x', 'cpu.shares'], { interface: undefined }));
      expect(str(r)).toBe('cpu|x|cpu.shares');
    });

    it.each<[string, string | undefined, string, unknown[], string]>([
      ['an unknown member', INTERFACE_NAME, 's', ['x'], `Method "Frobnicate" with signature "s" on interface "${INTERFACE_NAME}" doesn't exist\n`],
      ['an unknown member without signature', INTERFACE_NAME, '', [], `Method "Frobnicate" with signature "" on interface "${INTERFACE_NAME}" doesn't exist\n`],
      ['an unknown member without interface', undefined, 'ss', ['a', 'b'], 'Method "Frobnicate" with signature "ss" on interface "(null)" doesn\'t exist\n'],
    ])('%s is UnknownMethod with the reference text', async (_name, iface, signature, body, text) => {
      const e = errorOf(await client.call(ours('Frobnicate', signature, body, { interface: iface })));
      expect(e).toEqual({ name: 'org.freedesktop.DBus.Error.UnknownMethod', text });
    });

    it('a known member on another interface is UnknownMethod', async () => {
      const e = errorOf(await client.call(ours('GetValue', 'sss', ['a', 'b', 'c'], { interface: 'org.example.Other' })));
      expect(e).toEqual({ name: 'org.freedesktop.DBus.Error.UnknownMethod', text: 'Method "GetValue" with signature "sss" on interface "org.example.Other" doesn\'t exist\n' });
    });

    it('a method of the interface without a handler is UnknownMethod', async () => {
      expect(errorOf(await client.call(ours('Chmod', 'sssi', ['a', 'b', 'tasks', 0o644]))).name).toBe('org.freedesktop.DBus.Error.UnknownMethod');
    });

    it.each<[string, string, unknown[]]>([
      ['GetValue', 'ss', ['memory', 'a']],
      ['GetValue', 'ssss', ['memory', 'a', 'b', 'c']],
      ['GetValue', 'ssi', ['memory', 'a', 1]],
      ['Ping', '', []],
      ['Ping', 's', ['x']],
      ['ListControllers', 's', ['x']],
      ['GetPidCgroup', 'ss', ['memory', '1']],
    ])('%s with signature %j is InvalidArgs', async (member, signature, body) => {
      expect(errorOf(await client.call(ours(member, signature, body)))).toEqual({ name: 'org.freedesktop.DBus.Error.InvalidArgs', text: `Invalid arguments to ${member} method` });
    });

    it('a matching signature with a NUL inside a string is InvalidArgs naming the method', async () => {
      // dbus-next will not marshal a NUL, so the body is built by hand.
      const serial = client.reserveSerial();
      const body = new ByteWriter(true).string('memory').string('a\0b').string('memory.max').toBuffer();
      client.writeRaw(buildMessage({ type: MessageType.MethodCall, serial, fields: callFields({ path: OBJECT_PATH, iface: INTERFACE_NAME, member: 'GetValue', signature: 'sss' }), body }));
      const e = errorOf(await client.reply(serial));
      expect(e.name).toBe('org.freedesktop.DBus.Error.InvalidArgs');
      expect(e.text).toMatch(/^Invalid arguments to GetValue method: .*NUL/);
    });

    it('an Scm call whose h has no fd is InvalidArgs', async () => {
      const { bytes, serial } = client.encode(ours('GetPidCgroupScm', 'sh', ['memory', 0]));
      // Encoded without fds, so the message declares none.
      client.writeRaw(bytes);
      expect(errorOf(await client.reply(serial)).name).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    });

    it('a CgmError keeps its name and message', async () => {
      const e = errorOf(await client.call(ours('Chown', 'ssii', ['memory', 'lxc/c1', 1000, 1000])));
      expect(e).toEqual({ name: 'org.freedesktop.DBus.Error.AccessDenied', text: `uid ${process.getuid!()} may not chown memory:lxc/c1` });
    });

    it('an async handler rejecting with a CgmError', async () => {
      const e = errorOf(await client.call(ours('SetValue', 'ssss', ['memory', 'a', 'memory.max', '1G'])));
      expect(e).toEqual({ name: 'org.freedesktop.DBus.Error.FileNotFound', text: 'no key memory.max in memory:a' });
    });

    it.each<[string, string, unknown[]]>([
      ['Remove', 'ssi', ['memory', 'a', 1]], // throws an Error
      ['RemoveOnEmpty', 'ss', ['memory', 'a']], // throws a TypeError
      ['GetTasksRecursive', 'ss', ['memory', 'a']], // returns what its out-signature cannot encode
      ['GetPidCgroupAbs', 'si', ['memory', 1]], // the same, asynchronously (once an unhandled rejection)
    ])('%s: our fault is Failed, with no detail or stack, and the daemon keeps serving', async (member, sig, body) => {
      const e = errorOf(await client.call(ours(member, sig, body)));
      expect(e).toEqual({ name: 'org.freedesktop.DBus.Error.Failed', text: 'internal error (see the daemon log)' });
      expect((await client.call(ours('Ping', 'i', [0]))).type).toBe(MessageType.MethodReturn);
    });

    it('runs an async handler without blocking later calls on the same connection', async () => {
      const slow = client.send(ours('MovePid', 'ssi', ['memory', 'a', 1]));
      const fast = client.send(ours('GetValue', 'sss', ['a', 'b', 'c']));
      const fastReply = await client.reply(fast);
      const slowReply = await client.reply(slow);
      expect(slowReply.type).toBe(MessageType.MethodReturn);
      expect(client.received.indexOf(fastReply)).toBeLessThan(client.received.indexOf(slowReply));
    });

    it('sends nothing at all for NO_REPLY_EXPECTED calls, errors included', async () => {
      const noReply = { flags: Flag.NoReplyExpected };
      const serials = [
        client.send(ours('GetValue', 'sss', ['a', 'b', 'c'], noReply)),
        client.send(ours('MovePid', 'ssi', ['a', 'b', 1], noReply)),
        client.send(ours('Chown', 'ssii', ['a', 'b', 1, 1], noReply)),
        client.send(ours('Remove', 'ssi', ['a', 'b', 1], noReply)),
        client.send(ours('Frobnicate', '', [], noReply)),
        client.send(ours('GetValue', 's', ['wrong signature'], noReply)),
        client.send({ ...standard(PEER, 'Ping'), ...noReply }),
        client.send({ ...standard(PROPS, 'Get', 'ss', ['', 'api_version']), ...noReply }),
        client.send({ ...standard(INTROSPECTABLE, 'Introspect', '', [], '/nope'), ...noReply }),
      ];
      await sleep(60); // longer than MovePid's 30 ms
      await client.call(standard(PEER, 'Ping'));
      expect(client.received.filter((m) => m.replySerial !== undefined && serials.includes(m.replySerial))).toEqual([]);
    });

    it('ignores method returns, errors and signals sent to it', async () => {
      client.send({ type: MessageType.MethodReturn, replySerial: 1 });
      client.send({ type: MessageType.Error, replySerial: 1, errorName: 'org.x.E', signature: 's', body: ['x'] });
      client.send({ type: MessageType.Signal, path: '/a', interface: 'org.x', member: 'S' });
      const before = client.received.length;
      await client.call(standard(PEER, 'Ping'));
      expect(client.received.length).toBe(before + 1);
    });
  });

  describe('unix fds', () => {
    it('passes a received fd to the handler and closes it afterwards when not taken', async () => {
      const before = fdCount();
      const [mine, theirs] = socketPair(true);
      fdKinds.length = 0;
      const r = await client.call(ours('GetPidCgroupScm', 'sh', ['memory', 0], { fds: [theirs] }));
      expect(r.type).toBe(MessageType.MethodReturn);
      expect(fdKinds).toEqual([{ domain: 'unix', type: 'dgram' }]);
      closeFd(mine);
      closeFd(theirs);
      await until(() => fdCount() === before, 'the fd count to return to its baseline');
    });

    it('leaves a taken fd open for the handler', async () => {
      const before = fdCount();
      const [mine, theirs] = socketPair(true);
      takenFds.length = 0;
      await client.call(ours('CreateScm', 'ssh', ['memory', 'a', 0], { fds: [theirs] }));
      closeFd(mine);
      closeFd(theirs);
      expect(takenFds).toHaveLength(1);
      expect(fdCount()).toBe(before + 1);
      expect(socketKind(takenFds[0]!).type).toBe('dgram');
      closeFd(takenFds[0]!);
      expect(fdCount()).toBe(before);
    });

    it.each<[string, Outgoing]>([
      ['a refused call', ours('GetValue', 'ss', ['wrong', 'signature'])],
      ['an unknown method', ours('Frobnicate', 'h', [0])],
      ['a standard interface', standard(PEER, 'Ping')],
      ['an unknown object', standard(PEER, 'Ping', '', [], '/x')],
      ['a failing handler', ours('Remove', 'ssi', ['a', 'b', 1])],
    ])('closes the fds of %s', async (_name, m) => {
      const before = fdCount();
      const [mine, theirs] = socketPair(true);
      // Attach the fd to whatever call: the message declares it, the server must close it.
      await client.reply(client.send({ ...m, fds: [theirs] }));
      closeFd(mine);
      closeFd(theirs);
      await until(() => fdCount() === before, 'the fd count to return to its baseline');
    });

    it('closes fds that no message claimed when the connection ends', async () => {
      const base = fdCount();
      const c = await RawClient.open(t.socketPath);
      const [mine, theirs] = socketPair(true);
      // The message declares no fd, so the one sent with it stays unclaimed.
      c.writeRaw(c.encode(standard(PEER, 'Ping')).bytes, [theirs]);
      await c.waitForMessages(1);
      // Client socket, server socket, our pair, and the unclaimed copy the server holds.
      expect(fdCount()).toBe(base + 5);
      closeFd(mine);
      closeFd(theirs);
      c.close();
      await until(() => fdCount() === base, 'the server to close its socket and the unclaimed fd');
    });
  });

  describe('connections', () => {
    it('closes only the connection that sends a malformed frame', async () => {
      const bad = await RawClient.open(t.socketPath);
      const count = t.server.connectionCount;
      bad.writeRaw(Buffer.from('XXXXXXXXXXXXXXXXXXXXXXXX'));
      await within(bad.closed, 2000, 'the bad connection to be closed');
      await until(() => t.server.connectionCount === count - 1, 'the server to drop it');
      expect(t.logs.some((l) => l.msg === 'connection closed' && /protocol error: bad endianness/.test(String(l.reason)))).toBe(true);
      expect((await client.call(standard(PEER, 'Ping'))).type).toBe(MessageType.MethodReturn);
    });

    it.each<[string, Buffer]>([
      ['an oversize message', (() => { const b = Buffer.alloc(16); b.write('l\x01\x00\x01', 'latin1'); b.writeUInt32LE(1 << 20, 4); b.writeUInt32LE(1, 8); return b; })()],
      ['serial 0', buildMessage({ type: MessageType.MethodCall, serial: 0, fields: callFields({ path: '/', member: 'Ping' }) })],
      ['a declared fd that never came', buildMessage({ type: MessageType.MethodCall, serial: 1, fields: callFields({ path: '/', iface: PEER, member: 'Ping', unixFds: 1 }) })],
      ['a header field of the wrong type', buildMessage({ type: MessageType.MethodCall, serial: 1, fields: [{ code: 1, sig: 's', value: '/' }, { code: 3, sig: 's', value: 'Ping' }] })],
    ])('closes a connection that sends %s', async (_name, frame) => {
      const bad = await RawClient.open(t.socketPath);
      bad.writeRaw(frame);
      await within(bad.closed, 2000, 'the connection to be closed');
    });

    it.each<[string, string]>([
      ['BEGIN before authentication', '\0BEGIN\r\n'],
      ['no credentials byte', 'AUTH EXTERNAL 30\r\n'],
      ['a flood of commands', `\0${'AUTH NOPE\r\n'.repeat(40)}`],
      ['a handshake line that never ends', `\0AUTH EXTERNAL ${'3'.repeat(20_000)}`],
    ])('closes on %s', async (_name, text) => {
      const c = new RawClient(t.socketPath);
      c.writeRaw(text);
      await within(c.closed, 2000, 'the connection to be closed');
    });

    it('answers BEGIN before authentication with an error line before closing', async () => {
      const c = new RawClient(t.socketPath);
      c.writeRaw('\0AUTH\r\nBEGIN\r\n');
      expect(await c.nextLine()).toBe('REJECTED EXTERNAL ANONYMOUS');
      expect(await c.nextLine()).toBe('ERROR "not authenticated"');
      await within(c.closed, 2000, 'close');
    });

    it('serves a busctl-style pipelined handshake and first messages in one write', async () => {
      const c = new RawClient(t.socketPath);
      const hello = c.encode({ type: MessageType.MethodCall, path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'Hello', destination: 'org.freedesktop.DBus' });
      const get = c.encode(ours('GetValue', 'sss', ['cpu', 'x', 'cpu.max']));
      const [mine, theirs] = socketPair(true);
      const scm = c.encode(ours('GetPidCgroupScm', 'sh', ['memory', 0], { fds: [theirs] }));
      const lines = [`AUTH EXTERNAL ${Buffer.from('0').toString('hex')}`, 'NEGOTIATE_UNIX_FD', 'BEGIN'];
      lines.forEach((l) => c.expectReplyTo(l));
      fdKinds.length = 0;
      // The fd rides on the first byte of the write, which is the NUL credentials byte.
      c.writeRaw(Buffer.concat([Buffer.from(`\0${lines.map((l) => `${l}\r\n`).join('')}`, 'latin1'), hello.bytes, get.bytes, scm.bytes]), [theirs]);
      expect(await c.nextLine()).toMatch(/^OK [0-9a-f]{32}$/);
      expect(await c.nextLine()).toBe('AGREE_UNIX_FD');
      expect(str(await c.reply(hello.serial))).toMatch(/^:1\.\d+$/);
      expect(str(await c.reply(get.serial))).toBe('cpu|x|cpu.max');
      expect((await c.reply(scm.serial)).type).toBe(MessageType.MethodReturn);
      expect(fdKinds).toEqual([{ domain: 'unix', type: 'dgram' }]);
      c.close();
      closeFd(mine);
      closeFd(theirs);
    });

    it('works without unix-fd negotiation and with ANONYMOUS', async () => {
      const c = new RawClient(t.socketPath);
      c.writeRaw('\0');
      c.command('AUTH ANONYMOUS');
      expect(await c.nextLine()).toMatch(/^OK /);
      c.command('BEGIN');
      expect(str(await c.call(ours('GetValue', 'sss', ['a', 'b', 'c'])))).toBe('a|b|c');
      c.close();
    });

    it('serves many connections at once', async () => {
      // Only the shared client once the server has seen earlier tests' clients leave.
      await until(() => t.server.connectionCount === 1, 'earlier connections to be dropped');
      const before = t.server.connectionCount;
      const clients = await Promise.all(Array.from({ length: 64 }, () => RawClient.open(t.socketPath)));
      expect(t.server.connectionCount).toBe(before + 64);
      const replies = await Promise.all(clients.map((c, i) => c.call(ours('GetValue', 'sss', ['cpu', `c${i}`, 'k']))));
      expect(replies.map(str)).toEqual(clients.map((_, i) => `cpu|c${i}|k`));
      clients.forEach((c) => c.close());
      await until(() => t.server.connectionCount === before, 'every connection to be dropped');
    });

    it('writing a reply after the peer left is a no-op', async () => {
      afterPeerLeft = deferred();
      enteredAfterPeerLeft = deferred();
      const c = await RawClient.open(t.socketPath);
      const count = t.server.connectionCount;
      c.send(ours('Prune', 'ss', ['memory', 'a']));
      await within(enteredAfterPeerLeft.promise, 2000, 'the handler to start');
      c.close();
      await until(() => t.server.connectionCount === count - 1, 'the server to notice the peer left');
      const logged = t.logs.length;
      afterPeerLeft.resolve();
      await until(() => t.logs.slice(logged).some((l) => l.msg === 'request completed' && l.method === 'Prune'), 'the request to complete');
      expect(t.logs.slice(logged).filter((l) => l.level === 'error')).toEqual([]);
      expect((await client.call(standard(PEER, 'Ping'))).type).toBe(MessageType.MethodReturn);
    });
  });

  describe('request log', () => {
    const linesFor = (method: string): LogLine[] => t.logs.filter((l) => l.method === method);

    it('writes one "request completed" line per request, with method, controller, cgroup and requestor', async () => {
      const before = linesFor('GetValue').length;
      await client.call(ours('GetValue', 'sss', ['memory', 'lxc/c9', 'memory.max']));
      const lines = linesFor('GetValue').slice(before);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 'info',
        msg: 'request completed',
        method: 'GetValue',
        controller: 'memory',
        cgroup: 'lxc/c9',
        key: 'memory.max',
        outcome: 'ok',
        requestor: { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() },
      });
      expect(typeof lines[0]!.durationMs).toBe('number');
      expect(lines[0]).not.toHaveProperty('proxy');
    });

    it('logs a refused call at info with its outcome', async () => {
      const before = linesFor('GetValue').length;
      await client.call(ours('GetValue', 'ss', ['memory', 'x']));
      expect(linesFor('GetValue').slice(before)).toMatchObject([{ level: 'info', msg: 'request completed', outcome: 'InvalidArgs' }]);
    });

    it('logs an AccessDenied at warn as "request denied" with the reason', async () => {
      const before = linesFor('Chown').length;
      await client.call(ours('Chown', 'ssii', ['cpu', 'lxc/c2', 1, 1]));
      expect(linesFor('Chown').slice(before)).toMatchObject([
        { level: 'warn', msg: 'request denied', method: 'Chown', controller: 'cpu', cgroup: 'lxc/c2', outcome: 'AccessDenied', reason: `uid ${process.getuid!()} may not chown cpu:lxc/c2` },
      ]);
    });

    it('logs our own fault at error with the stack', async () => {
      const before = linesFor('Remove').length;
      await client.call(ours('Remove', 'ssi', ['cpu', 'x', 0]));
      const lines = linesFor('Remove').slice(before);
      expect(lines).toMatchObject([{ level: 'error', msg: 'request failed', outcome: 'Failed' }]);
      const err = lines[0]!.err as { message: string; stack: string };
      expect(err.message).toBe('secret internal detail');
      expect(err.stack).toMatch(/\n\s+at /);
    });

    it('logs an async handler once, when it finishes', async () => {
      const before = linesFor('MovePid').length;
      await client.call(ours('MovePid', 'ssi', ['cpu', 'x', 42]));
      const lines = linesFor('MovePid').slice(before);
      expect(lines).toMatchObject([{ msg: 'request completed', outcome: 'ok' }]);
      expect(lines[0]!.durationMs as number).toBeGreaterThanOrEqual(20);
    });

    it('does not log the standard interfaces as requests', async () => {
      const before = t.logs.filter((l) => l.msg === 'request completed').length;
      await client.call(standard(PEER, 'Ping'));
      await client.call(standard(PROPS, 'Get', 'ss', ['', 'api_version']));
      expect(t.logs.filter((l) => l.msg === 'request completed').length).toBe(before);
    });
  });
});

describe('DBusServer limits and shutdown', () => {
  it('answers calls beyond the per-uid connection limit with LimitsExceeded and closes that connection', async () => {
    const t = startServer(new Map([['Ping', () => []]]), { maxConnectionsPerUid: 2 });
    try {
      const a = await RawClient.open(t.socketPath);
      const b = await RawClient.open(t.socketPath);
      const c = await RawClient.open(t.socketPath);
      const e = errorOf(await c.call(ours('Ping', 'i', [0])));
      expect(e).toEqual({ name: 'org.freedesktop.DBus.Error.LimitsExceeded', text: `too many connections from uid ${process.getuid!()} (limit 2)` });
      await within(c.closed, 2000, 'the connection over the limit to be closed');
      expect((await a.call(ours('Ping', 'i', [0]))).type).toBe(MessageType.MethodReturn);
      expect((await b.call(ours('Ping', 'i', [0]))).type).toBe(MessageType.MethodReturn);
      a.close();
      await until(() => t.server.connectionCount === 1, 'the server to drop a closed connection');
      const d = await RawClient.open(t.socketPath);
      expect((await d.call(ours('Ping', 'i', [0]))).type).toBe(MessageType.MethodReturn);
      b.close();
      d.close();
    } finally {
      await t.teardown();
    }
  });

  it('refuses a message over maxMessage by closing the connection', async () => {
    const t = startServer(new Map([['GetValue', () => ['x']]]), { maxMessage: 4096 });
    try {
      const c = await RawClient.open(t.socketPath);
      expect(str(await c.call(ours('GetValue', 'sss', ['a', 'b', 'x'.repeat(3000)])))).toBe('x');
      c.send(ours('GetValue', 'sss', ['a', 'b', 'x'.repeat(5000)]));
      await within(c.closed, 2000, 'the connection to be closed');
    } finally {
      await t.teardown();
    }
  });

  it('stop() waits for an in-flight async handler, then closes the connections', async () => {
    const gate = deferred();
    const entered = deferred();
    const t = startServer(new Map<string, MethodHandler>([
      ['Create', async () => {
        entered.resolve();
        await gate.promise;
        return [1];
      }],
    ]));
    const c = await RawClient.open(t.socketPath);
    const idle = await RawClient.open(t.socketPath);
    const serial = c.send(ours('Create', 'ss', ['memory', 'a']));
    await within(entered.promise, 2000, 'the handler to start');
    let stopped = false;
    const stopping = t.server.stop(10_000).then(() => (stopped = true));
    await sleep(50);
    expect(stopped).toBe(false);
    expect(c.isClosed).toBe(false);
    gate.resolve();
    const reply = await c.reply(serial);
    expect(decodeBody(reply, [])).toEqual([1]);
    await within(stopping, 2000, 'stop()');
    await within(c.closed, 2000, 'the busy connection to be closed');
    await within(idle.closed, 2000, 'the idle connection to be closed');
    expect(t.server.connectionCount).toBe(0);
    await t.teardown();
  });

  it('stop() gives up on a handler that never finishes after the grace period', async () => {
    const t = startServer(new Map<string, MethodHandler>([['Create', () => new Promise<unknown[]>(() => undefined)]]));
    const c = await RawClient.open(t.socketPath);
    c.send(ours('Create', 'ss', ['memory', 'a']));
    await sleep(20);
    const t0 = Date.now();
    await t.server.stop(100);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    await within(c.closed, 2000, 'the connection to be closed');
    await t.teardown();
  });
});
