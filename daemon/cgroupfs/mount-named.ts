// -m/--mount: mounts named v1 hierarchies that are not mounted yet under a directory the
// daemon owns (never over /sys/fs/cgroup). Runs once at start-up, before discovery; the
// hierarchies it mounts get the daemon's release agent (release-agent.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Logger } from '../logger';
import { discoverLayout } from './discover';

/** Accepts 'name=X' (or 'X'); returns the bare names to make sure of. */
export function parseMountList(list: readonly string[]): string[] {
  return list.map((entry) => (entry.startsWith('name=') ? entry.slice(5) : entry)).filter((n) => /^[A-Za-z0-9_.-]+$/.test(n));
}

export function mountNamedHierarchies(list: readonly string[], mountDir: string, log: Logger): void {
  const wanted = parseMountList(list);
  const layout = discoverLayout();
  for (const name of wanted) {
    if (layout.find(`name=${name}`)) continue;
    const target = path.join(mountDir, `name=${name}`);
    fs.mkdirSync(target, { recursive: true, mode: 0o755 });
    try {
      execFileSync('mount', ['-t', 'cgroup', '-o', `none,name=${name}`, `cgroup`, target], { stdio: ['ignore', 'ignore', 'pipe'] });
      log.info({ hierarchy: `name=${name}`, mountPoint: target }, 'mounted named hierarchy');
    } catch (err) {
      log.warn({ hierarchy: `name=${name}`, err: String((err as { stderr?: Buffer }).stderr ?? err) }, 'cannot mount named hierarchy');
    }
  }
}
