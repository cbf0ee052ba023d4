// The Scm result encodings of reference §6.4 as bytes, and our error detail datagram.
import { describe, expect, it } from 'vitest';
import * as R from '../../../daemon/scm/results';

const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
};
const uint32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const data = (ds: R.Datagram[]): Buffer[] => ds.map((d) => d.data);

describe('Scm result encodings', () => {
  it.each([
    ['ok', R.ok(), ['1']],
    ['failed', R.failed(), ['0']],
    ['existed 1', R.existedByte(1), ['2']],
    ['existed -1', R.existedByte(-1), ['1']],
  ] as const)('%s is one byte', (_name, ds, expected) => {
    expect(data(ds)).toEqual(expected.map((s) => Buffer.from(s)));
    expect(ds.every((d) => d.cred === undefined)).toBe(true);
  });

  it('strings travel with one NUL; their failure is one zero-length datagram', () => {
    expect(data(R.text('xxx/b'))).toEqual([Buffer.from('xxx/b\0')]);
    expect(data(R.text(''))).toEqual([Buffer.from([0])]);
    expect(data(R.text('ü'))).toEqual([Buffer.from([0xc3, 0xbc, 0])]);
    expect(data(R.emptyDatagram())).toEqual([Buffer.alloc(0)]);
  });

  it('GetTasks: an int32 count, then one credential per pid with uid and gid 0', () => {
    const ds = R.tasksPayload([12, 345]);
    expect(data(ds)).toEqual([int32(2), Buffer.from('p'), Buffer.from('p')]);
    expect(ds.map((d) => d.cred)).toEqual([undefined, { pid: 12, uid: 0, gid: 0 }, { pid: 345, uid: 0, gid: 0 }]);
    expect(data(R.tasksPayload([]))).toEqual([int32(0)]);
    expect(data(R.countFailure())).toEqual([int32(-1)]);
  });

  it('ListChildren: count, byte length, then the NUL-terminated names in one datagram', () => {
    expect(data(R.childrenPayload(['a', 'bc']))).toEqual([int32(2), uint32(5), Buffer.from('a\0bc\0')]);
    expect(data(R.childrenPayload([]))).toEqual([int32(0)]);
  });

  it('ListKeys: four lines per key, ids printed as signed 32-bit, no trailing NUL', () => {
    const ds = R.keysPayload([
      ['tasks', 0, 0, 0o100644],
      ['cpu.shares', 4294967295, 4294967295, 0o100644],
    ]);
    const text = 'tasks\n0\n0\n33188\ncpu.shares\n-1\n-1\n33188\n';
    expect(data(ds)).toEqual([int32(2), uint32(Buffer.byteLength(text)), Buffer.from(text)]);
  });

  it('error detail: tagged, named, and parsed back; anything else is not a detail', () => {
    const d = R.errorDetail('org.freedesktop.DBus.Error.AccessDenied', 'read access to cpu:/x denied\nsecond line');
    expect(d.data.toString()).toBe('cgmanager.error\norg.freedesktop.DBus.Error.AccessDenied\nread access to cpu:/x denied\nsecond line');
    expect(R.parseErrorDetail(d.data)).toEqual({ name: 'org.freedesktop.DBus.Error.AccessDenied', message: 'read access to cpu:/x denied\nsecond line' });
    expect(R.parseErrorDetail(Buffer.from('1'))).toBeUndefined();
    expect(R.parseErrorDetail(Buffer.from('cgmanager.error\n'))).toBeUndefined();
    expect(R.parseErrorDetail(Buffer.from('cgmanager.error\n\nmessage'))).toBeUndefined();
  });
});
