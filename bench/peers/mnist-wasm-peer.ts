/**
 * The mnist-wasm side of the peer benchmark: one measurement per process (protocol.ts), through
 * the public API only — createModel, fit, evaluate, predict — on one thread (or --threads N) with
 * the kernel build the engine loader picks on this Node (reported as `build`). `--dense-input` turns off the first
 * layer's zero skipping (sparseInput: false) and reports as mnist-wasm-dense.
 *
 *   node dist/bench/peers/mnist-wasm-peer.js --workload lenet5 --mode train --warmup 320
 */
import { Command } from 'commander';
import {
  createEngine,
  createModel,
  evaluate,
  fit,
  predict,
  subset,
  type Engine,
  type Model,
} from '../../src/index.js';
import {
  addRequestOptions,
  BATCH_SIZE,
  emit,
  errorMessage,
  INFER_BATCH_SIZE,
  LEARNING_RATE,
  mnistSlices,
  requestFrom,
  type PeerRequest,
  type PeerResult,
} from './protocol.js';

const OPTIMIZER = { type: 'adam', learningRate: LEARNING_RATE } as const;

/** --dense-input: the first layer's GEMMs do not skip zero pixels (sparseInput: false). */
let sparseInput = true;
let engineName: 'mnist-wasm' | 'mnist-wasm-dense' = 'mnist-wasm';

/** Every engine this process made, closed before it exits (a threaded engine holds workers). */
const engines: Engine[] = [];

function newModel(r: PeerRequest, seed: number): Model {
  const engine = createEngine({ sparseInput, threads: r.threads });
  engines.push(engine);
  return createModel(r.workload, { seed, engine });
}

function info(model: Model): PeerResult['info'] {
  return { build: model.engine.build, threads: model.engine.threads, simd: true, sparseInput };
}

function train(r: PeerRequest): PeerResult {
  const { train, test } = mnistSlices(r);
  if (r.warmup > 0) {
    // A throwaway model: the timed model starts from the same weights as in a cold run.
    const warm = newModel(r, r.seed + 1);
    const slice = subset(train, 0, Math.min(r.warmup, train.count));
    fit(warm, { train: slice }, { epochs: 1, batchSize: BATCH_SIZE, optimizer: OPTIMIZER });
  }
  const model = newModel(r, r.seed);
  const started = performance.now();
  const { history } = fit(
    model,
    { train },
    { epochs: 1, batchSize: BATCH_SIZE, optimizer: OPTIMIZER, seed: r.seed, testEvery: 0 },
  );
  const seconds = (performance.now() - started) / 1000;
  const trainLoss = history[0]!.trainLoss;
  return {
    engine: engineName,
    workload: r.workload,
    mode: 'train',
    samples: train.count,
    seconds,
    trainLoss: Number.isFinite(trainLoss) ? trainLoss : null,
    testAccuracy: evaluate(model, test, { batchSize: INFER_BATCH_SIZE }).accuracy,
    testSamples: test.count,
    info: info(model),
  };
}

/** Untrained weights: the speed of a forward pass does not depend on them. */
function infer(r: PeerRequest): PeerResult {
  const { test } = mnistSlices(r);
  const model = newModel(r, r.seed);
  if (r.warmup > 0) {
    const warm = subset(test, 0, Math.min(r.warmup, test.count));
    predict(model, warm.images, { batchSize: INFER_BATCH_SIZE });
  }
  const started = performance.now();
  predict(model, test.images, { batchSize: INFER_BATCH_SIZE });
  const seconds = (performance.now() - started) / 1000;
  return {
    engine: engineName,
    workload: r.workload,
    mode: 'infer',
    samples: test.count,
    seconds,
    info: info(model),
  };
}

function main(): void {
  const program = addRequestOptions(new Command('mnist-wasm-peer')).option(
    '--dense-input',
    'do not skip zero pixels in the first layer (EngineOptions.sparseInput: false)',
  );
  program.parse();
  if (program.opts().denseInput) {
    sparseInput = false;
    engineName = 'mnist-wasm-dense';
  }
  const r = requestFrom(program.opts());
  try {
    emit(r.mode === 'train' ? train(r) : infer(r));
  } catch (e) {
    emit({ engine: engineName, workload: r.workload, mode: r.mode, error: errorMessage(e) });
  } finally {
    for (const engine of engines) engine.close();
  }
}

main();
