// The package as users get it: `npm pack`, `npm install -g` into a temporary prefix (offline:
// the dependencies travel in the tarball, the addon is compiled by the install script), then
// the installed `cgmanager` serves private named hierarchies, the installed `cgm` pings it,
// a script resolves `cgmanager/client` (and tsc its types) against the install, and a
// missing or broken addon is one line and exit 1 from all three programs. Removes it all.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, skipReason, startTestDaemon, titled, type TestDaemon } from '../../helpers';
import { REPO_ROOT } from '../../helpers/requirements';
import { API_VERSION } from '../../../daemon/dbus/interface';
import { DAEMON_NODE_FLAGS } from '../../../daemon/node-flags';
import { CLIENT_ENV } from '../../helpers/processes';

const NODE_DIR = fs.existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined;

function toolReason(): string | undefined {
  for (const tool of ['npm', 'make', 'g++', 'python3', 'tar']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs ${tool} (npm pack and the addon build)`;
    }
  }
  return undefined;
}

const reason = skipReason({ named: 2 }) ?? toolReason();

/** Where the tests' node lives first on PATH: the bins' `#!/usr/bin/env node` must find it. */
const PATH = `${path.dirname(process.execPath)}:${CLIENT_ENV.PATH ?? ''}`;

/** A copy of what `npm pack` packs, with real (not symlinked) production dependencies. */
function stagePackage(stage: string): void {
  const copy = (rel: string): void => fs.cpSync(path.join(REPO_ROOT, rel), path.join(stage, rel), { recursive: true, dereference: true });
  for (const rel of ['package.json', 'README.md', 'addon/binding.gyp', 'addon/src', 'systemd', 'dist/addon', 'dist/client', 'dist/daemon', 'dist/proxy', 'dist/man']) copy(rel);
  // bundleDependencies: the production closure from the lockfile (a developer's node_modules
  // may be a symlink, which npm pack would not follow).
  const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
  for (const [key, meta] of Object.entries(lock.packages)) {
    if (!key.startsWith('node_modules/') || meta.dev === true) continue;
    const from = path.join(REPO_ROOT, key);
    if (fs.existsSync(from)) copy(key);
    else if (meta.optional !== true) throw new Error(`production dependency ${key} is not installed; run npm ci`);
  }
}

describe.skipIf(reason !== undefined)(titled('npm pack, npm install -g, run from the install', reason), () => {
  let tmp: string;
  let prefix: string;
  let installed: string;
  let tarball: string;
  let env: TestDaemon | undefined;
  const bin = (name: string): string => path.join(prefix, 'bin', name);
  const run = (argv: readonly string[], extra: NodeJS.ProcessEnv = {}) => runCommand(argv, { env: { ...CLIENT_ENV, PATH, ...extra }, timeoutMs: 120_000 });

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-pack-'));
    fs.chmodSync(tmp, 0o755);
    prefix = path.join(tmp, 'prefix');
    installed = path.join(prefix, 'lib', 'node_modules', 'cgmanager');
    // The build's last steps (bundle and man pages), in case only tsc ran.
    const extras = await runCommand(['npm', 'run', '--silent', 'build:extras'], { cwd: REPO_ROOT, env: { ...CLIENT_ENV, PATH, HOME: tmp, npm_config_cache: path.join(tmp, 'npm-cache') }, timeoutMs: 120_000 });
    expect(extras.code, extras.stderr).toBe(0);
    const stage = path.join(tmp, 'stage');
    stagePackage(stage);
    // A code cache that does not fit, as one built by another Node would not: the install
    // step must write one for the installing Node (checked below).
    fs.writeFileSync(path.join(stage, 'dist', 'client', 'cgm-bundle-code.cache'), '// cgm-build another-build\n');
    const npmEnv = { HOME: tmp, npm_config_cache: path.join(tmp, 'npm-cache'), npm_config_update_notifier: 'false', ...(NODE_DIR ? { npm_config_nodedir: NODE_DIR } : {}) };
    const pack = await runCommand(['npm', 'pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: stage, env: { ...CLIENT_ENV, PATH, ...npmEnv }, timeoutMs: 300_000 });
    expect(pack.code, pack.stderr).toBe(0);
    tarball = path.join(tmp, pack.stdout.trim().split('\n').at(-1) ?? '');
    const install = await runCommand(['npm', 'install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball], {
      cwd: tmp,
      env: { ...CLIENT_ENV, PATH, ...npmEnv },
      timeoutMs: 300_000,
    });
    expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
  }, 600_000);

  afterAll(async () => {
    await env?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('the tarball holds the built JS, types, man pages, addon sources and dependencies, not tests or builds', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    for (const f of ['dist/client/cgm-bundle.js', 'dist/client/cgm-bundle-code.js', 'dist/client/cgm-bundle-code.cache', 'dist/client/index.d.ts', 'dist/daemon/main.js', 'dist/proxy/main.js', 'dist/man/cgm.1', 'dist/man/cgmanager.8', 'dist/man/cgproxy.8', 'addon/binding.gyp', 'addon/src/native.cc', 'systemd/cgmanager.service', 'node_modules/commander/package.json', 'node_modules/dbus-next/package.json', 'node_modules/pino/package.json']) {
      expect(files).toContain(`package/${f}`);
    }
    expect(files.filter((f) => f.startsWith('package/dist/test/') || f.startsWith('package/addon/build/') || (f.startsWith('package/dist/') && f.endsWith('.map')))).toEqual([]);
  });

  it('puts cgmanager, cgm and cgproxy on PATH, their man pages in share/man, and builds the addon', () => {
    for (const name of ['cgmanager', 'cgm', 'cgproxy']) {
      fs.accessSync(bin(name), fs.constants.X_OK);
      // The daemon's V8 options ride in its shebang (daemon/node-flags.ts).
      const shebang = name === 'cgmanager' ? `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}\n` : '#!/usr/bin/env node\n';
      expect(fs.readFileSync(bin(name), 'utf8').startsWith(shebang)).toBe(true);
    }
    for (const page of ['man1/cgm.1', 'man8/cgmanager.8', 'man8/cgproxy.8']) expect(fs.existsSync(path.join(prefix, 'share', 'man', page))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'addon', 'build', 'Release', 'cgm_native.node'))).toBe(true);
  });

  it('the installed cgmanager serves, the installed cgm pings it and lists its hierarchies', async () => {
    env = await startTestDaemon({ named: 2, daemonCommand: [bin('cgmanager')] });
    const ping = await env.run([bin('cgm'), '--socket', env.socket, 'ping'], { env: { PATH } });
    expect(ping).toMatchObject({ code: 0, stdout: '', stderr: '' });
    // The installed cgm hands V8 the code cache the install step wrote, and V8 takes it.
    const loader = path.join(installed, 'dist', 'client', 'cgm-bundle.js');
    const verdict = execFileSync(process.execPath, ['-e', `const b = require(${JSON.stringify(loader)}); process.stdout.write(String(b.compileBundle(require('node:fs').readFileSync(b.CODE_FILE, 'latin1')).script.cachedDataRejected));`], { encoding: 'utf8' });
    expect(verdict).toBe('false');
    const list = await env.run([bin('cgm'), '--socket', env.socket, 'listcontrollers'], { env: { PATH } });
    expect(list.code, list.stderr).toBe(0);
    for (const label of env.named) expect(list.stdout.split('\n')).toContain(label);
    // Help and usage errors leave the bundle's fast path for the full command line.
    const help = await run([bin('cgm'), 'help', 'ping']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: cgm ping');
    expect(await run([bin('cgm'), 'nosuch'])).toMatchObject({ code: 1, stdout: '', stderr: 'cgm: unknown command: nosuch; see cgm help\n' });
  });

  it('a script requires cgmanager/client from the install; tsc finds its types', async () => {
    if (!env) throw new Error('needs the daemon of the previous test');
    const app = path.join(tmp, 'app');
    fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true });
    fs.symlinkSync(installed, path.join(app, 'node_modules', 'cgmanager'));
    const script = [
      "const { connect, isCgmanagerError } = require('cgmanager/client');",
      'const [socket, controller] = process.argv.slice(2);',
      '(async () => {',
      '  const cgm = await connect({ socket, timeoutMs: 10000 });',
      "  const made = !(await cgm.create(controller, 'fromlib'));",
      "  const children = await cgm.listChildren(controller, '');",
      "  const removed = await cgm.remove(controller, 'fromlib', false);",
      "  let code = '';",
      "  try { await cgm.getValue(controller, 'fromlib', 'tasks'); } catch (err) { code = isCgmanagerError(err) ? err.code : 'other'; }",
      '  const apiVersion = await cgm.apiVersion();',
      '  await cgm.close();',
      '  console.log(JSON.stringify({ made, children, removed, code, apiVersion }));',
      '})();',
    ].join('\n');
    fs.writeFileSync(path.join(app, 'use.js'), script);
    fs.chmodSync(tmp, 0o755);
    const named = env.named[0] as string;
    const r = await env.run([process.execPath, path.join(app, 'use.js'), env.socket, named], { env: { PATH } });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { made: boolean; children: string[]; removed: boolean; code: string; apiVersion: number };
    expect(out).toMatchObject({ made: true, removed: true, code: 'FileNotFound', apiVersion: API_VERSION });
    expect(out.children).toContain('fromlib');

    // The types: a TypeScript user importing 'cgmanager/client' (and the package root) under
    // node16 resolution, which honours package.json "exports".
    const ts = [
      "import { connect, type CgmanagerClient, type KeyInfo, type CgmanagerErrorCode } from 'cgmanager/client';",
      "import * as root from 'cgmanager';",
      'export async function f(): Promise<KeyInfo[]> {',
      "  const c: CgmanagerClient = await connect({ socket: '/x', timeoutMs: 1 });",
      "  const code: CgmanagerErrorCode = 'AccessDenied';",
      '  void code; void root.connect;',
      "  return c.listKeys('memory', '');",
      '}',
    ].join('\n');
    fs.writeFileSync(path.join(app, 'use.ts'), ts);
    const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const typeRoots = path.join(REPO_ROOT, 'node_modules', '@types');
    const check = await run([process.execPath, tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--types', 'node', '--typeRoots', typeRoots, '--skipLibCheck', 'false', path.join(app, 'use.ts')]);
    expect(check.stdout + check.stderr).toBe('');
    expect(check.code).toBe(0);
  }, 120_000);

  it('a missing or broken addon is one line on stderr and exit 1, from each program', async () => {
    const addon = path.join(installed, 'addon', 'build', 'Release', 'cgm_native.node');
    const saved = `${addon}.saved`;
    fs.renameSync(addon, saved);
    try {
      const socket = path.join(tmp, 'nosock');
      const programs: Array<[string, string[]]> = [
        ['cgm', ['--socket', socket, 'ping']],
        ['cgmanager', ['--socket', socket]],
        ['cgproxy', ['--check-master', '--socket', socket, '--upstream', socket]],
      ];
      for (const broken of [false, true]) {
        if (broken) fs.writeFileSync(addon, 'not an ELF file\n');
        for (const [name, args] of programs) {
          const r = await run([bin(name), ...args]);
          expect(r.code, `${name}: ${r.stderr}`).toBe(1);
          expect(r.stdout).toBe('');
          const lines = r.stderr.split('\n');
          expect(lines, r.stderr).toHaveLength(2);
          expect(lines[0]).toMatch(broken ? new RegExp(`^${name}: .*cannot load the native addon .*cgm_native\\.node`) : new RegExp(`^${name}: .*native addon not built`));
          expect(lines[0]).toContain('npm rebuild cgmanager');
        }
      }
    } finally {
      fs.rmSync(addon, { force: true });
      fs.renameSync(saved, addon);
    }
  }, 120_000);
});
