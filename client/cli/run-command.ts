// Runs one cgm subcommand once its arguments are known: connects on first use, prints the
// result, reports failures as one stderr line. No commander here: cgm's fast path
// (direct.ts) calls this without loading the full command line.
import type { CgmanagerClient } from '../client';
import type { CgmCommand, CommandContext } from './commands';
import { render } from './format';
import { UsageError } from './parse';
import { commandText, failureLine } from './report';

export interface CgmIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

/** `usage: cgm create <controller> <cgroup>` */
export function usageLine(def: CgmCommand): string {
  return ['usage: cgm', def.name, def.printsData ? '[--json]' : '', ...(def.options ?? []).map(([flags]) => `[${flags}]`), ...def.args]
    .filter((s) => s !== '')
    .join(' ');
}

/** Runs `def` with its parsed arguments against `socket`; resolves with the exit status. */
export async function runCommand(def: CgmCommand, args: Array<string | undefined>, options: Record<string, unknown>, socket: string, io: CgmIo): Promise<number> {
  let exitCode = 0;
  let client: CgmanagerClient | undefined;
  const ctx: CommandContext = {
    client: async () => {
      // Loaded only when a command runs: usage errors and help never touch the transport.
      const { connect } = await import('../client');
      const route = io.env.CGMANAGER_ROUTE === 'plain' || io.env.CGMANAGER_ROUTE === 'scm' ? io.env.CGMANAGER_ROUTE : 'auto';
      client ??= await connect({ socket, route });
      return client;
    },
    fail: (err, command) => {
      io.stderr(failureLine(command, err));
      exitCode = 1;
    },
    print: (output) => io.stdout(render(output, options.json === true)),
  };
  try {
    const output = await def.run(ctx, args, options);
    if (output) io.stdout(render(output, options.json === true));
  } catch (err) {
    io.stderr(failureLine(commandText(def.name, args), err));
    if (err instanceof UsageError) io.stderr(`${usageLine(def)}\n`);
    exitCode = 1;
  } finally {
    if (client) await client.close();
  }
  return exitCode;
}
