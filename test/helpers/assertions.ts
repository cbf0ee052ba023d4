// Small checks shared by the integration tests that explain themselves when they fail: a call
// that should have succeeded reports its error, the client's stderr and the daemon's own errors.
import type { CallResult } from './dbus-tools';
import type { TestDaemon } from './test-daemon';

/** The daemon's error-level log lines (its own faults), for failure messages. */
export function daemonErrors(env: TestDaemon): string {
  return env
    .logLines()
    .filter((l) => l.level === 'error' || l.level === 'fatal')
    .map((l) => JSON.stringify(l))
    .join('\n');
}

/** The reply values of a call that must have succeeded; otherwise throws with everything useful. */
export function okValues(r: CallResult, env?: TestDaemon): unknown[] {
  if (r.ok) return r.values;
  const errors = env ? daemonErrors(env) : '';
  throw new Error(
    `${r.tool} (pid ${r.pid}) failed: ${r.errorName ?? '(no error name)'}: ${r.errorMessage ?? ''}\n` +
      `client stderr: ${r.stderr.slice(-600)}${errors ? `\ndaemon errors:\n${errors}` : ''}`,
  );
}
