// A list the daemon keeps across restarts (remove-on-empty marks, device rule lists, borrowed
// notify_on_release flags): one JSON file under the state directory, read once at start and
// replaced atomically on every save, or, without a usable state directory, nothing at all.
import { readFileIfExists, writeFileAtomic } from './atomic-file';

export interface ListStore<T> {
  load(): T[];
  save(items: readonly T[]): void;
}

/** The list in `file`; `parse` throws on a malformed file and drops malformed entries. */
export class ListFile<T> implements ListStore<T> {
  constructor(
    readonly file: string,
    private readonly parse: (text: string) => T[],
    private readonly format: (items: readonly T[]) => string,
  ) {}

  load(): T[] {
    const text = readFileIfExists(this.file);
    return text === undefined ? [] : this.parse(text);
  }

  save(items: readonly T[]): void {
    writeFileAtomic(this.file, this.format(items), 0o600);
  }
}

/** Without a usable state directory: the list lasts as long as the process. */
export function memoryOnly<T>(): ListStore<T> {
  return { load: () => [], save: () => undefined };
}
