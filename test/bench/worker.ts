// A benchmark worker process: opens N connections and runs lifecycle cycles on each
// concurrently, then prints its latencies as JSON. Started by run.ts.
import { connect } from '../../client';
import { runCycle, type CycleTarget, type Latencies } from './cycle';

interface WorkerJob {
  socket: string;
  target: Omit<CycleTarget, 'victimPid'>;
  victims: number[];
  cycles: number;
  id: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as WorkerJob;
  const latencies: Latencies = {};
  let errors = 0;
  const clients = await Promise.all(job.victims.map(() => connect({ socket: job.socket })));
  // Wait for the go signal so every worker starts loading the daemon at once.
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  process.stdin.destroy();
  const started = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (client, c) => {
      const target: CycleTarget = { ...job.target, victimPid: job.victims[c] as number };
      for (let i = 0; i < job.cycles; i++) {
        try {
          await runCycle(client, target, `w${job.id}c${c}n${i}`, i, latencies);
        } catch (err) {
          errors++;
          process.stderr.write(`worker ${job.id}: ${(err as Error).message}\n`);
        }
      }
    }),
  );
  const wallUs = Number(process.hrtime.bigint() - started) / 1000;
  await Promise.all(clients.map((c) => c.close()));
  process.stdout.write(JSON.stringify({ latencies, errors, wallUs }));
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
