// The installed cgm (dist/client/cgm-bundle.js: the esbuild bundle run through its V8 code
// cache) against the real daemon: the same stdout, stderr and exit status as the unbundled
// dist/client/cgm.js for every kind of command, its code cache taken by V8, and a cache
// left from another build never used.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason, startTestDaemon, titled, type TestDaemon } from '../../helpers';
import { REPO_ROOT } from '../../helpers/requirements';

const DIST = path.join(REPO_ROOT, 'dist', 'client');
const CGM = path.join(DIST, 'cgm.js');
const BUNDLE = path.join(DIST, 'cgm-bundle.js');
const CODE = path.join(DIST, 'cgm-bundle-code.js');
const CACHE = path.join(DIST, 'cgm-bundle-code.cache');
const ADDON = path.join(REPO_ROOT, 'addon', 'build', 'Release', 'cgm_native.node');

function bundleProblem(): string | undefined {
  // Only the entry points: a build without the bundle's code or cache is what must fail here.
  const missing = [CGM, BUNDLE].find((f) => !fs.existsSync(f));
  return missing ? `${missing} is not built; run npm run build` : undefined;
}

const reason = skipReason({ named: 1 }) ?? bundleProblem();

/** How V8 took the cache when `loader` compiled `codeFile`: false = used, true = refused, undefined = not offered. */
function cacheVerdict(loader: string, codeFile: string): boolean | undefined {
  const script = `const b = require(${JSON.stringify(loader)}); const { script } = b.compileBundle(require('node:fs').readFileSync(${JSON.stringify(codeFile)}, 'latin1')); process.stdout.write(String(script.cachedDataRejected));`;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  return out === 'undefined' ? undefined : out === 'true';
}

describe.skipIf(reason !== undefined)(titled('the installed cgm (bundle + code cache) against the real daemon', reason), () => {
  let env: TestDaemon;
  let N: string;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1 });
    N = env.named[0] as string;
  });

  afterAll(async () => {
    await env?.stop();
  });

  const run = async (entry: string, args: readonly string[]) => {
    const r = await env.run([process.execPath, entry, ...args]);
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  };

  it('prints byte for byte what the unbundled cgm prints, successes and failures alike', async () => {
    const S = ['--socket', env.socket];
    const cases: string[][] = [
      [...S, 'ping'],
      [...S, 'listcontrollers'],
      [...S, 'listcontrollers', '--json'],
      [...S, 'create', N, 'b1'],
      [...S, 'create', N, 'b1'],
      [...S, 'getpidcgroup', N, String(process.pid)],
      [...S, 'listchildren', N, ''],
      [...S, 'listkeys', N, 'b1'],
      [...S, 'gettasks', N, 'b1', '--json'],
      [...S, 'getvalue', N, 'b1', 'nosuchkey'],
      [...S, 'getvalue', 'nosuchcontroller', 'b1', 'tasks'],
      [...S, 'remove', N, 'b1'],
      [...S, 'remove', N, 'b1'],
      [...S, 'nosuch'],
      ['help', 'ping'],
      ['--socket', path.join(env.dir, 'nobody-here'), 'ping'],
    ];
    // The sequence leaves the hierarchy as it found it, so each cgm runs all of it in turn.
    const outputs = async (entry: string) => {
      const all = [];
      for (const args of cases) all.push({ args: args.join(' '), ...(await run(entry, args)) });
      return all;
    };
    const unbundled = await outputs(CGM);
    expect(unbundled.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1]);
    expect(await outputs(BUNDLE)).toEqual(unbundled);
  });

  it('V8 takes the code cache written at build time', () => {
    expect(fs.readFileSync(CACHE, 'latin1').split('\n', 1)[0]).toBe(fs.readFileSync(CODE, 'latin1').trimEnd().split('\n').at(-1));
    expect(cacheVerdict(BUNDLE, CODE)).toBe(false);
  });

  it('a cache from another build of the code is not offered to V8, and cgm still works', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-bundle-'));
    try {
      for (const f of [BUNDLE, CACHE]) fs.copyFileSync(f, path.join(dir, path.basename(f)));
      // As esbuild writes it again without the build step that marks it and takes the cache:
      // the same length would have fooled V8, which checks only that.
      const code = fs.readFileSync(CODE, 'latin1').replace(/\n\/\/ cgm-build [0-9a-f]+\n$/, '\n');
      fs.writeFileSync(path.join(dir, path.basename(CODE)), code, 'latin1');
      expect(cacheVerdict(path.join(dir, 'cgm-bundle.js'), path.join(dir, path.basename(CODE)))).toBeUndefined();
      const r = await env.run([process.execPath, path.join(dir, 'cgm-bundle.js'), '--socket', env.socket, 'ping'], { env: { CGMANAGER_ADDON: ADDON } });
      expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
