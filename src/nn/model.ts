/**
 * A Sequential model bound to one engine (one wasm instance and its memory), and the workspace that
 * runs it on batches.
 *
 * Memory layout (byte offsets chosen by the host, once):
 *   persistent  params | grads | state1 | state2     each `regionFloats` floats, the same tensor order
 *   per run     workspace (input, labels, indices, activations, deltas, GEMM scratch), staged data
 * The parameter region is one contiguous block so optimizers are one flat loop over it; each tensor
 * is padded to 16 floats (64 bytes), and padding stays zero in params and grads.
 */
import { ALIGN, alignUp, Engine, formatBytes } from '../engine/engine.js';
import { GEMM_ACCUMULATE, GEMM_RELU } from '../engine/kernels.js';
import { Rng } from '../engine/rng.js';
import { resolveSpec, type ModelSpec, type ResolvedDense } from './spec.js';

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

const FLOAT_BYTES = 4;
const TENSOR_PAD_FLOATS = 16;

export class Model {
  readonly spec: ModelSpec;
  readonly layers: readonly ResolvedDense[];
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
    for (const layer of this.layers) {
      add(`layers.${layer.index}.weight`, [layer.inputSize, layer.units]);
      if (layer.bias) add(`layers.${layer.index}.bias`, [layer.units]);
    }
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
    this.layerPtrs = this.layers.map((l) => ({
      weight: base + this.tensor(`layers.${l.index}.weight`).offset * FLOAT_BYTES,
      bias: l.bias ? base + this.tensor(`layers.${l.index}.bias`).offset * FLOAT_BYTES : 0,
    }));
    this.initialize(seed);
  }

  get inputSize(): number {
    return this.spec.inputSize;
  }

  get outputSize(): number {
    return this.layers[this.layers.length - 1]!.units;
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
      const w = this.tensorView(`layers.${layer.index}.weight`);
      const fanIn = layer.inputSize;
      const fanOut = layer.units;
      const limit =
        layer.init === 'uniform'
          ? layer.initScale
          : layer.init === 'he_uniform'
            ? Math.sqrt(6 / fanIn)
            : Math.sqrt(6 / (fanIn + fanOut));
      rng.fillUniform(w, -limit, limit);
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
    const rows: string[][] = [['layer', 'output', 'activation', 'parameters']];
    rows.push(['input', `(${this.inputSize})`, '', '0']);
    for (const l of this.layers) {
      rows.push([
        `${l.index}: dense`,
        `(${l.units})`,
        l.activation,
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
    if (loss === 'crossentropy' && last.activation === 'relu') {
      throw new Error(
        `loss "crossentropy" needs a "softmax" (or "linear" logits) output layer, ` +
          `but the last layer of ${this.name} uses "relu"`,
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

/** Byte sizes of what a run needs, for clear out-of-memory messages. */
export function workspaceBytes(model: Model, batchCapacity: number): number {
  let floats = batchCapacity * model.inputSize + 2 * batchCapacity;
  for (const l of model.layers) floats += 2 * batchCapacity * l.units;
  floats += gemmScratchFloats(model, batchCapacity);
  return floats * FLOAT_BYTES + (model.layers.length * 2 + 4) * ALIGN;
}

/** Scratch for the largest of a step's GEMMs: forward (nn), weight grad (tn), input grad (nt). */
function gemmScratchFloats(model: Model, batchCapacity: number): number {
  const k = model.engine.kernels;
  let scratch = 0;
  for (const l of model.layers) {
    scratch = Math.max(
      scratch,
      k.gemm_scratch_floats(batchCapacity, l.units, l.inputSize),
      k.gemm_scratch_floats(l.inputSize, l.units, batchCapacity),
      k.gemm_scratch_floats(batchCapacity, l.inputSize, l.units),
    );
  }
  return scratch;
}

/**
 * Buffers for running a model on up to `batchCapacity` samples, reserved in the model's arena after
 * its persistent regions. Creating a workspace releases any previous run's buffers.
 */
export class Workspace {
  readonly model: Model;
  readonly batchCapacity: number;
  /** (cap, inputSize) f32 */
  readonly inputPtr: number;
  /** (cap) i32 class labels */
  readonly labelsPtr: number;
  /** (cap) i32 argmax predictions */
  readonly predictionsPtr: number;
  /** per layer (cap, units): forward outputs (after activation; probabilities for softmax) */
  readonly actPtrs: number[];
  /** per layer (cap, units): gradient w.r.t. the layer's output, then its pre-activation */
  readonly deltaPtrs: number[];
  readonly scratchPtr: number;

  constructor(model: Model, batchCapacity: number) {
    if (!Number.isInteger(batchCapacity) || batchCapacity < 1) {
      throw new RangeError(`batch size must be a positive integer, got ${batchCapacity}`);
    }
    this.model = model;
    this.batchCapacity = batchCapacity;
    const engine = model.engine;
    engine.release(model.persistentMark);
    // Grow once for everything, with a message that says what did not fit.
    const need = workspaceBytes(model, batchCapacity);
    engine.ensure(
      engine.mark() + need,
      `batch size ${batchCapacity} for ${model.name} (${formatBytes(need)} of activations)`,
    );
    const what = `batch size ${batchCapacity}`;
    this.inputPtr = engine.reserve(batchCapacity * model.inputSize * FLOAT_BYTES, what);
    this.labelsPtr = engine.reserve(batchCapacity * 4, what);
    this.predictionsPtr = engine.reserve(batchCapacity * 4, what);
    this.actPtrs = model.layers.map((l) =>
      engine.reserve(batchCapacity * l.units * FLOAT_BYTES, what),
    );
    this.deltaPtrs = model.layers.map((l) =>
      engine.reserve(batchCapacity * l.units * FLOAT_BYTES, what),
    );
    this.scratchPtr = engine.reserve(gemmScratchFloats(model, batchCapacity) * FLOAT_BYTES, what);
  }

  /** Final layer output (cap, outputSize): probabilities for softmax/crossentropy models. */
  get outputPtr(): number {
    return this.actPtrs[this.actPtrs.length - 1]!;
  }

  /** Forward pass over B samples already in the input buffer. */
  forward(B: number): void {
    const { model } = this;
    const k = model.engine.kernels;
    let inp = this.inputPtr;
    for (const l of model.layers) {
      const { weight, bias } = model.layerPtrs[l.index]!;
      const out = this.actPtrs[l.index]!;
      k.gemm_f32_nn(
        out,
        inp,
        weight,
        bias,
        B,
        l.units,
        l.inputSize,
        l.activation === 'relu' ? GEMM_RELU : 0,
        this.scratchPtr,
      );
      inp = out;
    }
  }

  /**
   * Loss over B samples whose labels are in the labels buffer, after `forward`. With `withGrad`,
   * writes d(mean loss)/d(output) into the last delta buffer (`gradScale` = 1/B by default; a
   * chunk of a larger batch passes 1/batchSize). Softmax (or a linear last layer with
   * cross-entropy) turns the output buffer into probabilities. Returns the *summed* loss and the
   * number of correct argmax predictions.
   */
  loss(
    B: number,
    loss: LossName,
    withGrad: boolean,
    gradScale = 1 / B,
  ): { lossSum: number; correct: number } {
    const { model } = this;
    const k = model.engine.kernels;
    const N = model.outputSize;
    const out = this.outputPtr;
    const dout = withGrad ? this.deltaPtrs[this.deltaPtrs.length - 1]! : 0;
    let lossSum: number;
    if (loss === 'crossentropy') {
      lossSum = k.softmax_xent_forward_backward(dout, out, out, this.labelsPtr, B, N, gradScale);
    } else {
      const scale = loss === 'mse' ? 1 / N : 0.5;
      lossSum = k.mse_forward_backward(dout, out, this.labelsPtr, B, N, scale, gradScale);
    }
    const correct = k.count_correct(out, this.labelsPtr, B, N);
    return { lossSum, correct };
  }

  /**
   * Backward pass after `loss(…, withGrad)`: gradients of every parameter for B samples, written
   * over the grads region, or added to it with `accumulate` (for batches processed in chunks).
   * The loss already left d/d(logits) for a softmax/linear output, so only ReLU layers need their
   * activation's backward.
   */
  backward(B: number, accumulate = false): void {
    const { model } = this;
    const k = model.engine.kernels;
    const toGrads = model.gradsPtr - model.paramsPtr;
    const flags = accumulate ? GEMM_ACCUMULATE : 0;
    for (let i = model.layers.length - 1; i >= 0; i--) {
      const l = model.layers[i]!;
      const { weight, bias } = model.layerPtrs[i]!;
      const delta = this.deltaPtrs[i]!;
      if (l.activation === 'relu') k.relu_backward(delta, delta, this.actPtrs[i]!, B * l.units);
      const inp = i === 0 ? this.inputPtr : this.actPtrs[i - 1]!;
      k.gemm_f32_tn(
        weight + toGrads,
        inp,
        delta,
        0,
        l.inputSize,
        l.units,
        B,
        flags,
        this.scratchPtr,
      );
      if (bias) k.dense_bias_backward(bias + toGrads, delta, B, l.units, flags);
      if (i > 0) {
        k.gemm_f32_nt(
          this.deltaPtrs[i - 1]!,
          delta,
          weight,
          0,
          B,
          l.inputSize,
          l.units,
          0,
          this.scratchPtr,
        );
      }
    }
  }
}
