// Parses the text of /proc/PID/uid_map (or gid_map) and maps ids across that user-namespace boundary.
// Pure: it never reads /proc itself; an unreadable map is passed as `undefined` and maps nothing.

/** One line of a map: ids inside..inside+count-1 of the namespace are outside..outside+count-1 as the reader sees them. */
export interface IdMapRange {
  inside: number;
  outside: number;
  count: number;
}

// Ids are unsigned 32-bit. The kernel refuses any extent whose first+count wraps 32 bits
// (kernel/user_namespace.c, map_write), and the reference (§4.1) treats such a line as not mapping.
const ID_SPACE = 2 ** 32;

const DECIMAL = /^\d+$/;

function parseU32(field: string | undefined): number | undefined {
  if (field === undefined || !DECIMAL.test(field)) return undefined;
  const value = Number(field);
  return value < ID_SPACE ? value : undefined;
}

function isU32(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id < ID_SPACE;
}

/**
 * Parses uid_map/gid_map text: one `inside outside count` line per range (user_namespaces(7)).
 * Malformed lines, empty ranges and ranges that overflow 32 bits (first + count >= 2^32, as the
 * kernel and reference §4.1 define overflow) are dropped; the rest is kept in order.
 */
export function parseIdMap(text: string): IdMapRange[] {
  const ranges: IdMapRange[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 3) continue;
    const inside = parseU32(fields[0]);
    const outside = parseU32(fields[1]);
    const count = parseU32(fields[2]);
    if (inside === undefined || outside === undefined || count === undefined) continue;
    if (count === 0 || inside + count >= ID_SPACE || outside + count >= ID_SPACE) continue;
    ranges.push({ inside, outside, count });
  }
  return ranges;
}

/**
 * Maps an id as the daemon sees it into the namespace whose map this is (reference §4.1,
 * `hostuid_to_ns`). `undefined` ranges mean the map could not be read: nothing is mapped.
 * Returns undefined when the id is not mapped (including -1, "unreadable", and non-integers).
 */
export function hostIdToNs(hostId: number, ranges: readonly IdMapRange[] | undefined): number | undefined {
  if (ranges === undefined || !isU32(hostId)) return undefined;
  for (const range of ranges) {
    if (range.outside <= hostId && hostId < range.outside + range.count) {
      return hostId - range.outside + range.inside;
    }
  }
  return undefined;
}

/** The inverse of hostIdToNs: the id, as the daemon sees it, of `nsId` inside the namespace. */
export function nsIdToHost(nsId: number, ranges: readonly IdMapRange[] | undefined): number | undefined {
  if (ranges === undefined || !isU32(nsId)) return undefined;
  for (const range of ranges) {
    if (range.inside <= nsId && nsId < range.inside + range.count) {
      return nsId - range.inside + range.outside;
    }
  }
  return undefined;
}
