// The daemon's pino logger: JSON lines on stderr or a file (SPEC §3). Messages are
// constants; the data goes in fields.
import pino, { type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** How often buffered log lines are written out when traffic is light. */
const FLUSH_EVERY_MS = 100;

export function createLogger(options: { level: LogLevel; file?: string; name?: string }): Logger {
  // Lines are buffered (up to 4 KiB) and written with one synchronous write(2), at the
  // latest every 100 ms and at once for warnings and errors (logRequest flushes them):
  // a write per request line cost a third of a Ping's CPU time here. A crash can lose
  // at most the last 100 ms of info lines; denials and faults are never held back.
  const destination = pino.destination({ dest: options.file ?? 2, sync: true, mkdir: true, minLength: 4096 });
  setInterval(() => destination.flush(), FLUSH_EVERY_MS).unref();
  process.once('exit', () => destination.flushSync());
  return pino(
    {
      name: options.name ?? 'cgmanager',
      level: options.level,
      base: { pid: process.pid },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
