// How much longer than on a host the harness waits before giving up (never how long it sleeps
// when things go well). CGMT_TIME_SCALE, set by the UML lane (test/uml/lane.ts): a single-CPU
// UML guest runs Node and every syscall many times slower than the host.
export const TIME_SCALE = Math.max(1, Number(process.env.CGMT_TIME_SCALE) || 1);

/** `ms` scaled for this machine: use for timeouts that only matter when something hangs. */
export function slack(ms: number): number {
  return ms * TIME_SCALE;
}
