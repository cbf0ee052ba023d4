// cgm's fast path: recognises the plain invocations scripts make (`cgm [--socket P] ping`,
// `cgm getvalue memory x key`) without commander, which with its child_process import
// costs a quarter of cgm's start-up. Anything else (help, options, negative numbers,
// wrong argument counts, unknown commands) returns undefined and goes to the full
// command line in program.ts, which owns every message and help text.
import { defaultSocketPath } from '../../daemon/socket-path';
import { COMMANDS, type CgmCommand } from './commands';

export interface DirectCall {
  def: CgmCommand;
  args: Array<string | undefined>;
  socket: string;
}

/** The call `argv` makes when it is unambiguous, else undefined. */
export function parseDirect(argv: readonly string[], env: NodeJS.ProcessEnv): DirectCall | undefined {
  let rest = argv;
  let socket: string | undefined;
  const first = rest[0];
  if (first === '--socket' && rest.length > 2) {
    socket = rest[1] as string;
    rest = rest.slice(2);
  } else if (first?.startsWith('--socket=')) {
    socket = first.slice('--socket='.length);
    rest = rest.slice(1);
  }
  // An empty or option-like path is the full parser's to judge (and to refuse).
  if (socket !== undefined && (socket === '' || socket.startsWith('-'))) return undefined;
  const [name, ...words] = rest;
  const def = COMMANDS.find((c) => c.name === name);
  if (!def || words.some((w) => w.startsWith('-'))) return undefined;
  const required = def.args.filter((a) => a.startsWith('<')).length;
  if (words.length < required || (words.length > def.args.length && def.ignoresExtraArgs !== true)) return undefined;
  return { def, args: def.args.map((_, i) => words[i]), socket: socket ?? defaultSocketPath(env) };
}
