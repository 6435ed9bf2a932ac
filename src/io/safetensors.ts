/**
 * Model files in the safetensors format (https://github.com/huggingface/safetensors), readable by
 * the `safetensors` Python package, PyTorch, and anything that parses the simple layout:
 *
 *   u64 little-endian N | N bytes of JSON header (space-padded to a multiple of 8) | tensor data
 *
 * Header: one entry per tensor, `{ "dtype": "F32", "shape": [...], "data_offsets": [begin, end] }`
 * with offsets relative to the data section, plus `__metadata__` (string → string):
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

export const MODEL_FORMAT = 'mnist-wasm';
export const MODEL_VERSION = '1';
/** Refuse absurd headers before parsing them (the safetensors reference limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export class ModelFileError extends Error {
  override name = 'ModelFileError';
}

interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A decoded, fully validated model file. */
export interface DecodedModel {
  spec: ModelSpec;
  metadata: TrainingMetadata;
  tensors: Map<string, Float32Array>;
}

if (new Uint8Array(new Float32Array([1]).buffer)[3] !== 0x3f) {
  throw new Error('mnist-wasm model files assume a little-endian platform');
}

/** Serialise a model's architecture, weights and metadata. */
export function encodeModel(model: Model): Uint8Array {
  const header: Record<string, unknown> = {
    __metadata__: {
      format: MODEL_FORMAT,
      version: MODEL_VERSION,
      spec: JSON.stringify(model.spec),
      training: JSON.stringify(model.metadata),
    },
  };
  let offset = 0;
  for (const t of model.tensors) {
    header[t.name] = {
      dtype: 'F32',
      shape: t.shape,
      data_offsets: [offset, offset + t.length * 4],
    };
    offset += t.length * 4;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const params = model.parameters();
  let at = 8 + json.length;
  for (const t of model.tensors) {
    const values = params.subarray(t.offset, t.offset + t.length);
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
    at += values.byteLength;
  }
  return out;
}

/** Parse and validate a model file completely; `source` names it in error messages. */
export function decodeModel(bytes: Uint8Array, source: string): DecodedModel {
  const fail = (what: string): never => {
    throw new ModelFileError(`${source}: ${what}`);
  };
  if (bytes.length < 8)
    fail(`${bytes.length} bytes is too short for a model file (safetensors header missing)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) {
    fail(
      `header length field says ${headerLength} bytes but the file has ${bytes.length} bytes ` +
        `(not a safetensors file, or truncated)`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)),
    );
  } catch (e) {
    return fail(
      `header is not valid JSON (${(e as Error).message}); the file is corrupt or not a model file`,
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('header is not a JSON object');
  const meta = header.__metadata__ as Record<string, unknown> | undefined;
  if (!meta || meta.format !== MODEL_FORMAT) {
    fail(
      `not an mnist-wasm model (metadata "format" is ${JSON.stringify(meta?.format)}, expected "${MODEL_FORMAT}")`,
    );
  }
  if (meta!.version !== MODEL_VERSION) {
    fail(
      `model file version ${JSON.stringify(meta!.version)} is not supported (this build reads version ${MODEL_VERSION})`,
    );
  }
  let spec: ModelSpec;
  let metadata: TrainingMetadata;
  try {
    spec = JSON.parse(String(meta!.spec)) as ModelSpec;
    metadata = JSON.parse(String(meta!.training ?? '{}')) as TrainingMetadata;
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
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, Float32Array>();
  let covered = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const shape = expected.get(name);
    if (!shape)
      fail(
        `unexpected tensor "${name}" for this architecture (expected ${[...expected.keys()].join(', ')})`,
      );
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      fail(
        `tensor "${name}" has no {dtype, shape, data_offsets} entry (found ${JSON.stringify(entry)})`,
      );
    }
    const e = entry as Partial<TensorEntry>;
    if (e.dtype !== 'F32')
      fail(`tensor "${name}" has dtype ${JSON.stringify(e.dtype)}, expected "F32"`);
    if (!Array.isArray(e.shape) || e.shape.join(',') !== shape!.join(',')) {
      fail(
        `tensor "${name}" has shape [${String(e.shape)}], the architecture needs [${shape!.join(', ')}]`,
      );
    }
    const [begin, end] = Array.isArray(e.data_offsets) ? e.data_offsets : [NaN, NaN];
    const byteLength = shape!.reduce((a, b) => a * b, 1) * 4;
    if (
      !Number.isInteger(begin) ||
      !Number.isInteger(end) ||
      begin < 0 ||
      end - begin !== byteLength
    ) {
      fail(
        `tensor "${name}" has data_offsets ${JSON.stringify(e.data_offsets)}, expected a range of ${byteLength} bytes`,
      );
    }
    if (end > dataLength) {
      fail(
        `tensor "${name}" ends at byte ${end} of the data section, which has only ${dataLength} bytes (file truncated)`,
      );
    }
    const values = new Float32Array(byteLength / 4);
    new Uint8Array(values.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!))
        fail(`tensor "${name}" contains a non-finite value (${values[i]}) at index ${i}`);
    }
    tensors.set(name, values);
    covered += byteLength;
  }
  for (const name of expected.keys()) {
    if (!tensors.has(name)) fail(`tensor "${name}" is missing`);
  }
  if (covered !== dataLength) {
    fail(
      `data section has ${dataLength} bytes but the tensors cover ${covered} (corrupt or padded file)`,
    );
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
