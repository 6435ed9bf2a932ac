/**
 * Model files in the safetensors format (https://github.com/huggingface/safetensors; the container
 * is ./safetensors-container.ts), readable by the `safetensors` Python package, PyTorch, and anything
 * that parses the simple layout. One F32 entry per parameter tensor, plus `__metadata__`:
 *   format   "mnist-wasm"
 *   version  "1"
 *   spec     the model spec as JSON (architecture)
 *   training training metadata as JSON (seed, optimizer, epochs, accuracy, …)
 * Dense weights are stored (in, out) — Keras's layout; PyTorch's Linear.weight is the transpose.
 *
 * This module has no Node built-ins (the browser uses it too); file writing lives in ./files.ts.
 */
import { Engine } from '../engine/engine.js';
import { Model, type TrainingMetadata } from '../nn/model.js';
import { resolveSpec, type ModelSpec, type Shape } from '../nn/spec.js';
import {
  encodeSafetensors,
  float32Values,
  readSafetensors,
  readSafetensorsMetadata,
  SafetensorsError,
} from './safetensors-container.js';

export const MODEL_FORMAT = 'mnist-wasm';
export const MODEL_VERSION = '1';

export class ModelFileError extends Error {
  override name = 'ModelFileError';
}

/** A decoded, fully validated model file. */
export interface DecodedModel {
  spec: ModelSpec;
  metadata: TrainingMetadata;
  tensors: Map<string, Float32Array>;
}

/** Serialise a model's architecture, weights and metadata. */
export function encodeModel(model: Model): Uint8Array {
  const params = model.parameters();
  return encodeSafetensors(
    model.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      data: params.subarray(t.offset, t.offset + t.length),
    })),
    {
      format: MODEL_FORMAT,
      version: MODEL_VERSION,
      spec: JSON.stringify(model.spec),
      training: JSON.stringify(model.metadata),
    },
  );
}

/** Parse and validate a model file completely; `source` names it in error messages. */
export function decodeModel(bytes: Uint8Array, source: string): DecodedModel {
  const fail = (what: string): never => {
    throw new ModelFileError(`${source}: ${what}`);
  };
  // The metadata decides what the tensors must be, so it is read first (from the same header).
  let meta: Record<string, string>;
  try {
    meta = readSafetensorsMetadata(bytes, source);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ModelFileError(e.message);
    throw e;
  }
  if (meta.format !== MODEL_FORMAT) {
    fail(
      `not an mnist-wasm model (metadata "format" is ${JSON.stringify(meta.format)}, expected "${MODEL_FORMAT}")`,
    );
  }
  if (meta.version !== MODEL_VERSION) {
    fail(
      `model file version ${JSON.stringify(meta.version)} is not supported (this build reads version ${MODEL_VERSION})`,
    );
  }
  let spec: ModelSpec;
  let metadata: TrainingMetadata;
  try {
    spec = JSON.parse(String(meta.spec)) as ModelSpec;
    metadata = JSON.parse(meta.training ?? '{}') as TrainingMetadata;
  } catch (e) {
    return fail(`metadata "spec"/"training" is not valid JSON (${(e as Error).message})`);
  }
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    fail('metadata "training" must be a JSON object');
  }
  let layers;
  try {
    layers = resolveSpec(spec);
  } catch (e) {
    return fail(`architecture in the file is invalid: ${(e as Error).message}`);
  }
  const expected = new Map<string, number[]>();
  for (const l of layers) {
    for (const p of l.params) expected.set(p.name, p.shape);
  }
  let file;
  try {
    file = readSafetensors(bytes, source, (name, dtype, shape) => {
      const needed = expected.get(name);
      if (!needed)
        fail(
          `unexpected tensor "${name}" for this architecture (expected ${[...expected.keys()].join(', ')})`,
        );
      if (dtype !== 'F32')
        fail(`tensor "${name}" has dtype ${JSON.stringify(dtype)}, expected "F32"`);
      if (shape.join(',') !== needed!.join(',')) {
        fail(
          `tensor "${name}" has shape [${String(shape)}], the architecture needs [${needed!.join(', ')}]`,
        );
      }
    });
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ModelFileError(e.message);
    throw e;
  }
  const tensors = new Map<string, Float32Array>();
  for (const [name, t] of file.tensors) {
    const values = float32Values(t);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!))
        fail(`tensor "${name}" contains a non-finite value (${values[i]}) at index ${i}`);
    }
    tensors.set(name, values);
  }
  for (const name of expected.keys()) {
    if (!tensors.has(name)) fail(`tensor "${name}" is missing`);
  }
  return { spec, metadata, tensors };
}

/** Copy decoded weights into a model of the same architecture. Validates before writing anything. */
export function applyWeights(model: Model, decoded: DecodedModel, source: string): void {
  const same =
    JSON.stringify(resolveSpec(decoded.spec).map(({ index: _i, ...l }) => l)) ===
    JSON.stringify(model.layers.map(({ index: _i, ...l }) => l));
  if (!same) {
    throw new ModelFileError(
      `${source}: the file holds a different architecture (${describeSpec(decoded.spec)}) ` +
        `than the current model (${describeSpec(model.spec)})`,
    );
  }
  const params = model.parameters();
  for (const t of model.tensors) params.set(decoded.tensors.get(t.name)!, t.offset);
  model.metadata = decoded.metadata;
  if (typeof decoded.metadata.seed === 'number') model.seed = decoded.metadata.seed;
}

/** A new model (on `engine`) holding the file's architecture and weights. */
export function modelFromBytes(bytes: Uint8Array, source: string, engine: Engine): Model {
  const decoded = decodeModel(bytes, source);
  const seed = typeof decoded.metadata.seed === 'number' ? decoded.metadata.seed : 0;
  const model = new Model(decoded.spec, engine, seed);
  applyWeights(model, decoded, source);
  return model;
}

/** "784-256-128-10" style description. */
export function describeSpec(spec: ModelSpec): string {
  const layers = resolveSpec(spec);
  const size = (s: Shape): string =>
    s.h === 1 && s.w === 1 ? String(s.c) : `${s.h}×${s.w}×${s.c}`;
  const parts = [size(layers[0]!.inShape)];
  for (const l of layers) {
    if (l.type === 'dense') parts.push(String(l.outShape.c));
    else if (l.type === 'conv2d') parts.push(`c${l.kernelSize}x${l.outShape.c}`);
    else if (l.type === 'maxPool2d' || l.type === 'avgPool2d')
      parts.push(`${l.type === 'maxPool2d' ? 'mp' : 'ap'}${l.kernelSize}`);
  }
  return parts.join('-');
}
