// Parsing of cgm's numeric arguments, with the original's rules (reference §10) where
// scripts can observe them: uid/gid decimal and below INT32_MAX, modes octal, remove
// recursive unless the last argument is exactly `0`. Failures are UsageErrors (exit 1).

/** A mistake on the command line: reported with the command's usage, exit status 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const INT32_MAX = 0x7fffffff;

/** uid or gid: decimal, 0 <= n < INT32_MAX (the original refused INT32_MAX itself). */
export function parseId(text: string, what: 'uid' | 'gid'): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`bad ${what} ${quoteArg(text)}: expected a decimal number`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n >= INT32_MAX) throw new UsageError(`bad ${what} ${quoteArg(text)}: must be below ${INT32_MAX}`);
  return n;
}

/** chmod mode: always octal ("755", "0644"), as the original's strtol(…, 8). */
export function parseOctalMode(text: string): number {
  if (!/^[0-7]+$/.test(text)) throw new UsageError(`bad mode ${quoteArg(text)}: expected an octal number such as 755`);
  const n = parseInt(text, 8);
  if (!Number.isSafeInteger(n) || n >= INT32_MAX) throw new UsageError(`bad mode ${quoteArg(text)}: too large`);
  return n;
}

/** A pid: positive decimal int32 (the original's atoi() sent 0 for garbage, which always failed). */
export function parsePid(text: string): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`bad pid ${quoteArg(text)}: expected a decimal process id`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > INT32_MAX) throw new UsageError(`bad pid ${quoteArg(text)}: out of range`);
  return n;
}

/** `--owner uid:gid` of cgm setup. */
export function parseOwner(text: string): { uid: number; gid: number } {
  const m = /^([^:]*):([^:]*)$/.exec(text);
  if (!m) throw new UsageError(`bad owner ${quoteArg(text)}: expected uid:gid`);
  return { uid: parseId(m[1] as string, 'uid'), gid: parseId(m[2] as string, 'gid') };
}

/** `--limit key=value` of cgm setup (the value may hold '='). */
export function parseLimit(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`bad limit ${quoteArg(text)}: expected key=value`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** `cgm remove c cg [0|1]`: recursive unless the argument is exactly `0`. */
export function parseRecursive(text: string | undefined): boolean {
  return text !== '0';
}

/** A non-negative depth for `cgm tree --depth`. */
export function parseDepth(text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) > 1_000_000) throw new UsageError(`bad depth ${quoteArg(text)}: expected a number`);
  return Number(text);
}

/** --count of watch: a positive decimal. */
export function parseCount(text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1) throw new UsageError(`bad count ${JSON.stringify(text)}: expected a positive number`);
  return Number(text);
}

/** Shell-style quoting for echoing arguments back in messages: '' for empty, quotes when needed. */
export function quoteArg(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
