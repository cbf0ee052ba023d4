// The daemon's pino logger: JSON lines on stderr or a file (SPEC §3). Messages are
// constants; the data goes in fields.
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** How often buffered log lines are written out when traffic is light. */
const FLUSH_EVERY_MS = 100;
/** Buffered log text written out as soon as this much waits. */
const WRITE_AT = 4096;

function openLogFile(file: string): number {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return fs.openSync(file, 'a');
}

/**
 * pino's destination: lines kept as a list of strings and written with one write(2) once
 * WRITE_AT characters wait (or on flush). pino's own (sonic-boom) measured the UTF-8 length
 * of its growing buffer on every line, a tenth of a GetValue's CPU time here.
 */
class LineBuffer {
  private lines: string[] = [];
  private waiting = 0;

  constructor(private readonly fd: number) {}

  write(line: string): boolean {
    this.lines.push(line);
    this.waiting += line.length;
    if (this.waiting >= WRITE_AT) this.flushSync();
    return true;
  }

  flush(done?: (err?: Error) => void): void {
    this.flushSync();
    done?.();
  }

  flushSync(): void {
    if (this.lines.length === 0) return;
    const bytes = Buffer.from(this.lines.join(''));
    this.lines = [];
    this.waiting = 0;
    let off = 0;
    let busy = 0;
    while (off < bytes.length) {
      try {
        off += fs.writeSync(this.fd, bytes, off);
      } catch (err) {
        // A non-blocking stderr pipe that is full: wait a little, a bounded number of times,
        // then drop the rest rather than stall the daemon for ever on its log.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++busy > 100) return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
  }
}

export function createLogger(options: { level: LogLevel; file?: string; name?: string }): Logger {
  // Lines are buffered (up to 4 KiB) and written with one synchronous write(2), at the
  // latest every 100 ms and at once for warnings and errors (logRequest flushes them):
  // a write per request line cost a third of a Ping's CPU time here. A crash can lose
  // at most the last 100 ms of info lines; denials and faults are never held back.
  const destination = new LineBuffer(options.file === undefined ? 2 : openLogFile(options.file));
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
