// A watching client for tests that cannot use the library in-process (inside a container,
// as another uid): connects, watches every cgroup given, prints {"ready":true} once the
// daemon (or proxy) agreed to all, then one JSON line per event; exits 0 after `count`
// events, 1 with {"error":...} when a watch is refused or the connection is lost.
// Usage: node watch-main.js '{"socket":"/path","cgroups":["a","b"],"count":1,"route":"plain"}'
import { connect, type CgroupEvent } from '../../client';

interface Args {
  socket: string;
  cgroups: string[];
  count: number;
  route?: 'auto' | 'plain' | 'scm';
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const cgm = await connect({ socket: args.socket, route: args.route ?? 'auto' });
  const watches = args.cgroups.map((cg) => cgm.watch(cg));
  await Promise.all(watches.map((w) => w.ready));
  process.stdout.write(`${JSON.stringify({ ready: true, route: cgm.route })}\n`);
  let left = args.count;
  const events: CgroupEvent[] = [];
  await new Promise<void>((resolve, reject) => {
    for (const w of watches) {
      void (async () => {
        try {
          for await (const e of w) {
            events.push(e);
            process.stdout.write(`${JSON.stringify(e)}\n`);
            if (--left <= 0) return resolve();
          }
        } catch (err) {
          reject(err);
        }
      })();
    }
  });
  await Promise.all(watches.map((w) => w.close()));
  await cgm.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stdout.write(`${JSON.stringify({ error: (err as Error).message, code: (err as { code?: string }).code })}\n`);
    process.exit(1);
  },
);
