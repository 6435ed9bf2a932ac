/**
 * Training checkpoints: everything a run needs to continue exactly where it stopped, at a batch
 * boundary — weights, optimizer moments and counters, both random streams, the epoch/batch position,
 * the running sums of the epoch in progress, the history, and what the run was (settings, data).
 * `fit({ resume })` continues from one so that the final weights are bit-identical to a run that was
 * never interrupted. No Node built-ins: src/io/checkpoint.ts turns checkpoints into files.
 */
import type { Dataset } from '../data/dataset.js';
import type { SimdBuild } from '../engine/engine.js';
import type { RngState } from '../engine/rng.js';
import type { LossName, Model, TrainingMetadata } from '../nn/model.js';
import type { OptimizerCounters, OptimizerOptions } from './optimizer.js';
import type { EpochRecord } from './fit.js';

/** The settings a resumed run must share with the interrupted one (epochs may grow). */
export interface CheckpointSettings {
  /** Resolved: never 'full'. */
  batchSize: number;
  loss: LossName;
  optimizer: OptimizerOptions;
  /** Seed of the shuffle stream (the dropout stream derives from it). */
  seed: number;
  shuffle: boolean;
  chunkSize: number;
  /** The kernel build that computed the run (FMA or not changes the bits; see src/engine). */
  build: SimdBuild;
}

/** Identifies training data without keeping it: count and an FNV-1a checksum of pixels and labels. */
export interface DatasetFingerprint {
  name: string;
  count: number;
  checksum: string;
}

/** Running sums of the epoch in progress. */
export interface EpochProgress {
  lossSum: number;
  correct: number;
  /** Samples run, skipped batches included. */
  seen: number;
  /** Samples whose batch was applied. */
  counted: number;
  skipped: number;
  /** Milliseconds spent training in this epoch so far. */
  busyMs: number;
}

export interface TrainingCheckpoint {
  /** The epoch in progress, or the next one when `batch` is 0 (1-based). */
  epoch: number;
  /** Batches of `epoch` already done. */
  batch: number;
  /** Batches per epoch. */
  batches: number;
  /** The shuffle stream before `epoch`'s shuffle: replaying that shuffle rebuilds the epoch's order. */
  shuffleRng: RngState;
  /** The dropout stream at the position. */
  dropoutRng: RngState;
  optimizer: OptimizerCounters;
  progress: EpochProgress;
  /** Completed epochs. */
  history: EpochRecord[];
  settings: CheckpointSettings;
  dataset: DatasetFingerprint;
  /** The model's init seed and metadata when the run began (a resumed model takes them over). */
  modelSeed: number;
  modelMetadata: TrainingMetadata;
  /** (regionFloats) each: the model's parameter region and the optimizer's two state regions. */
  params: Float32Array;
  state1: Float32Array;
  state2: Float32Array;
  /** (regionFloats) weights at the start of `epoch`: what the divergence guard restores. */
  epochStart: Float32Array;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** FNV-1a (32-bit) over the pixels, then the labels, then the count. */
export function fingerprintDataset(dataset: Dataset): DatasetFingerprint {
  let h = 0x811c9dc5;
  const mix = (bytes: Uint8Array): void => {
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  };
  mix(dataset.images.subarray(0, dataset.count * dataset.rows * dataset.cols));
  mix(dataset.labels.subarray(0, dataset.count));
  h = Math.imul(h ^ dataset.count, 0x01000193);
  return {
    name: dataset.name,
    count: dataset.count,
    checksum: (h >>> 0).toString(16).padStart(8, '0'),
  };
}

const OPTIMIZER_KEYS = [
  'type',
  'learningRate',
  'momentum',
  'nesterov',
  'beta1',
  'beta2',
  'rho',
  'epsilon',
  'weightDecay',
] as const;

/**
 * Refuse to continue a checkpoint with a different model, data or settings, naming the difference:
 * any of them would silently make the resumed run something other than the interrupted one.
 */
export function checkResumable(
  checkpoint: TrainingCheckpoint,
  model: Model,
  settings: CheckpointSettings,
  dataset: DatasetFingerprint,
  batches: number,
  epochs: number,
): void {
  const fail = (what: string): never => {
    throw new CheckpointError(`cannot resume: ${what}`);
  };
  for (const region of ['params', 'state1', 'state2', 'epochStart'] as const) {
    if (checkpoint[region].length !== model.regionFloats) {
      fail(
        `the checkpoint's ${region} hold ${checkpoint[region].length} floats, ` +
          `${model.name} needs ${model.regionFloats} (a different architecture)`,
      );
    }
  }
  if (
    dataset.count !== checkpoint.dataset.count ||
    dataset.checksum !== checkpoint.dataset.checksum
  ) {
    fail(
      `the checkpoint was trained on ${checkpoint.dataset.name} (${checkpoint.dataset.count} images, ` +
        `checksum ${checkpoint.dataset.checksum}), this run has ${dataset.name} ` +
        `(${dataset.count} images, checksum ${dataset.checksum})`,
    );
  }
  const saved = checkpoint.settings;
  const differs = (name: string, was: unknown, now: unknown): void => {
    if (JSON.stringify(was) !== JSON.stringify(now))
      fail(`${name} was ${JSON.stringify(was)} in the checkpoint, now ${JSON.stringify(now)}`);
  };
  differs('the batch size', saved.batchSize, settings.batchSize);
  differs('the loss', saved.loss, settings.loss);
  differs('the seed', saved.seed, settings.seed);
  differs('shuffling', saved.shuffle, settings.shuffle);
  differs('the chunk size', saved.chunkSize, settings.chunkSize);
  differs('the kernel build', saved.build, settings.build);
  for (const key of OPTIMIZER_KEYS) {
    differs(`optimizer ${key}`, saved.optimizer[key], settings.optimizer[key]);
  }
  if (checkpoint.batches !== batches || checkpoint.batch > batches) {
    fail(`the checkpoint has ${checkpoint.batches} batches per epoch, this run ${batches}`);
  }
  if (checkpoint.epoch > epochs) {
    fail(
      `the checkpoint is already at the end of epoch ${checkpoint.epoch - 1}; ` +
        `ask for more epochs (e.g. --epochs ${checkpoint.epoch}) to continue training`,
    );
  }
}
