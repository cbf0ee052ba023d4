#!/usr/bin/env node
// The installed `cgm` (package.json bin): runs cgm's bundle (cgm-bundle-code.js, esbuild)
// with V8's code cache for it (cgm-bundle-code.cache, written at build time by
// cli/build-code-cache.ts after a real `cgm ping`), so that V8 neither compiles the bundle
// nor the functions a command runs: about 4 ms of cgm's start-up (README, "cgm start-up").
// Without a usable cache (none, another Node, or another build of the code) the bundle is
// compiled as usual: slower, same behaviour.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script } from 'node:vm';

export const CODE_FILE = join(__dirname, 'cgm-bundle-code.js');
export const CACHE_FILE = join(__dirname, 'cgm-bundle-code.cache');

/**
 * The code's last line names its build (`// cgm-build <id>`) and the cache starts with
 * the same line: V8 checks only the source's length against a cache, so a cache left over
 * from another build of the same length would run that build's bytecode.
 */
export const BUILD_MARK = '// cgm-build ';

/**
 * Node's CommonJS wrapper, so the bundle sees require and __dirname as if loaded by
 * require(); its `#!` line, valid only at the very start of a script, becomes a comment.
 */
export function wrapCode(code: string): string {
  const body = code.startsWith('#!') ? `//${code.slice(2)}` : code;
  return `(function (exports, require, module, __filename, __dirname) {${body}\n})`;
}

/** The cache bytes for `code`, or undefined when the cache file is missing or from another build. */
function cacheFor(code: string): Buffer | undefined {
  let cache: Buffer;
  try {
    cache = readFileSync(CACHE_FILE);
  } catch {
    return undefined;
  }
  const eol = cache.indexOf(10);
  const mark = eol > 0 ? cache.toString('latin1', 0, eol) : '';
  return mark.startsWith(BUILD_MARK) && code.endsWith(`\n${mark}\n`) ? cache.subarray(eol + 1) : undefined;
}

export type BundleFunction = (exports: object, require: NodeJS.Require, module: { exports: object }, filename: string, dirname: string) => void;

/** Compiles the bundle, with the cache when it fits; `script.cachedDataRejected` says whether V8 took it. */
export function compileBundle(code: string, useCache = true): { script: Script; run: BundleFunction } {
  const cachedData = useCache ? cacheFor(code) : undefined;
  const script = new Script(wrapCode(code), { filename: CODE_FILE, cachedData });
  return { script, run: script.runInThisContext() as BundleFunction };
}

/** Runs cgm's bundle as this process's main program. */
export function runBundle(run: BundleFunction): void {
  const module = { exports: {} };
  run(module.exports, require, module, CODE_FILE, __dirname);
}

// esbuild writes ASCII only (its default charset), so latin1 reads the same text without decoding UTF-8.
if (require.main === module) runBundle(compileBundle(readFileSync(CODE_FILE, 'latin1')).run);
