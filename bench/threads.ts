/**
 * Threads and inference, for `npm run bench`: whole training epochs (Adam, batch 32) of a preset
 * with 1…T threads, interleaved round by round (1, 2, 1, 2, …) so the machine's drift hits every
 * count alike; and inference images/s over the 10,000 test images at batch 1000 per preset and
 * thread count (after one untimed pass). Each round of a trained preset ends with its two halves
 * at once (halves.ts): the most two threads can give that epoch on this machine. Also runnable alone:
 * `node dist/bench/threads.js [--rounds N] [--models a,b]`.
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { DataSplit } from '../src/data/dataset.js';
import { loadMnist } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import type { Engine } from '../src/engine/engine.js';
import { createModel } from '../src/nn/create.js';
import { presetNames } from '../src/nn/presets.js';
import { fit, predict } from '../src/train/fit.js';
import { RoundTripProbe, type StepAfter } from './cores.js';
import { halfEpochsAtOnce } from './halves.js';
import { median } from './timing.js';

export interface ThreadsResult {
  model: string;
  build: string;
  threads: number;
  /**
   * The row of two independent half-epochs at once (halves.ts; seconds of the slower half), not of
   * an engine: its speedup is the ceiling for the two-thread row.
   */
  halves?: true;
  /** Whole-epoch seconds, one per round (training rows only). */
  epochSeconds: number[];
  /**
   * Rows of more than one thread: the round trip between the two threads' cores (RoundTripProbe)
   * just before each round's epoch, in ns, so a slow round can be told from a distant placement.
   */
  roundTripNs?: number[];
  /**
   * Likewise: an optimizer step over 1 MiB of weights that the other core had just read, and the
   * same step right after itself, in µs (RoundTripProbe.measureStep), before each round.
   */
  stepAfterReadUs?: number[];
  stepLocalUs?: number[];
  medianEpochSeconds: number | null;
  /** One thread's median epoch over this row's. */
  speedup: number | null;
  /** null on the halves row. */
  inferenceImagesPerSecond: number | null;
}

/** A fresh model on a fresh engine per run: no state carries from one run to the next. */
function withEngine<T>(threads: number, run: (engine: Engine) => T): T {
  const engine = createEngine({ threads });
  try {
    return run(engine);
  } finally {
    engine.close();
  }
}

export async function benchThreads(
  data: DataSplit,
  options: { rounds?: number; trainModels?: string[]; threadCounts?: number[] } = {},
): Promise<ThreadsResult[]> {
  const rounds = options.rounds ?? 5;
  const counts = options.threadCounts ?? [1, Math.max(2, Math.min(cpus().length, 4))];
  const trainModels = new Set(options.trainModels ?? ['mlp-256-128']);
  const results: ThreadsResult[] = [];
  const probe = new RoundTripProbe();
  try {
    const optimizer = { type: 'adam' as const, learningRate: 1e-3 };
    for (const name of presetNames()) {
      const epochs = new Map<number, number[]>(counts.map((t) => [t, []]));
      const inference = new Map<number, number[]>(counts.map((t) => [t, []]));
      const halves: number[] = [];
      const roundTrips = new Map<number, number[]>(counts.map((t) => [t, []]));
      const steps = new Map<number, StepAfter[]>(counts.map((t) => [t, []]));
      let build = '';
      for (let round = 0; round < rounds; round++) {
        for (const threads of counts) {
          withEngine(threads, (engine) => {
            build = engine.build;
            const model = createModel(name, { seed: 1, engine });
            if (trainModels.has(name)) {
              if (threads > 1) {
                roundTrips.get(threads)!.push(probe.measure());
                steps.get(threads)!.push(probe.measureStep());
              }
              const { history } = fit(model, data, {
                epochs: 1,
                batchSize: 32,
                optimizer,
                testEvery: 0,
              });
              epochs.get(threads)!.push(history[0]!.seconds);
            }
            const images = data.test.images;
            // One untimed pass first, as bench:peers does: a fresh engine's first pass is slower.
            predict(model, images, { batchSize: 1000 });
            const started = performance.now();
            predict(model, images, { batchSize: 1000 });
            const seconds = (performance.now() - started) / 1000;
            inference.get(threads)!.push(data.test.count / seconds);
          });
        }
        if (trainModels.has(name)) halves.push(await halfEpochsAtOnce(name, data.train));
      }
      const one = epochs.get(counts[0]!)!;
      for (const threads of counts) {
        const e = epochs.get(threads)!;
        results.push({
          model: name,
          build,
          threads,
          epochSeconds: e,
          ...(threads > 1 && e.length
            ? {
                roundTripNs: roundTrips.get(threads)!,
                stepAfterReadUs: steps.get(threads)!.map((x) => x.afterRead),
                stepLocalUs: steps.get(threads)!.map((x) => x.local),
              }
            : {}),
          medianEpochSeconds: e.length ? median(e) : null,
          speedup: e.length && one.length ? median(one) / median(e) : null,
          inferenceImagesPerSecond: median(inference.get(threads)!),
        });
      }
      if (halves.length) {
        results.push({
          model: name,
          build,
          threads: 2,
          halves: true,
          epochSeconds: halves,
          medianEpochSeconds: median(halves),
          speedup: one.length ? median(one) / median(halves) : null,
          inferenceImagesPerSecond: null,
        });
      }
    }
  } finally {
    probe.close();
  }
  return results;
}

export function formatThreadsTable(rows: ThreadsResult[]): string {
  const header = [
    'model',
    'build',
    'threads',
    'epoch s (median) [rounds]',
    'samples/s',
    '× 1 thread',
    'inference images/s',
  ];
  const lines = rows.map((r) => [
    r.model,
    r.build,
    r.halves ? `${r.threads}, two halves at once` : String(r.threads),
    r.medianEpochSeconds === null
      ? '—'
      : `${r.medianEpochSeconds.toFixed(2)} [${r.epochSeconds.map((s) => s.toFixed(2)).join(', ')}]`,
    r.medianEpochSeconds === null
      ? '—'
      : Math.round(60000 / r.medianEpochSeconds).toLocaleString('en-US'),
    r.speedup === null ? '—' : r.speedup.toFixed(2),
    r.inferenceImagesPerSecond === null
      ? '—'
      : Math.round(r.inferenceImagesPerSecond).toLocaleString('en-US'),
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  const table = all.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
  const trips = rows
    .filter((r) => r.roundTripNs?.length)
    .map(
      (r) =>
        `${r.model}, ${r.threads} threads: a cache line's round trip between the cores before ` +
        `each round ${r.roundTripNs!.map((ns) => ns.toFixed(0)).join(', ')} ns; an optimizer ` +
        `step over 1 MiB of weights the other core had just read ` +
        `${(r.stepAfterReadUs ?? []).map((us) => us.toFixed(0)).join(', ')} µs, right after ` +
        `itself ${(r.stepLocalUs ?? []).map((us) => us.toFixed(0)).join(', ')} µs`,
    );
  return [...table, ...trips].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (flag: string): string | undefined => {
    const i = process.argv.indexOf(flag);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const rows = await benchThreads(loadMnist(), {
    rounds: arg('--rounds') === undefined ? undefined : Number(arg('--rounds')),
    trainModels: arg('--models')?.split(','),
  });
  console.log(formatThreadsTable(rows));
}
