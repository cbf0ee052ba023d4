import { describe, expect, it } from 'vitest';
import { findSkippedSuites, type VitestJsonReport } from '../../uml/skipped-suites';

const t = (suite: string, status: string): { ancestorTitles: string[]; title: string; status: string } => ({ ancestorTitles: [suite, 'inner'], title: 'x', status });
const report = (...files: Array<[string, ReturnType<typeof t>[], string?]>): VitestJsonReport => ({
  testResults: files.map(([name, assertionResults, status]) => ({ name: `/repo/${name}`, status: status ?? 'passed', assertionResults })),
});

describe('the UML lane refuses wholly skipped suites', () => {
  it.each([
    ['every suite ran', report(['a.test.ts', [t('A', 'passed'), t('A', 'skipped')]]), []],
    ['a failure is not a skip', report(['a.test.ts', [t('A', 'failed')]]), []],
    ['a whole file skipped', report(['a.test.ts', [t('A [skipped: no cgroup2]', 'skipped'), t('A [skipped: no cgroup2]', 'skipped')]]), ['a.test.ts: the whole suite "A [skipped: no cgroup2]" was skipped']],
    ['one of two describe blocks skipped', report(['a.test.ts', [t('A', 'passed'), t('B', 'pending')]]), ['a.test.ts: the whole suite "B" was skipped']],
    ['a suite whose beforeAll threw', report(['a.test.ts', [t('A', 'skipped')], 'failed']), ['a.test.ts: suite "A" failed before its tests (see its error above)']],
    ['a file that did not run', report(), ['a.test.ts: did not run']],
    ['a file with no tests', report(['a.test.ts', []]), ['a.test.ts: has no tests']],
    ['a file that failed to load is reported by vitest, not here', report(['a.test.ts', [], 'failed']), []],
  ])('%s', (_name, r, expected) => {
    expect(findSkippedSuites(r, ['a.test.ts'], '/repo')).toEqual(expected);
  });
});
