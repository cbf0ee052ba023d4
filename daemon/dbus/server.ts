// The peer-to-peer D-Bus server: accepts connections, dispatches method calls to a
// table of handlers (the daemon's requests or the proxy's forwarders), answers the
// standard interfaces, maps errors to D-Bus names and writes the request log line.
// A handler's exception never escapes: it becomes a named error reply.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { listen, closeFd, peerCred, type Ucred } from '../../addon';
import { CgmError, ERROR_CATALOG } from '../errors';
import type { Logger } from '../logger';
import { logRequest, type RequestFields } from '../request-log';
import { ServerConnection, type ConnectionEvents, type ConnectionLimits } from './connection';
import { FairShare } from './fair-share';
import { API_VERSION, INTERFACE_NAME, METHODS_BY_NAME, OBJECT_PATH, introspectionXml, type MethodSpec } from './interface';
import { BodyError, decodeBody, MessageType, type Message } from './wire';

export interface CallContext {
  readonly connection: ServerConnection;
  /** the connection's SO_PEERCRED (p, and r for plain calls) */
  readonly peer: Ucred;
  readonly spec: MethodSpec;
  readonly log: Logger;
  /** the request log fields so far; handlers may add to them (e.g. a resolved requestor) */
  readonly fields: RequestFields;
  /** takes ownership of the fd passed as the `h` argument; untaken fds are closed after the call */
  takeFd(fd: number): number;
  /**
   * For handlers that finish after their D-Bus reply (the Scm methods): the transport
   * will not log the request; call the returned function exactly once when done.
   */
  defer(): (error?: unknown) => void;
}

export type MethodHandler = (ctx: CallContext, args: unknown[]) => unknown[] | Promise<unknown[]>;

export interface ServerOptions {
  listenFd: number;
  handlers: ReadonlyMap<string, MethodHandler>;
  log: Logger;
  /** largest incoming message in bytes */
  maxMessage: number;
  /** simultaneous connections one uid may hold; beyond it calls get LimitsExceeded */
  maxConnectionsPerUid: number;
  /** how long a new connection has to finish the SASL handshake (default 5000) */
  handshakeTimeoutMs?: number;
  /** reply bytes held for a peer that does not read them before its calls are no longer read (default 128 KiB) */
  maxQueuedOutput?: number;
  /** CPU time one uid's messages may take per turn of the event loop (default 2 ms) */
  turnBudgetMs?: number;
  apiVersion?: number;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_QUEUED_OUTPUT = 128 * 1024;
const DEFAULT_TURN_BUDGET_MS = 2;
/**
 * Connections over a uid's limit that are still accepted, each only to be told
 * LimitsExceeded on its first call (or closed at the handshake deadline); beyond these
 * a uid's new connections are closed at once.
 */
const OVER_LIMIT_GRACE = 8;
/**
 * Bytes received and not yet handled that all connections of one uid may hold (at least
 * four largest messages): legitimate clients hold a few small calls at most.
 */
const MIN_INPUT_PER_UID = 16 * 1024 * 1024;
/** How often a repeated transport warning (refused connections, accept paused) is logged. */
const WARN_EVERY_MS = 1000;

const PEER_INTERFACE = 'org.freedesktop.DBus.Peer';
const INTROSPECTABLE = 'org.freedesktop.DBus.Introspectable';
const PROPERTIES = 'org.freedesktop.DBus.Properties';
const BUS_INTERFACE = 'org.freedesktop.DBus';

function unknownMethodText(m: Message): string {
  return `Method "${m.member}" with signature "${m.signature}" on interface "${m.interface ?? '(null)'}" doesn't exist\n`;
}

function readMachineId(): string {
  for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = fs.readFileSync(file, 'utf8').trim();
      if (/^[0-9a-f]{32}$/.test(id)) return id;
    } catch {
      // try the next one
    }
  }
  return randomBytes(16).toString('hex');
}

export class DBusServer {
  private readonly guid = randomBytes(16).toString('hex');
  private readonly listener: { close(): void };
  private readonly connections = new Set<ServerConnection>();
  private readonly perUid = new Map<number, number>();
  private readonly inputPerUid = new Map<number, number>();
  private readonly maxInputPerUid: number;
  private readonly overLimit = new WeakSet<ServerConnection>();
  private nextId = 1;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private machineId: string | undefined;
  private stopping = false;
  private readonly xml: string;
  private readonly fairShare: FairShare;
  private readonly warned = new Map<string, { at: number; suppressed: number }>();
  private readonly connectionLimits: ConnectionLimits;
  private readonly connectionEvents: ConnectionEvents = {
    onMessage: (c, m, fds) => this.onMessage(c, m, fds),
    onClose: (c, reason) => this.onClose(c, reason),
    mayProcess: (c) => this.fairShare.mayRun(c.peer.uid),
    waitTurn: (_c, resume) => this.fairShare.waitTurn(resume),
    charge: (c, ns) => this.fairShare.charge(c.peer.uid, ns),
    inputHeld: (c, delta) => this.inputHeld(c, delta),
  };

  constructor(private readonly options: ServerOptions) {
    this.xml = introspectionXml();
    this.fairShare = new FairShare((options.turnBudgetMs ?? DEFAULT_TURN_BUDGET_MS) * 1e6);
    this.maxInputPerUid = Math.max(MIN_INPUT_PER_UID, 4 * options.maxMessage);
    this.connectionLimits = {
      maxMessage: options.maxMessage,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      maxQueuedOutput: options.maxQueuedOutput ?? DEFAULT_MAX_QUEUED_OUTPUT,
    };
    this.listener = listen(
      options.listenFd,
      (fd) => this.accept(fd),
      (errno) => this.warnThrottled('accept', { errno: -errno, code: errno === 24 ? 'EMFILE' : errno === 23 ? 'ENFILE' : undefined }, 'accept failed, retrying shortly'),
    );
  }

  /** Logs a repeated warning at most once per WARN_EVERY_MS per key, with how many were left out. */
  private warnThrottled(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const w = this.warned.get(key);
    if (w && now - w.at < WARN_EVERY_MS) {
      w.suppressed++;
      return;
    }
    this.options.log.warn({ ...fields, suppressed: w?.suppressed ?? 0 }, msg);
    this.warned.set(key, { at: now, suppressed: 0 });
    if (this.warned.size > 10_000) this.warned.clear(); // uids come and go; never grow without bound
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(fd: number): void {
    if (this.stopping) {
      closeFd(fd);
      return;
    }
    let conn: ServerConnection;
    try {
      // Read before anything else: if the peer is already gone this throws and the fd is dropped.
      const peer = peerCred(fd);
      const count = (this.perUid.get(peer.uid) ?? 0) + 1;
      const limit = this.options.maxConnectionsPerUid;
      if (count > limit) this.warnThrottled(`uid ${peer.uid}`, { peer, limit }, 'too many connections from one uid');
      // Over the limit: a few connections stay to be told why on their first call; the rest
      // go at once, before they cost more than an accept (a flood of them is cheap to refuse).
      if (count > limit + OVER_LIMIT_GRACE) {
        closeFd(fd);
        return;
      }
      conn = new ServerConnection(this.nextId++, fd, peer, this.guid, this.connectionLimits, this.connectionEvents);
      this.perUid.set(peer.uid, count);
      if (count > limit) {
        this.overLimit.add(conn);
        conn.keepDeadlinePastHandshake();
      }
    } catch (err) {
      closeFd(fd);
      this.options.log.debug({ err }, 'connection dropped at accept');
      return;
    }
    this.connections.add(conn);
    this.options.log.debug({ conn: conn.id, peer: conn.peer }, 'connection accepted');
  }

  private inputHeld(conn: ServerConnection, delta: number): boolean {
    const uid = conn.peer.uid;
    const total = (this.inputPerUid.get(uid) ?? 0) + delta;
    if (total <= 0) this.inputPerUid.delete(uid);
    else this.inputPerUid.set(uid, total);
    if (delta <= 0 || total <= this.maxInputPerUid) return true;
    this.warnThrottled(`input ${uid}`, { peer: conn.peer, limit: this.maxInputPerUid }, 'too much buffered input from one uid');
    return false;
  }

  private onClose(conn: ServerConnection, reason: string): void {
    this.connections.delete(conn);
    const count = (this.perUid.get(conn.peer.uid) ?? 1) - 1;
    if (count <= 0) this.perUid.delete(conn.peer.uid);
    else this.perUid.set(conn.peer.uid, count);
    this.options.log.debug({ conn: conn.id, reason }, 'connection closed');
  }

  private onMessage(conn: ServerConnection, m: Message, fds: number[]): void {
    if (m.type !== MessageType.MethodCall) {
      fds.forEach(closeFd); // replies and signals are not expected by a server
      return;
    }
    try {
      this.dispatch(conn, m, fds);
    } catch (err) {
      // Only reachable through a bug: never let it take the daemon down.
      fds.forEach(closeFd);
      this.options.log.error({ err, member: m.member }, 'dispatch failed');
      conn.replyError(m, ERROR_CATALOG.Failed.name, 'internal error (see the daemon log)');
    }
  }

  private dispatch(conn: ServerConnection, m: Message, fds: number[]): void {
    const iface = m.interface;
    if (iface === BUS_INTERFACE && m.member === 'Hello') {
      fds.forEach(closeFd);
      // gdbus and busctl insist on saying Hello even to a peer; give them a name.
      return conn.reply(m, 's', [`:1.${conn.id}`]);
    }
    if (iface === PEER_INTERFACE || (iface === undefined && (m.member === 'GetMachineId'))) {
      fds.forEach(closeFd);
      return this.answerPeer(conn, m);
    }
    if (m.path !== OBJECT_PATH) {
      fds.forEach(closeFd);
      if (iface === INTROSPECTABLE && m.member === 'Introspect' && OBJECT_PATH.startsWith(m.path === '/' ? '/' : m.path + '/')) {
        return conn.reply(m, 's', [this.parentNodeXml(m.path ?? '/')]);
      }
      return conn.replyError(m, ERROR_CATALOG.UnknownObject.name, `No such object path '${m.path}'`);
    }
    if (iface === INTROSPECTABLE || iface === PROPERTIES) {
      fds.forEach(closeFd);
      return this.answerStandard(conn, m);
    }
    const spec = m.member !== undefined ? METHODS_BY_NAME.get(m.member) : undefined;
    const handler = spec ? this.options.handlers.get(spec.name) : undefined;
    if (!spec || !handler || (iface !== undefined && iface !== spec.interface)) {
      fds.forEach(closeFd);
      if (iface === undefined && m.member === 'Introspect') return this.answerStandard(conn, m);
      return conn.replyError(m, ERROR_CATALOG.UnknownMethod.name, unknownMethodText(m));
    }
    this.call(conn, m, fds, spec, handler);
  }

  private call(conn: ServerConnection, m: Message, fds: number[], spec: MethodSpec, handler: MethodHandler): void {
    const started = process.hrtime.bigint();
    // The requestor of a plain call is the peer, bound once in the connection's child
    // logger; an Scm handler sets fields.requestor (and proxy) and logs with the base one.
    const fields: RequestFields = { method: spec.name };
    const log = this.options.log;
    const lineLog = (): Logger => (fields.requestor ? log : conn.requestLogger(log));
    let args: unknown[] | undefined;
    if (m.signature === spec.inSignature) {
      try {
        args = decodeBody(m, fds);
      } catch (err) {
        fds.forEach(closeFd);
        const text = err instanceof BodyError ? `Invalid arguments to ${spec.name} method: ${err.message}` : `Invalid arguments to ${spec.name} method`;
        logRequest(lineLog(), fields, started, new CgmError('InvalidArgs', text));
        return conn.replyError(m, ERROR_CATALOG.InvalidArgs.name, text);
      }
    }
    if (!args) {
      fds.forEach(closeFd);
      const error = new CgmError('InvalidArgs', `Invalid arguments to ${spec.name} method`);
      logRequest(lineLog(), fields, started, error);
      return conn.replyError(m, error.dbusName, error.message);
    }
    for (let i = 0; i < spec.in.length; i++) {
      const name = (spec.in[i] as readonly [string, string])[0];
      if (name === 'controller' || name === 'controllers' || name === 'cgroup' || name === 'key') fields[name] = args[i] as string;
    }
    if (this.overLimit.has(conn)) {
      fds.forEach(closeFd);
      const error = new CgmError('LimitsExceeded', `too many connections from uid ${conn.peer.uid} (limit ${this.options.maxConnectionsPerUid})`);
      logRequest(lineLog(), fields, started, error);
      conn.replyError(m, error.dbusName, error.message);
      conn.close('connection limit');
      return;
    }

    const owned = fds.length > 0 ? new Set(fds) : undefined; // most calls carry no fd

    let deferred = false;
    const ctx: CallContext = {
      connection: conn,
      peer: conn.peer,
      spec,
      log,
      fields,
      takeFd: (fd) => {
        owned?.delete(fd);
        return fd;
      },
      defer: () => {
        deferred = true;
        this.begin(conn);
        let done = false;
        return (error?: unknown) => {
          if (done) return;
          done = true;
          logRequest(lineLog(), fields, started, error);
          this.end(conn);
        };
      },
    };
    const finish = (result: unknown[] | undefined, error: unknown): void => {
      owned?.forEach(closeFd);
      owned?.clear();
      if (error === undefined) {
        try {
          conn.reply(m, spec.outSignature, result ?? []);
          if (!deferred) logRequest(lineLog(), fields, started);
          return;
        } catch (err) {
          // The handler returned values that do not fit its out-signature: our bug.
          error = err;
        }
      }
      const e = error instanceof CgmError ? error : undefined;
      if (!deferred) logRequest(lineLog(), fields, started, error);
      conn.replyError(m, e ? e.dbusName : ERROR_CATALOG.Failed.name, e ? e.message : 'internal error (see the daemon log)');
    };
    let outcome: unknown[] | Promise<unknown[]>;
    try {
      outcome = handler(ctx, args);
    } catch (err) {
      return finish(undefined, err);
    }
    if (outcome instanceof Promise) {
      this.begin(conn);
      outcome
        .then(
          (r) => finish(r, undefined),
          (e) => finish(undefined, e ?? new Error('rejected')),
        )
        .catch((err: unknown) => log.error({ err, method: spec.name }, 'reply failed'))
        .finally(() => this.end(conn));
    } else {
      finish(outcome, undefined);
    }
  }

  private begin(conn: ServerConnection): void {
    this.inFlight++;
    conn.inFlight++;
  }

  private end(conn: ServerConnection): void {
    this.inFlight--;
    conn.inFlight--;
    if (this.inFlight === 0) this.idleWaiters.splice(0).forEach((w) => w());
  }

  private answerPeer(conn: ServerConnection, m: Message): void {
    if (m.member === 'Ping' && m.signature === '') return conn.reply(m, '', []);
    if (m.member === 'GetMachineId' && m.signature === '') {
      this.machineId ??= readMachineId();
      return conn.reply(m, 's', [this.machineId]);
    }
    if (m.member === 'Ping' || m.member === 'GetMachineId') {
      return conn.replyError(m, ERROR_CATALOG.InvalidArgs.name, `Invalid arguments to ${m.member} method`);
    }
    return conn.replyError(m, ERROR_CATALOG.UnknownMethod.name, unknownMethodText(m));
  }

  private answerStandard(conn: ServerConnection, m: Message): void {
    const bad = (): void => conn.replyError(m, ERROR_CATALOG.InvalidArgs.name, `Invalid arguments to ${m.member} method`);
    let args: unknown[] = [];
    // Set's variant is never decoded: we refuse it whatever it holds.
    if (m.signature === 'ss' || m.signature === 's') {
      try {
        args = decodeBody(m, []);
      } catch {
        return bad();
      }
    }
    const ours = (iface: unknown): boolean => iface === '' || iface === INTERFACE_NAME;
    const version = this.options.apiVersion ?? API_VERSION;
    switch (m.member) {
      case 'Introspect':
        if (m.signature !== '') return bad();
        return conn.reply(m, 's', [this.xml]);
      case 'Get':
        if (m.interface !== PROPERTIES) break;
        if (m.signature !== 'ss') return bad();
        if (ours(args[0]) && args[1] === 'api_version') return conn.reply(m, 'v', [['i', version]]);
        return conn.replyError(m, ERROR_CATALOG.UnknownProperty.name, `No such property '${String(args[1])}' on interface '${String(args[0])}'`);
      case 'GetAll':
        if (m.interface !== PROPERTIES) break;
        if (m.signature !== 's') return bad();
        if (ours(args[0])) return conn.reply(m, 'a{sv}', [[['api_version', ['i', version]]]]);
        return conn.reply(m, 'a{sv}', [[]]);
      case 'Set':
        if (m.interface !== PROPERTIES) break;
        if (m.signature !== 'ssv') return bad();
        return conn.replyError(m, ERROR_CATALOG.PropertyReadOnly.name, 'api_version is read-only');
    }
    return conn.replyError(m, ERROR_CATALOG.UnknownMethod.name, unknownMethodText(m));
  }

  // Lets `gdbus introspect --recurse` walk from '/' down to our object.
  private parentNodeXml(path: string): string {
    const below = OBJECT_PATH.slice(path === '/' ? 1 : path.length + 1);
    const child = below.split('/')[0] ?? '';
    return [
      '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"',
      '"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
      `<node name="${path}">`,
      `  <node name="${child}"/>`,
      '</node>',
      '',
    ].join('\n');
  }

  /** Stops accepting, waits up to `graceMs` for requests in flight, then closes every connection. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.listener.close();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const conn of [...this.connections]) conn.close('daemon stopping');
  }
}
