/**
 * mnist-wasm's browser entry: no Node built-ins. The trainer runs in a Web Worker
 * (TrainerClient); specs, presets and model-file decoding work on the page too.
 *
 *   import wasmUrl from 'mnist-wasm/wasm?url';
 *   import { TrainerClient, preset } from 'mnist-wasm/browser';
 */
export {
  TrainerClient,
  type TrainerEvents,
  type TestImages,
  type WasmUrls,
} from './browser/client.js';
export type { DatasetName, ThreadsChoice, TrainRequestOptions } from './browser/protocol.js';
export {
  Engine,
  OutOfMemoryError,
  SIMD_CHOICES,
  type SimdBuild,
  type SimdChoice,
} from './engine/engine.js';
export { Rng } from './engine/rng.js';
export {
  sequential,
  SpecError,
  type ModelSpec,
  type LayerSpec,
  type Activation,
} from './nn/spec.js';
export { PRESETS, preset, presetNames, withActivation } from './nn/presets.js';
export { Model } from './nn/model.js';
export {
  fit,
  fitAsync,
  evaluate,
  predict,
  type EpochRecord,
  type BatchEvent,
  type Evaluation,
} from './train/fit.js';
export { encodeModel, decodeModel, modelFromBytes, ModelFileError } from './io/safetensors.js';
export { preprocessDigit, inkFromRgba } from './data/preprocess.js';
export { parseIdxImages, parseIdxLabels } from './data/idx-format.js';
