// The integration-test harness in one import: private cgroup layouts with a real daemon,
// client runners (gdbus, busctl, dbus-send, raw), identities, snapshots and skip reasons.
export * from './test-daemon';
export * from './dbus-tools';
export * from './raw-client';
export * from './snapshot';
export * from './requirements';
export * from './userns';
export { procCgroupPath, joinCg, removeCgroupTree, V2_LEAF, versionOf, type HierarchyLabel } from './cgroup-fs';
export { waitFor, runCommand, isAlive, type RunResult } from './processes';
export * from './assertions';
export * from './limits';
export { slack, TIME_SCALE } from './slack';
export * from './big-tree';
