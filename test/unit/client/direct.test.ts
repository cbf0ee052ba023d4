// cgm's fast path: which invocations it takes without commander, and that it parses them
// exactly as the full command line would (anything doubtful goes to commander).
import { describe, expect, it } from 'vitest';
import { parseDirect } from '../../../client/cli/direct';

const ENV = { CGMANAGER_SOCKET: '/env/sock' };

describe('parseDirect', () => {
  it.each<[string[], string, Array<string | undefined>, string]>([
    [['ping'], 'ping', [], '/env/sock'],
    [['ping', 'extra'], 'ping', [], '/env/sock'],
    [['--socket', '/s', 'ping'], 'ping', [], '/s'],
    [['--socket=/s', 'getvalue', 'memory', 'x', 'memory.max'], 'getvalue', ['memory', 'x', 'memory.max'], '/s'],
    [['create', 'memory', ''], 'create', ['memory', ''], '/env/sock'],
    [['gettasks', 'memory'], 'gettasks', ['memory', undefined], '/env/sock'],
    [['remove', 'all', 'x', '0'], 'remove', ['all', 'x', '0'], '/env/sock'],
  ])('%j runs %s directly', (argv, name, args, socket) => {
    const call = parseDirect(argv, ENV);
    expect(call?.def.name).toBe(name);
    expect(call?.args).toEqual(args);
    expect(call?.socket).toBe(socket);
  });

  it.each([
    [[]],
    [['help']],
    [['help', 'ping']],
    [['nosuch']],
    [['ping', '--help']],
    [['getvalue', '--json', 'memory', 'x', 'k']],
    [['setvalue', 'memory', 'x', 'k', '-1']],
    [['create', 'memory']],
    [['create', 'memory', 'a', 'b']],
    [['--socket']],
    [['--socket', 'ping']],
    [['--socket='] ],
    [['--socket', '-x', 'ping']],
    [['listcontrollers', '--socket', '/s']],
    [['--version']],
  ])('%j goes to the full command line', (argv) => {
    expect(parseDirect(argv, ENV)).toBeUndefined();
  });
});
