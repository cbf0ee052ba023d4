#!/usr/bin/env node
// cgm: the command-line client (reference §10). Runs one subcommand and exits with its
// status; a closed stdout (cgm … | head) ends quietly instead of with a stack trace.
// Plain invocations take the fast path (cli/direct.ts); help, options and usage errors
// load the full command line (cli/program.ts, commander) only when needed.
import { writeSync } from 'node:fs';
import { parseDirect } from './cli/direct';
import { runCommand, type CgmIo } from './cli/run-command';

// Output goes straight to fds 1 and 2: touching process.stdout builds a stream (and loads
// node:stream, net and tty), a tenth of cgm's start-up, for a few lines at exit.
function writeAll(fd: number, text: string): void {
  let data = Buffer.from(text);
  while (data.length > 0) {
    try {
      data = data.subarray(writeSync(fd, data));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue; // a non-blocking pipe that is full: wait for the reader
      if (code === 'EPIPE' && fd === 1) process.exit(process.exitCode ?? 0); // cgm … | head
      if (code === 'EPIPE' || code === 'EBADF') return;
      throw err;
    }
  }
}

const io: CgmIo = {
  stdout: (text) => writeAll(1, text),
  stderr: (text) => writeAll(2, text),
  env: process.env,
};

async function main(argv: readonly string[]): Promise<number> {
  const direct = parseDirect(argv, io.env);
  if (direct) return runCommand(direct.def, direct.args, {}, direct.socket, io);
  const { runCgm } = await import('./cli/program');
  return runCgm(argv, io);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    io.stderr(`cgm: internal error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
