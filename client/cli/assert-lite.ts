// Stands in for node:assert inside cgm's bundle only (esbuild --alias in package.json's
// build:extras): dbus-next's marshaller calls just assert() and assert.strictEqual(), and
// requiring node:assert loads some 50 internal modules, all of node:stream among them,
// which is a fifth of cgm's start-up. The daemon and the library use the real module.
function assert(value: unknown, message?: string): asserts value {
  if (!value) throw new Error(message ?? 'assertion failed');
}

assert.ok = assert;
assert.strictEqual = (actual: unknown, expected: unknown, message?: string): void => {
  if (actual !== expected) throw new Error(message ?? `expected ${String(expected)}, got ${String(actual)}`);
};

export = assert;
