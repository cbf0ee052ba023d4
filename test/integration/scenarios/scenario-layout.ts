// The layouts the seed scenarios run on: real v1 controllers (each its own hierarchy, as on
// this host and in `uml-run --layout v1`, or co-mounted: `--layout v1-comount`, `v1-all`) or a
// cgroup2 whose controllers reach the test's cgroup (`uml-run --layout v2`). Each says visibly why it cannot run where it cannot.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe } from 'vitest';
import * as path from 'node:path';
import { connect, type CgmanagerClient } from '../../../client';
import { availableV1Controllers, procCgroupPath, skipReason, startTestDaemon, titled, type HierarchyLabel, type TestDaemon } from '../../helpers';
import { hostCgroupMounts } from '../../helpers/leftovers';

export type Kind = 'memory' | 'cpu' | 'pids' | 'cpuset' | 'freezer';
export type LayoutName = 'v1' | 'v2';

const REQUIRED: readonly Kind[] = ['memory', 'cpu', 'pids'];
const OPTIONAL_V1: readonly Kind[] = ['cpuset', 'freezer'];

/** The controllers cgroup2 offers to children of the test's own cgroup (its cgroup.subtree_control). */
function offeredV2Controllers(): { controllers: string[]; where: string } | undefined {
  const mount = hostCgroupMounts().find((m) => m.label === 'unified');
  if (mount === undefined) return undefined;
  const own = procCgroupPath('self', 'unified') ?? '/';
  const dir = path.join(mount.mountPoint, own);
  try {
    return { controllers: fs.readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter((c) => c !== ''), where: dir };
  } catch {
    return undefined;
  }
}

export function layoutSkipReason(layout: LayoutName): string | undefined {
  if (layout === 'v1') {
    const missing = REQUIRED.filter((c) => availableV1Controllers([c]).length === 0);
    if (missing.length > 0) return `no v1 hierarchy for ${missing.join(', ')} on this host (run under uml-run --layout v1)`;
    return skipReason({ controllers: [...REQUIRED] });
  }
  const base = skipReason({ cgroup2: true });
  if (base !== undefined) return base;
  const offered = offeredV2Controllers();
  const missing = REQUIRED.filter((c) => !offered?.controllers.includes(c));
  if (missing.length > 0) {
    return `cgroup2 here does not offer ${missing.join(', ')} to the test's cgroup (${offered?.where ?? 'no cgroup2'} enables: ${offered?.controllers.join(' ') || 'nothing'}; this hybrid host's cgroup2 has almost no controllers); run under uml-run --layout v2`;
  }
  return undefined;
}

/** Keys of swap limits: they exist only where the kernel was built with swap accounting. */
export const isSwapKey = (key: string): boolean => key.includes('memsw') || key.includes('swap');

export interface ScenarioEnv {
  readonly layout: LayoutName;
  readonly env: TestDaemon;
  readonly client: CgmanagerClient;
  /** whether the layout has this controller */
  has(kind: Kind): boolean;
  /** the controller argument that reaches `kind`'s files ('unified' for freezing on v2) */
  controller(kind: Kind): string;
  /** the hierarchy label holding `kind`'s files */
  label(kind: Kind): HierarchyLabel;
  /** the host path of `file` in cgroup `rel` (below the bases) of `kind`'s hierarchy */
  file(kind: Kind, rel: string, file: string): string;
  /** the kernel's own contents of that file, trimmed */
  read(kind: Kind, rel: string, file: string): string;
  /** whether cgroup `rel` has this version's swap limit file (swap accounting is a kernel option) */
  hasSwapAccounting(rel: string): boolean;
  stop(): Promise<void>;
}

function labelOf(layout: LayoutName, kind: Kind): HierarchyLabel {
  return layout === 'v2' ? 'unified' : kind;
}

/** Starts the daemon on the layout, with the cgroup controllers enabled for the bases' children. */
export async function startScenario(layout: LayoutName): Promise<ScenarioEnv> {
  const v1 = layout === 'v1' ? [...REQUIRED, ...availableV1Controllers(OPTIONAL_V1)] : [];
  const env = await startTestDaemon(layout === 'v1' ? { controllers: v1 } : { cgroup2: true });
  let client: CgmanagerClient | undefined;
  try {
    const offered = layout === 'v2' ? (offeredV2Controllers()?.controllers ?? []) : [];
    if (layout === 'v2') {
      // The base has no tasks, so it may hand every offered controller to the containers.
      fs.writeFileSync(env.fsPath('unified', '', 'cgroup.subtree_control'), offered.map((c) => `+${c}`).join(' '));
    } else if (v1.includes('cpuset')) {
      // A new v1 cpuset cgroup starts with no cpus and mems; the base takes its parent's.
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        fs.writeFileSync(env.fsPath('cpuset', '', f), fs.readFileSync(path.join(path.dirname(env.fsPath('cpuset')), f)));
      }
    }
    client = await connect({ socket: env.socket });
    const c = client;
    const has = (kind: Kind): boolean => (layout === 'v1' ? v1.includes(kind) : kind === 'freezer' || offered.includes(kind));
    return {
      layout,
      env,
      client: c,
      has,
      controller: (kind) => (layout === 'v2' && kind === 'freezer' ? 'unified' : kind),
      label: (kind) => labelOf(layout, kind),
      file: (kind, rel, file) => env.fsPath(labelOf(layout, kind), rel, file),
      read: (kind, rel, file) => fs.readFileSync(env.fsPath(labelOf(layout, kind), rel, file), 'utf8').trim(),
      hasSwapAccounting: (rel) => fs.existsSync(env.fsPath(labelOf(layout, 'memory'), rel, layout === 'v1' ? 'memory.memsw.limit_in_bytes' : 'memory.swap.max')),
      stop: async () => {
        await c.close();
        await env.stop();
      },
    };
  } catch (err) {
    await client?.close();
    await env.stop();
    throw err;
  }
}

/**
 * A scenario file's one top-level suite, with a half per layout: where a layout lacks the
 * controllers (or `otherReason` names something else it lacks), only that half is skipped,
 * visibly, so the UML lane never sees a wholly skipped suite. `body` reaches the half's
 * running scenario through `s()`: started before its tests, stopped after them.
 */
export function describeOnEachLayout(title: string, body: (s: () => ScenarioEnv, layout: LayoutName) => void, otherReason?: (layout: LayoutName) => string | undefined): void {
  describe(title, () => {
    describe.each<LayoutName>(['v1', 'v2'])('on %s', (layout) => {
      const reason = layoutSkipReason(layout) ?? otherReason?.(layout);
      describe.skipIf(reason !== undefined)(titled(`on cgroup ${layout}`, reason), () => {
        let scenario: ScenarioEnv | undefined;
        beforeAll(async () => {
          scenario = await startScenario(layout);
        }, 60_000);
        afterAll(async () => {
          await scenario?.stop();
        });
        body(() => scenario as ScenarioEnv, layout);
      });
    });
  });
}
