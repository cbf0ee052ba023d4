#!/usr/bin/env node
// cgm: the command-line client (reference §10). Runs one subcommand and exits with its
// status; a closed stdout (cgm … | head) ends quietly instead of with a stack trace.
import { runCgm } from './cli/program';

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

runCgm(process.argv.slice(2), {
  stdout: (text) => {
    if (text !== '') process.stdout.write(text);
  },
  stderr: (text) => {
    process.stderr.write(text);
  },
  env: process.env,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`cgm: internal error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
