/**
 * A Sequential model bound to one engine (one wasm instance and its memory): its parameter layout,
 * initialisation and summary. `Workspace` (./workspace.ts) runs it on batches.
 *
 * Memory layout (byte offsets chosen by the host, once):
 *   persistent  params | grads | state1 | state2     each `regionFloats` floats, the same tensor order
 *   per run     workspace (input, labels, per-layer outputs, deltas and caches, scratch), staged data
 * The parameter region is one contiguous block so optimizers are one flat loop over it; each tensor
 * is padded to 16 floats (64 bytes), and padding stays zero in params and grads.
 */
import { ALIGN, alignUp, Engine } from '../engine/engine.js';
import { Rng } from '../engine/rng.js';
import {
  formatShape,
  resolveSpec,
  shapeSize,
  type ModelSpec,
  type ResolvedLayer,
  type Shape,
} from './spec.js';

/** A named parameter tensor inside the parameter region (offsets in floats from its start). */
export interface ParamTensor {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

/** What training recorded about a model; saved in the model file. */
export interface TrainingMetadata {
  seed: number;
  optimizer?: string;
  learningRate?: number;
  loss?: string;
  batchSize?: number;
  epochs?: number;
  testAccuracy?: number;
  testLoss?: number;
  dataset?: string;
  [key: string]: unknown;
}

export type LossName = 'crossentropy' | 'mse' | 'sse';
export const LOSSES: readonly LossName[] = ['crossentropy', 'mse', 'sse'];

export const FLOAT_BYTES = 4;
const TENSOR_PAD_FLOATS = 16;

export class Model {
  readonly spec: ModelSpec;
  readonly layers: readonly ResolvedLayer[];
  readonly engine: Engine;
  readonly tensors: readonly ParamTensor[];
  /** Parameters without padding, as a person counts them. */
  readonly parameterCount: number;
  /** Floats in each of params / grads / state regions, padding included. */
  readonly regionFloats: number;
  readonly paramsPtr: number;
  readonly gradsPtr: number;
  readonly state1Ptr: number;
  readonly state2Ptr: number;
  /** Arena mark after the persistent regions: runs reserve their buffers from here. */
  readonly persistentMark: number;
  /** Per layer: byte offsets of its weight and bias in the params region (grads: + gradsPtr − paramsPtr). */
  readonly layerPtrs: readonly { weight: number; bias: number }[];
  seed: number;
  metadata: TrainingMetadata;

  constructor(spec: ModelSpec, engine: Engine, seed: number) {
    this.layers = resolveSpec(spec);
    this.spec = structuredClone(spec);
    this.engine = engine;
    this.seed = seed;
    this.metadata = { seed };
    const tensors: ParamTensor[] = [];
    let offset = 0;
    const add = (name: string, shape: number[]): void => {
      const length = shape.reduce((a, b) => a * b, 1);
      tensors.push({ name, shape, offset, length });
      offset += alignUp(length, TENSOR_PAD_FLOATS);
    };
    for (const layer of this.layers) for (const p of layer.params) add(p.name, p.shape);
    this.tensors = tensors;
    this.regionFloats = offset;
    this.parameterCount = this.layers.reduce((n, l) => n + l.parameterCount, 0);
    const regionBytes = alignUp(offset * FLOAT_BYTES, ALIGN);
    const base = engine.reserve(4 * regionBytes, 'model parameters and optimizer state');
    this.paramsPtr = base;
    this.gradsPtr = base + regionBytes;
    this.state1Ptr = base + 2 * regionBytes;
    this.state2Ptr = base + 3 * regionBytes;
    this.persistentMark = engine.mark();
    const ptr = (name: string): number => {
      const t = this.tensors.find((x) => x.name === name);
      return t ? base + t.offset * FLOAT_BYTES : 0;
    };
    this.layerPtrs = this.layers.map((l) => ({
      weight: ptr(`layers.${l.index}.weight`),
      bias: ptr(`layers.${l.index}.bias`),
    }));
    this.initialize(seed);
  }

  get inputShape(): Shape {
    return this.layers[0]!.inShape;
  }

  /** Input features per sample (H·W·C). */
  get inputSize(): number {
    return shapeSize(this.inputShape);
  }

  /** Output features per sample: the number of classes. */
  get outputSize(): number {
    return shapeSize(this.layers[this.layers.length - 1]!.outShape);
  }

  get name(): string {
    return this.spec.name ?? 'custom';
  }

  /** Re-draw every weight from `seed` (biases zero); the same seed gives the same bits. */
  initialize(seed: number): void {
    const rng = new Rng(seed);
    this.seed = seed;
    this.metadata = { seed };
    const params = this.parameters();
    params.fill(0);
    for (const layer of this.layers) {
      for (const p of layer.params) {
        if (p.init === 'zeros') continue;
        const limit =
          p.init === 'uniform'
            ? p.initScale
            : p.init === 'he_uniform'
              ? Math.sqrt(6 / p.fanIn)
              : Math.sqrt(6 / (p.fanIn + p.fanOut));
        rng.fillUniform(this.tensorView(p.name), -limit, limit);
      }
    }
  }

  /** View of the whole (padded) parameter region. Views go stale when memory grows: re-get them. */
  parameters(): Float32Array {
    return this.engine.f32(this.paramsPtr, this.regionFloats);
  }

  gradients(): Float32Array {
    return this.engine.f32(this.gradsPtr, this.regionFloats);
  }

  tensor(name: string): ParamTensor {
    const t = this.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no parameter tensor "${name}" in ${this.name}`);
    return t;
  }

  tensorView(name: string, region: 'params' | 'grads' = 'params'): Float32Array {
    const t = this.tensor(name);
    const base = region === 'params' ? this.paramsPtr : this.gradsPtr;
    return this.engine.f32(base + t.offset * FLOAT_BYTES, t.length);
  }

  /** A copy of the parameter region (for snapshots, hashing, comparisons). */
  snapshot(): Float32Array {
    return this.parameters().slice();
  }

  restore(snapshot: Float32Array): void {
    if (snapshot.length !== this.regionFloats) {
      throw new Error(
        `snapshot has ${snapshot.length} floats, model region has ${this.regionFloats}`,
      );
    }
    this.parameters().set(snapshot);
  }

  /** A table of layers, output shapes and parameter counts. */
  summary(): string {
    const rows: string[][] = [['layer', 'output shape', 'activation', 'parameters']];
    rows.push(['input', formatShape(this.inputShape), '', '0']);
    for (const l of this.layers) {
      const what =
        l.type === 'conv2d'
          ? `conv2d ${l.kernelSize}×${l.kernelSize}${l.stride > 1 ? ` /${l.stride}` : ''}${l.padding ? ` pad ${l.padding}` : ''}`
          : l.type === 'maxPool2d' || l.type === 'avgPool2d'
            ? `${l.type} ${l.kernelSize}×${l.kernelSize}${l.stride !== l.kernelSize ? ` /${l.stride}` : ''}`
            : l.type === 'dropout'
              ? `dropout ${l.rate}`
              : l.type;
      const act =
        l.type === 'dense' || l.type === 'conv2d'
          ? l.activation + (l.alpha && l.activation !== 'relu' ? `(${l.alpha})` : '')
          : '';
      rows.push([
        `${l.index}: ${what}`,
        formatShape(l.outShape),
        act,
        l.parameterCount.toLocaleString('en-US'),
      ]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    const line = (r: string[]): string => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
    const lines = rows.map(line);
    lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
    lines.push(`total parameters: ${this.parameterCount.toLocaleString('en-US')}`);
    return lines.join('\n');
  }

  /** Check that a loss can be used with this model's output layer. */
  checkLoss(loss: LossName): void {
    if (!LOSSES.includes(loss)) {
      throw new Error(`unknown loss "${loss}" (expected ${LOSSES.join(', ')})`);
    }
    const last = this.layers[this.layers.length - 1]!;
    if (loss === 'crossentropy' && last.activation !== 'softmax' && last.activation !== 'linear') {
      throw new Error(
        `loss "crossentropy" needs a "softmax" (or "linear" logits) output layer, ` +
          `but the last layer of ${this.name} uses "${last.activation}"`,
      );
    }
    if (loss !== 'crossentropy' && last.activation === 'softmax') {
      throw new Error(
        `loss "${loss}" needs a non-softmax output layer; the softmax output is fused with ` +
          `cross-entropy (use --loss crossentropy, or a "linear"/"relu" last layer)`,
      );
    }
  }
}
