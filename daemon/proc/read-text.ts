// Reads small kernel-generated text files (cgroup control files, /proc entries) with
// open+read+close into one reused buffer: readFileSync adds an fstat per call, and on
// these pseudo-files each syscall costs several microseconds.
import * as fs from 'node:fs';

const CHUNK = 64 * 1024;
const shared = Buffer.allocUnsafe(CHUNK);

/** The whole file as UTF-8; throws the fs error (with `code`) on failure, RangeError past `maxBytes`. */
export function readText(path: string, maxBytes = 16 * 1024 * 1024): string {
  const fd = fs.openSync(path, fs.constants.O_RDONLY);
  try {
    let n = fs.readSync(fd, shared, 0, CHUNK, null);
    if (n < CHUNK) return shared.toString('utf8', 0, n);
    // Rare: more than one chunk (a GetTasks of a huge cgroup, memory.stat on big machines).
    const parts = [Buffer.from(shared.subarray(0, n))];
    let total = n;
    while ((n = fs.readSync(fd, shared, 0, CHUNK, null)) > 0) {
      total += n;
      if (total > maxBytes) throw new RangeError(`${path} is larger than ${maxBytes} bytes`);
      parts.push(Buffer.from(shared.subarray(0, n)));
    }
    return Buffer.concat(parts).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The whole file behind an open `fd`, read from offset 0 with pread(2): a kept fd of a
 * kernel-generated file is read afresh this way (seq_file regenerates on a read at 0).
 */
export function readTextAt(fd: number, maxBytes = 16 * 1024 * 1024): string {
  let n = fs.readSync(fd, shared, 0, CHUNK, 0);
  if (n < CHUNK) return shared.toString('utf8', 0, n);
  const parts = [Buffer.from(shared.subarray(0, n))];
  let total = n;
  while ((n = fs.readSync(fd, shared, 0, CHUNK, total)) > 0) {
    total += n;
    if (total > maxBytes) throw new RangeError(`the file is larger than ${maxBytes} bytes`);
    parts.push(Buffer.from(shared.subarray(0, n)));
  }
  return Buffer.concat(parts).toString('utf8');
}
