/**
 * Input shards: how a training pass computes an MLP's first dense layer — and the second one
 * after it — so that two threads each keep their own part of the weights step after step.
 *
 * The first layer (K inputs → N0) runs as two products over halves of its inputs,
 *   shard 0: P0 = x[:, 0…K0) · W1[0…K0),   shard 1: P1 = x[:, K0…K) · W1[K0…K),
 * on thread 0 and thread 1 (Engine.shards; one thread runs both in turn), each from the pixel
 * columns it gathers itself; its weight gradient is the same two halves of W1's rows. When a
 * dense layer of N1 ≥ 32 outputs follows (N0 ≥ 64), it is cut the same way along its inputs —
 * the first layer's outputs: thread 0 sums and activates the upper columns [lo, N0) of
 * H = act((P0 + P1) + b1) and multiplies them by W2's rows [lo, N0); thread 1 does the lower
 * columns [0, lo). The weight gradient of W2 and the input gradient dH follow the same halves
 * (H and dH are held as two column blocks, dH copied back to rows for the first layer's weight
 * gradient). Engine.splitAt gives the optimizer step and the finiteness check the same cut:
 * thread 1 updates W1's rows [K0, K), b1 and W2's rows [0, lo), thread 0 the rest.
 *
 * So each thread's pixels, W1 rows, W2 rows, their gradients and their optimizer state stay in
 * its core's cache; only the partial sums (P, the second layer's two products) and the small
 * gradients between the layers pass between the cores. Until 2026-11-23 both layers were split
 * by output columns, and the two cores passed most of W1 (0.8 MB) and W2 between them every
 * step (README, Threads). The sums run in a fixed order — (P0 + P1) + b — whatever the thread
 * count, so the weights are the same for one thread and for several; they differ from a whole
 * layer's (one sum over all K), which inference still computes.
 */
import { ALIGN, alignUp, type ShardCall } from '../engine/engine.js';
import { GEMM_SPARSE_A } from '../engine/kernels.js';
import { FLOAT_BYTES, type Model } from './model.js';
import { shapeSize, type ResolvedLayer } from './spec.js';

/** Inputs a first layer needs before it is cut into shards; smaller layers run whole. */
const SHARD_MIN_INPUTS = 64;
/** Outputs of the first layer, and of the second, for the second to be cut as well. */
const PAIR_MIN_HIDDEN = 64;
const PAIR_MIN_OUTPUTS = 32;

/** A multiple of 16 near n / 2. */
const half = (n: number): number => Math.round(n / 32) * 16;

/**
 * How training cuts a model, or undefined when it runs whole: the first layer must be dense, on
 * the model's input (K0: its shard 0's inputs); `lo` > 0 when the second layer is cut too (its
 * thread-1 inputs [0, lo)). Depends on the model only — not on the thread count, nor on zero
 * skipping — so the weights do not either.
 */
export function shardPlan(model: Model): { K0: number; lo: number } | undefined {
  const [first, second] = model.layers;
  if (!first || first.type !== 'dense') return undefined;
  const K = shapeSize(first.inShape);
  if (K < SHARD_MIN_INPUTS) return undefined;
  const N0 = first.outShape.c;
  const pair =
    second?.type === 'dense' && N0 >= PAIR_MIN_HIDDEN && second.outShape.c >= PAIR_MIN_OUTPUTS;
  return { K0: half(K), lo: pair ? half(N0) : 0 };
}

/** Bytes of a workspace's shard buffers at `cap` samples (0 when the model runs whole). */
export function shardBytes(model: Model, cap: number): number {
  const plan = shardPlan(model);
  if (!plan) return 0;
  const [first, second] = model.layers as [ResolvedLayer, ResolvedLayer | undefined];
  const K = shapeSize(first.inShape);
  const N0 = first.outShape.c;
  const floats = K + 2 * N0 + (plan.lo ? N0 + second!.outShape.c : 0);
  return cap * floats * FLOAT_BYTES + 6 * ALIGN;
}

/** The kinds of shard jobs a pass runs (keys of Shards' job cache). */
const enum ShardJob {
  First,
  Second,
  SecondBack,
  FirstBack,
}

/** A job cache key: the kind, the batch size and the flags (< 64) it was built for. */
const jobKey = (kind: ShardJob, B: number, flags: number): number => (B * 64 + flags) * 4 + kind;

/** Whether the second layer's backward job also takes the first layer's activation derivative. */
const fusedBackward = (l: ResolvedLayer): boolean =>
  l.activation === 'relu' || l.activation === 'linear';

/**
 * What a pass needs from its workspace: layer buffers, the per-thread GEMM scratch, a layer's
 * activation in place and its derivative (delta ⊙ f′ from the output `out`).
 */
export interface ShardBuffers {
  out: (i: number) => number;
  delta: (i: number) => number;
  /** GEMM scratch of shard s (thread s). */
  scratch: readonly [number, number];
  activate: (l: ResolvedLayer, ptr: number, n: number) => void;
  activateBack: (l: ResolvedLayer, delta: number, out: number, n: number) => void;
}

/** The shard buffers of one workspace and the kernel calls of the layers they cut. */
export class Shards {
  /** Layers computed here: 1 (the first) or 2 (the first and second). */
  readonly layers: number;
  private readonly K: number;
  private readonly K0: number;
  private readonly N0: number;
  private readonly lo: number;
  private readonly N1: number;
  /** (cap, K0) and (cap, K − K0): each shard's pixel columns. */
  private readonly x: readonly [number, number];
  /** (cap, N0) each: the shards' products P0, P1. */
  private readonly p: readonly [number, number];
  /** (cap, N1): thread 1's product of the second layer (thread 0's goes to its output). */
  private readonly q: number;
  /** (cap, N0): dH as the two column blocks of H (lower, then upper). */
  private readonly dh: number;
  /** Thread 1's part of the parameter region, [from, to) floats (the rest is thread 0's). */
  private readonly from: number;
  private readonly to: number;
  /** i32: 1 once a thread found NaN or ±Inf in its part of the gradients. */
  private readonly found: number;
  /**
   * Whether the last backward pass found every gradient finite: it checks the whole region on
   * the way, each thread its own part right after computing its rows of W1's gradient.
   */
  finite = false;
  /**
   * Each pass's jobs, built once per batch size and flags (ShardJob): a step only writes the
   * batch's row indices into the gather calls, and allocates nothing.
   */
  private readonly jobs = new Map<number, ShardCall[][]>();

  constructor(
    private readonly model: Model,
    cap: number,
    reserve: (bytes: number) => number,
  ) {
    const plan = shardPlan(model)!;
    const [first, second] = model.layers as [ResolvedLayer, ResolvedLayer | undefined];
    this.K = shapeSize(first.inShape);
    this.K0 = plan.K0;
    this.N0 = first.outShape.c;
    this.lo = plan.lo;
    this.N1 = plan.lo ? second!.outShape.c : 0;
    this.layers = plan.lo ? 2 : 1;
    const f = (n: number): number => reserve(cap * n * FLOAT_BYTES);
    this.x = [f(this.K0), f(this.K - this.K0)];
    this.p = [f(this.N0), f(this.N0)];
    this.q = plan.lo ? f(this.N1) : 0;
    this.dh = plan.lo ? f(this.N0) : 0;
    // Thread 1 updates what it computes: W1's rows [K0, K) up to W2's rows [0, lo) (splitAt).
    const at = (ptr: number): number => (ptr - model.paramsPtr) / FLOAT_BYTES;
    const from = at(model.layerPtrs[0]!.weight) + this.K0 * this.N0;
    const to = plan.lo ? at(model.layerPtrs[1]!.weight) + this.lo * this.N1 : model.regionFloats;
    this.from = from;
    this.to = to;
    this.found = reserve(4);
    model.engine.splitAt(model.paramsPtr, from, to);
    model.engine.splitAt(model.gradsPtr, from, to);
  }

  /** Forget the optimizer cut (the workspace that made it is gone). */
  static forget(model: Model): void {
    model.engine.splitAt(model.paramsPtr, 0, 0);
    model.engine.splitAt(model.gradsPtr, 0, 0);
  }

  /** The memory as i32 (a view made again only after the memory grew). */
  private memoryI32(): Int32Array {
    const buffer = this.model.engine.memory.buffer;
    if (this.i32?.buffer !== buffer) this.i32 = new Int32Array(buffer);
    return this.i32;
  }
  private i32: Int32Array | undefined;

  /** Keep `jobs` as the jobs of `kind` for B samples and `flags`. */
  private keep(kind: ShardJob, B: number, flags: number, jobs: ShardCall[][]): ShardCall[][] {
    this.jobs.set(jobKey(kind, B, flags), jobs);
    return jobs;
  }

  private kept(kind: ShardJob, B: number, flags: number): ShardCall[][] | undefined {
    return this.jobs.get(jobKey(kind, B, flags));
  }

  /**
   * One thread's job of the second layer's backward pass over H's columns [c0, c0 + width),
   * computed with scratch `s`: W2's gradient rows, the block of dH, and — when the first layer's
   * activation is ReLU or linear — its derivative, b1's gradient and the block copied into dH.
   */
  private secondBackCalls(
    c0: number,
    width: number,
    s: number,
    B: number,
    flags: number,
    buf: ShardBuffers,
  ): ShardCall[] {
    const { N0, N1 } = this;
    const l0 = this.model.layers[0]!;
    const w1 = this.model.layerPtrs[0]!;
    const w2 = this.model.layerPtrs[1]!;
    const toGrads = this.model.gradsPtr - this.model.paramsPtr;
    const dy = buf.delta(1);
    const hb = this.block(buf.out(0), B, c0);
    const dhb = this.block(this.dh, B, c0);
    const w2b = w2.weight + c0 * N1 * FLOAT_BYTES;
    const calls: ShardCall[] = [
      ['gemm_f32_tn', [w2b + toGrads, hb, dy, 0, width, N1, B, flags, s]],
      ['gemm_f32_nt', [dhb, dy, w2b, 0, B, width, N1, 0, s]],
    ];
    if (!fusedBackward(l0)) return calls;
    if (l0.activation === 'relu') calls.push(['relu_backward', [dhb, dhb, hb, B * width]]);
    if (w1.bias) {
      const db = w1.bias + toGrads + c0 * FLOAT_BYTES;
      calls.push(['dense_bias_backward', [db, dhb, B, width, flags]]);
    }
    calls.push(['copy_block', [buf.delta(0) + c0 * FLOAT_BYTES, N0, dhb, width, B, width]]);
    return calls;
  }

  /** The finiteness check of the gradients [start, end) (floats of the region), alone. */
  private checkCall(start: number, end: number): ShardCall {
    const g = this.model.gradsPtr + start * FLOAT_BYTES;
    return ['has_non_finite_shared', [0, g, end - start, this.found]];
  }

  /** H's column block starting at column c0, for B samples (the blocks are B·width apart). */
  private block(base: number, B: number, c0: number): number {
    return base + B * c0 * FLOAT_BYTES;
  }

  /** The first `layers` layers of a training pass over B samples staged as pixels. */
  forward(
    B: number,
    pixels: { images: number; indices: number; scale: number },
    buf: ShardBuffers,
    sparse0: number,
    sparse1: number,
  ): void {
    const { engine } = this.model;
    const k = engine.kernels;
    const [l0, l1] = this.model.layers as [ResolvedLayer, ResolvedLayer];
    const { K, K0, N0, lo, x, p } = this;
    const [s0, s1] = buf.scratch;
    const { images, indices, scale } = pixels;
    const w1 = this.model.layerPtrs[0]!;
    const w1Up = w1.weight + K0 * N0 * FLOAT_BYTES;
    // Each thread gathers its pixel columns and multiplies them by its rows of W1.
    const { activate } = buf;
    const sparseBits = (sparse0 ? 1 : 0) | (sparse1 ? 2 : 0);
    const first =
      this.kept(ShardJob.First, B, sparseBits) ??
      this.keep(ShardJob.First, B, sparseBits, [
        [
          ['gather_normalize_u8_cols', [x[0], images, indices, B, K, 0, K0, scale]],
          ['gemm_f32_nn', [p[0], x[0], w1.weight, 0, B, N0, K0, sparse0, s0]],
        ],
        [
          ['gather_normalize_u8_cols', [x[1], images, indices, B, K, K0, K - K0, scale]],
          ['gemm_f32_nn', [p[1], x[1], w1Up, 0, B, N0, K - K0, sparse0, s1]],
        ],
      ]);
    for (let t = 0; t < 2; t++) {
      const gather = first[t]![0]![1] as number[];
      gather[1] = images;
      gather[2] = indices;
      gather[7] = scale;
    }
    engine.shards(first);
    const relu0 = l0.activation === 'relu' ? 1 : 0;
    const h = buf.out(0);
    if (!lo) {
      k.dense_sum_bias_act(h, p[0], p[1], w1.bias, B, N0, N0, relu0);
      if (!relu0) activate(l0, h, B * N0);
      return;
    }
    // The second layer: thread 0 sums the upper columns of H and multiplies them by W2's upper
    // rows, thread 1 the lower ones (as one job each when the activation is fused, ReLU).
    const up = lo * FLOAT_BYTES;
    const b1 = w1.bias;
    const hUp = this.block(h, B, lo);
    const w2 = this.model.layerPtrs[1]!;
    const { N1, q } = this;
    const y = buf.out(1);
    const second =
      this.kept(ShardJob.Second, B, sparseBits) ??
      this.keep(ShardJob.Second, B, sparseBits, [
        [
          ['dense_sum_bias_act', [hUp, p[0] + up, p[1] + up, b1 && b1 + up, B, N0 - lo, N0, relu0]],
          [
            'gemm_f32_nn',
            [y, hUp, w2.weight + lo * N1 * FLOAT_BYTES, 0, B, N1, N0 - lo, sparse1, s0],
          ],
        ],
        [
          ['dense_sum_bias_act', [h, p[0], p[1], b1, B, lo, N0, relu0]],
          ['gemm_f32_nn', [q, h, w2.weight, 0, B, N1, lo, sparse1, s1]],
        ],
      ]);
    if (relu0 || l0.activation === 'linear') {
      engine.shards(second);
    } else {
      // The activation runs between the sums and the products (on this thread, elementwise).
      engine.shards([[second[0]![0]!], [second[1]![0]!]]);
      activate(l0, h, B * N0);
      engine.shards([[second[0]![1]!], [second[1]![1]!]]);
    }
    const relu1 = l1.activation === 'relu' ? 1 : 0;
    k.dense_sum_bias_act(y, y, q, w2.bias, B, N1, N1, relu1);
    if (!relu1) activate(l1, y, B * N1);
  }

  /**
   * Backward through layer i (< layers) after the forward above: the second layer's gradients
   * and dH (i = 1), the first layer's weight gradient (i = 0; its bias and activation were
   * done with the second when it was cut, else here). `flags` as the GEMMs' (accumulate).
   */
  backward(i: number, B: number, flags: number, buf: ShardBuffers): void {
    const { engine } = this.model;
    const k = engine.kernels;
    const toGrads = this.model.gradsPtr - this.model.paramsPtr;
    const { K, K0, N0, lo, N1, x } = this;
    const [s0, s1] = buf.scratch;
    const { activateBack } = buf;
    const l0 = this.model.layers[0]!;
    const w1 = this.model.layerPtrs[0]!;
    if (i === 1) {
      const l1 = this.model.layers[1]!;
      const w2 = this.model.layerPtrs[1]!;
      const dy = buf.delta(1);
      activateBack(l1, dy, buf.out(1), B * N1);
      if (w2.bias) k.dense_bias_backward(w2.bias + toGrads, dy, B, N1, flags);
      // Thread 0 the upper rows of W2 and columns of H, thread 1 the lower: dW2's rows, the
      // block of dH, its activation's derivative, b1's gradient, and the block copied into dH.
      const h = buf.out(0);
      const dh = buf.delta(0);
      engine.shards(
        this.kept(ShardJob.SecondBack, B, flags) ??
          this.keep(ShardJob.SecondBack, B, flags, [
            this.secondBackCalls(lo, N0 - lo, s0, B, flags, buf),
            this.secondBackCalls(0, lo, s1, B, flags, buf),
          ]),
      );
      if (!fusedBackward(l0)) {
        activateBack(l0, this.dh, h, B * N0);
        const dhUp = this.block(this.dh, B, lo);
        if (w1.bias) {
          k.dense_bias_backward(w1.bias + toGrads, this.dh, B, lo, flags);
          k.dense_bias_backward(w1.bias + toGrads + lo * FLOAT_BYTES, dhUp, B, N0 - lo, flags);
        }
        k.copy_block(dh, N0, this.dh, lo, B, lo);
        k.copy_block(dh + lo * FLOAT_BYTES, N0, dhUp, N0 - lo, B, N0 - lo);
      }
      return;
    }
    const dh = buf.delta(0);
    if (!lo) {
      activateBack(l0, dh, buf.out(0), B * N0);
      if (w1.bias) k.dense_bias_backward(w1.bias + toGrads, dh, B, N0, flags);
    }
    const dw = w1.weight + toGrads;
    const f = flags | (engine.sparseInput ? GEMM_SPARSE_A : 0);
    // Every gradient is final once W1's rows are: each thread then checks its part of them
    // (has_non_finite_shared alone, claim 0) while its rows are still in its cache.
    const { from, to, found } = this;
    const n = this.model.regionFloats;
    const flag = this.memoryI32();
    flag[found >> 2] = 0;
    engine.shards(
      this.kept(ShardJob.FirstBack, B, f) ??
        this.keep(ShardJob.FirstBack, B, f, [
          [
            ['gemm_f32_tn', [dw, x[0], dh, 0, K0, N0, B, f, s0]],
            this.checkCall(0, from),
            this.checkCall(to, n),
          ],
          [
            ['gemm_f32_tn', [dw + K0 * N0 * FLOAT_BYTES, x[1], dh, 0, K - K0, N0, B, f, s1]],
            this.checkCall(from, to),
          ],
        ]),
    );
    this.finite = flag[found >> 2] === 0;
  }
}

/** Bytes between two threads' GEMM scratch regions of `floats` (0 with one thread). */
export function scratchStride(model: Model, floats: number): number {
  return model.engine.threads > 1 ? alignUp(floats * FLOAT_BYTES, ALIGN) : 0;
}
