// Unit tests of Scm exchanges hand one end of a socketpair "to the daemon": a new fd for the
// same socket, as SCM_RIGHTS gives the receiving process its own copy.
import { openSocket, socketPair } from '../../addon';

/** Hands `fd` over as a new fd, as SCM_RIGHTS does between processes (the peer gets its own copy). */
export function passFd(fd: number): Promise<number> {
  const [x, y] = socketPair(false);
  return new Promise((resolve, reject) => {
    const receiver = openSocket(
      y,
      false,
      (_data, fds) => {
        receiver.close();
        if (fds?.[0] === undefined) reject(new Error('no fd arrived'));
        else resolve(fds[0]);
      },
      () => reject(new Error('closed before the fd arrived')),
    );
    const sender = openSocket(x, false, () => undefined, () => undefined);
    sender.write(Buffer.from('x'), [fd]);
    sender.close();
  });
}
