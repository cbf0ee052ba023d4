// How cgm reports a failure on stderr: one line, `cgm: <command> <args>: <what went
// wrong> (<D-Bus error name>)`, never a stack trace.
import { AddonLoadError } from '../../addon';
import { isCgmanagerError } from '../errors';
import { quoteArg, UsageError } from './parse';

/** The subcommand and its arguments as the user would retype them. */
export function commandText(name: string, args: readonly (string | undefined)[]): string {
  return [name, ...args.filter((a): a is string => a !== undefined).map(quoteArg)].join(' ');
}

/** The stderr line (with newline) for an error thrown while running `command`. */
export function failureLine(command: string, err: unknown): string {
  if (isCgmanagerError(err)) {
    const name = err.dbusName ? ` (${err.dbusName})` : '';
    return `cgm: ${command}: ${oneLine(err.message)}${name}\n`;
  }
  if (err instanceof UsageError || err instanceof TypeError || err instanceof AddonLoadError) return `cgm: ${command}: ${oneLine(err.message)}\n`;
  // A bug of ours: say so plainly, still without a stack trace.
  const message = err instanceof Error ? err.message : String(err);
  return `cgm: ${command}: internal error: ${oneLine(message)}\n`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
