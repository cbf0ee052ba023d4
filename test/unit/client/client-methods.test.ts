import { describe, expect, it } from 'vitest';
import { METHODS, type MethodSpec } from '../../../daemon/dbus/interface';
import { CgmanagerClient } from '../../../client/client';
import type { CallRequest, PeerConnection } from '../../../client/connection';
import type { CallRoute } from '../../../client/route';

/** A client whose route records each call and answers with a canned reply. */
function recordingClient(reply: unknown[]) {
  const calls: Array<{ method: string; args: readonly unknown[]; spec: MethodSpec }> = [];
  const requests: CallRequest[] = [];
  const route: CallRoute = {
    kind: 'plain',
    invoke: (spec, args) => {
      calls.push({ method: spec.name, args, spec });
      return Promise.resolve(reply);
    },
  };
  const connection = {
    socketPath: '/fake',
    isClosed: false,
    call: (request: CallRequest) => {
      requests.push(request);
      return Promise.resolve(request.decode ? request.decode({ signature: 'v', body: Buffer.from([1, 0x69, 0, 0, 10, 0, 0, 0]), littleEndian: true } as never) : []);
    },
  } as unknown as PeerConnection;
  return { client: new CgmanagerClient(connection, route), calls, requests };
}

type Case = [method: string, call: (c: CgmanagerClient) => Promise<unknown>, wire: unknown[], reply: unknown[], result: unknown];

// Every plain method of the interface table, with the arguments that go on the wire and
// the result the caller gets for a given reply.
const CASES: Case[] = [
  ['Ping', (c) => c.ping(), [0], [], undefined],
  ['GetPidCgroup', (c) => c.getPidCgroup('memory', 42), ['memory', 42], ['xxx/b'], 'xxx/b'],
  ['GetPidCgroupAbs', (c) => c.getPidCgroupAbs('memory', 42), ['memory', 42], ['/xxx/b'], '/xxx/b'],
  ['Create', (c) => c.create('all', 'foo'), ['all', 'foo'], [1], true],
  ['Chown', (c) => c.chown('all', 'foo', 1000, -1), ['all', 'foo', 1000, -1], [], undefined],
  ['Chmod', (c) => c.chmod('memory', 'foo', 'tasks', 0o664), ['memory', 'foo', 'tasks', 0o664], [], undefined],
  ['MovePid', (c) => c.movePid('all', 'foo', 7), ['all', 'foo', 7], [], undefined],
  ['MovePidAbs', (c) => c.movePidAbs('all', '/foo', 7), ['all', '/foo', 7], [], undefined],
  ['GetValue', (c) => c.getValue('memory', 'foo', 'memory.max'), ['memory', 'foo', 'memory.max'], ['max'], 'max'],
  ['SetValue', (c) => c.setValue('memory', 'foo', 'memory.max', '1G'), ['memory', 'foo', 'memory.max', '1G'], [], undefined],
  ['Remove', (c) => c.remove('all', 'foo', true), ['all', 'foo', 1], [-1], false],
  ['GetTasks', (c) => c.getTasks('memory', ''), ['memory', ''], [[1, 2]], [1, 2]],
  ['GetTasksRecursive', (c) => c.getTasksRecursive('all', ''), ['all', ''], [[3]], [3]],
  ['ListChildren', (c) => c.listChildren('memory', ''), ['memory', ''], [['a']], ['a']],
  ['RemoveOnEmpty', (c) => c.removeOnEmpty('memory', 'foo'), ['memory', 'foo'], [], undefined],
  ['Prune', (c) => c.prune('memory', 'foo'), ['memory', 'foo'], [], undefined],
  ['ListControllers', (c) => c.listControllers(), [], [['cpu,cpuacct']], ['cpu,cpuacct']],
  ['ListKeys', (c) => c.listKeys('memory', ''), ['memory', ''], [[['tasks', 0, 0, 0o100644]]], [{ name: 'tasks', uid: 0, gid: 0, mode: 0o100644 }]],
];

describe('CgmanagerClient', () => {
  it('has a typed function for every plain method of the interface table', () => {
    const plain = METHODS.filter((m) => !m.scm).map((m) => m.name).sort();
    expect(CASES.map(([m]) => m).sort()).toEqual(plain);
  });

  it.each(CASES)('%s sends its signature and returns the exact result', async (method, call, wire, reply, result) => {
    const { client, calls } = recordingClient(reply);
    await expect(call(client)).resolves.toEqual(result);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.method).toBe(method);
    expect(calls[0]?.args).toEqual(wire);
    expect(calls[0]?.spec.scm).toBe(false);
  });

  it.each<[number, boolean]>([
    [1, true],
    [-1, false],
  ])('create: existed %d -> %s', async (existed, result) => {
    await expect(recordingClient([existed]).client.create('memory', 'x')).resolves.toBe(result);
  });

  it('remove sends recursive as 1/0 and refuses non-booleans', async () => {
    const { client, calls } = recordingClient([1]);
    await expect(client.remove('memory', 'x', false)).resolves.toBe(true);
    expect(calls[0]?.args).toEqual(['memory', 'x', 0]);
    await expect(client.remove('memory', 'x', 1 as unknown as boolean)).rejects.toThrow('Remove: recursive must be a boolean, got number');
  });

  it('apiVersion reads the property with Properties.Get', async () => {
    const { client, requests } = recordingClient([]);
    await expect(client.apiVersion()).resolves.toBe(10);
    expect(requests[0]).toMatchObject({
      path: '/org/linuxcontainers/cgmanager',
      interface: 'org.freedesktop.DBus.Properties',
      member: 'Get',
      signature: 'ss',
      body: ['org.linuxcontainers.cgmanager0_0', 'api_version'],
    });
  });

  it.each<[string, (c: CgmanagerClient) => Promise<unknown>, RegExp]>([
    ['pid out of int32', (c) => c.movePid('memory', 'x', 2 ** 31), /MovePid: pid must fit in a signed 32-bit integer/],
    ['fractional uid', (c) => c.chown('memory', 'x', 1.5, 0), /Chown: uid must be an integer, got 1\.5/],
    ['missing cgroup', (c) => (c.create as (a: string) => Promise<boolean>)('memory'), /Create: cgroup must be a string, got undefined/],
    ['NUL in a key', (c) => c.getValue('memory', 'x', 'a\0b'), /GetValue: key must not contain NUL bytes/],
    ['number as controller', (c) => c.listChildren(1 as unknown as string, ''), /ListChildren: controller must be a string, got 1/],
    ['mode as string', (c) => c.chmod('memory', 'x', '', '755' as unknown as number), /Chmod: mode must be an integer, got "755"/],
  ])('validates before sending: %s', async (_name, call, message) => {
    const { client, calls } = recordingClient([]);
    await expect(call(client)).rejects.toThrow(TypeError);
    await expect(call(client)).rejects.toThrow(message);
    expect(calls).toHaveLength(0);
  });
});
