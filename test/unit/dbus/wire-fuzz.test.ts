// Deterministic mutation fuzzing of the wire layer (DESIGN: dbus-next's reader trusts
// its input; mutations once made it allocate until the heap died). The loop runs in a
// worker with a capped heap and a watchdog, so a hang or a runaway allocation fails
// this test with the offending input instead of hanging or killing the test run.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { buildCorpus, fuzz, mutate, runOne, type FuzzReport } from './wire-mutations';
import { MessageType, parseMessage, ProtocolError } from '../../../daemon/dbus/wire';
import { INTERFACE_NAME, OBJECT_PATH } from '../../../daemon/dbus/interface';
import { buildMessage, ByteWriter, callFields } from './raw-message';

const SEED = 0xc6a4a793;
const ITERATIONS = 100_000;
/** No single input may take this long (a slow input is a hang in the making). */
const SLOW_MS = 250;
/** No progress for this long means an iteration hangs. */
const STALL_MS = 3000;
/** The worker compiles the fuzzer with TypeScript before its first iteration: slow on a loaded machine, not a hang. */
const STARTUP_MS = 60_000;
const HEAP_MB = 192;

// The worker cannot load TypeScript by itself: transpile on require, as ts-node does.
const BOOTSTRAP = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const ts = require(workerData.typescript);
require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(outputText, filename);
};
const { fuzz } = require(workerData.entry);
const progress = new Int32Array(workerData.progress);
parentPort.postMessage(fuzz(workerData.seed, workerData.from, workerData.to, workerData.slowMs, progress));
`;

type Result = { report: FuzzReport } | { failure: string; iteration: number };

function runInWorker(seed: number, from: number, to: number): Promise<Result> {
  const progress = new SharedArrayBuffer(4);
  const view = new Int32Array(progress);
  Atomics.store(view, 0, from - 1);
  const worker = new Worker(BOOTSTRAP, {
    eval: true,
    workerData: {
      typescript: require.resolve('typescript'),
      entry: path.join(__dirname, 'wire-mutations.ts'),
      progress,
      seed,
      from,
      to,
      slowMs: SLOW_MS,
    },
    resourceLimits: { maxOldGenerationSizeMb: HEAP_MB, maxYoungGenerationSizeMb: 32 },
    stderr: true,
  });
  return new Promise<Result>((resolve) => {
    let last = Atomics.load(view, 0);
    let lastChange = Date.now();
    const watchdog = setInterval(() => {
      const now = Atomics.load(view, 0);
      if (now !== last) {
        last = now;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > (now === from - 1 ? STARTUP_MS : STALL_MS)) {
        clearInterval(watchdog);
        void worker.terminate();
        resolve({ failure: `no progress for ${STALL_MS} ms (hang)`, iteration: now });
      }
    }, 100);
    worker.once('message', (report: FuzzReport) => {
      clearInterval(watchdog);
      resolve({ report });
    });
    worker.once('error', (err) => {
      clearInterval(watchdog);
      // ERR_WORKER_OUT_OF_MEMORY when an input makes the reader allocate without bound.
      resolve({ failure: `worker died: ${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`, iteration: Atomics.load(view, 0) });
    });
  });
}

function describeIteration(seed: number, iteration: number): string {
  const m = mutate(buildCorpus(), seed, iteration);
  return `iteration ${iteration} (seed 0x${seed.toString(16)}): from "${m.origin}", ${m.steps.join('; ')}; split ${m.split}; input ${m.input.toString('hex')}`;
}

describe('wire mutation fuzzing', () => {
  it(`survives ${ITERATIONS} mutations of every message kind with only ProtocolError or BodyError`, async () => {
    const result = await runInWorker(SEED, 0, ITERATIONS);
    if ('failure' in result) throw new Error(`${result.failure} at ${describeIteration(SEED, result.iteration)}`);
    const { report } = result;
    const details = [...report.unexpected.map((u) => `${u.error} at ${describeIteration(SEED, u.iteration)}`), ...report.slow.map((s) => `${s.ms.toFixed(0)} ms at ${describeIteration(SEED, s.iteration)}`)];
    expect(details.slice(0, 5)).toEqual([]);
    expect(report.iterations).toBe(ITERATIONS);
    // The mutations must reach every part of the pipeline, not just die in the first check.
    for (const outcome of ['message', 'decoded', 'needMore', 'protocolError', 'bodyError'] as const) {
      expect(report.counts[outcome], outcome).toBeGreaterThan(ITERATIONS / 100);
    }
  }, 60_000);

  it('is deterministic: the same seed and iteration give the same input', () => {
    const corpus = buildCorpus();
    for (const i of [0, 1, 999, 54321]) expect(mutate(corpus, SEED, i)).toEqual(mutate(corpus, SEED, i));
    expect(mutate(corpus, SEED, 1).input).not.toEqual(mutate(corpus, SEED + 1, 1).input);
  });

  it('has a corpus of valid messages that all decode', () => {
    const corpus = buildCorpus();
    expect(corpus.length).toBeGreaterThan(34 * 3);
    for (const entry of corpus) {
      const outcomes = runOne(entry.bytes, entry.fds);
      // a{sv} (GetAll's reply, cgmanager1's reports) has its own bounded decoder; Set's variant is never decoded.
      const decodable = !/Properties\.Set/.test(entry.name);
      expect(outcomes, entry.name).toEqual(['message', decodable ? 'decoded' : 'bodyError', 'needMore']);
    }
  });

  it('runs in this thread too (a smaller run, so coverage tools see it)', () => {
    const report = fuzz(SEED ^ 0x5a5a5a5a, 0, 2000, SLOW_MS);
    expect(report.unexpected).toEqual([]);
  });
});

describe('regression inputs', () => {
  // Found by this fuzzer (seeds 1 and 2): a header-fields length near 2^32 wrapped a
  // 32-bit align() to a small body offset, so parseMessage read past the buffer (RangeError).
  it.each([
    '6c0200010400000015000000feffffff05017500',
    '6c020001070000006b000000feffffff05017500050100',
    '6c020001040000003f000000ffffffff05017500',
  ])('parseMessage on its own refuses %s with a ProtocolError', (hex) => {
    const input = Buffer.from(hex, 'hex');
    expect(() => parseMessage(input)).toThrow(ProtocolError);
    expect(runOne(input, [])).toEqual(['protocolError']);
  });

  const le = (): ByteWriter => new ByteWriter(true);
  // A variant whose signature is a reserved type code: dbus-next's reader loops allocating on it.
  const variantBody = (code: string): Buffer =>
    Buffer.concat([le().string(INTERFACE_NAME).string('api_version').toBuffer(), le().signature(code).raw(Buffer.alloc(12)).toBuffer()]);

  it.each(['r', 'ar', 'a()', 'a{}', 'aar', 'm', '*', '?', '@', '&', '^', 'e', '(', 'a', 'aa', 'v', 'vv'])('Properties.Set with a variant typed %s', (code) => {
    const frame = buildMessage({
      type: MessageType.MethodCall,
      serial: 1,
      fields: callFields({ path: OBJECT_PATH, iface: 'org.freedesktop.DBus.Properties', member: 'Set', signature: 'ssv' }),
      body: variantBody(code),
    });
    expect(runOne(frame, [])).toEqual(['message', 'bodyError', 'needMore']);
  });

  it.each(['v', 'av', 'a{sv}', '(v)', 'ay', 'a(yv)'])('a body signature %s is refused before decoding', (sig) => {
    const frame = buildMessage({ type: MessageType.MethodCall, serial: 1, fields: callFields({ path: '/', member: 'X', signature: sig }), body: le().u32(0xffffffff).signature('r').toBuffer() });
    expect(runOne(frame, [])).toEqual(['message', 'bodyError', 'needMore']);
  });

  it('an array length of 0xffffffff in ai, as and a(suuu) ends at the body', () => {
    for (const sig of ['ai', 'as', 'a(suuu)']) {
      const frame = buildMessage({ type: MessageType.MethodCall, serial: 1, fields: callFields({ path: '/', member: 'X', signature: sig }), body: le().u32(0xffffffff).u32(0).u32(0).toBuffer() });
      expect(runOne(frame, []), sig).toEqual(['message', 'bodyError', 'needMore']);
    }
  });
});
