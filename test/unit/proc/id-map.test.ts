import { describe, expect, it } from 'vitest';
import { hostIdToNs, nsIdToHost, parseIdMap, type IdMapRange } from '../../../daemon/proc/id-map';

const INITIAL = '         0          0 4294967295\n';
const CHILD = '         0     100000      65536\n';
const SPLIT = '0 1000 1\n1 100000 65536\n';

describe('parseIdMap', () => {
  it.each<[string, string, IdMapRange[]]>([
    ['initial user namespace (padded as the kernel prints it)', INITIAL, [{ inside: 0, outside: 0, count: 4294967295 }]],
    ['child namespace', CHILD, [{ inside: 0, outside: 100000, count: 65536 }]],
    ['two ranges, in order', SPLIT, [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }]],
    ['empty file (map not written yet)', '', []],
    ['no trailing newline', '0 100000 65536', [{ inside: 0, outside: 100000, count: 65536 }]],
    ['tabs and surrounding blanks', '\t0\t100000\t65536  \n', [{ inside: 0, outside: 100000, count: 65536 }]],
    ['blank lines skipped', '\n\n0 1 2\n\n', [{ inside: 0, outside: 1, count: 2 }]],
    ['two fields: malformed, skipped', '0 100000\n5 6 7\n', [{ inside: 5, outside: 6, count: 7 }]],
    ['four fields: malformed, skipped', '0 100000 65536 9\n', []],
    ['negative number: skipped', '-1 0 1\n', []],
    ['non-numeric: skipped', 'a b c\n0 x 1\n', []],
    ['hex: skipped', '0x0 0 1\n', []],
    ['number above 32 bits: skipped', '0 4294967296 1\n', []],
    ['zero count: maps nothing, dropped', '0 0 0\n', []],
    ['outside + count = 2^32 overflows: dropped', '0 1 4294967295\n', []],
    ['inside + count = 2^32 overflows: dropped', '1 0 4294967295\n', []],
    ['outside + count far past 2^32: dropped', '0 4294967000 1000\n', []],
    ['last valid range ends at 2^32 - 1', '0 4294967294 1\n', [{ inside: 0, outside: 4294967294, count: 1 }]],
    ['a bad line does not drop the good ones', '1 0 4294967295\n0 100000 65536\n', [{ inside: 0, outside: 100000, count: 65536 }]],
  ])('%s', (_name, text, expected) => {
    expect(parseIdMap(text)).toEqual(expected);
  });
});

describe('hostIdToNs (reference §4.1)', () => {
  const initial = parseIdMap(INITIAL);
  const child = parseIdMap(CHILD);
  const split = parseIdMap(SPLIT);

  it.each<[string, number, readonly IdMapRange[] | undefined, number | undefined]>([
    ['initial ns: 0 maps to itself', 0, initial, 0],
    ['initial ns: 1000 maps to itself', 1000, initial, 1000],
    ['initial ns: 4294967294 maps to itself', 4294967294, initial, 4294967294],
    ['initial ns: (uid_t)-1 is never mapped', 4294967295, initial, undefined],
    ['child: first of range', 100000, child, 0],
    ['child: inside range', 100500, child, 500],
    ['child: last of range', 165535, child, 65535],
    ['child: just past range', 165536, child, undefined],
    ['child: just before range', 99999, child, undefined],
    ['child: host root unmapped', 0, child, undefined],
    ['child: host 1000 unmapped', 1000, child, undefined],
    ['split map: single-id range', 1000, split, 0],
    ['split map: second range', 100000, split, 1],
    ['unreadable map: nothing is mapped', 0, undefined, undefined],
    ['unreadable map: not even 100000', 100000, undefined, undefined],
    ['empty map: nothing is mapped', 0, [], undefined],
    ['-1 (unreadable uid) is never mapped', -1, initial, undefined],
    ['non-integer is never mapped', 1.5, initial, undefined],
    ['NaN is never mapped', Number.NaN, initial, undefined],
  ])('%s', (_name, hostId, ranges, expected) => {
    expect(hostIdToNs(hostId, ranges)).toBe(expected);
  });
});

describe('nsIdToHost', () => {
  const initial = parseIdMap(INITIAL);
  const child = parseIdMap(CHILD);
  const split = parseIdMap(SPLIT);

  it.each<[string, number, readonly IdMapRange[] | undefined, number | undefined]>([
    ['initial ns: identity', 1000, initial, 1000],
    ['child: ns root is host 100000', 0, child, 100000],
    ['child: ns 500 is host 100500', 500, child, 100500],
    ['child: ns 65535 is the last host id', 65535, child, 165535],
    ['child: ns 65536 is unmapped', 65536, child, undefined],
    ['split map: ns 0 is host 1000', 0, split, 1000],
    ['split map: ns 1 is host 100000', 1, split, 100000],
    ['unreadable map', 0, undefined, undefined],
    ['negative id', -1, child, undefined],
  ])('%s', (_name, nsId, ranges, expected) => {
    expect(nsIdToHost(nsId, ranges)).toBe(expected);
  });

  it.each([0, 1, 500, 65535])('round-trips ns id %i through the child map', (nsId) => {
    const host = nsIdToHost(nsId, child);
    expect(host).toBeDefined();
    expect(hostIdToNs(host as number, child)).toBe(nsId);
  });
});
