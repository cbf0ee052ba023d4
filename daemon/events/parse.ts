// Pure parsing of the kernel files that events come from, and the transitions between two
// readings of them that become signals. No I/O here (unit-tested with literal texts).

/** A "key value" per line file (cgroup.events, memory.events, memory.oom_control); other lines are skipped. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_]+) (\d+)$/.exec(line.trim());
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

/** What one reading of a cgroup's event files says; undefined where the file (or line) is missing. */
export interface EventState {
  /** v2 cgroup.events "populated" (anything running in the subtree) */
  populated?: boolean;
  /** v2 cgroup.events "frozen", or v1 freezer.state FROZEN/THAWED (FREEZING counts as not frozen) */
  frozen?: boolean;
  /** cumulative OOM kills: memory.events "oom_kill" (v2), memory.oom_control "oom_kill" (v1) */
  oomKill?: number;
  /** v2 memory.events "oom": times the limit was hit and the OOM killer invoked */
  oom?: number;
}

export function stateFromCgroupEvents(text: string): EventState {
  const kv = parseFlatKeyed(text);
  const state: EventState = {};
  const populated = kv.get('populated');
  const frozen = kv.get('frozen');
  if (populated !== undefined) state.populated = populated !== 0;
  if (frozen !== undefined) state.frozen = frozen !== 0;
  return state;
}

export function stateFromMemoryEvents(text: string): EventState {
  const kv = parseFlatKeyed(text);
  const state: EventState = {};
  const oom = kv.get('oom');
  const oomKill = kv.get('oom_kill');
  if (oom !== undefined) state.oom = oom;
  if (oomKill !== undefined) state.oomKill = oomKill;
  return state;
}

/** v1 memory.oom_control: its oom_kill counter (Linux 4.13+). */
export function stateFromOomControl(text: string): EventState {
  const oomKill = parseFlatKeyed(text).get('oom_kill');
  return oomKill === undefined ? {} : { oomKill };
}

/** v1 freezer.state: FROZEN is frozen; THAWED and FREEZING (not yet settled) are not. */
export function stateFromFreezerState(text: string): EventState {
  const word = text.trim();
  if (word === 'FROZEN') return { frozen: true };
  if (word === 'THAWED' || word === 'FREEZING') return { frozen: false };
  return {};
}

export type CgroupEvent = { kind: 'emptied' } | { kind: 'oom'; count: number } | { kind: 'frozen'; frozen: boolean };
export type EventKind = CgroupEvent['kind'];

/**
 * The events between two readings: populated 1 → 0 is Emptied; a frozen change is Frozen;
 * a rise of oom or oom_kill is OOM with the cumulative oom_kill count (oom where the
 * kernel counts no kills). A value missing from either reading changes nothing.
 */
export function transitions(before: EventState, after: EventState): CgroupEvent[] {
  const out: CgroupEvent[] = [];
  if (before.populated === true && after.populated === false) out.push({ kind: 'emptied' });
  if (before.frozen !== undefined && after.frozen !== undefined && before.frozen !== after.frozen) out.push({ kind: 'frozen', frozen: after.frozen });
  const rose = (a: number | undefined, b: number | undefined): boolean => a !== undefined && b !== undefined && b > a;
  if (rose(before.oomKill, after.oomKill) || rose(before.oom, after.oom)) out.push({ kind: 'oom', count: after.oomKill ?? after.oom ?? 0 });
  return out;
}
