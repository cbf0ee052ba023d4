// The V8 options the daemon runs with, wherever it is started: the `cgmanager` bin's
// shebang (daemon/main.ts), systemd/cgmanager.service's ExecStart and the bench all use
// these (test/unit/daemon/node-flags.test.ts keeps them equal).
//
// --max-semi-space-size=2: V8's young generation otherwise grows to 3 x 16 MiB under load
// and is never given back, so a daemon holding 5 000 idle connections kept ~113 MiB RSS;
// with 2 MiB semi-spaces the memory reducer brings it to ~73 MiB once the connections are
// quiet, scavenges pause for well under a millisecond instead of 3-6 ms, and CPU per call
// is unchanged within the bench's noise (README, Performance).
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
