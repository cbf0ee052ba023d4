// Build step (package.json build:extras, after esbuild): writes V8's code cache for cgm's
// bundle, which the installed `cgm` (cgm-bundle.ts) hands to V8 instead of compiling.
// The cache is taken after the bundle has run `cgm ping` against a stand-in peer in this
// process, so it holds the bytecode of every function a call runs, not only the top level
// (a cache of the top level alone saved half as much). Runs again at install (package.json
// install script), for the installing Node. A failure is one line, not a failed build or
// install: without a cache cgm works, only slower; only a bundle that is not ASCII, which
// cgm-bundle.ts could not read, stops the build. Usage: node dist/client/cli/build-code-cache.js
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUILD_MARK, CACHE_FILE, CODE_FILE, compileBundle, runBundle } from '../cgm-bundle';
import { encodeMessage, MessageReader, MessageType } from '../../daemon/dbus/wire';

/** The code with its build mark (a hash of the rest) as its last line; idempotent. */
function markCode(code: string): { marked: string; mark: string } {
  const at = code.lastIndexOf(`\n${BUILD_MARK}`);
  const bare = at >= 0 && code.endsWith('\n') && code.indexOf('\n', at + 1) === code.length - 1 ? code.slice(0, at + 1) : code;
  const mark = `${BUILD_MARK}${createHash('sha256').update(bare).digest('hex').slice(0, 32)}`;
  return { marked: `${bare.endsWith('\n') ? bare : `${bare}\n`}${mark}\n`, mark };
}

/**
 * A peer that does just enough for `cgm ping`: the SASL handshake (OK, AGREE_UNIX_FD) and
 * an empty method return for every call. Unref'd, so that it does not keep this process
 * alive once the bundle is done. Returns how many calls it answered so far.
 */
function servePings(server: net.Server): () => number {
  let answered = 0;
  server.unref();
  server.on('connection', (socket) => {
    let text = '';
    let authed = false;
    let open = false;
    const reader = new MessageReader(1 << 20);
    socket.on('data', (data: Buffer) => {
      let rest = data;
      if (!open) {
        text += data.toString('latin1');
        const begin = text.indexOf('BEGIN\r\n');
        if (!authed && text.includes('AUTH ') && text.includes('\r\n')) {
          authed = true;
          socket.write(`OK ${'0'.repeat(32)}\r\n`);
        }
        if (begin < 0) return;
        open = true;
        socket.write('AGREE_UNIX_FD\r\n');
        rest = Buffer.from(text.slice(begin + 'BEGIN\r\n'.length), 'latin1');
      }
      reader.push(rest);
      for (let next = reader.next(); next; next = reader.next()) {
        socket.write(encodeMessage({ type: MessageType.MethodReturn, serial: next.message.serial, replySerial: next.message.serial }));
        answered++;
      }
    });
    socket.on('error', () => undefined);
  });
  return () => answered;
}

async function main(): Promise<void> {
  const code = fs.readFileSync(CODE_FILE, 'utf8');
  // cgm-bundle.ts reads the code as latin1, which is only right for ASCII (esbuild's default charset).
  if (/[^\x00-\x7f]/.test(code)) {
    process.stderr.write(`build-code-cache: ${CODE_FILE} is not ASCII; bundle it with esbuild's default --charset=ascii\n`);
    process.exit(1);
  }
  const { marked, mark } = markCode(code);
  fs.writeFileSync(CODE_FILE, marked);
  fs.rmSync(CACHE_FILE, { force: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-code-cache-'));
  const socket = path.join(dir, 'sock');
  const server = net.createServer().listen(socket);
  try {
    await new Promise((resolve) => server.once('listening', resolve));
    const answered = servePings(server);
    const { script, run } = compileBundle(marked, false);
    // The bundle reads its command line and environment as cgm would, and is done when
    // nothing is left to do (it sets process.exitCode then), whether it reached us or not.
    process.argv = [process.execPath, CODE_FILE, '--socket', socket, 'ping'];
    delete process.env.CGMANAGER_ROUTE;
    const done = new Promise<void>((resolve, reject) => {
      process.once('beforeExit', () => resolve());
      setTimeout(() => reject(new Error('the bundle\'s ping did not finish within 10 s')), 10_000).unref();
    });
    runBundle(run);
    await done;
    if ((process.exitCode ?? 0) !== 0 || answered() !== 1) throw new Error('the bundle\'s ping failed');
    fs.writeFileSync(CACHE_FILE, Buffer.concat([Buffer.from(`${mark}\n`, 'latin1'), script.createCachedData()]));
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`build-code-cache: no code cache for cgm (it still works, only starts slower): ${(err as Error).message}\n`);
  process.exit(0); // also when the bundle still waits for something
});
