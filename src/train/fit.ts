/**
 * Training and evaluation loops. The dataset's uint8 pixels and labels are copied into the model's
 * arena once per run, with an order buffer of row indices (identity, or the epoch's shuffle, written
 * once per epoch). Per step the workspace gathers the batch's rows straight from there (as floats,
 * or as the first layer's input shards: forwardTraining), then forward, loss, backward and one
 * optimizer call over the parameter region: nothing crosses from JavaScript and nothing is
 * allocated per step.
 */
import type { Dataset, DataSplit } from '../data/dataset.js';
import { Rng } from '../engine/rng.js';
import type { LossName, Model } from '../nn/model.js';
import { Workspace, type PixelSource } from '../nn/workspace.js';
import { shapeSize } from '../nn/spec.js';
import { describeOptimizer, Optimizer, type OptimizerOptions } from './optimizer.js';
import {
  checkResumable,
  fingerprintDataset,
  type CheckpointSettings,
  type EpochProgress,
  type TrainingCheckpoint,
} from './checkpoint.js';

export interface BatchEvent {
  epoch: number;
  /** 0-based batch index within the epoch. */
  batch: number;
  batches: number;
  /** Mean loss of this batch. */
  loss: number;
  /** Accuracy of this batch. */
  accuracy: number;
  /** Samples seen so far in this epoch. */
  samples: number;
  /** Training samples per second so far in this epoch. */
  samplesPerSecond: number;
}

export interface EpochRecord {
  /** 1-based. */
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  /** Absent when the test set was not evaluated after this epoch. */
  testLoss?: number;
  testAccuracy?: number;
  /** Wall-clock seconds of the training pass (evaluation excluded). */
  seconds: number;
  samplesPerSecond: number;
  /** Batches dropped because their loss or gradients were not finite (onNonFinite: 'skip'). */
  skippedBatches?: number;
}

export interface FitOptions {
  epochs: number;
  /** Samples per step; 1 is per-sample SGD, 'full' (or ≥ the train count) is full-batch descent. */
  batchSize: number | 'full';
  optimizer: OptimizerOptions;
  /** Default 'crossentropy'. */
  loss?: LossName;
  /** Seed of the shuffling stream; default: the model's init seed. */
  seed?: number;
  /** Default true. */
  shuffle?: boolean;
  /** Evaluate the test set every N epochs (and always after the last); 0 = never. Default 1. */
  testEvery?: number;
  /** Batch size for evaluation passes (default 1000). */
  evalBatchSize?: number;
  /**
   * Largest number of samples run through the network at once (default 1024). A bigger batch is
   * processed in chunks whose gradients are summed before the one optimizer step — the same
   * gradient as one pass (up to float summation order), with cache-sized GEMMs and memory that
   * does not grow with the batch: this is how full-batch descent over 60,000 images runs.
   */
  chunkSize?: number;
  onBatchEnd?: (event: BatchEvent) => void;
  /** `evaluation` (with the confusion matrix) is given when the test set was evaluated. */
  onEpochEnd?: (record: EpochRecord, evaluation?: Evaluation) => void;
  /**
   * What to do with a batch whose loss or gradients are NaN/±Inf: 'stop' (default) restores the
   * last good weights and throws TrainingDivergedError naming epoch, batch and layer; 'skip' drops
   * that batch's update and counts it in the epoch's `skippedBatches`.
   */
  onNonFinite?: 'stop' | 'skip';
  /** Stop at the next batch boundary once aborted; the history so far is returned. */
  signal?: AbortSignal;
  /**
   * Called with the run's complete state after every epoch (once its test evaluation is done) and
   * when `signal` stops it mid-epoch: save it (src/io/checkpoint.ts) to make the run resumable.
   */
  onCheckpoint?: (checkpoint: TrainingCheckpoint) => void;
  /**
   * Continue an interrupted run from its checkpoint: the model, data and settings must be the
   * run's own (epochs may be more); the final weights are bit-identical to an uninterrupted run.
   */
  resume?: TrainingCheckpoint;
}

export interface FitResult {
  history: EpochRecord[];
  /** True when `signal` stopped training early. */
  stopped: boolean;
}

export interface Evaluation {
  loss: number;
  accuracy: number;
  count: number;
  /** confusion[actual][predicted] */
  confusion: number[][];
}

export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
  constructor(
    readonly epoch: number,
    readonly batch: number,
    readonly lossValue: number,
    /** Epochs fully completed before the divergence; the model holds their weights. */
    readonly completedEpochs: number,
    /** Where the first non-finite values appeared, e.g. "layer 2 (dense) outputs". */
    readonly where = 'the loss',
  ) {
    super(
      `training diverged: the loss became ${lossValue} at epoch ${epoch}, batch ${batch + 1} ` +
        `(first non-finite values: ${where}); ` +
        `the learning rate is probably too high. The model was restored to ` +
        (completedEpochs > 0 ? `the end of epoch ${completedEpochs}` : 'its initial weights'),
    );
  }
}

/** The first layer (in forward order) whose outputs for n samples hold NaN/±Inf, or the loss. */
function locateNonFiniteOutputs(ws: Workspace, n: number): string {
  const k = ws.model.engine.kernels;
  for (const l of ws.model.layers) {
    if (k.has_non_finite(ws.buffers[l.index]!.out, n * shapeSize(l.outShape)))
      return `layer ${l.index} (${l.type}) outputs`;
  }
  return 'the loss';
}

/** The first layer whose parameter gradients hold NaN/±Inf, or undefined when all are finite. */
function locateNonFiniteGradients(model: Model): string | undefined {
  const k = model.engine.kernels;
  if (!k.has_non_finite(model.gradsPtr, model.regionFloats)) return undefined;
  for (const t of model.tensors) {
    if (k.has_non_finite(model.gradsPtr + t.offset * 4, t.length)) return `${t.name} gradients`;
  }
  return 'the gradients';
}

/** A dataset copied into the model's arena. */
export interface Staged {
  dataset: Dataset;
  imagesPtr: number;
  labelsPtr: number;
  /** (count) i32 row order, identity until `setOrder` writes a shuffle. */
  orderPtr: number;
  /** The staged pixels as a Workspace.forward source; each pass points `indices` at its rows. */
  pixels: PixelSource;
}

/** Copy a dataset's pixels and labels into the model's arena (after the current workspace). */
export function stage(model: Model, dataset: Dataset): Staged {
  const pixels = dataset.rows * dataset.cols;
  if (pixels !== model.inputSize) {
    throw new RangeError(
      `${dataset.name}: images are ${dataset.rows}×${dataset.cols} = ${pixels} pixels, ` +
        `but ${model.name} takes ${model.inputSize} inputs`,
    );
  }
  let maxLabel = 0;
  for (let i = 0; i < dataset.count; i++) maxLabel = Math.max(maxLabel, dataset.labels[i]!);
  if (maxLabel >= model.outputSize) {
    throw new RangeError(
      `${dataset.name}: labels go up to ${maxLabel}, but ${model.name} has ${model.outputSize} outputs`,
    );
  }
  const engine = model.engine;
  const imagesPtr = engine.reserve(dataset.count * pixels, `${dataset.name} images`);
  const labelsPtr = engine.reserve(dataset.count, `${dataset.name} labels`);
  const orderPtr = engine.reserve(dataset.count * 4, `${dataset.name} order`);
  engine
    .u8(imagesPtr, dataset.count * pixels)
    .set(dataset.images.subarray(0, dataset.count * pixels));
  engine.u8(labelsPtr, dataset.count).set(dataset.labels.subarray(0, dataset.count));
  const order = engine.i32(orderPtr, dataset.count);
  for (let i = 0; i < dataset.count; i++) order[i] = i;
  const source = { images: imagesPtr, indices: orderPtr, scale: PIXEL_SCALE };
  return { dataset, imagesPtr, labelsPtr, orderPtr, pixels: source };
}

/** Write an epoch's row order (a permutation of 0…count−1) into the staged order buffer. */
export function setOrder(model: Model, data: Staged, order: Int32Array): void {
  model.engine.i32(data.orderPtr, data.dataset.count).set(order);
}

const PIXEL_SCALE = 1 / 255;
/** Salt of the dropout stream's seed (the golden-ratio constant; any fixed odd value would do). */
const DROPOUT_STREAM = 0x9e3779b9;

/** Stage the rows at positions [start, start+B) of the staged order as the workspace's batch. */
export function loadBatch(ws: Workspace, data: Staged, start: number, B: number): void {
  const k = ws.model.engine.kernels;
  const indices = data.orderPtr + start * 4;
  k.gather_normalize_u8(ws.inputPtr, data.imagesPtr, indices, B, ws.model.inputSize, PIXEL_SCALE);
  k.gather_labels(ws.labelsPtr, data.labelsPtr, indices, B);
}

/**
 * The forward pass of a training step on the rows at positions [start, start+B) of the staged
 * order, labels gathered: the workspace stages their pixels as its first layer needs them (as
 * input shards, or as the float batch; Workspace.forward with `pixels` in training).
 */
export function forwardTraining(ws: Workspace, data: Staged, start: number, B: number): void {
  const indices = data.orderPtr + start * 4;
  ws.model.engine.kernels.gather_labels(ws.labelsPtr, data.labelsPtr, indices, B);
  data.pixels.indices = indices;
  ws.forward(B, true, data.pixels);
}

/**
 * Inference on the rows at positions [start, start+B) of the staged order: an MLP's first layer
 * reads their pixels where they are staged (Workspace.readsPixels; the same bits), anything else
 * gets the float batch from loadBatch. Labels are gathered either way.
 */
function forwardStaged(ws: Workspace, data: Staged, start: number, B: number): void {
  if (!ws.readsPixels) {
    loadBatch(ws, data, start, B);
    ws.forward(B);
    return;
  }
  const indices = data.orderPtr + start * 4;
  ws.model.engine.kernels.gather_labels(ws.labelsPtr, data.labelsPtr, indices, B);
  data.pixels.indices = indices;
  ws.forward(B, false, data.pixels);
}

function evaluateStaged(ws: Workspace, data: Staged, loss: LossName): Evaluation {
  const { model } = ws;
  const classes = model.outputSize;
  const count = data.dataset.count;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < count; start += ws.batchCapacity) {
    const B = Math.min(ws.batchCapacity, count - start);
    forwardStaged(ws, data, start, B);
    const r = ws.loss(B, loss, false);
    lossSum += r.lossSum;
    correct += r.correct;
    model.engine.kernels.argmax_rows(ws.predictionsPtr, ws.outputPtr, B, classes);
    const predicted = model.engine.i32(ws.predictionsPtr, B);
    const actual = model.engine.i32(ws.labelsPtr, B);
    for (let b = 0; b < B; b++) confusion[actual[b]!]![predicted[b]!]!++;
  }
  return {
    loss: count > 0 ? lossSum / count : NaN,
    accuracy: count > 0 ? correct / count : NaN,
    count,
    confusion,
  };
}

function resolveBatchSize(batchSize: number | 'full', trainCount: number): number {
  if (batchSize === 'full') return trainCount;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batch size must be a positive integer or "full", got ${batchSize}`);
  }
  return Math.min(batchSize, trainCount);
}

type TrainData = DataSplit | { train: Dataset; test?: Dataset };

/** Train `model` on `data.train`, evaluating on `data.test`; returns the per-epoch history. */
export function fit(model: Model, data: TrainData, options: FitOptions): FitResult {
  const steps = trainingSteps(model, data, options);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/**
 * `fit` that returns to the event loop every `yieldEveryMs` (default 50) so a worker stays
 * responsive to messages, and waits while `pause()` returns a promise (pause/resume). Paused and
 * yielded time is not counted in the epoch's seconds.
 */
export async function fitAsync(
  model: Model,
  data: TrainData,
  options: FitOptions & { yieldEveryMs?: number; pause?: () => Promise<void> | undefined },
): Promise<FitResult> {
  const steps = trainingSteps(model, data, options);
  const every = options.yieldEveryMs ?? 50;
  let last = performance.now();
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    const now = performance.now();
    if (now - last >= every) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      const waiting = options.pause?.();
      if (waiting) await waiting;
      last = performance.now();
    }
  }
}

/**
 * The training loop as a generator that yields after every batch; `fit` and `fitAsync` drive it.
 * Epoch seconds count only the time spent inside the generator.
 */
export function* trainingSteps(
  model: Model,
  data: TrainData,
  options: FitOptions,
): Generator<void, FitResult, void> {
  const loss = options.loss ?? 'crossentropy';
  model.checkLoss(loss);
  if (!Number.isInteger(options.epochs) || options.epochs < 1) {
    throw new RangeError(`epochs must be a positive integer, got ${options.epochs}`);
  }
  const train = data.train;
  if (train.count < 1) throw new RangeError(`${train.name} is empty: nothing to train on`);
  const batchSize = resolveBatchSize(options.batchSize, train.count);
  const evalBatchSize = options.evalBatchSize ?? 1000;
  const testEvery = options.testEvery ?? 1;
  const optimizer = new Optimizer(model, options.optimizer);
  const chunkSize = options.chunkSize ?? 1024;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`chunk size must be a positive integer, got ${chunkSize}`);
  }
  const chunk = Math.min(batchSize, chunkSize);
  const ws = new Workspace(
    model,
    Math.max(chunk, Math.min(evalBatchSize, data.test?.count ?? 0)),
    chunk,
  );
  const trainStaged = stage(model, train);
  const testStaged = data.test && data.test.count > 0 ? stage(model, data.test) : undefined;
  const seed = options.seed ?? model.seed;
  const shuffle = options.shuffle ?? true;
  let rng = new Rng(seed);
  // Dropout draws from its own stream so that adding dropout does not change the data order.
  ws.dropoutRng = new Rng((seed ^ DROPOUT_STREAM) >>> 0);
  const order = new Int32Array(train.count);
  const batches = Math.ceil(train.count / batchSize);
  let history: EpochRecord[] = [];
  let lastGood = model.snapshot();
  let stopped = false;

  const settings: CheckpointSettings = {
    batchSize,
    loss,
    optimizer: options.optimizer,
    seed,
    shuffle,
    chunkSize,
    build: model.engine.build,
  };
  const fingerprint =
    options.onCheckpoint || options.resume ? fingerprintDataset(train) : undefined;
  const zero = (): EpochProgress => ({
    lossSum: 0,
    correct: 0,
    seen: 0,
    counted: 0,
    skipped: 0,
    busyMs: 0,
  });
  const startSeed = model.seed;
  const startMetadata = structuredClone(model.metadata);
  let firstEpoch = 1;
  let firstBatch = 0;
  let resumedProgress: EpochProgress | undefined;
  const cp = options.resume;
  if (cp) {
    checkResumable(cp, model, settings, fingerprint!, batches, options.epochs);
    model.restore(cp.params);
    model.engine.f32(model.state1Ptr, model.regionFloats).set(cp.state1);
    model.engine.f32(model.state2Ptr, model.regionFloats).set(cp.state2);
    optimizer.setState(cp.optimizer);
    rng = Rng.fromState(cp.shuffleRng);
    ws.dropoutRng = Rng.fromState(cp.dropoutRng);
    history = cp.history.map((r) => ({ ...r }));
    model.seed = cp.modelSeed;
    model.metadata = structuredClone(cp.modelMetadata);
    lastGood = cp.epochStart.slice();
    firstEpoch = cp.epoch;
    firstBatch = cp.batch;
    resumedProgress = { ...cp.progress };
  }
  /** The run's state at a batch boundary of `epoch`, `batch` batches into it. */
  const capture = (
    epoch: number,
    batch: number,
    shuffleRng: Rng,
    progress: EpochProgress,
  ): TrainingCheckpoint => ({
    epoch,
    batch,
    batches,
    shuffleRng: shuffleRng.getState(),
    dropoutRng: ws.dropoutRng!.getState(),
    optimizer: optimizer.getState(),
    progress: { ...progress },
    history: history.map((r) => ({ ...r })),
    settings,
    dataset: fingerprint!,
    modelSeed: cp?.modelSeed ?? startSeed,
    modelMetadata: structuredClone(cp?.modelMetadata ?? startMetadata),
    params: model.snapshot(),
    state1: model.engine.f32(model.state1Ptr, model.regionFloats).slice(),
    state2: model.engine.f32(model.state2Ptr, model.regionFloats).slice(),
    epochStart: lastGood.slice(),
  });

  for (let epoch = firstEpoch; epoch <= options.epochs && !stopped; epoch++) {
    // The stream as it was before this epoch's shuffle: a mid-epoch checkpoint replays from it.
    const epochRng = Rng.fromState(rng.getState());
    if (shuffle) {
      for (let i = 0; i < order.length; i++) order[i] = i;
      rng.shuffle(order);
      setOrder(model, trainStaged, order);
    }
    const p = resumedProgress ?? zero();
    resumedProgress = undefined;
    let busyMs = p.busyMs;
    let resumed = performance.now();
    let lossSum = p.lossSum;
    let correct = p.correct;
    let seen = p.seen;
    let counted = p.counted;
    let skipped = p.skipped;
    const startBatch = epoch === firstEpoch ? firstBatch : 0;
    for (let batch = startBatch; batch < batches; batch++) {
      if (options.signal?.aborted) {
        stopped = true;
        busyMs += performance.now() - resumed;
        resumed = performance.now();
        options.onCheckpoint?.(
          capture(epoch, batch, epochRng, { lossSum, correct, seen, counted, skipped, busyMs }),
        );
        break;
      }
      const start = batch * batchSize;
      const B = Math.min(batchSize, train.count - start);
      const r = { lossSum: 0, correct: 0 };
      let where: string | undefined;
      for (let offset = 0; offset < B && !where; offset += chunk) {
        const n = Math.min(chunk, B - offset);
        forwardTraining(ws, trainStaged, start + offset, n);
        const c = ws.loss(n, loss, true, 1 / B);
        if (!Number.isFinite(c.lossSum)) where = locateNonFiniteOutputs(ws, n);
        else ws.backward(n, offset > 0);
        r.lossSum += c.lossSum;
        r.correct += c.correct;
      }
      // A sharded backward pass has checked the gradients already (Workspace.gradientsFinite).
      if (!where && ws.gradientsFinite !== true) where = locateNonFiniteGradients(model);
      seen += B;
      if (where) {
        if (options.onNonFinite !== 'skip') {
          model.restore(lastGood);
          throw new TrainingDivergedError(epoch, batch, r.lossSum / B, epoch - 1, where);
        }
        skipped++;
      } else {
        optimizer.step();
        lossSum += r.lossSum;
        correct += r.correct;
        counted += B;
      }
      if (options.onBatchEnd) {
        const elapsed = (busyMs + performance.now() - resumed) / 1000;
        options.onBatchEnd({
          epoch,
          batch,
          batches,
          loss: r.lossSum / B,
          accuracy: r.correct / B,
          samples: seen,
          samplesPerSecond: elapsed > 0 ? seen / elapsed : 0,
        });
      }
      busyMs += performance.now() - resumed;
      yield;
      resumed = performance.now();
    }
    if (seen === 0) break;
    const seconds = (busyMs + performance.now() - resumed) / 1000;
    if (model.engine.kernels.has_non_finite(model.paramsPtr, model.regionFloats)) {
      model.restore(lastGood);
      throw new TrainingDivergedError(epoch, batches - 1, NaN, epoch - 1);
    }
    lastGood = model.snapshot();
    const record: EpochRecord = {
      epoch,
      trainLoss: counted > 0 ? lossSum / counted : NaN,
      trainAccuracy: counted > 0 ? correct / counted : NaN,
      seconds,
      samplesPerSecond: seen / seconds,
      ...(skipped > 0 ? { skippedBatches: skipped } : {}),
    };
    const isLast = epoch === options.epochs || stopped;
    let evaluation: Evaluation | undefined;
    if (testStaged && (isLast || (testEvery > 0 && epoch % testEvery === 0))) {
      evaluation = evaluateStaged(ws, testStaged, loss);
      record.testLoss = evaluation.loss;
      record.testAccuracy = evaluation.accuracy;
    }
    history.push(record);
    options.onEpochEnd?.(record, evaluation);
    if (options.onCheckpoint && !stopped) {
      options.onCheckpoint(capture(epoch + 1, 0, rng, zero()));
    }
  }

  const last = history[history.length - 1];
  model.metadata = {
    ...model.metadata,
    seed: model.seed,
    shuffleSeed: seed,
    optimizer: describeOptimizer(options.optimizer),
    learningRate: options.optimizer.learningRate,
    loss,
    batchSize,
    epochs: (Number(model.metadata.epochs) || 0) + history.length,
    dataset: train.name,
    ...(last?.testAccuracy !== undefined
      ? { testAccuracy: last.testAccuracy, testLoss: last.testLoss }
      : {}),
  };
  return { history, stopped };
}

/** Loss, accuracy and confusion matrix of `model` on `dataset`. */
export function evaluate(
  model: Model,
  dataset: Dataset,
  options: { loss?: LossName; batchSize?: number } = {},
): Evaluation {
  const loss = options.loss ?? (model.metadata.loss as LossName | undefined) ?? 'crossentropy';
  model.checkLoss(loss);
  const ws = new Workspace(model, Math.max(1, Math.min(options.batchSize ?? 1000, dataset.count)));
  return evaluateStaged(ws, stage(model, dataset), loss);
}

/**
 * Outputs for `count` samples: (count, outputs) probabilities for a softmax model, raw outputs
 * otherwise. `inputs` are uint8 pixels (scaled by 1/255) or already-normalised floats.
 */
export function predict(
  model: Model,
  inputs: Uint8Array | Float32Array,
  options: { batchSize?: number } = {},
): Float32Array {
  const D = model.inputSize;
  if (inputs.length % D !== 0) {
    throw new RangeError(
      `predict: got ${inputs.length} values, not a multiple of the model's ${D} inputs`,
    );
  }
  const count = inputs.length / D;
  const N = model.outputSize;
  const out = new Float32Array(count * N);
  if (count === 0) return out;
  const ws = new Workspace(model, Math.min(options.batchSize ?? 1000, count));
  const softmax = model.layers[model.layers.length - 1]!.activation === 'softmax';
  const engine = model.engine;
  // uint8 pixels go through the same staging and kernels as training batches: bit-identical
  // floats. One batch is staged at a time (784 KB at batch 1000), so that the first layer reads
  // pixels just copied, from cache, and a large input does not need its own copy in the arena.
  const cap = ws.batchCapacity;
  const staged =
    inputs instanceof Uint8Array
      ? stage(model, {
          name: 'predict inputs',
          images: inputs.subarray(0, cap * D),
          labels: new Uint8Array(cap),
          count: cap,
          rows: 1,
          cols: D,
        })
      : undefined;
  for (let start = 0; start < count; start += cap) {
    const B = Math.min(cap, count - start);
    if (staged) {
      if (start > 0)
        engine.u8(staged.imagesPtr, B * D).set(inputs.subarray(start * D, (start + B) * D));
      forwardStaged(ws, staged, 0, B);
    } else {
      engine.f32(ws.inputPtr, B * D).set(inputs.subarray(start * D, (start + B) * D));
      ws.forward(B);
    }
    if (softmax) engine.kernels.softmax_forward(ws.outputPtr, ws.outputPtr, B, N);
    out.set(engine.f32(ws.outputPtr, B * N), start * N);
  }
  return out;
}
