// The daemon's pino logger: JSON lines on stderr or a file (SPEC §3). Messages are
// constants; the data goes in fields.
import pino, { type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export function createLogger(options: { level: LogLevel; file?: string; name?: string }): Logger {
  // Synchronous writes: a line per request costs one write(2), and nothing is lost when
  // the daemon is killed; fs.promises-style async writes cost far more CPU here.
  const destination = pino.destination({ dest: options.file ?? 2, sync: true, mkdir: true });
  return pino(
    {
      name: options.name ?? 'cgmanager',
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
