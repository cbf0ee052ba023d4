// The daemon runs with the same V8 options however it is started (daemon/node-flags.ts): the
// installed `cgmanager` bin's shebang, the systemd unit, and the bench that measured them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS } from '../../../daemon/node-flags';
import { REPO_ROOT } from '../../helpers/requirements';

const read = (...p: string[]): string => fs.readFileSync(path.join(REPO_ROOT, ...p), 'utf8');

describe('the daemon V8 options', () => {
  it('are in the shebang of daemon/main.ts (the cgmanager bin), through env -S', () => {
    expect(read('daemon', 'main.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`);
  });

  it('are in cgmanager.service ExecStart, before the script', () => {
    const exec = /^ExecStart=(.*)$/m.exec(read('systemd', 'cgmanager.service'))?.[1] ?? '';
    expect(exec.startsWith(`node ${DAEMON_NODE_FLAGS.join(' ')} /`)).toBe(true);
  });

  it('are what the bench starts the daemon with', () => {
    expect(read('test', 'bench', 'run.ts')).toMatch(/\.\.\.DAEMON_NODE_FLAGS, main/);
  });

  it('are V8 options this node accepts', () => {
    for (const flag of DAEMON_NODE_FLAGS) expect(process.allowedNodeEnvironmentFlags.has(flag.split('=')[0] as string), flag).toBe(true);
  });
});
