// The per-requestor limits (issue 12, SPEC §2.5) and the limits file that sets them: a plain
// `key = value` text, one per line, `#` comments. Pure: the caller reads the file. An unknown
// key or a bad value is an error naming the file, the line and the key, so a typo can never
// silently leave a limit at its default.

export interface QuotaLimits {
  /** cgroups one uid may own (be the directory owner of) in each hierarchy */
  maxCgroupsPerUid: number;
  /** deepest cgroup a caller may create, counted from the hierarchy root */
  maxDepth: number;
  /** cgroups one recursive call (GetTasksRecursive, recursive Remove, Prune) may walk */
  maxWalk: number;
  /** whether host root is held to max-cgroups-per-uid and max-walk too */
  limitRoot: boolean;
  /** seconds between background recounts of the owners (catches cgroups made behind the daemon's back); 0: never */
  recountIntervalS: number;
}

export const DEFAULT_LIMITS: QuotaLimits = {
  maxCgroupsPerUid: 4096,
  maxDepth: 16,
  maxWalk: 100_000,
  limitRoot: false,
  recountIntervalS: 600,
};

export const DEFAULT_LIMITS_FILE = '/etc/cgmanager/limits';

interface KeySpec {
  field: keyof QuotaLimits;
  parse(value: string): number | boolean | undefined;
  expect: string;
}

function integerIn(min: number, max: number): (value: string) => number | undefined {
  return (value) => {
    if (!/^\d+$/.test(value)) return undefined;
    const n = Number(value);
    return n >= min && n <= max ? n : undefined;
  };
}

function yesNo(value: string): boolean | undefined {
  if (/^(yes|true|1|on)$/i.test(value)) return true;
  if (/^(no|false|0|off)$/i.test(value)) return false;
  return undefined;
}

/** The keys of the limits file; the same names as the command-line options. */
export const LIMIT_KEYS: ReadonlyMap<string, KeySpec> = new Map<string, KeySpec>([
  ['max-cgroups-per-uid', { field: 'maxCgroupsPerUid', parse: integerIn(1, 100_000_000), expect: 'a number from 1 to 100000000' }],
  ['max-depth', { field: 'maxDepth', parse: integerIn(1, 1024), expect: 'a number from 1 to 1024' }],
  ['max-walk', { field: 'maxWalk', parse: integerIn(1, 100_000_000), expect: 'a number from 1 to 100000000' }],
  ['limit-root', { field: 'limitRoot', parse: yesNo, expect: 'yes or no' }],
  ['recount-interval', { field: 'recountIntervalS', parse: integerIn(0, 86_400 * 7), expect: 'seconds from 0 to 604800' }],
]);

export class LimitsFileError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'LimitsFileError';
  }
}

/** Parses the text of a limits file into the limits it sets. Throws LimitsFileError. */
export function parseLimitsFile(text: string, file: string): Partial<QuotaLimits> {
  const out: Partial<Record<keyof QuotaLimits, number | boolean>> = {};
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const eq = line.indexOf('=');
    if (eq < 0) throw new LimitsFileError(file, lineNo, `expected "key = value", got ${JSON.stringify(line)}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const spec = LIMIT_KEYS.get(key);
    if (!spec) throw new LimitsFileError(file, lineNo, `unknown key ${JSON.stringify(key)} (known: ${[...LIMIT_KEYS.keys()].join(', ')})`);
    const earlier = seen.get(key);
    if (earlier !== undefined) throw new LimitsFileError(file, lineNo, `${key} is already set on line ${earlier}`);
    seen.set(key, lineNo);
    const parsed = spec.parse(value);
    if (parsed === undefined) throw new LimitsFileError(file, lineNo, `bad value ${JSON.stringify(value)} for ${key}: expected ${spec.expect}`);
    out[spec.field] = parsed;
  });
  return out as Partial<QuotaLimits>;
}

/** Whether `uid` is held to the per-requestor limits. */
export function isLimited(limits: Pick<QuotaLimits, 'limitRoot'>, uid: number): boolean {
  return uid !== 0 || limits.limitRoot;
}

/** The most cgroups one recursive call of `uid` may walk. */
export function walkLimitFor(limits: Pick<QuotaLimits, 'limitRoot' | 'maxWalk'>, uid: number): number {
  return isLimited(limits, uid) ? limits.maxWalk : Number.POSITIVE_INFINITY;
}
