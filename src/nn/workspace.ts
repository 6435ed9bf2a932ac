/**
 * The buffers for running a model on up to `batchCapacity` samples, and the per-layer sequence of
 * kernel calls for forward and backward passes. Reserved in the model's arena after its persistent
 * regions, in one growth; creating a workspace releases any previous run's buffers.
 *
 * Per layer i (all (cap, …) NHWC, f32 unless noted):
 *   out[i]    the layer's output after its activation (probabilities after a softmax loss)
 *   delta[i]  d loss / d out[i], turned in place into d loss / d pre-activation
 *   cols[i]   conv2d: im2col patches (cap·OH·OW, KH·KW·C), kept from forward for the weight gradient;
 *             a one-channel, stride-1 conv (conv1 of MNIST nets) runs direct kernels instead, which
 *             measured ≈1.6× faster per step than im2col + GEMM (bench/conv.ts) and need no cols
 *   dw[i]     direct conv: its weight gradient, when it must be added to an accumulating gradient
 *   argmax[i] maxPool2d: i32 index of each window's maximum
 *   mask[i]   dropout: 0 or 1/(1 − rate), drawn from the run's PRNG each training step
 * A flatten layer aliases its input's buffers (NHWC is already flat). One `dcols` scratch and one
 * transposed-weight buffer `wT` serve every conv layer's input gradient (see convInputGradient),
 * one GEMM scratch every GEMM.
 */
import { ALIGN, alignUp, formatBytes } from '../engine/engine.js';
import {
  GEMM_ACCUMULATE,
  GEMM_A_U8,
  GEMM_RELU,
  GEMM_SPARSE_A,
  GEMM_SPARSE_B,
  type Kernels,
} from '../engine/kernels.js';
import type { Rng } from '../engine/rng.js';
import { FLOAT_BYTES, type LossName, type Model } from './model.js';
import { scratchStride, shardBytes, shardPlan, Shards, type ShardBuffers } from './shards.js';
import { shapeSize, type Activation, type ResolvedLayer } from './spec.js';

interface LayerBuffers {
  out: number;
  delta: number;
  cols: number;
  argmax: number;
  mask: number;
  dw: number;
}

/** Convolutions with one input channel and stride 1 (conv1 of MNIST nets) use the direct kernels. */
const isDirectConv = (l: ResolvedLayer): boolean =>
  l.type === 'conv2d' && l.inShape.c === 1 && l.stride === 1;

/**
 * A conv's input gradient runs conv2d_backward_input_scatter when at most this fraction of its
 * dout is non-zero, else gemm_f32_nt + conv2d_col2im; both give the same bits (for finite
 * weights), so the choice only moves time. Measured on LeNet-5's conv2 at batch 32 with random
 * dout of density p (medians of interleaved runs, relaxed build, 2-core x64, warm caches): the
 * scatter costs ≈0.02 ms + 0.85 ms·p, the GEMM route ≈0.47 ms on one thread and ≈0.33 ms on two
 * (it is split across the pool, the scatter is not): break-even p ≈ 0.55 and ≈ 0.37. After ReLU
 * and 2×2 max-pool backward p ≤ 0.25 (≈0.2 on MNIST); inside training steps the scatter took
 * 0.24 ms against 0.81 ms, and a whole step 2.7 ms against 3.6 ms (no dcols to write and read).
 */
const SCATTER_MAX_DENSITY = 1 / 3;

/**
 * A conv's weight gradient (colsᵀ · dout) skips dout's zeros (GEMM_SPARSE_B) when at most this
 * fraction of it is non-zero: the same bits, less time. Measured on LeNet-5's conv2 (tn,
 * 150×16×3200, random dout of density p, interleaved medians, relaxed build): 1.3× the dense
 * kernel at p = 0.35, 1.16× at 0.5, 0.91× at 0.65; in training p ≈ 0.19 (2× there).
 */
const SPARSE_DW_MAX_DENSITY = 1 / 2;

/** Bytes of a U8Rows record (GEMM_A_U8): images, indices, scale. */
const PIXEL_SOURCE_BYTES = 12;

/** A batch as staged uint8 pixels: rows indices[0…B) (i32) of images (K bytes each), × scale. */
export interface PixelSource {
  images: number;
  indices: number;
  scale: number;
}

/** Byte sizes of a layer's buffers (0 = none); dcols and wT are shared, sized by the largest. */
interface LayerBytes {
  out: number;
  cols: number;
  argmax: number;
  mask: number;
  dw: number;
  dcols: number;
  wT: number;
}

/**
 * Byte size of each buffer a layer needs at `cap` samples; dcols and wT only when the layer's
 * input gradient is needed (`inputGrad`).
 */
function layerBytes(l: ResolvedLayer, cap: number, inputGrad: boolean): LayerBytes {
  const outBytes = cap * shapeSize(l.outShape) * FLOAT_BYTES;
  const positions = cap * l.outShape.h * l.outShape.w;
  const direct = isDirectConv(l);
  const kernelArea = l.kernelSize * l.kernelSize;
  const convGrad = l.type === 'conv2d' && inputGrad;
  return {
    out: l.type === 'flatten' ? 0 : outBytes,
    cols: colsBytes(l, cap, positions * kernelArea),
    dw: direct ? kernelArea * l.outShape.c * FLOAT_BYTES : 0,
    argmax: l.type === 'maxPool2d' ? outBytes : 0,
    mask: l.type === 'dropout' ? outBytes : 0,
    dcols: convGrad ? positions * kernelArea * l.inShape.c * FLOAT_BYTES : 0,
    // + 4 floats: the scatter reads up to 3 floats past wT (their lanes are never stored).
    wT: convGrad ? (kernelArea * l.inShape.c * l.outShape.c + 4) * FLOAT_BYTES : 0,
  };
}

/**
 * A GEMM conv's cols: its im2col patches. A direct conv's: its zero-framed input when it has
 * padding (see Workspace.framedInput), else nothing.
 */
function colsBytes(l: ResolvedLayer, cap: number, patchFloats: number): number {
  if (l.type !== 'conv2d') return 0;
  if (!isDirectConv(l)) return patchFloats * l.inShape.c * FLOAT_BYTES;
  const { h, w } = l.inShape;
  const pad = l.padding;
  return pad > 0 ? cap * (h + 2 * pad) * (w + 2 * pad) * FLOAT_BYTES : 0;
}

/** For each layer: does it need d loss / d input? Only when some earlier layer has parameters. */
function inputGradients(model: Model): boolean[] {
  let paramsBefore = false;
  return model.layers.map((l) => {
    const needed = paramsBefore;
    paramsBefore ||= l.parameterCount > 0;
    return needed;
  });
}

/** (M, N, K) of every GEMM a step runs, for scratch sizing. */
function gemmShapes(l: ResolvedLayer, cap: number): [number, number, number][] {
  if (l.type === 'dense') {
    const K = shapeSize(l.inShape);
    const N = l.outShape.c;
    return [
      [cap, N, K],
      [K, N, cap],
      [cap, K, N],
    ];
  }
  if (l.type === 'conv2d') {
    const rows = cap * l.outShape.h * l.outShape.w;
    const K = l.kernelSize * l.kernelSize * l.inShape.c;
    const N = l.outShape.c;
    return [
      [rows, N, K],
      [K, N, rows],
      [rows, K, N],
    ];
  }
  return [];
}

/** GEMM scratch for `threads` concurrent shares: one aligned region of `floats` each. */
function gemmScratchBytes(floats: number, threads: number): number {
  return threads * alignUp(floats * FLOAT_BYTES, ALIGN);
}

/** Bytes a workspace of `cap` samples needs, for clear out-of-memory messages. */
export function workspaceBytes(model: Model, cap: number, trainingCap = cap): number {
  let bytes = cap * model.inputSize * FLOAT_BYTES + 2 * cap * 4 + PIXEL_SOURCE_BYTES;
  let dcols = 0;
  let wT = 0;
  let scratch = 0;
  const inputGrad = inputGradients(model);
  for (const l of model.layers) {
    const b = layerBytes(l, cap, inputGrad[l.index]!);
    bytes += 2 * b.out + b.cols + b.argmax + b.mask + b.dw + 6 * ALIGN;
    dcols = Math.max(dcols, b.dcols);
    wT = Math.max(wT, b.wT);
    for (const [M, N, K] of gemmShapes(l, cap))
      scratch = Math.max(scratch, model.engine.kernels.gemm_scratch_floats(M, N, K));
  }
  bytes += shardBytes(model, trainingCap);
  return bytes + dcols + wT + gemmScratchBytes(scratch, model.engine.threads) + 6 * ALIGN;
}

function activationForward(
  k: Kernels,
  act: Activation,
  alpha: number,
  ptr: number,
  n: number,
): void {
  switch (act) {
    case 'relu':
      return k.relu_forward(ptr, ptr, n);
    case 'leaky_relu':
      return k.leaky_relu_forward(ptr, ptr, n, alpha);
    case 'elu':
      return k.elu_forward(ptr, ptr, n, alpha);
    case 'sigmoid':
      return k.sigmoid_forward(ptr, ptr, n);
    case 'tanh':
      return k.tanh_forward(ptr, ptr, n);
    case 'linear':
    case 'softmax': // applied by the loss (or predict), fused with cross-entropy
      return;
  }
}

function activationBackward(
  k: Kernels,
  act: Activation,
  alpha: number,
  delta: number,
  out: number,
  n: number,
): void {
  switch (act) {
    case 'relu':
      return k.relu_backward(delta, delta, out, n);
    case 'leaky_relu':
      return k.leaky_relu_backward(delta, delta, out, n, alpha);
    case 'elu':
      return k.elu_backward(delta, delta, out, n, alpha);
    case 'sigmoid':
      return k.sigmoid_backward(delta, delta, out, n);
    case 'tanh':
      return k.tanh_backward(delta, delta, out, n);
    case 'linear':
    case 'softmax': // the loss already produced d loss / d logits
      return;
  }
}

export class Workspace {
  readonly model: Model;
  readonly batchCapacity: number;
  /** The most samples a training pass from pixels may take (see the constructor). */
  readonly trainingCapacity: number;
  /** (cap, inputSize) f32 */
  readonly inputPtr: number;
  /** (cap) i32 class labels */
  readonly labelsPtr: number;
  /** (cap) i32 argmax predictions */
  readonly predictionsPtr: number;
  /** The U8Rows record (GEMM_A_U8) of a forward pass that reads staged pixels. */
  private readonly pixelSourcePtr: number;
  /**
   * Whether forward can take its batch as staged uint8 pixels (`pixels`): the first layer that
   * computes anything is dense, with GEMM_SPARSE_A (EngineOptions.sparseInput).
   */
  readonly readsPixels: boolean;
  readonly buffers: readonly LayerBuffers[];
  /** Does layer i need d loss / d input? Only when some earlier layer has parameters. */
  readonly needsInputGrad: readonly boolean[];
  /** (cap·OH·OW, KH·KW·C) of the largest conv whose input gradient is needed: its GEMM route */
  readonly dcolsPtr: number;
  /** (OC, KH·KW·C) + 4 floats: that conv's weights transposed, for its scatter route */
  readonly wTPtr: number;
  readonly scratchPtr: number;
  /** The training pass's shards of the first layers (src/nn/shards.ts), if the model has them. */
  private readonly shards: Shards | undefined;
  /** Whether the last forward pass ran the shards (backward follows it). */
  private sharded = false;
  /**
   * After a backward pass that ran the shards: whether every gradient of the model is finite
   * (they check the whole region on the way); undefined otherwise — check it yourself.
   */
  get gradientsFinite(): boolean | undefined {
    return this.sharded ? this.shards!.finite : undefined;
  }
  /** What the shards need of this workspace's buffers. */
  private readonly shardBuffers: ShardBuffers;
  /** Draws dropout masks in training passes; set by `fit` from the run's seed. */
  dropoutRng: Rng | undefined;

  /**
   * Buffers for up to `batchCapacity` samples per pass, of which training passes from pixels
   * (the shards' buffers) take at most `trainingCapacity` (default: all; fit passes its chunk,
   * so a larger evaluation batch costs no shard buffers).
   */
  constructor(model: Model, batchCapacity: number, trainingCapacity = batchCapacity) {
    if (!Number.isInteger(batchCapacity) || batchCapacity < 1) {
      throw new RangeError(`batch size must be a positive integer, got ${batchCapacity}`);
    }
    if (
      !Number.isInteger(trainingCapacity) ||
      trainingCapacity < 1 ||
      trainingCapacity > batchCapacity
    ) {
      throw new RangeError(
        `training batch capacity must be an integer from 1 to ${batchCapacity}, got ${trainingCapacity}`,
      );
    }
    this.model = model;
    this.batchCapacity = batchCapacity;
    this.trainingCapacity = trainingCapacity;
    const engine = model.engine;
    engine.release(model.persistentMark);
    const need = workspaceBytes(model, batchCapacity, trainingCapacity);
    engine.ensure(
      engine.mark() + need,
      `batch size ${batchCapacity} for ${model.name} (${formatBytes(need)} of activations)`,
    );
    const what = `batch size ${batchCapacity}`;
    const reserve = (bytes: number): number => (bytes > 0 ? engine.reserve(bytes, what) : 0);
    this.inputPtr = reserve(batchCapacity * model.inputSize * FLOAT_BYTES);
    this.labelsPtr = reserve(batchCapacity * 4);
    this.predictionsPtr = reserve(batchCapacity * 4);
    this.pixelSourcePtr = reserve(PIXEL_SOURCE_BYTES);
    const first = model.layers.find((l) => l.type !== 'flatten');
    this.readsPixels = first?.type === 'dense' && this.sparseFlag(first.index) !== 0;
    const buffers: LayerBuffers[] = [];
    const needsInputGrad = inputGradients(model);
    let dcols = 0;
    let wT = 0;
    let scratch = 0;
    for (const l of model.layers) {
      const b = layerBytes(l, batchCapacity, needsInputGrad[l.index]!);
      const prev = buffers[l.index - 1];
      buffers.push(
        l.type === 'flatten'
          ? {
              out: prev ? prev.out : this.inputPtr,
              delta: prev ? prev.delta : 0,
              cols: 0,
              argmax: 0,
              mask: 0,
              dw: 0,
            }
          : {
              out: reserve(b.out),
              delta: reserve(b.out),
              cols: reserve(b.cols),
              argmax: reserve(b.argmax),
              mask: reserve(b.mask),
              dw: reserve(b.dw),
            },
      );
      dcols = Math.max(dcols, b.dcols);
      wT = Math.max(wT, b.wT);
      for (const [M, N, K] of gemmShapes(l, batchCapacity))
        scratch = Math.max(scratch, engine.kernels.gemm_scratch_floats(M, N, K));
    }
    this.buffers = buffers;
    this.needsInputGrad = needsInputGrad;
    this.dcolsPtr = reserve(dcols);
    this.wTPtr = reserve(wT);
    // The slack after the weights is read (never stored): give it defined values.
    if (wT) engine.f32(this.wTPtr, wT / FLOAT_BYTES).fill(0);
    this.scratchPtr = reserve(gemmScratchBytes(scratch, engine.threads));
    const stride = scratchStride(model, scratch);
    this.shardBuffers = {
      out: (i) => this.buffers[i]!.out,
      delta: (i) => this.buffers[i]!.delta,
      scratch: [this.scratchPtr, this.scratchPtr + stride],
      activate: (l, ptr, n) => activationForward(engine.kernels, l.activation, l.alpha, ptr, n),
      activateBack: (l, delta, out, n) =>
        activationBackward(engine.kernels, l.activation, l.alpha, delta, out, n),
    };
    if (shardPlan(model)) {
      this.shards = new Shards(model, trainingCapacity, reserve);
    } else {
      this.shards = undefined;
      Shards.forget(model);
    }
  }

  /** Final layer output (cap, outputSize): probabilities for softmax/crossentropy models. */
  get outputPtr(): number {
    return this.buffers[this.buffers.length - 1]!.out;
  }

  /**
   * The input of a direct conv with padding, copied inside a frame of zeros (into its cols
   * buffer, by the forward pass; the backward pass reads the same copy): the kernels then run
   * with pad 0, all tiles on their fast interior path, with the same bits (pad_images).
   */
  private framedInput(
    l: ResolvedLayer,
    inp: number,
    B: number,
    write: boolean,
  ): { ptr: number; H: number; W: number; pad: number } {
    const { h: H, w: W } = l.inShape;
    const pad = l.padding;
    if (pad === 0) return { ptr: inp, H, W, pad };
    const cols = this.buffers[l.index]!.cols;
    if (write) this.model.engine.kernels.pad_images(cols, inp, B, H, W, pad);
    return { ptr: cols, H: H + 2 * pad, W: W + 2 * pad, pad: 0 };
  }

  /** GEMM_SPARSE_A for the first layer, whose A is the input batch (EngineOptions.sparseInput). */
  private sparseFlag(i: number): number {
    return i === 0 && this.model.engine.sparseInput ? GEMM_SPARSE_A : 0;
  }

  /**
   * GEMM_SPARSE_A for a dense layer's forward GEMM: the first layer's, and one whose input is a
   * ReLU output (about half zeros, which the row-sparse path skips row by row; the weight
   * gradient's strips of 4 inputs are nearly always dense there, so it keeps sparseFlag).
   */
  private forwardSparseFlag(i: number): number {
    const after = i > 0 && this.model.layers[i - 1]!.activation === 'relu';
    return after && this.model.engine.sparseInput ? GEMM_SPARSE_A : this.sparseFlag(i);
  }

  private inputOf(i: number): number {
    return i === 0 ? this.inputPtr : this.buffers[i - 1]!.out;
  }

  /**
   * dinp (B, H, W, C) of a conv layer from its dout (B, OH, OW, OC): scattered from the non-zero
   * dout entries when they are few (≤ SCATTER_MAX_DENSITY), else dcols = dout · Wᵀ by GEMM (split
   * across the thread pool) and col2im. The same bits either way, for finite weights
   * (conv2d_backward_input_scatter), so the choice depends on the data only for speed.
   */
  private convInputGradient(
    l: ResolvedLayer,
    dinp: number,
    dout: number,
    nonZero: number,
    weight: number,
    B: number,
  ): void {
    const k = this.model.engine.kernels;
    const { h: H, w: W, c: C } = l.inShape;
    const { h: OH, w: OW, c: OC } = l.outShape;
    const ks = l.kernelSize;
    const rows = B * OH * OW;
    const K = ks * ks * C;
    if (nonZero <= SCATTER_MAX_DENSITY * rows * OC) {
      k.conv2d_weight_transpose(this.wTPtr, weight, K, OC);
      k.conv2d_backward_input_scatter(
        dinp,
        dout,
        this.wTPtr,
        B,
        H,
        W,
        C,
        OC,
        ks,
        ks,
        l.stride,
        l.padding,
        OH,
        OW,
      );
    } else {
      k.gemm_f32_nt(this.dcolsPtr, dout, weight, 0, rows, K, OC, 0, this.scratchPtr);
      k.conv2d_col2im(dinp, this.dcolsPtr, B, H, W, C, ks, ks, l.stride, l.padding, OH, OW);
    }
  }

  /**
   * Forward pass over B samples already in the input buffer; `training` draws dropout masks.
   * With `pixels` the batch is instead rows indices[0…B) of uint8 images staged at `images`,
   * scaled by `scale` (the same floats as gather_normalize_u8). In inference (only when
   * readsPixels) the first dense layer reads them in place (GEMM_A_U8) and the input buffer is
   * not written. In training they are gathered: as the input shards of the first layers when
   * the model has them (src/nn/shards.ts: the first two dense layers summed as two halves of
   * their inputs, one per thread), else into the input buffer.
   */
  forward(B: number, training = false, pixels?: PixelSource): void {
    const { model } = this;
    const k = model.engine.kernels;
    this.sharded = false;
    if (pixels && training) {
      if (B > this.trainingCapacity) {
        throw new RangeError(
          `a training pass of ${B} samples, but this workspace takes at most ${this.trainingCapacity}`,
        );
      }
      if (this.shards) {
        const sparse0 = this.sparseFlag(0);
        this.shards.forward(B, pixels, this.shardBuffers, sparse0, this.forwardSparseFlag(1));
        this.sharded = true;
      } else {
        k.gather_normalize_u8(
          this.inputPtr,
          pixels.images,
          pixels.indices,
          B,
          model.inputSize,
          pixels.scale,
        );
      }
      pixels = undefined;
    }
    if (pixels) {
      if (!this.readsPixels) {
        throw new Error(
          `${model.name}: forward from pixels needs a first dense layer with zero skipping on ` +
            `(Workspace.readsPixels)`,
        );
      }
      const rec = model.engine.i32(this.pixelSourcePtr, 3);
      rec[0] = pixels.images;
      rec[1] = pixels.indices;
      model.engine.f32(this.pixelSourcePtr + 8, 1)[0] = pixels.scale;
    }
    for (const l of model.layers) {
      const i = l.index;
      if (this.sharded && i < this.shards!.layers) continue;
      const buf = this.buffers[i]!;
      const fromInput =
        pixels !== undefined && this.inputOf(i) === this.inputPtr && l.type === 'dense';
      const inp = fromInput ? this.pixelSourcePtr : this.inputOf(i);
      const n = B * shapeSize(l.outShape);
      const { weight, bias } = model.layerPtrs[i]!;
      const reluFlag = l.activation === 'relu' ? GEMM_RELU : 0;
      switch (l.type) {
        case 'dense':
          k.gemm_f32_nn(
            buf.out,
            inp,
            weight,
            bias,
            B,
            l.outShape.c,
            shapeSize(l.inShape),
            reluFlag | this.forwardSparseFlag(i) | (fromInput ? GEMM_A_U8 : 0),
            this.scratchPtr,
          );
          if (!reluFlag) activationForward(k, l.activation, l.alpha, buf.out, n);
          break;
        case 'conv2d': {
          const { h: H, w: W, c: C } = l.inShape;
          const { h: OH, w: OW, c: OC } = l.outShape;
          const ks = l.kernelSize;
          if (isDirectConv(l)) {
            const f = this.framedInput(l, inp, B, true);
            k.conv2d_direct_c1_forward(
              buf.out,
              f.ptr,
              weight,
              bias,
              B,
              f.H,
              f.W,
              OC,
              ks,
              ks,
              f.pad,
              OH,
              OW,
              reluFlag,
            );
          } else {
            k.conv2d_im2col(buf.cols, inp, B, H, W, C, ks, ks, l.stride, l.padding, OH, OW);
            k.gemm_f32_nn(
              buf.out,
              buf.cols,
              weight,
              bias,
              B * OH * OW,
              OC,
              ks * ks * C,
              reluFlag,
              this.scratchPtr,
            );
          }
          if (!reluFlag) activationForward(k, l.activation, l.alpha, buf.out, n);
          break;
        }
        case 'maxPool2d':
          k.maxpool2d_forward(
            buf.out,
            buf.argmax,
            inp,
            B,
            l.inShape.h,
            l.inShape.w,
            l.inShape.c,
            l.kernelSize,
            l.stride,
            l.outShape.h,
            l.outShape.w,
          );
          break;
        case 'avgPool2d':
          k.avgpool2d_forward(
            buf.out,
            inp,
            B,
            l.inShape.h,
            l.inShape.w,
            l.inShape.c,
            l.kernelSize,
            l.stride,
            l.outShape.h,
            l.outShape.w,
          );
          break;
        case 'dropout':
          if (training && l.rate > 0) {
            this.drawMask(buf.mask, n, l.rate);
            k.dropout_apply(buf.out, inp, buf.mask, n);
          } else {
            // Inverted dropout: evaluation is the identity.
            new Uint8Array(model.engine.memory.buffer).copyWithin(
              buf.out,
              inp,
              inp + n * FLOAT_BYTES,
            );
          }
          break;
        case 'flatten':
          break;
      }
    }
  }

  private drawMask(ptr: number, n: number, rate: number): void {
    if (!this.dropoutRng)
      throw new Error('dropout in a training pass needs Workspace.dropoutRng (fit sets it)');
    const mask = this.model.engine.f32(ptr, n);
    const keep = Math.fround(1 / (1 - rate));
    for (let j = 0; j < n; j++) mask[j] = this.dropoutRng.nextFloat() < rate ? 0 : keep;
  }

  /**
   * Loss over B samples whose labels are in the labels buffer, after `forward`. With `withGrad`,
   * writes d(loss)/d(output) · gradScale (default 1/B: the mean; a chunk of a larger batch passes
   * 1/batchSize) into the last delta buffer. Softmax (or a linear last layer with cross-entropy)
   * turns the output buffer into probabilities. Returns the *summed* loss and the number of
   * correct argmax predictions.
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
    const dout = withGrad ? this.buffers[this.buffers.length - 1]!.delta : 0;
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
   */
  backward(B: number, accumulate = false): void {
    const { model } = this;
    const k = model.engine.kernels;
    const toGrads = model.gradsPtr - model.paramsPtr;
    const flags = accumulate ? GEMM_ACCUMULATE : 0;
    for (let i = model.layers.length - 1; i >= 0; i--) {
      const l = model.layers[i]!;
      if (this.sharded && i < this.shards!.layers) {
        this.shards!.backward(i, B, flags, this.shardBuffers);
        continue;
      }
      const buf = this.buffers[i]!;
      const inp = this.inputOf(i);
      const dinp = i > 0 && this.needsInputGrad[i] ? this.buffers[i - 1]!.delta : 0;
      const n = B * shapeSize(l.outShape);
      const { weight, bias } = model.layerPtrs[i]!;
      switch (l.type) {
        case 'dense': {
          const K = shapeSize(l.inShape);
          const N = l.outShape.c;
          activationBackward(k, l.activation, l.alpha, buf.delta, buf.out, n);
          const dwFlags = flags | this.sparseFlag(i);
          k.gemm_f32_tn(weight + toGrads, inp, buf.delta, 0, K, N, B, dwFlags, this.scratchPtr);
          if (bias) k.dense_bias_backward(bias + toGrads, buf.delta, B, N, flags);
          if (dinp) k.gemm_f32_nt(dinp, buf.delta, weight, 0, B, K, N, 0, this.scratchPtr);
          break;
        }
        case 'conv2d': {
          const C = l.inShape.c;
          const { h: OH, w: OW, c: OC } = l.outShape;
          const ks = l.kernelSize;
          const rows = B * OH * OW;
          activationBackward(k, l.activation, l.alpha, buf.delta, buf.out, n);
          // dout's non-zero count picks the faster route of dW (below) and of dinp.
          const nonZero = isDirectConv(l) && !dinp ? 0 : k.count_nonzero(buf.delta, rows * OC);
          if (isDirectConv(l)) {
            const target = accumulate ? buf.dw : weight + toGrads;
            const f = this.framedInput(l, inp, B, false);
            k.conv2d_direct_c1_backward_weight(
              target,
              f.ptr,
              buf.delta,
              B,
              f.H,
              f.W,
              OC,
              ks,
              ks,
              f.pad,
              OH,
              OW,
            );
            // The direct kernel only overwrites: dW += chunk's dw as a one-row column sum (exact).
            if (accumulate)
              k.dense_bias_backward(weight + toGrads, buf.dw, 1, ks * ks * OC, GEMM_ACCUMULATE);
          } else {
            const sparse = nonZero <= SPARSE_DW_MAX_DENSITY * rows * OC ? GEMM_SPARSE_B : 0;
            k.gemm_f32_tn(
              weight + toGrads,
              buf.cols,
              buf.delta,
              0,
              ks * ks * C,
              OC,
              rows,
              flags | sparse,
              this.scratchPtr,
            );
          }
          if (bias) k.dense_bias_backward(bias + toGrads, buf.delta, rows, OC, flags);
          if (dinp) this.convInputGradient(l, dinp, buf.delta, nonZero, weight, B);
          break;
        }
        case 'maxPool2d':
          if (dinp)
            k.maxpool2d_backward(
              dinp,
              buf.delta,
              buf.argmax,
              B,
              l.inShape.h,
              l.inShape.w,
              l.inShape.c,
              l.outShape.h,
              l.outShape.w,
            );
          break;
        case 'avgPool2d':
          if (dinp)
            k.avgpool2d_backward(
              dinp,
              buf.delta,
              B,
              l.inShape.h,
              l.inShape.w,
              l.inShape.c,
              l.kernelSize,
              l.stride,
              l.outShape.h,
              l.outShape.w,
            );
          break;
        case 'dropout':
          if (dinp) {
            if (l.rate > 0) k.dropout_apply(dinp, buf.delta, buf.mask, n);
            else
              new Uint8Array(model.engine.memory.buffer).copyWithin(
                dinp,
                buf.delta,
                buf.delta + n * FLOAT_BYTES,
              );
          }
          break;
        case 'flatten':
          break;
      }
    }
  }
}
