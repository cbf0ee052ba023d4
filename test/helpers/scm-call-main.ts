// One Scm exchange from the command line, for tests that must make it from inside a
// container: `node scm-call-main.js '<json>'` with { socket, method, args, requestor?,
// victim?, timeoutMs? } (method is the Scm method; args without the fd). Prints one JSON
// line: { ok: true, value } or { ok: false, code, name, message }. The requestor and
// victim default to this process; another one is a claim the kernel checks.
import { PeerConnection } from '../../client/connection';
import { runScmExchange, ScmFailure, ScmTimeout } from '../../client/scm-call';
import { INTERFACE_NAME, METHODS_BY_NAME, OBJECT_PATH } from '../../daemon/dbus/interface';
import type { Ucred } from '../../addon';

interface Request {
  socket: string;
  method: string;
  args: unknown[];
  requestor?: Ucred;
  victim?: Ucred;
  timeoutMs?: number;
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2] ?? '{}') as Request;
  const spec = METHODS_BY_NAME.get(req.method);
  if (!spec?.scm) throw new Error(`${req.method} is not an Scm method`);
  const own: Ucred = { pid: process.pid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const timeoutMs = req.timeoutMs ?? 3000;
  const conn = await PeerConnection.open({ socketPath: req.socket, timeoutMs });
  try {
    const value = await runScmExchange({
      method: req.method,
      requestor: req.requestor ?? own,
      victim: req.victim ?? own,
      timeoutMs,
      sendCall: (fd) =>
        conn.call({ path: OBJECT_PATH, interface: INTERFACE_NAME, member: spec.name, signature: spec.inSignature, body: [...req.args, 0], replySignature: '', fds: [fd] }),
    });
    process.stdout.write(`${JSON.stringify({ ok: true, value })}\n`);
  } catch (err) {
    const e = err as Error & { errorName?: string; dbusName?: string; code?: string; errno?: number };
    const code = err instanceof ScmFailure ? 'ScmFailure' : err instanceof ScmTimeout ? 'ScmTimeout' : (e.code ?? 'Error');
    process.stdout.write(`${JSON.stringify({ ok: false, code, name: e.errorName ?? e.dbusName, errno: e.errno, message: e.message })}\n`);
  } finally {
    conn.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`scm-call: ${(err as Error).message}\n`);
  process.exit(2);
});
