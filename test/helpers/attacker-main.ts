// The hostile suite's attacker: one long-lived process, started as the uid (or inside the
// container) under attack, that reads one JSON request per line on stdin and answers one JSON
// line per request on stdout. It makes plain calls and Scm exchanges on one connection (its
// strings may hold NUL bytes), Scm exchanges with forged credentials sent by hand, and direct
// file operations as itself, so a test can interleave attacks with snapshots taken as root.
// Run: node attacker-main.js SOCKET
import * as fs from 'node:fs';
import { closeFd, openSocket, setPassCred, socketPair, type NativeSocket, type Ucred } from '../../addon';
import { SCM_RESULT_KINDS, type ScmValue } from '../../client/scm-call';
import { credentialsFrom, scmArgsFrom, scmFormOfPlain } from '../../daemon/scm/shapes';
import { parseErrorDetail } from '../../daemon/scm/results';
import { METHODS_BY_NAME } from '../../daemon/dbus/interface';
import { encodeWithRawStrings, methodCall, RawClient } from './raw-client';

export type AttackRequest =
  | { op: 'call'; method: string; args: unknown[]; timeoutMs?: number }
  /**
   * the Scm variant of plain `method` called with the plain method's `args`: a pid argument
   * becomes the victim credential, Chown's uid and gid the second credential (claims the
   * kernel checks), the rest travel in the D-Bus call; `requestor` overrides our own
   */
  | { op: 'scm'; method: string; args: unknown[]; requestor?: Ucred; timeoutMs?: number }
  /**
   * an Scm exchange by hand with forged credentials: every credential is sent over the
   * real channel whatever the kernel says, and every datagram that comes back is reported
   */
  | { op: 'forge'; method: string; args: unknown[]; creds: Ucred[]; waitMs: number }
  /** write(2) a file directly as this process */
  | { op: 'write'; path: string; value: string }
  /** chmod(2)/chown(2) a file directly as this process */
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'chown'; path: string; uid: number; gid: number }
  /** swap two directories' names through a third for `ms` milliseconds (or `times` times); reports how many swaps */
  | { op: 'swap'; a: string; b: string; tmp: string; ms: number; times?: number };

export interface AttackReply {
  id: number;
  ok: boolean;
  /** the D-Bus error name (plain calls), or the api-11 error detail's name (Scm failures) */
  errorName?: string;
  message?: string;
  values?: unknown[];
  /** Scm: the exchange failed with a failure result (as opposed to a D-Bus error or timeout) */
  scmFailure?: boolean;
  scmTimeout?: boolean;
  scmValue?: ScmValue;
  /** errno name of a refused direct operation or credential */
  code?: string;
  /** forge: what each sendmsg of a credential returned (0 or -errno), and the datagrams seen */
  sendResults?: number[];
  datagrams?: string[];
  swaps?: number;
}

const ERRNO_NAMES: Readonly<Record<number, string>> = { 1: 'EPERM', 3: 'ESRCH', 13: 'EACCES', 22: 'EINVAL' };

function signatureOf(method: string): string {
  const spec = METHODS_BY_NAME.get(method);
  if (!spec) throw new Error(`unknown method ${method}`);
  return spec.inSignature;
}

async function plainCall(client: RawClient, method: string, args: unknown[], timeoutMs: number | undefined): Promise<Omit<AttackReply, 'id'>> {
  const reply = await client.call(method, signatureOf(method), args, timeoutMs === undefined ? {} : { timeoutMs });
  if (reply.ok) return { ok: true, values: reply.values };
  return { ok: false, errorName: reply.errorName, message: String(reply.values[0] ?? '') };
}

function sendScmCall(client: RawClient, method: string, args: unknown[], fd: number, timeoutMs: number): Promise<void> {
  const serial = client.nextSerial();
  const frame = encodeWithRawStrings({ ...methodCall(method, signatureOf(method), [...args, 0]), fds: [fd] }, serial);
  return client.sendFrame(frame, serial, timeoutMs, [fd]).then((reply) => {
    if (!reply.ok) throw Object.assign(new Error(String(reply.values[0] ?? reply.errorName)), { dbusName: reply.errorName });
  });
}

/** The Scm call's D-Bus arguments and the credentials after the requestor's, for plain `method`(args) (the interface table's shape). */
function toScm(method: string, args: unknown[], own: Ucred): { method: string; args: unknown[]; extra: Ucred[] } {
  const form = scmFormOfPlain(method);
  if (!form) throw new Error(`${method} has no Scm variant`);
  return { method: form.spec.name, args: scmArgsFrom(form.shape, args), extra: credentialsFrom(form.shape, args, own, own.pid) };
}

/** Refuses a claim the kernel will refuse before the daemon is asked (as client/scm-call.ts does). */
function probe(creds: Ucred[]): number {
  const [a, b] = socketPair(true);
  const socket = openSocket(a, true, () => undefined, () => undefined);
  try {
    for (const cred of creds) {
      const rc = socket.write(Buffer.from('p'), undefined, cred);
      if (rc < 0) return rc;
    }
    return 0;
  } finally {
    socket.close();
    closeFd(b);
  }
}

/** Is the first result datagram of `method` a failure (reference §6.4)? */
function isFailure(method: string, d: Buffer): boolean {
  switch (SCM_RESULT_KINDS[method]) {
    case 'status':
      return d.toString('latin1') !== '1';
    case 'existed':
      return !['1', '2'].includes(d.toString('latin1'));
    case 'string':
      return d.length === 0;
    case 'body':
      return parseErrorDetail(d) !== undefined;
    default:
      return d.length < 4 || d.readInt32LE(0) < 0;
  }
}

/**
 * An Scm exchange with our own credentials (or the claims given), by hand: unlike the client
 * library, it waits up to DETAIL_WAIT_MS for the error detail behind a failure, since the daemon
 * under test always sends one and a loaded machine may deliver it late.
 */
const DETAIL_WAIT_MS = 3000;
async function scmCall(client: RawClient, req: Extract<AttackRequest, { op: 'scm' }>): Promise<Omit<AttackReply, 'id'>> {
  const own: Ucred = { pid: process.pid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const timeoutMs = req.timeoutMs ?? 5000;
  const call = toScm(req.method, req.args, own);
  const creds = [req.requestor ?? own, ...call.extra];
  const refused = probe(creds);
  if (refused < 0) return { ok: false, code: ERRNO_NAMES[-refused] ?? `errno ${-refused}`, message: 'the kernel refused a credential' };
  const [mine, theirs] = socketPair(true);
  setPassCred(mine, true);
  const ch = channel(mine);
  let callError: { dbusName?: string; message: string } | undefined;
  try {
    const sent = sendScmCall(client, call.method, call.args, theirs, timeoutMs).catch((err: Error & { dbusName?: string }) => {
      callError = { dbusName: err.dbusName, message: err.message };
    });
    closeFd(theirs);
    for (const cred of creds) {
      const kick = await Promise.race([ch.next(timeoutMs), sent.then(() => (callError ? undefined : new Promise<undefined>(() => undefined)))]);
      if (kick === undefined) break;
      ch.socket.write(Buffer.from('p'), undefined, cred);
    }
    if (callError) return { ok: false, errorName: callError.dbusName, message: callError.message };
    const first = await ch.next(timeoutMs);
    if (first === undefined) return { ok: false, scmTimeout: true, message: 'no result' };
    if (!isFailure(call.method, first)) return { ok: true, datagrams: [first.toString('latin1')] };
    // cgmanager1 forms: the failure is the error detail itself.
    const detail = SCM_RESULT_KINDS[call.method] === 'body' ? first : await ch.next(DETAIL_WAIT_MS);
    const parsed = detail ? parseErrorDetail(detail) : undefined;
    return { ok: false, scmFailure: true, errorName: parsed?.name, message: parsed?.message ?? `${call.method} failed` };
  } finally {
    ch.socket.close();
  }
}

/** Datagrams from the daemon on our end of a socketpair, in order. */
function channel(fd: number): { socket: NativeSocket; next(ms: number): Promise<Buffer | undefined> } {
  const queue: Buffer[] = [];
  let wake: (() => void) | undefined;
  const socket = openSocket(
    fd,
    true,
    (data, fds) => {
      fds?.forEach(closeFd);
      queue.push(data);
      wake?.();
    },
    () => undefined,
  );
  const next = async (ms: number): Promise<Buffer | undefined> => {
    if (queue.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    return queue.shift();
  };
  return { socket, next };
}

/** Kick, credential, kick, credential...: each forged credential goes over the real channel. */
async function forge(client: RawClient, req: Extract<AttackRequest, { op: 'forge' }>): Promise<Omit<AttackReply, 'id'>> {
  const [mine, theirs] = socketPair(true);
  setPassCred(mine, true);
  const ch = channel(mine);
  const sendResults: number[] = [];
  const datagrams: string[] = [];
  let callError: string | undefined;
  try {
    const call = sendScmCall(client, req.method, req.args, theirs, req.waitMs + 2000).catch((err: Error) => {
      callError = err.message;
    });
    closeFd(theirs);
    for (const cred of req.creds) {
      const kick = await ch.next(req.waitMs);
      if (kick === undefined) break;
      datagrams.push(kick.toString('latin1'));
      sendResults.push(ch.socket.write(Buffer.from('p'), undefined, cred));
    }
    for (let d = await ch.next(req.waitMs); d !== undefined; d = await ch.next(50)) datagrams.push(d.toString('latin1'));
    await call;
  } finally {
    ch.socket.close();
  }
  return { ok: callError === undefined, sendResults, datagrams, ...(callError === undefined ? {} : { message: callError }) };
}

function direct(fn: () => void): Omit<AttackReply, 'id'> {
  try {
    fn();
    return { ok: true };
  } catch (err) {
    return { ok: false, code: (err as NodeJS.ErrnoException).code ?? 'error', message: (err as Error).message };
  }
}

function writeOnce(path: string, value: string): void {
  const fd = fs.openSync(path, fs.constants.O_WRONLY);
  try {
    fs.writeSync(fd, value);
  } finally {
    fs.closeSync(fd);
  }
}

function swap(a: string, b: string, tmp: string, ms: number, times: number | undefined): Omit<AttackReply, 'id'> {
  const end = Date.now() + ms;
  let swaps = 0;
  try {
    while (times === undefined ? Date.now() < end : swaps < times) {
      fs.renameSync(a, tmp);
      fs.renameSync(b, a);
      fs.renameSync(tmp, b);
      swaps++;
    }
    return { ok: true, swaps };
  } catch (err) {
    return { ok: false, swaps, code: (err as NodeJS.ErrnoException).code ?? 'error', message: (err as Error).message };
  }
}

async function handle(client: RawClient, req: AttackRequest): Promise<Omit<AttackReply, 'id'>> {
  switch (req.op) {
    case 'call':
      return plainCall(client, req.method, req.args, req.timeoutMs);
    case 'scm':
      return scmCall(client, req);
    case 'forge':
      return forge(client, req);
    case 'write':
      return direct(() => writeOnce(req.path, req.value));
    case 'chmod':
      return direct(() => fs.chmodSync(req.path, req.mode));
    case 'chown':
      return direct(() => fs.chownSync(req.path, req.uid, req.gid));
    case 'swap':
      return swap(req.a, req.b, req.tmp, req.ms, req.times);
  }
}

async function main(): Promise<void> {
  const socketPath = process.argv[2];
  if (socketPath === undefined) throw new Error('usage: attacker-main SOCKET');
  const client = await RawClient.connect(socketPath, { timeoutMs: 10_000 });
  let buffered = '';
  let chain = Promise.resolve();
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffered += chunk;
    for (let eol = buffered.indexOf('\n'); eol >= 0; eol = buffered.indexOf('\n')) {
      const line = buffered.slice(0, eol);
      buffered = buffered.slice(eol + 1);
      if (line.trim() === '') continue;
      const { id, ...req } = JSON.parse(line) as AttackRequest & { id: number };
      // One request at a time, in order: each answer tells the test it may snapshot again.
      chain = chain.then(async () => {
        let reply: Omit<AttackReply, 'id'>;
        try {
          reply = await handle(client, req as AttackRequest);
        } catch (err) {
          reply = { ok: false, message: `attacker: ${(err as Error).message}` };
        }
        process.stdout.write(`${JSON.stringify({ id, ...reply })}\n`);
      });
    }
  });
  process.stdin.on('end', () => {
    void chain.then(() => {
      client.close();
      process.exit(0);
    });
  });
  process.stdout.write(`${JSON.stringify({ id: 0, ok: true, message: 'ready' })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`attacker: ${(err as Error).message}\n`);
  process.exit(2);
});
