// Parser for /proc/PID/cgroup text ("hierarchy-ID:controller-list:cgroup-path", cgroups(7)).
// Pure: it never reads files and never throws on bad input; malformed lines are skipped.

export interface ProcCgroupLine {
  /** 0 for the cgroup2 line, the v1 hierarchy id otherwise */
  hierarchyId: number;
  /** the comma-separated controller list, `name=X` tokens included; empty for the v2 line "0::/" */
  controllers: string[];
  /** the cgroup path, relative to the reader's cgroup namespace root; may itself contain ':' */
  path: string;
}

const DECIMAL = /^\d+$/;

function parseCgroupLine(line: string): ProcCgroupLine | undefined {
  // Only the first two colons separate fields: a cgroup directory name may contain ':'.
  const first = line.indexOf(':');
  if (first < 0) return undefined;
  const second = line.indexOf(':', first + 1);
  if (second < 0) return undefined;
  const id = line.slice(0, first);
  const list = line.slice(first + 1, second);
  const path = line.slice(second + 1);
  if (!DECIMAL.test(id) || path === '') return undefined;
  return {
    hierarchyId: Number(id),
    controllers: list === '' ? [] : list.split(','),
    path,
  };
}

/** One entry per well-formed line, in file order. */
export function parseProcCgroup(text: string): ProcCgroupLine[] {
  const lines: ProcCgroupLine[] = [];
  for (const line of text.split('\n')) {
    const parsed = parseCgroupLine(line);
    if (parsed !== undefined) lines.push(parsed);
  }
  return lines;
}
