/**
 * Checkpoint files: one safetensors file (so every tool that reads safetensors can look inside)
 * holding a model's whole training state. Written atomically by src/io/files.ts saveCheckpoint, so a
 * crash, a kill or a full disk leaves the previous checkpoint intact.
 *
 *   tensors   params, optimizer.state1, optimizer.state2, epoch_start   F32 (regionFloats) each:
 *             the model's padded parameter region and its mirrors, in the model's own layout
 *   metadata  format "mnist-wasm-checkpoint", version "1",
 *             spec      the model spec (JSON), training: the model's metadata (JSON),
 *             state     position, random streams, optimizer counters, epoch sums, history,
 *                       settings and data fingerprint (JSON),
 *             run       what the caller needs to restart the run (the CLI: data, recipe, epochs; JSON)
 *
 * No Node built-ins here.
 */
import { Rng } from '../engine/rng.js';
import type { Engine } from '../engine/engine.js';
import { Model, type TrainingMetadata } from '../nn/model.js';
import { resolveSpec, type ModelSpec } from '../nn/spec.js';
import { CheckpointError, type TrainingCheckpoint } from '../train/checkpoint.js';
import type { EpochRecord } from '../train/fit.js';
import {
  encodeSafetensors,
  float32Values,
  readSafetensors,
  readSafetensorsMetadata,
} from './safetensors-container.js';

export const CHECKPOINT_FORMAT = 'mnist-wasm-checkpoint';
export const CHECKPOINT_VERSION = '1';
/** The file inside a checkpoint directory. */
export const CHECKPOINT_FILE = 'checkpoint.safetensors';

const REGIONS = [
  ['params', 'params'],
  ['state1', 'optimizer.state1'],
  ['state2', 'optimizer.state2'],
  ['epochStart', 'epoch_start'],
] as const;

/** A decoded checkpoint file. */
export interface CheckpointFile {
  spec: ModelSpec;
  metadata: TrainingMetadata;
  checkpoint: TrainingCheckpoint;
  /** The caller's own record of the run (e.g. the CLI's options). */
  run: Record<string, unknown>;
}

export function encodeCheckpoint(
  spec: ModelSpec,
  metadata: TrainingMetadata,
  checkpoint: TrainingCheckpoint,
  run: Record<string, unknown> = {},
): Uint8Array {
  const { params: _p, state1: _s1, state2: _s2, epochStart: _e, ...state } = checkpoint;
  return encodeSafetensors(
    REGIONS.map(([key, name]) => ({
      name,
      shape: [checkpoint[key].length],
      data: checkpoint[key],
    })),
    {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      spec: JSON.stringify(spec),
      training: JSON.stringify(metadata),
      state: JSON.stringify(state),
      run: JSON.stringify(run),
    },
  );
}

const RECORD_NUMBERS = ['trainLoss', 'trainAccuracy', 'testLoss', 'testAccuracy'] as const;

/** Whether `bytes` look like a checkpoint file (its header names the checkpoint format). */
export function isCheckpoint(bytes: Uint8Array): boolean {
  try {
    return readSafetensorsMetadata(bytes, '').format === CHECKPOINT_FORMAT;
  } catch {
    return false;
  }
}

/** A model holding a checkpoint's weights (to evaluate or predict with a run in progress). */
export function modelFromCheckpoint(file: CheckpointFile, engine: Engine): Model {
  const { checkpoint: cp } = file;
  const model = new Model(file.spec, engine, cp.modelSeed);
  if (cp.params.length !== model.regionFloats) {
    throw new CheckpointError(
      `the checkpoint holds ${cp.params.length} parameter floats, its architecture needs ${model.regionFloats}`,
    );
  }
  model.restore(cp.params);
  model.metadata = {
    ...file.metadata,
    checkpoint:
      cp.batch === 0 ? `end of epoch ${cp.epoch - 1}` : `epoch ${cp.epoch}, batch ${cp.batch}`,
  };
  return model;
}

/** Parse and check a checkpoint file completely; `source` names it in messages. */
export function decodeCheckpoint(bytes: Uint8Array, source: string): CheckpointFile {
  const fail = (what: string): never => {
    throw new CheckpointError(`${source}: ${what}`);
  };
  let file;
  try {
    file = readSafetensors(bytes, source);
  } catch (e) {
    throw new CheckpointError((e as Error).message);
  }
  const meta = file.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) {
    fail(
      `not an mnist-wasm checkpoint (metadata "format" is ${JSON.stringify(meta.format)}, ` +
        `expected "${CHECKPOINT_FORMAT}")`,
    );
  }
  if (meta.version !== CHECKPOINT_VERSION) {
    fail(
      `checkpoint version ${JSON.stringify(meta.version)} is not supported ` +
        `(this build reads version ${CHECKPOINT_VERSION})`,
    );
  }
  let spec: ModelSpec;
  let metadata: TrainingMetadata;
  let state: Omit<TrainingCheckpoint, (typeof REGIONS)[number][0]>;
  let run: Record<string, unknown>;
  try {
    spec = JSON.parse(meta.spec ?? '') as ModelSpec;
    metadata = JSON.parse(meta.training ?? '{}') as TrainingMetadata;
    state = JSON.parse(meta.state ?? '') as typeof state;
    run = JSON.parse(meta.run ?? '{}') as Record<string, unknown>;
  } catch (e) {
    return fail(`metadata is not valid JSON (${(e as Error).message})`);
  }
  try {
    resolveSpec(spec);
  } catch (e) {
    return fail(`architecture in the checkpoint is invalid: ${(e as Error).message}`);
  }
  const isObject = (x: unknown): boolean => typeof x === 'object' && x !== null;
  const isCount = (x: unknown): boolean => Number.isInteger(x) && (x as number) >= 0;
  if (
    !isObject(state) ||
    !isCount(state.epoch) ||
    state.epoch < 1 ||
    !isCount(state.batch) ||
    !isCount(state.batches) ||
    !Array.isArray(state.history) ||
    !isObject(state.optimizer) ||
    !isObject(state.progress) ||
    !isObject(state.settings) ||
    !isObject(state.dataset) ||
    !Number.isInteger(state.modelSeed) ||
    !isObject(state.modelMetadata)
  ) {
    fail('training state is incomplete (position, history, optimizer, settings or data missing)');
  }
  try {
    Rng.fromState(state.shuffleRng);
    Rng.fromState(state.dropoutRng);
  } catch (e) {
    return fail(`training state is corrupt: ${(e as Error).message}`);
  }
  // JSON has no NaN: an epoch whose batches were all skipped wrote null.
  const history = state.history.map((r) => {
    const record = { ...r } as EpochRecord & Record<string, unknown>;
    for (const key of RECORD_NUMBERS) if (record[key] === null) record[key] = NaN;
    return record;
  });
  const regions = {} as Record<(typeof REGIONS)[number][0], Float32Array>;
  let length: number | undefined;
  for (const [key, name] of REGIONS) {
    const tensor = file.tensors.get(name);
    if (!tensor) return fail(`tensor "${name}" is missing`);
    if (tensor.dtype !== 'F32') fail(`tensor "${name}" has dtype ${tensor.dtype}, expected F32`);
    const values = float32Values(tensor);
    length ??= values.length;
    if (values.length !== length)
      fail(`tensor "${name}" has ${values.length} floats, not ${length}`);
    regions[key] = values;
  }
  for (const [key, values] of Object.entries(regions)) {
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) fail(`${key} holds a non-finite value at index ${bad}`);
  }
  return { spec, metadata, checkpoint: { ...state, history, ...regions }, run };
}
