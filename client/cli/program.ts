// cgm's command line with commander: global --socket, one subcommand per COMMANDS entry,
// `help [command]`. Data goes to stdout only, every failure to stderr as one line,
// exit status 0 on success and 1 on any failure or usage error (reference §10).
import { Command, CommanderError } from 'commander';
import { defaultSocketPath } from '../../daemon/socket-path';
import { VERSION } from '../../daemon/version';
import { COMMANDS } from './commands';
import { failureLine } from './report';
import { runCommand, usageLine, type CgmIo } from './run-command';

export type { CgmIo } from './run-command';

export const NOTES = `
Arguments:
  <controller>  a controller (memory), a named hierarchy (name=systemd) or unified
                (the cgroup2 hierarchy). create, chown, chmod, chmodfile, remove,
                removeonempty, prune, movepid, movepidabs and gettasksrecursive also
                take all, or a comma-separated list such as memory,cpu
  <controllers> (setup, stats) all, or a comma-separated list; freeze, thaw and
                kill take none (v1: the freezer hierarchy; else cgroup2)
  <cgroup>      relative to your own cgroup, e.g. x1 or x1/y; '' is your own cgroup
  remove is recursive unless the last argument is exactly 0 (1 is accepted, for
  old scripts); modes are octal (cgm chmod memory x1 755)

Output: data on stdout, one item per line; errors on stderr; exit status 0 on
success and 1 on any failure. Commands that print data take --json (one JSON value
on one line); 'cgm help <command>' shows each format.

Environment:
  CGMANAGER_SOCKET  socket used when --socket is not given (default
                    /sys/fs/cgroup/cgmanager/sock, or /run/cgmanager/sock where
                    /sys/fs/cgroup is cgroup2)
  CGMANAGER_ROUTE   auto (default), plain or scm: scm sends every call through its
                    …Scm variant so the kernel translates pids and uids; auto does
                    so when cgm is not in the daemon's pid or user namespace
`;

export function buildProgram(io: CgmIo, setExit: (code: number) => void): Command {
  const program = new Command('cgm')
    .description('Command-line client for cgmanager, the cgroup manager daemon.')
    .usage('[--socket PATH] <command> [arguments]')
    .option('--socket <path>', 'the daemon\'s (or proxy\'s) socket (env CGMANAGER_SOCKET)')
    .version(VERSION, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help')
    .helpCommand('help [command]', 'show help for a command')
    .addHelpText('after', NOTES)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      outputError: (s, write) => {
        const unknown = /unknown command '(.*)'/.exec(s);
        if (unknown) {
          const hint = /\(Did you mean (\S+)\?\)/.exec(s);
          // One line, not the whole usage: the mistake stays visible (cgm help lists the commands).
          write(`cgm: unknown command: ${unknown[1]}${hint ? ` (did you mean ${hint[1]}?)` : ''}; see cgm help\n`);
        } else {
          write(`cgm: ${s.replace(/^error: /, '').trimEnd()}\n`);
        }
      },
    });

  for (const def of COMMANDS) {
    const cmd = program
      .command(def.name)
      .summary(def.summary)
      .description(def.summary)
      // Arguments are passed verbatim as in the original: `-1` is a value, not an option.
      .allowUnknownOption(true)
      .allowExcessArguments(def.ignoresExtraArgs ?? false)
      .helpOption('-h, --help', 'show this help')
      .exitOverride()
      .configureOutput({
        writeOut: (s) => io.stdout(s),
        writeErr: (s) => io.stderr(s),
        outputError: (s, write) => write(`cgm: ${def.name}: ${s.replace(/^error: /, '').trimEnd()}\n${usageLine(def)}\n`),
      });
    for (const arg of def.args) cmd.argument(arg);
    if (def.printsData) cmd.option('--json', 'print the result as JSON');
    for (const [flags, description, repeatable] of def.options ?? []) {
      if (repeatable) cmd.option(flags, description, (value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
      else cmd.option(flags, description);
    }
    if (def.prints) cmd.addHelpText('after', `\nOutput: ${def.prints}\n`);
    cmd.action(async (...params: unknown[]) => {
      const self = params[params.length - 1] as Command;
      const args = def.args.map((_, i) => self.processedArgs[i] as string | undefined);
      const options = self.opts<Record<string, unknown>>();
      const socket = program.opts<{ socket?: string }>().socket ?? defaultSocketPath(io.env);
      setExit(await runCommand(def, args, options, socket, io));
    });
  }
  return program;
}

/** Runs cgm with `argv` (without node and the script); resolves with the exit status. */
export async function runCgm(argv: readonly string[], io: CgmIo): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  const problem = globalUsageProblem(argv);
  if (problem !== undefined) {
    io.stderr(`cgm: ${problem}\n`);
    return 1;
  }
  // The original prints its usage on stdout and exits 1 when given nothing to do.
  if (withoutSocketOption(argv).every((arg) => arg === '-h' || arg === '--help')) {
    program.outputHelp();
    return 1;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    io.stderr(failureLine(argv.join(' '), err));
    return 1;
  }
  return exitCode;
}

/**
 * What commander would accept but we refuse: `--socket` without a path (commander would
 * print the usage, or take the next option as the path), and `help` for a command that
 * does not exist (commander would show the general help and exit 0).
 */
function globalUsageProblem(argv: readonly string[]): string | undefined {
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--socket') {
      const value = argv[i + 1];
      if (value === undefined || value === '' || value.startsWith('-')) return "option '--socket <path>' needs a path";
      i++;
    } else if (arg === '--socket=') {
      return "option '--socket <path>' needs a path";
    } else if (!arg.startsWith('--socket=') && command === undefined) {
      command = arg;
      const topic = argv[i + 1];
      if (arg === 'help' && topic !== undefined && !topic.startsWith('-') && !COMMANDS.some((c) => c.name === topic) && topic !== 'help') {
        return `help: unknown command: ${topic}; see cgm help`;
      }
    }
  }
  return undefined;
}

/** argv without the global `--socket PATH` / `--socket=PATH`. */
function withoutSocketOption(argv: readonly string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--socket') i++;
    else if (!arg.startsWith('--socket=')) rest.push(arg);
  }
  return rest;
}
