// Limits in the runtime's words on either cgroup version: the v1 key names on v2 hierarchies
// and the v2 names on v1, with the formulas runc and crun use. Pure: a translation is a
// function of (key, value, the hierarchy's version, the current values of the files it
// names) to a list of {file, value} writes (containerd's style); the driver applies it.
// A new translation is one row in TRANSLATIONS (and one in the README's table).
import { CgmError } from '../errors';

export type Version = 1 | 2;

export interface FileWrite {
  file: string;
  value: string;
}

/** The current contents of a file of the same cgroup (trailing newline stripped). */
export type Current = (file: string) => string;

export interface KeyTranslation {
  /** the name the caller uses */
  key: string;
  /** the hierarchy version on which `key` is translated (the other version's name) */
  on: Version;
  /** files GetValue reads */
  reads: readonly string[];
  /** files SetValue writes, in order (undefined: the key cannot be set) */
  writes?: readonly string[];
  /** the formula, as the README shows it */
  formula: string;
  get(current: Current): string;
  set?(value: string, current: Current): FileWrite[];
}

/** A v1 memory limit at or above this reads as "unlimited" (PAGE_COUNTER_MAX pages, rounded to the page). */
const V1_UNLIMITED = 1n << 62n;

function invalid(message: string): CgmError {
  return new CgmError('InvalidArgs', message);
}

function parseInteger(value: string, key: string): number {
  if (!/^-?\d{1,15}$/.test(value)) throw invalid(`${key} takes an integer, not ${JSON.stringify(value)}`);
  return Number(value);
}

function parseInRange(value: string, key: string, min: number, max: number): number {
  const n = parseInteger(value, key);
  if (n < min || n > max) throw invalid(`${key} must be between ${min} and ${max}, not ${n}`);
  return n;
}

const SUFFIX: Readonly<Record<string, bigint>> = { '': 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n, e: 1n << 60n };

/** Bytes as the kernel's memparse reads them ("256M", "1g", "4096"). */
export function parseBytes(value: string, key: string): bigint {
  const m = /^(\d{1,20})([kmgtpe]?)$/i.exec(value);
  if (!m) throw invalid(`${key} takes a number of bytes (optionally with K, M, G, T), -1 or max; not ${JSON.stringify(value)}`);
  return BigInt(m[1] as string) * (SUFFIX[(m[2] as string).toLowerCase()] as bigint);
}

/** A v2 byte limit ("max" or bytes) from a v1-style value (-1 or bytes). */
function v1BytesToV2(value: string, key: string): string {
  if (value === '-1' || value === 'max') return 'max';
  return parseBytes(value, key).toString();
}

/** A v1 byte limit (-1 or bytes) from a v2-style value ("max" or bytes). */
function v2BytesToV1(value: string, key: string): string {
  if (value === 'max' || value === '-1') return '-1';
  return parseBytes(value, key).toString();
}

/** Reads a byte limit of either version: undefined for unlimited. */
function readLimit(text: string): bigint | undefined {
  if (text === 'max' || text === '-1') return undefined;
  const n = BigInt(text);
  return n >= V1_UNLIMITED ? undefined : n;
}

/** crun: weight = 1 + ((shares - 2) * 9999) / 262142; shares clamped to the kernel's 2..262144 as v1 does. */
export function sharesToWeight(shares: number): number {
  const s = Math.min(Math.max(shares, 2), 262144);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/** The inverse, rounded up so that weight → shares → weight gives the weight back: shares = 2 + ⌈((weight - 1) * 262142) / 9999⌉. */
export function weightToShares(weight: number): number {
  return 2 + Math.ceil(((weight - 1) * 262142) / 9999);
}

/** runc: io.weight = 1 + (blkio.weight - 10) * 9999 / 990. */
export function blkioToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** The inverse, rounded up so that blkio.weight → io.weight → blkio.weight gives it back: 10 + ⌈(io.weight - 1) * 990 / 9999⌉. */
export function ioToBlkioWeight(weight: number): number {
  return 10 + Math.ceil(((weight - 1) * 990) / 9999);
}

/** cpu.max is "$QUOTA $PERIOD" with QUOTA "max" for no limit. */
function parseCpuMax(text: string): { quota: string; period: string } {
  const [quota = 'max', period = '100000'] = text.trim().split(/\s+/);
  return { quota, period };
}

/** The "default N" line of io.weight (per-device lines follow it). */
function defaultIoWeight(text: string): number {
  const m = /^default (\d+)$/m.exec(text);
  if (!m) throw new CgmError('Failed', `cannot read the default weight from io.weight (${JSON.stringify(text)})`);
  return Number(m[1]);
}

function renamed(key: string, on: Version, file: string, settable: boolean): KeyTranslation {
  return {
    key,
    on,
    reads: [file],
    ...(settable ? { writes: [file] } : {}),
    formula: `same value, file \`${file}\``,
    get: (cur) => cur(file),
    ...(settable ? { set: (value: string): FileWrite[] => [{ file, value }] } : {}),
  };
}

const TRANSLATIONS: readonly KeyTranslation[] = [
  // v1 names on a v2 hierarchy
  {
    key: 'cpu.shares', on: 2, reads: ['cpu.weight'], writes: ['cpu.weight'],
    formula: 'weight = 1 + ((shares − 2) × 9999) / 262142 (shares clamped to 2..262144); read: shares = 2 + ⌈((weight − 1) × 262142) / 9999⌉',
    get: (cur) => String(weightToShares(parseInteger(cur('cpu.weight'), 'cpu.weight'))),
    set: (value) => [{ file: 'cpu.weight', value: String(sharesToWeight(parseInteger(value, 'cpu.shares'))) }],
  },
  {
    key: 'cpu.cfs_quota_us', on: 2, reads: ['cpu.max'], writes: ['cpu.max'],
    formula: 'cpu.max = "$QUOTA $PERIOD", −1 ↔ max; the period is kept',
    get: (cur) => {
      const { quota } = parseCpuMax(cur('cpu.max'));
      return quota === 'max' ? '-1' : quota;
    },
    set: (value, cur) => {
      const quota = parseInteger(value, 'cpu.cfs_quota_us');
      return [{ file: 'cpu.max', value: `${quota < 0 ? 'max' : quota} ${parseCpuMax(cur('cpu.max')).period}` }];
    },
  },
  {
    key: 'cpu.cfs_period_us', on: 2, reads: ['cpu.max'], writes: ['cpu.max'],
    formula: 'cpu.max = "$QUOTA $PERIOD"; the quota is kept',
    get: (cur) => parseCpuMax(cur('cpu.max')).period,
    set: (value, cur) => [{ file: 'cpu.max', value: `${parseCpuMax(cur('cpu.max')).quota} ${parseInteger(value, 'cpu.cfs_period_us')}` }],
  },
  {
    key: 'memory.limit_in_bytes', on: 2, reads: ['memory.max'], writes: ['memory.max'],
    formula: 'memory.max, −1 ↔ max',
    get: (cur) => v2BytesToV1(cur('memory.max'), 'memory.max'),
    set: (value) => [{ file: 'memory.max', value: v1BytesToV2(value, 'memory.limit_in_bytes') }],
  },
  {
    key: 'memory.soft_limit_in_bytes', on: 2, reads: ['memory.low'], writes: ['memory.low'],
    formula: 'memory.low, −1 ↔ max',
    get: (cur) => v2BytesToV1(cur('memory.low'), 'memory.low'),
    set: (value) => [{ file: 'memory.low', value: v1BytesToV2(value, 'memory.soft_limit_in_bytes') }],
  },
  {
    key: 'memory.memsw.limit_in_bytes', on: 2, reads: ['memory.max', 'memory.swap.max'], writes: ['memory.swap.max'],
    formula: 'memory.swap.max = memsw − memory.max (needs a memory limit; −1 ↔ max); read: memory.max + memory.swap.max',
    get: (cur) => {
      const mem = readLimit(cur('memory.max'));
      const swap = readLimit(cur('memory.swap.max'));
      return mem === undefined || swap === undefined ? '-1' : String(mem + swap);
    },
    set: (value, cur) => {
      if (value === '-1' || value === 'max') return [{ file: 'memory.swap.max', value: 'max' }];
      const memsw = parseBytes(value, 'memory.memsw.limit_in_bytes');
      const mem = readLimit(cur('memory.max'));
      if (mem === undefined) throw invalid('memory.memsw.limit_in_bytes needs a memory limit first (memory.limit_in_bytes / memory.max)');
      if (memsw < mem) throw invalid(`memory.memsw.limit_in_bytes (${memsw}) must not be below the memory limit (${mem})`);
      return [{ file: 'memory.swap.max', value: String(memsw - mem) }];
    },
  },
  {
    key: 'blkio.weight', on: 2, reads: ['io.weight'], writes: ['io.weight'],
    formula: 'io.weight = 1 + (blkio.weight − 10) × 9999 / 990 (10..1000 ↔ 1..10000); read: 10 + ⌈(io.weight − 1) × 990 / 9999⌉',
    get: (cur) => String(ioToBlkioWeight(defaultIoWeight(cur('io.weight')))),
    set: (value) => [{ file: 'io.weight', value: `default ${blkioToIoWeight(parseInRange(value, 'blkio.weight', 10, 1000))}` }],
  },
  renamed('cpuset.effective_cpus', 2, 'cpuset.cpus.effective', false),
  renamed('cpuset.effective_mems', 2, 'cpuset.mems.effective', false),
  {
    key: 'freezer.state', on: 2, reads: ['cgroup.freeze', 'cgroup.events'],
    formula: 'read: THAWED when cgroup.freeze is 0, FROZEN once cgroup.events says "frozen 1", FREEZING between; set: see freeze and kill',
    get: (cur) => {
      if (cur('cgroup.freeze').trim() === '0') return 'THAWED';
      return /^frozen 1$/m.test(cur('cgroup.events')) ? 'FROZEN' : 'FREEZING';
    },
  },
  // v2 names on a v1 hierarchy
  {
    key: 'cpu.weight', on: 1, reads: ['cpu.shares'], writes: ['cpu.shares'],
    formula: 'shares = 2 + ⌈((weight − 1) × 262142) / 9999⌉ (weight 1..10000); read: weight = 1 + ((shares − 2) × 9999) / 262142',
    get: (cur) => String(sharesToWeight(parseInteger(cur('cpu.shares'), 'cpu.shares'))),
    set: (value) => [{ file: 'cpu.shares', value: String(weightToShares(parseInRange(value, 'cpu.weight', 1, 10000))) }],
  },
  {
    key: 'cpu.max', on: 1, reads: ['cpu.cfs_quota_us', 'cpu.cfs_period_us'], writes: ['cpu.cfs_period_us', 'cpu.cfs_quota_us'],
    formula: '"$QUOTA [$PERIOD]": cpu.cfs_period_us = PERIOD (if given), then cpu.cfs_quota_us = QUOTA, max ↔ −1',
    get: (cur) => {
      const quota = parseInteger(cur('cpu.cfs_quota_us'), 'cpu.cfs_quota_us');
      return `${quota < 0 ? 'max' : quota} ${cur('cpu.cfs_period_us')}`;
    },
    set: (value) => {
      const [quota, period, extra] = value.trim().split(/\s+/);
      if (quota === undefined || quota === '' || extra !== undefined) throw invalid(`cpu.max takes "$QUOTA [$PERIOD]", not ${JSON.stringify(value)}`);
      const q = quota === 'max' ? -1 : parseInRange(quota, 'cpu.max quota', 1, Number.MAX_SAFE_INTEGER);
      const writes: FileWrite[] = period === undefined ? [] : [{ file: 'cpu.cfs_period_us', value: String(parseInteger(period, 'cpu.max period')) }];
      writes.push({ file: 'cpu.cfs_quota_us', value: String(q) });
      return writes;
    },
  },
  {
    key: 'memory.max', on: 1, reads: ['memory.limit_in_bytes'], writes: ['memory.limit_in_bytes'],
    formula: 'memory.limit_in_bytes, max ↔ −1 (reads of 2^62 and above are max)',
    get: (cur) => {
      const n = readLimit(cur('memory.limit_in_bytes'));
      return n === undefined ? 'max' : String(n);
    },
    set: (value) => [{ file: 'memory.limit_in_bytes', value: v2BytesToV1(value, 'memory.max') }],
  },
  {
    key: 'memory.low', on: 1, reads: ['memory.soft_limit_in_bytes'], writes: ['memory.soft_limit_in_bytes'],
    formula: 'memory.soft_limit_in_bytes, max ↔ −1',
    get: (cur) => {
      const n = readLimit(cur('memory.soft_limit_in_bytes'));
      return n === undefined ? 'max' : String(n);
    },
    set: (value) => [{ file: 'memory.soft_limit_in_bytes', value: v2BytesToV1(value, 'memory.low') }],
  },
  {
    key: 'memory.swap.max', on: 1, reads: ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes'], writes: ['memory.memsw.limit_in_bytes'],
    formula: 'memory.memsw.limit_in_bytes = memory limit + swap.max (needs a memory limit; max ↔ −1); read: memsw − memory limit',
    get: (cur) => {
      const memsw = readLimit(cur('memory.memsw.limit_in_bytes'));
      const mem = readLimit(cur('memory.limit_in_bytes'));
      return memsw === undefined || mem === undefined ? 'max' : String(memsw - mem);
    },
    set: (value, cur) => {
      if (value === 'max' || value === '-1') return [{ file: 'memory.memsw.limit_in_bytes', value: '-1' }];
      const swap = parseBytes(value, 'memory.swap.max');
      const mem = readLimit(cur('memory.limit_in_bytes'));
      if (mem === undefined) throw invalid('memory.swap.max needs a memory limit first (memory.max / memory.limit_in_bytes)');
      return [{ file: 'memory.memsw.limit_in_bytes', value: String(mem + swap) }];
    },
  },
  {
    key: 'io.weight', on: 1, reads: ['blkio.weight'], writes: ['blkio.weight'],
    formula: 'blkio.weight = 10 + ⌈(weight − 1) × 990 / 9999⌉ ("N" or "default N", 1..10000); read: "default N"',
    get: (cur) => `default ${blkioToIoWeight(parseInteger(cur('blkio.weight'), 'blkio.weight'))}`,
    set: (value) => {
      const m = /^(?:default\s+)?(\S+)$/.exec(value.trim());
      if (!m) throw invalid(`io.weight on cgroup v1 takes "N" or "default N" (per-device weights are not translated), not ${JSON.stringify(value)}`);
      return [{ file: 'blkio.weight', value: String(ioToBlkioWeight(parseInRange(m[1] as string, 'io.weight', 1, 10000))) }];
    },
  },
  renamed('cpuset.cpus.effective', 1, 'cpuset.effective_cpus', false),
  renamed('cpuset.mems.effective', 1, 'cpuset.effective_mems', false),
  {
    key: 'cgroup.freeze', on: 1, reads: ['freezer.state'],
    formula: 'read: 0 when freezer.state is THAWED, else 1; set: see freeze and kill',
    get: (cur) => (cur('freezer.state').trim() === 'THAWED' ? '0' : '1'),
  },
];

const BY_KEY = new Map<string, KeyTranslation>(TRANSLATIONS.map((t) => [`${t.on}:${t.key}`, t]));

/** Every translation, for the README table and its test. */
export function allTranslations(): readonly KeyTranslation[] {
  return TRANSLATIONS;
}

/** The translation of `key` on a hierarchy of `version`, if the other version names it. */
export function translationOf(key: string, version: Version): KeyTranslation | undefined {
  return BY_KEY.get(`${version}:${key}`);
}

/** SetValue of a translated key: the writes, or undefined when `key` has no translation to set on `version`. */
export function translateSet(key: string, value: string, version: Version, current: Current): FileWrite[] | undefined {
  const t = translationOf(key, version);
  return t?.set?.(value.replace(/\n+$/, '').trim(), current);
}

/** GetValue of a translated key, or undefined when `key` has no translation on `version`. */
export function translateGet(key: string, version: Version, current: Current): string | undefined {
  return translationOf(key, version)?.get(current);
}

/** Freeze, thaw and kill a subtree, by any of their names on either version. */
export type SubtreeAction = { kind: 'freeze'; frozen: boolean } | { kind: 'kill' };

const ACTION_KEYS: ReadonlyMap<string, Readonly<Record<string, SubtreeAction>>> = new Map<string, Readonly<Record<string, SubtreeAction>>>([
  ['freezer.state', { FROZEN: { kind: 'freeze', frozen: true }, THAWED: { kind: 'freeze', frozen: false } }],
  ['cgroup.freeze', { 1: { kind: 'freeze', frozen: true }, 0: { kind: 'freeze', frozen: false } }],
  ['cgroup.kill', { 1: { kind: 'kill' } }],
]);

/** What SetValue of a freeze/kill key asks for; undefined for other keys; InvalidArgs for a bad value. */
export function subtreeActionOf(key: string, value: string): SubtreeAction | undefined {
  const values = ACTION_KEYS.get(key);
  if (values === undefined) return undefined;
  const v = value.trim();
  const action = Object.hasOwn(values, v) ? values[v] : undefined;
  if (action === undefined) throw invalid(`${key} takes ${Object.keys(values).join(' or ')}, not ${JSON.stringify(v)}`);
  return action;
}
