/**
 * Training throughput of every preset, single-threaded, on the genuine MNIST, in one kernel build
 * (options.simd, default 'auto'):
 *  - steps/s of one training step (gather + forward + loss + backward + optimizer), measured by
 *    the `benchmark` package at batch 32 with Adam, reported as samples/s;
 *  - the wall-clock seconds of whole epochs over the 60,000 training images (Adam, batch 32,
 *    evaluation excluded) through `fit`, the number a user sees: median of `epochs` epochs
 *    after one warm-up pass over 6,000 images (TurboFan must replace the baseline tier first).
 */
import Benchmark from 'benchmark';
import { subset, type DataSplit } from '../src/data/dataset.js';
import type { SimdBuild, SimdChoice } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import { createModel } from '../src/nn/create.js';
import { Workspace } from '../src/nn/workspace.js';
import { presetNames } from '../src/nn/presets.js';
import { fit, forwardTraining, setOrder, stage } from '../src/train/fit.js';
import { Optimizer } from '../src/train/optimizer.js';
import { Rng } from '../src/engine/rng.js';
import { median } from './timing.js';

export interface TrainingResult {
  model: string;
  /** The kernel build the engine ran. */
  build: SimdBuild;
  /** Whether the first layer skipped zero inputs (EngineOptions.sparseInput). */
  sparseInput: boolean;
  parameters: number;
  batchSize: number;
  /** From the benchmark package: one step per call. */
  stepSamplesPerSecond: number;
  stepRme: number;
  /** Whole epochs through fit() (empty when not measured). */
  epochSeconds: number[];
  medianEpochSeconds: number | null;
  epochSamplesPerSecond: number | null;
  testAccuracy: number | null;
}

function stepBenchmark(
  name: string,
  data: DataSplit,
  batchSize: number,
  simd: SimdChoice,
  sparseInput: boolean,
): { hz: number; rme: number } {
  const model = createModel(name, { seed: 1, engine: createEngine({ simd, sparseInput }) });
  const ws = new Workspace(model, batchSize);
  ws.dropoutRng = new Rng(1);
  const staged = stage(model, data.train);
  const optimizer = new Optimizer(model, { type: 'adam', learningRate: 1e-3 });
  const order = new Int32Array(data.train.count);
  for (let i = 0; i < order.length; i++) order[i] = i;
  new Rng(1).shuffle(order);
  setOrder(model, staged, order);
  let start = 0;
  const step = (): void => {
    if (start + batchSize > order.length) start = 0;
    forwardTraining(ws, staged, start, batchSize);
    ws.loss(batchSize, 'crossentropy', true);
    ws.backward(batchSize);
    optimizer.step();
    start += batchSize;
  };
  for (let i = 0; i < 2000; i++) step(); // warm-up: let TurboFan compile the kernels
  const bench = new Benchmark(name, step, { minSamples: 20, maxTime: 3 });
  bench.run();
  return { hz: bench.hz, rme: bench.stats.rme };
}

export function benchTraining(
  data: DataSplit,
  options: {
    epochs?: number;
    models?: string[];
    epochModels?: string[];
    simd?: SimdChoice;
    sparseInput?: boolean;
  } = {},
): TrainingResult[] {
  const sparseInput = options.sparseInput ?? true;
  const epochs = options.epochs ?? 3;
  const simd = options.simd ?? 'auto';
  const build = createEngine({ simd }).build;
  const epochModels = new Set(options.epochModels ?? ['mlp-256-128']);
  const batchSize = 32;
  const results: TrainingResult[] = [];
  for (const name of options.models ?? presetNames()) {
    const { hz, rme } = stepBenchmark(name, data, batchSize, simd, sparseInput);
    const result: TrainingResult = {
      model: name,
      build,
      sparseInput,
      parameters: createModel(name).parameterCount,
      batchSize,
      stepSamplesPerSecond: hz * batchSize,
      stepRme: rme,
      epochSeconds: [],
      medianEpochSeconds: null,
      epochSamplesPerSecond: null,
      testAccuracy: null,
    };
    if (epochModels.has(name)) {
      const model = createModel(name, { seed: 1, engine: createEngine({ simd, sparseInput }) });
      const optimizer = { type: 'adam' as const, learningRate: 1e-3 };
      fit(model, { train: subset(data.train, 0, 6000) }, { epochs: 1, batchSize, optimizer });
      model.initialize(1);
      const { history } = fit(model, data, { epochs, batchSize, optimizer, testEvery: epochs });
      result.epochSeconds = history.map((h) => h.seconds);
      result.medianEpochSeconds = median(result.epochSeconds);
      result.epochSamplesPerSecond = data.train.count / result.medianEpochSeconds;
      result.testAccuracy = history[history.length - 1]!.testAccuracy ?? null;
    }
    results.push(result);
  }
  return results;
}

export function formatTrainingTable(rows: TrainingResult[]): string {
  const header = [
    'model',
    'build',
    'params',
    'step samples/s (±rme)',
    'epoch s (median)',
    'epoch samples/s',
    'test acc',
  ];
  const lines = rows.map((r) => [
    r.sparseInput ? r.model : `${r.model} (zeros not skipped)`,
    r.build,
    r.parameters.toLocaleString('en-US'),
    `${Math.round(r.stepSamplesPerSecond).toLocaleString('en-US')} (±${r.stepRme.toFixed(1)}%)`,
    r.medianEpochSeconds === null
      ? '—'
      : `${r.medianEpochSeconds.toFixed(2)} [${r.epochSeconds.map((s) => s.toFixed(2)).join(', ')}]`,
    r.epochSamplesPerSecond === null
      ? '—'
      : Math.round(r.epochSamplesPerSecond).toLocaleString('en-US'),
    r.testAccuracy === null ? '—' : `${(100 * r.testAccuracy).toFixed(2)}%`,
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  return all.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}
