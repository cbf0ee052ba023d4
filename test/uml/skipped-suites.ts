// The UML lane's post-check on vitest's JSON report: a test file that did not run, or a suite
// (a file, or one of its top-level describe blocks) whose every test was skipped, is a failure
// there, since the lane only runs files on layouts that can hold them. Pure: no I/O.
import * as path from 'node:path';

/** The part of vitest's `--reporter=json` output this check reads. */
export interface VitestJsonReport {
  testResults: Array<{
    name: string;
    status?: string;
    message?: string;
    assertionResults: Array<{ ancestorTitles: string[]; title: string; status: string }>;
  }>;
}

const RAN = new Set(['passed', 'failed']);

/** One line per problem; [] when every expected file ran and no suite was wholly skipped. */
export function findSkippedSuites(report: VitestJsonReport, expectedFiles: readonly string[], root: string): string[] {
  const problems: string[] = [];
  const byFile = new Map(report.testResults.map((r) => [path.relative(root, r.name), r]));
  for (const file of expectedFiles) {
    const result = byFile.get(file);
    if (result === undefined) {
      problems.push(`${file}: did not run`);
      continue;
    }
    const tests = result.assertionResults;
    if (tests.length === 0) {
      // A file that failed to load (syntax, import, beforeAll) has no tests and a message.
      if (result.status !== 'failed') problems.push(`${file}: has no tests`);
      continue;
    }
    const suites = new Map<string, string[]>();
    for (const t of tests) {
      const suite = t.ancestorTitles[0] ?? '(top level)';
      suites.set(suite, [...(suites.get(suite) ?? []), t.status]);
    }
    for (const [suite, statuses] of suites) {
      if (statuses.some((s) => RAN.has(s))) continue;
      // vitest marks the tests of a suite whose beforeAll threw as skipped, and the file as failed.
      problems.push(result.status === 'failed' ? `${file}: suite "${suite}" failed before its tests (see its error above)` : `${file}: the whole suite "${suite}" was skipped`);
    }
  }
  return problems;
}
