// Client-side validation of method arguments against the D-Bus signatures of the one
// interface table, so a caller learns of a bad argument from a TypeError that names it
// instead of from a marshalling failure or a daemon round trip.
import type { MethodSpec } from '../daemon/dbus/interface';

export const INT32_MIN = -0x80000000;
export const INT32_MAX = 0x7fffffff;

// A lone surrogate cannot be encoded as UTF-8: Buffer would silently turn it into
// U+FFFD, i.e. name a different cgroup than the caller meant.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

export function assertStringArg(method: string, name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${method}: ${name} must be a string, got ${describe(value)}`);
  if (value.includes('\0')) throw new TypeError(`${method}: ${name} must not contain NUL bytes`);
  if (LONE_SURROGATE.test(value)) throw new TypeError(`${method}: ${name} is not valid Unicode (lone surrogate)`);
}

export function assertInt32Arg(method: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${method}: ${name} must be an integer, got ${describe(value)}`);
  }
  if (value < INT32_MIN || value > INT32_MAX) {
    throw new TypeError(`${method}: ${name} must fit in a signed 32-bit integer (${INT32_MIN}..${INT32_MAX}), got ${value}`);
  }
}

export function assertUint32Arg(method: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new TypeError(`${method}: ${name} must be an unsigned 32-bit integer (0..4294967295), got ${describe(value)}`);
  }
}

/** Checks `args` against the in-arguments of `spec` (types 's', 'i', 'u', 'ai' and 'a{ss}'; plain methods only). */
export function assertArgs(spec: MethodSpec, args: readonly unknown[]): void {
  if (args.length !== spec.in.length) {
    throw new TypeError(`${spec.name}: expected ${spec.in.length} argument(s) (${spec.in.map((a) => a[0]).join(', ')}), got ${args.length}`);
  }
  spec.in.forEach(([name, type], i) => {
    const value = args[i];
    switch (type) {
      case 's':
        assertStringArg(spec.name, name, value);
        break;
      case 'i':
        assertInt32Arg(spec.name, name, value);
        break;
      case 'u':
        assertUint32Arg(spec.name, name, value);
        break;
      case 'ai':
        if (!Array.isArray(value)) throw new TypeError(`${spec.name}: ${name} must be an array of integers, got ${describe(value)}`);
        value.forEach((v, j) => assertInt32Arg(spec.name, `${name}[${j}]`, v));
        break;
      case 'a{ss}':
        if (!Array.isArray(value)) throw new TypeError(`${spec.name}: ${name} must be an array of [key, value] string pairs, got ${describe(value)}`);
        value.forEach((pair, j) => {
          if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`${spec.name}: ${name}[${j}] must be a [key, value] pair`);
          assertStringArg(spec.name, `${name}[${j}] key`, pair[0]);
          assertStringArg(spec.name, `${name}[${j}] value`, pair[1]);
        });
        break;
      default:
        // 'h' (the Scm variants' socket) is added by the Scm route, never by a caller.
        throw new TypeError(`${spec.name}: argument ${name} of type ${type} cannot be passed by a plain call`);
    }
  });
}
