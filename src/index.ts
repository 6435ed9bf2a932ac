/**
 * mnist-wasm's public Node API. Everything a script needs is exported from here.
 *
 *   import { createModel, loadMnist, fit, evaluate, saveModel } from 'mnist-wasm';
 */
export {
  Engine,
  OutOfMemoryError,
  SIMD_CHOICES,
  type EngineOptions,
  type SimdBuild,
  type SimdChoice,
} from './engine/engine.js';
export { createEngine, relaxedSimdAvailable } from './engine/node.js';
export { Rng } from './engine/rng.js';
export {
  sequential,
  SpecError,
  type ModelSpec,
  type LayerSpec,
  type DenseSpec,
  type Conv2dSpec,
  type Pool2dSpec,
  type DropoutSpec,
  type FlattenSpec,
  type Activation,
  type InitName,
  type ResolvedLayer,
  type Shape,
} from './nn/spec.js';
export { PRESETS, preset, presetNames, withActivation } from './nn/presets.js';
export { Workspace } from './nn/workspace.js';
export {
  Model,
  LOSSES,
  type LossName,
  type TrainingMetadata,
  type ParamTensor,
} from './nn/model.js';
export { createModel, specFromName } from './nn/create.js';
export {
  fit,
  fitAsync,
  evaluate,
  predict,
  TrainingDivergedError,
  type FitOptions,
  type FitResult,
  type EpochRecord,
  type BatchEvent,
  type Evaluation,
} from './train/fit.js';
export {
  Optimizer,
  OPTIMIZERS,
  ADAM_DEFAULTS,
  type OptimizerOptions,
  type OptimizerName,
} from './train/optimizer.js';
export { RECIPES, type Recipe } from './train/recipes.js';
export {
  compareActivations,
  compareRuns,
  sweepLearningRates,
  type ComparisonRun,
} from './train/compare.js';
export { plotCurves, type PlotSeries } from './io/plot.js';
export {
  encodeModel,
  decodeModel,
  modelFromBytes,
  ModelFileError,
  MODEL_FORMAT,
  MODEL_VERSION,
} from './io/safetensors.js';
export {
  saveModel,
  loadModel,
  saveCheckpoint,
  loadCheckpoint,
  writeFileAtomic,
} from './io/files.js';
export {
  encodeCheckpoint,
  decodeCheckpoint,
  CHECKPOINT_FILE,
  type CheckpointFile,
} from './io/checkpoint.js';
export {
  CheckpointError,
  fingerprintDataset,
  type TrainingCheckpoint,
  type CheckpointSettings,
} from './train/checkpoint.js';
export { encodeOnnx, decodeOnnx, OnnxExportError, ONNX_OPSET } from './io/onnx.js';
export {
  importForeignWeights,
  WEIGHT_LAYOUTS,
  type WeightLayout,
  type ImportOptions,
  type ImportReport,
} from './io/import.js';
export type { Dataset, DataSplit } from './data/dataset.js';
export { subset } from './data/dataset.js';
export { loadMnist, loadMnistQuick, loadIdxDir } from './data/mnist.js';
export { readDigitImage } from './data/image.js';
