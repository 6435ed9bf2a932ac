/**
 * Messages between a page (TrainerClient) and the training worker. Everything is structured-
 * cloneable; large byte arrays are transferred, not copied.
 */
import type { Evaluation, EpochRecord, BatchEvent, FitResult } from '../train/fit.js';
import type { ModelSpec } from '../nn/spec.js';
import type { OptimizerOptions } from '../train/optimizer.js';
import type { LossName } from '../nn/model.js';
import type { SimdBuild, SimdChoice } from '../engine/engine.js';

/**
 * Threads that share each GEMM and optimizer step in the worker: an integer from 1 to 256, or
 * 'auto' — navigator.hardwareConcurrency capped at MAX_AUTO_THREADS. More than one needs a
 * cross-origin isolated page (COOP + COEP) and the threads builds; otherwise the worker runs one
 * thread and says why in `ready.notice`.
 */
export type ThreadsChoice = number | 'auto';
/** The most threads 'auto' picks: on more, the serial parts of a step dominate (README). */
export const MAX_AUTO_THREADS = 4;

/** Which dataset the worker fetches from the page's origin (see web/public/data/). */
export type DatasetName = 'mnist' | 'quick';

export interface TrainRequestOptions {
  epochs: number;
  batchSize: number | 'full';
  optimizer: OptimizerOptions;
  loss?: LossName;
  seed: number;
  /** Train on the first N training images only. */
  limit?: number;
}

export type ToWorker =
  /**
   * Compile the kernels: `wasmUrl` is the baseline build; with `relaxedWasmUrl` the worker picks
   * the relaxed build when the browser validates it (simd 'auto', the default) or as told.
   * `threads` (default 1) above one also needs the threads variant of the chosen build
   * (`threadsWasmUrl`, `relaxedThreadsWasmUrl`). Sent again (not while training) to change them;
   * the current model keeps its engine until it is replaced.
   */
  | {
      type: 'init';
      wasmUrl: string;
      relaxedWasmUrl?: string;
      threadsWasmUrl?: string;
      relaxedThreadsWasmUrl?: string;
      simd?: SimdChoice;
      threads?: ThreadsChoice;
    }
  | { type: 'load-data'; dataset: DatasetName; baseUrl: string }
  | { type: 'train'; spec: ModelSpec; options: TrainRequestOptions }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  | { type: 'predict'; id: number; pixels: Uint8Array }
  | { type: 'test-images'; id: number; start: number; count: number }
  | { type: 'export-model'; id: number }
  | { type: 'import-model'; id: number; bytes: Uint8Array; name: string }
  | { type: 'hash'; id: number };

export type FromWorker =
  /**
   * `threads`: the threads the next models train on; `notice`: why it is fewer than asked for
   * (the page is not cross-origin isolated, the threads build failed, …).
   */
  | { type: 'ready'; build: SimdBuild; fusedMadd: boolean; threads: number; notice?: string }
  | { type: 'data-progress'; loaded: number; total: number }
  | { type: 'data-ready'; dataset: DatasetName; trainCount: number; testCount: number }
  | { type: 'batch'; event: BatchEvent }
  | { type: 'epoch'; record: EpochRecord; evaluation?: Evaluation }
  | { type: 'done'; result: FitResult }
  | { type: 'prediction'; id: number; probabilities: Float32Array }
  | {
      type: 'test-images';
      id: number;
      images: Uint8Array;
      labels: Uint8Array;
      predictions: Int32Array | null;
    }
  | { type: 'model-bytes'; id: number; bytes: Uint8Array }
  | { type: 'model-loaded'; id: number; name: string; summary: string }
  | { type: 'hash'; id: number; hex: string }
  | { type: 'error'; id?: number; message: string };
