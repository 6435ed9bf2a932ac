/**
 * The most two threads can give one training epoch on this machine, for `npm run bench`: two
 * worker threads, each with its own one-thread engine and model (same seed), train one epoch on one
 * half of the training images at the same time (Adam, batch 32) — half the work each, with nothing
 * shared and no hand-over between them. One thread's whole epoch divided by the slower half's
 * seconds bounds every two-thread split of that epoch: a shared step does the same work and adds
 * its hand-overs, while both cores slow each other down exactly as here (caches, memory, the
 * host). The two halves train two different models, so this is a measurement, never a way to train.
 *
 * Both workers get the compiled module of the calling thread (its tiered-up code), build their
 * model, run a few untimed steps, and start together on a signal.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Dataset } from '../src/data/dataset.js';
import { subset } from '../src/data/dataset.js';
import { Engine } from '../src/engine/engine.js';
import { simdBuild, wasmModule } from '../src/engine/node.js';
import { createModel } from '../src/nn/create.js';
import { fit } from '../src/train/fit.js';

interface HalfInit {
  halfEpoch: true;
  module: WebAssembly.Module;
  model: string;
  train: Dataset;
  /** Int32Array over 1 int: 1 = start. */
  control: SharedArrayBuffer;
}

/** One epoch as the thread rows train it (Adam 1e-3, batch 32), evaluation untimed. */
const EPOCH = {
  epochs: 1,
  batchSize: 32,
  optimizer: { type: 'adam' as const, learningRate: 1e-3 },
  testEvery: 0,
};
/** Untimed steps before the start signal: a fresh instance's first steps are slower. */
const WARM_IMAGES = 20 * EPOCH.batchSize;

/** In a worker: build the model, warm up, say ready, wait for the start, train, report. */
function runHalf(init: HalfInit, ready: () => void): number {
  const control = new Int32Array(init.control);
  const engine = Engine.fromModule(init.module);
  try {
    // Evaluation is not timed (fit's seconds): a few of the half's own images do.
    const test = subset(init.train, 0, 100);
    const warm = createModel(init.model, { seed: 1, engine });
    const warmData = { train: subset(init.train, 0, WARM_IMAGES), test, source: 'warm-up' };
    fit(warm, warmData, EPOCH);
    const model = createModel(init.model, { seed: 1, engine });
    ready();
    while (Atomics.load(control, 0) === 0) Atomics.wait(control, 0, 0);
    const data = { train: init.train, test, source: 'half epoch' };
    return fit(model, data, EPOCH).history[0]!.seconds;
  } finally {
    engine.close();
  }
}

if (!isMainThread && (workerData as Partial<HalfInit> | null)?.halfEpoch) {
  const seconds = runHalf(workerData as HalfInit, () => parentPort!.postMessage('ready'));
  parentPort!.postMessage(seconds);
}

/** The next message of `worker`; rejects if it fails or exits first. */
function nextMessage(worker: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const settle = (outcome: () => void) => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      outcome();
    };
    const onMessage = (m: unknown) => settle(() => resolve(m));
    const onError = (e: Error) => settle(() => reject(e));
    const onExit = (code: number) =>
      settle(() => reject(new Error(`a half-epoch worker exited (code ${code})`)));
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
  });
}

/**
 * Seconds of the slower of two half-epochs of `model` run at the same time on two threads (one
 * engine each, the relaxed build when available, as createEngine picks), over the first and
 * second half of `train`.
 */
export async function halfEpochsAtOnce(model: string, train: Dataset): Promise<number> {
  const module = wasmModule(simdBuild());
  const control = new SharedArrayBuffer(4);
  const half = Math.floor(train.count / 2);
  const workers = [0, half].map((start) => {
    const part = subset(train, start, half);
    // Copies of the half only: a view would send the whole buffer under it.
    const own = { ...part, images: part.images.slice(), labels: part.labels.slice() };
    const init: HalfInit = { halfEpoch: true, module, model, train: own, control };
    return new Worker(new URL(import.meta.url), { workerData: init });
  });
  try {
    await Promise.all(workers.map(nextMessage)); // both ready
    const results = workers.map(nextMessage);
    const ints = new Int32Array(control);
    Atomics.store(ints, 0, 1);
    Atomics.notify(ints, 0);
    return Math.max(...((await Promise.all(results)) as number[]));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
