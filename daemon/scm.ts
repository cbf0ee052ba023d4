// The …Scm methods (reference §6): filled in by the nested-containers work.
import type { MethodHandler } from './dbus/server';
import type { Runtime } from './runtime';

export function createScmHandlers(_rt: Runtime): Array<[string, MethodHandler]> {
  return [];
}
