// The man pages are generated from the same commander programs and command table that
// parse the command lines: every subcommand and option appears, and man(1) renders them.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../client/cli/commands';
import { buildProgram } from '../../../client/cli/program';
import { escapeRoff, formatFlags } from '../../../client/man/roff';
import { renderManPages } from '../../../client/man/pages';
import { buildCommand } from '../../../daemon/options';
import { buildProxyCommand } from '../../../proxy/options';

const pages = new Map(renderManPages().map((p) => [p.file, p.text]));
const page = (file: string): string => pages.get(file) ?? '';
const longFlag = (flags: string): string => escapeRoff(/--[a-z-]+/.exec(flags)?.[0] ?? flags);
const hasMan = spawnSync('man', ['--version']).status === 0;

describe('man pages', () => {
  it('are cgm.1, cgmanager.8 and cgproxy.8, each with a .TH header and the usual sections', () => {
    expect([...pages.keys()]).toEqual(['cgm.1', 'cgmanager.8', 'cgproxy.8']);
    for (const [file, text] of pages) {
      const [name, section] = file.split('.');
      expect(text.startsWith(`.TH ${name?.toUpperCase()} ${section} `)).toBe(true);
      for (const sh of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'EXIT STATUS', 'SEE ALSO']) expect(text).toContain(`.SH ${sh}\n`);
    }
  });

  it('cgm(1) lists every subcommand with its arguments, and every global option', () => {
    for (const def of COMMANDS) {
      expect(page('cgm.1')).toContain(`\\fBcgm\\fR ${def.name}`);
      for (const arg of def.args) expect(page('cgm.1')).toContain(formatFlags(arg));
      for (const [flags] of def.options ?? []) expect(page('cgm.1')).toContain(longFlag(flags));
    }
    const program = buildProgram({ stdout: () => undefined, stderr: () => undefined, env: {} }, () => undefined);
    for (const o of program.options) expect(page('cgm.1')).toContain(longFlag(o.flags));
  });

  it.each([
    ['cgmanager.8', buildCommand({})],
    ['cgproxy.8', buildProxyCommand({})],
  ] as const)('%s lists every visible option and its default', (file, command) => {
    for (const o of command.options) {
      if (o.hidden) expect(page(file)).not.toContain(longFlag(o.flags));
      else expect(page(file)).toContain(formatFlags(o.flags));
      if (!o.hidden && typeof o.defaultValue === 'number') expect(page(file)).toContain(`(default: ${o.defaultValue})`);
    }
  });

  it.skipIf(!hasMan)('man -l renders each page without complaint (skipped when man(1) is not installed)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgm-man-'));
    try {
      for (const [file, text] of pages) {
        fs.writeFileSync(path.join(dir, file), text);
        const r = spawnSync('man', ['-l', path.join(dir, file)], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat', MAN_KEEP_FORMATTING: '' } });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        expect(r.stdout).toContain('NAME');
        expect(r.stdout).toContain('OPTIONS');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
