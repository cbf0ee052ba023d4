// The kernel files events come from, parsed, and the transitions between two readings that
// become signals: populated 1→0 is Emptied, a frozen change is Frozen, a rise of oom or
// oom_kill is OOM with the cumulative kill count; missing lines change nothing.
import { describe, expect, it } from 'vitest';
import {
  parseFlatKeyed,
  stateFromCgroupEvents,
  stateFromFreezerState,
  stateFromMemoryEvents,
  stateFromOomControl,
  transitions,
} from '../../../daemon/events/parse';
import { eventFromSignal } from '../../../client/watch';
import { signalOf } from '../../../daemon/events';
import { encodeMessage, MessageReader, MessageType } from '../../../daemon/dbus/wire';
import { INTERFACE1_NAME, OBJECT_PATH } from '../../../daemon/dbus/interface';

describe('event files', () => {
  it('parses cgroup.events (Linux 5.2+ and older, without frozen)', () => {
    expect(stateFromCgroupEvents('populated 1\nfrozen 0\n')).toEqual({ populated: true, frozen: false });
    expect(stateFromCgroupEvents('populated 0\n')).toEqual({ populated: false });
    expect(stateFromCgroupEvents('')).toEqual({});
  });

  it('parses memory.events and memory.oom_control, ignoring other lines', () => {
    expect(stateFromMemoryEvents('low 0\nhigh 3\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n')).toEqual({ oom: 2, oomKill: 1 });
    expect(stateFromOomControl('oom_kill_disable 0\nunder_oom 0\noom_kill 4\n')).toEqual({ oomKill: 4 });
    expect(stateFromOomControl('oom_kill_disable 0\nunder_oom 0\n')).toEqual({}); // before Linux 4.13
    expect(parseFlatKeyed('a 1\nbad line\nb x\n c 3 \n')).toEqual(new Map([['a', 1], ['c', 3]]));
  });

  it('parses freezer.state: FREEZING is not frozen yet', () => {
    expect(stateFromFreezerState('FROZEN\n')).toEqual({ frozen: true });
    expect(stateFromFreezerState('FREEZING\n')).toEqual({ frozen: false });
    expect(stateFromFreezerState('THAWED\n')).toEqual({ frozen: false });
    expect(stateFromFreezerState('')).toEqual({});
  });
});

describe('transitions', () => {
  it('populated 1 → 0 is Emptied; 0 → 0, 0 → 1 and an unknown start are not', () => {
    expect(transitions({ populated: true }, { populated: false })).toEqual([{ kind: 'emptied' }]);
    expect(transitions({ populated: false }, { populated: false })).toEqual([]);
    expect(transitions({ populated: false }, { populated: true })).toEqual([]);
    expect(transitions({}, { populated: false })).toEqual([]);
  });

  it('a frozen change is Frozen with the new state', () => {
    expect(transitions({ frozen: false }, { frozen: true })).toEqual([{ kind: 'frozen', frozen: true }]);
    expect(transitions({ frozen: true }, { frozen: false })).toEqual([{ kind: 'frozen', frozen: false }]);
    expect(transitions({ frozen: true }, { frozen: true })).toEqual([]);
  });

  it('a rise of oom_kill or oom is OOM with the cumulative kill count', () => {
    expect(transitions({ oom: 0, oomKill: 0 }, { oom: 1, oomKill: 1 })).toEqual([{ kind: 'oom', count: 1 }]);
    expect(transitions({ oom: 1, oomKill: 1 }, { oom: 2, oomKill: 1 })).toEqual([{ kind: 'oom', count: 1 }]);
    expect(transitions({ oomKill: 3 }, { oomKill: 5 })).toEqual([{ kind: 'oom', count: 5 }]);
    expect(transitions({ oomKill: 3 }, { oomKill: 3 })).toEqual([]);
    expect(transitions({}, { oomKill: 3 })).toEqual([]);
  });
});

describe('signals on the wire', () => {
  it('each event encodes as its cgmanager1 signal and decodes back to the same client event', () => {
    for (const [e, expected] of [
      [{ kind: 'emptied' }, { type: 'emptied', cgroup: 'c1/x' }],
      [{ kind: 'oom', count: 2 ** 40 }, { type: 'oom', cgroup: 'c1/x', count: 2 ** 40 }],
      [{ kind: 'frozen', frozen: true }, { type: 'frozen', cgroup: 'c1/x', frozen: true }],
    ] as const) {
      const s = signalOf('c1/x', e);
      const reader = new MessageReader(1 << 20);
      reader.push(encodeMessage({ type: MessageType.Signal, serial: 7, path: OBJECT_PATH, interface: INTERFACE1_NAME, member: s.member, signature: s.signature, body: s.body }));
      const m = reader.next()?.message;
      expect(m && eventFromSignal(m)).toEqual(expected);
    }
  });

  it('ignores signals of other interfaces, members or signatures', () => {
    const reader = new MessageReader(1 << 20);
    reader.push(encodeMessage({ type: MessageType.Signal, serial: 1, path: OBJECT_PATH, interface: INTERFACE1_NAME, member: 'OOM', signature: 's', body: ['x'] }));
    reader.push(encodeMessage({ type: MessageType.Signal, serial: 2, path: OBJECT_PATH, interface: 'org.example', member: 'Emptied', signature: 's', body: ['x'] }));
    expect(eventFromSignal(reader.next()?.message as never)).toBeUndefined();
    expect(eventFromSignal(reader.next()?.message as never)).toBeUndefined();
  });
});
