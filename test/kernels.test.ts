/**
 * Every non-GEMM kernel against its scalar reference (test/reference/kernels.ts) on awkward sizes:
 * empty, 1, not divisible by 4 or 16, and the real layer widths.
 * Tolerances: elementwise kernels and optimizers are exact (same f32 operations, same order);
 * f64 reductions (bias gradient, softmax, losses) within 1e-6 relative of the f64 reference.
 */
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/node.js';
import { Rng } from '../src/engine/rng.js';
import { maxAbsDiff, put, randomFloats, randomLabels } from './helpers.js';
import {
  adamRef,
  argmaxRef,
  biasBackwardRef,
  gatherColumnsRef,
  gatherNormalizeRef,
  mseRef,
  reluBackwardRef,
  reluForwardRef,
  sgdRef,
  softmaxRef,
  softmaxXentRef,
  sumBiasActRef,
} from './reference/kernels.js';

const SIZES = [0, 1, 3, 4, 5, 15, 16, 17, 33, 784, 1000];
const ROWS = [1, 2, 3, 32, 33];
const COLS = [1, 3, 4, 5, 10, 17, 128];

describe('relu', () => {
  it.each(SIZES)('forward and backward match the reference exactly for n=%i', (n) => {
    const e = createEngine();
    const rng = new Rng(n + 1);
    const x = randomFloats(rng, n);
    const dout = randomFloats(rng, n);
    const xp = put(e, x);
    const outp = put(e, new Float32Array(n));
    const doutp = put(e, dout);
    const dinp = put(e, new Float32Array(n));
    e.kernels.relu_forward(outp, xp, n);
    const out = e.f32(outp, n).slice();
    expect(Array.from(out)).toEqual(Array.from(reluForwardRef(x)));
    e.kernels.relu_backward(dinp, doutp, outp, n);
    expect(Array.from(e.f32(dinp, n))).toEqual(Array.from(reluBackwardRef(dout, out)));
  });

  it('propagates NaN forward instead of masking it to 0', () => {
    const e = createEngine();
    const x = new Float32Array([NaN, -1, 2, NaN, 5, NaN]);
    const p = put(e, x);
    e.kernels.relu_forward(p, p, x.length);
    const out = e.f32(p, x.length);
    expect(Number.isNaN(out[0])).toBe(true);
    expect(Number.isNaN(out[3])).toBe(true);
    expect(Number.isNaN(out[5])).toBe(true);
    expect(out[1]).toBe(0);
  });
});

describe('dense_bias_backward', () => {
  for (const B of ROWS) {
    it.each(COLS)(`column sums for B=${B}, N=%i (set and accumulate)`, (N) => {
      const e = createEngine();
      const rng = new Rng(B * 100 + N);
      const dout = randomFloats(rng, B * N);
      const init = randomFloats(rng, N);
      const doutp = put(e, dout);
      const dbp = put(e, init);
      e.kernels.dense_bias_backward(dbp, doutp, B, N, 0);
      const ref = biasBackwardRef(dout, B, N);
      expect(maxAbsDiff(e.f32(dbp, N), ref)).toBeLessThan(1e-5 * B);
      e.f32(dbp, N).set(init);
      e.kernels.dense_bias_backward(dbp, doutp, B, N, 1);
      expect(
        maxAbsDiff(
          e.f32(dbp, N),
          ref.map((v, j) => v + init[j]!),
        ),
      ).toBeLessThan(1e-5 * (B + 1));
    });
  }
});

describe('softmax and losses', () => {
  for (const B of ROWS) {
    it.each(COLS)(`softmax + cross-entropy fused, B=${B}, N=%i`, (N) => {
      const e = createEngine();
      const rng = new Rng(B * 7 + N);
      const logits = randomFloats(rng, B * N, 8);
      const labels = randomLabels(rng, B, N);
      const lp = put(e, logits);
      const labp = put(e, labels);
      const pp = put(e, new Float32Array(B * N));
      const dp = put(e, new Float32Array(B * N));
      const loss = e.kernels.softmax_xent_forward_backward(dp, pp, lp, labp, B, N, 1 / B);
      const ref = softmaxXentRef(logits, labels, B, N, 1 / B);
      expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-5 * Math.max(1, ref.loss));
      expect(maxAbsDiff(e.f32(pp, B * N), softmaxRef(logits, B, N))).toBeLessThan(1e-6);
      expect(maxAbsDiff(e.f32(dp, B * N), ref.dlogits)).toBeLessThan(1e-6);
      // softmax_forward alone, in place
      e.kernels.softmax_forward(lp, lp, B, N);
      expect(maxAbsDiff(e.f32(lp, B * N), softmaxRef(logits, B, N))).toBeLessThan(1e-6);
    });

    it.each([3, 10])(`squared error (mse and ½·sse scales), B=${B}, N=%i`, (N) => {
      const e = createEngine();
      const rng = new Rng(B * 13 + N);
      const out = randomFloats(rng, B * N, 2);
      const labels = randomLabels(rng, B, N);
      const op = put(e, out);
      const labp = put(e, labels);
      const dp = put(e, new Float32Array(B * N));
      for (const scale of [1 / N, 0.5]) {
        const loss = e.kernels.mse_forward_backward(dp, op, labp, B, N, scale, 1 / B);
        const ref = mseRef(out, labels, B, N, scale, 1 / B);
        expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-6 * Math.max(1, ref.loss));
        expect(maxAbsDiff(e.f32(dp, B * N), ref.dout)).toBeLessThan(1e-6);
      }
    });
  }

  it('softmax cross-entropy is stable for huge logits (no NaN, no Inf)', () => {
    const e = createEngine();
    const logits = new Float32Array([1000, -1000, 0, 80, 88.8, -88, 3e38, -3e38, 0]);
    const labels = new Int32Array([1, 0, 1]);
    const lp = put(e, logits);
    const labp = put(e, labels);
    const dp = put(e, new Float32Array(9));
    const loss = e.kernels.softmax_xent_forward_backward(dp, lp, lp, labp, 3, 3, 1);
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeGreaterThan(2000 - 1);
    for (const v of e.f32(dp, 9)) expect(Number.isFinite(v)).toBe(true);
  });

  it('count_correct and argmax_rows agree with the reference (first index on ties)', () => {
    const e = createEngine();
    const rng = new Rng(5);
    const B = 37;
    const N = 10;
    const scores = randomFloats(rng, B * N);
    scores[3 * N + 2] = scores[3 * N + 7] = 5; // tie: first index wins
    const labels = randomLabels(rng, B, N);
    const ref = argmaxRef(scores, B, N);
    labels[3] = 2;
    const sp = put(e, scores);
    const labp = put(e, labels);
    const outp = put(e, new Int32Array(B));
    e.kernels.argmax_rows(outp, sp, B, N);
    expect(Array.from(e.i32(outp, B))).toEqual(Array.from(ref));
    const expected = ref.reduce((n, p, b) => n + (p === labels[b] ? 1 : 0), 0);
    expect(e.kernels.count_correct(sp, labp, B, N)).toBe(expected);
    expect(e.kernels.count_correct(sp, labp, 0, N)).toBe(0);
  });
});

describe('optimizers', () => {
  const configs = [
    { momentum: 0, nesterov: false, wd: 0 },
    { momentum: 0, nesterov: false, wd: 1e-3 },
    { momentum: 0.9, nesterov: false, wd: 0 },
    { momentum: 0.9, nesterov: true, wd: 5e-4 },
  ];
  for (const c of configs) {
    it.each(SIZES)(`sgd ${JSON.stringify(c)} matches bit for bit over 3 steps, n=%i`, (n) => {
      const e = createEngine();
      const rng = new Rng(n + 11);
      const params = randomFloats(rng, n);
      const velocity = new Float32Array(n);
      const pp = put(e, params);
      const vp = put(e, velocity);
      for (let step = 0; step < 3; step++) {
        const grads = randomFloats(rng, n);
        const gp = put(e, grads);
        e.kernels.sgd_step(pp, gp, vp, n, 0.05, c.momentum, c.nesterov ? 1 : 0, c.wd);
        sgdRef(params, grads, velocity, 0.05, c.momentum, c.nesterov, c.wd);
      }
      expect(Array.from(e.f32(pp, n))).toEqual(Array.from(params));
      if (c.momentum) expect(Array.from(e.f32(vp, n))).toEqual(Array.from(velocity));
    });
  }

  it.each(SIZES)('adam matches bit for bit over 5 steps, n=%i', (n) => {
    const e = createEngine();
    const rng = new Rng(n + 21);
    const params = randomFloats(rng, n);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    const pp = put(e, params);
    const mp = put(e, m);
    const vp = put(e, v);
    for (let t = 1; t <= 5; t++) {
      const grads = randomFloats(rng, n, 0.1);
      const gp = put(e, grads);
      const bc1 = 1 - 0.9 ** t;
      const bc2 = 1 - 0.999 ** t;
      e.kernels.adam_step(pp, gp, mp, vp, n, 1e-3, 0.9, 0.999, 1e-8, bc1, bc2, t === 3 ? 1e-2 : 0);
      adamRef(params, grads, m, v, 1e-3, 0.9, 0.999, 1e-8, bc1, bc2, t === 3 ? 1e-2 : 0);
    }
    expect(Array.from(e.f32(pp, n))).toEqual(Array.from(params));
    expect(Array.from(e.f32(mp, n))).toEqual(Array.from(m));
    expect(Array.from(e.f32(vp, n))).toEqual(Array.from(v));
  });

  it('adam moves each parameter by about lr on its first step (bias correction)', () => {
    const e = createEngine();
    const n = 7;
    const pp = put(e, new Float32Array(n));
    const gp = put(
      e,
      Float32Array.from({ length: n }, (_, i) => (i - 3) * 0.37 + 0.01),
    );
    const mp = put(e, new Float32Array(n));
    const vp = put(e, new Float32Array(n));
    e.kernels.adam_step(pp, gp, mp, vp, n, 1e-3, 0.9, 0.999, 1e-8, 1 - 0.9, 1 - 0.999, 0);
    for (const x of e.f32(pp, n)) expect(Math.abs(Math.abs(x) - 1e-3)).toBeLessThan(1e-6);
  });

  it.each(SIZES.filter((n) => n > 0))('has_non_finite finds NaN/Inf anywhere, n=%i', (n) => {
    const e = createEngine();
    const x = randomFloats(new Rng(n), n);
    const p = put(e, x);
    expect(e.kernels.has_non_finite(p, n)).toBe(0);
    for (const bad of [NaN, Infinity, -Infinity]) {
      // every position: each lane of each of the kernel's four sums, and the scalar tail
      for (let at = 0; at < n; at++) {
        e.f32(p, n)[at] = bad;
        expect(e.kernels.has_non_finite(p, n)).toBe(1);
        e.f32(p, n)[at] = x[at]!;
      }
    }
  });
});

describe('dense_sum_bias_act (the sum of two shard products and the epilogue)', () => {
  for (const B of [0, 1, 3, 32]) {
    it.each(COLS)(
      `matches the reference exactly, B=${B}, N=%i, with and without bias and ReLU`,
      (N) => {
        const e = createEngine();
        const rng = new Rng(B * 131 + N);
        for (const ld of [N, N + 5]) {
          const a = randomFloats(rng, B * ld);
          const b = randomFloats(rng, B * ld);
          const bias = randomFloats(rng, N);
          if (B * N > 2) {
            a[1] = NaN; // stays NaN through the sum and ReLU
            b[2] = -Infinity;
          }
          const biasPtr = put(e, bias);
          for (const withBias of [false, true]) {
            for (const relu of [false, true]) {
              const aPtr = put(e, a);
              const bPtr = put(e, b);
              // In place (out = a) when the rows are dense, else into a buffer of its own.
              const out = ld === N ? aPtr : put(e, new Float32Array(B * N));
              const flags = relu ? 1 : 0;
              e.kernels.dense_sum_bias_act(
                out,
                aPtr,
                bPtr,
                withBias ? biasPtr : 0,
                B,
                N,
                ld,
                flags,
              );
              const want = sumBiasActRef(a, b, withBias ? bias : undefined, B, N, ld, relu);
              const where = `ld ${ld}, bias ${withBias}, relu ${relu}`;
              expect(Array.from(e.f32(out, B * N)), where).toEqual(Array.from(want));
              expect(Array.from(e.f32(bPtr, B * ld)), 'b is only read').toEqual(Array.from(b));
            }
          }
        }
      },
    );
  }
});

describe('copy_block', () => {
  it.each([
    [0, 5, 5, 5],
    [1, 1, 1, 1],
    [3, 5, 7, 9],
    [32, 128, 256, 128],
    [4, 17, 17, 40],
  ])(
    'rows %i, cols %i, source rows %i apart, destination rows %i apart',
    (rows, cols, ldSrc, ldDst) => {
      const e = createEngine();
      const rng = new Rng(rows * 31 + cols);
      const src = randomFloats(rng, Math.max(1, rows * ldSrc));
      const dst = randomFloats(rng, Math.max(1, rows * ldDst));
      const srcPtr = put(e, src);
      const dstPtr = put(e, dst);
      e.kernels.copy_block(dstPtr, ldDst, srcPtr, ldSrc, rows, cols);
      const want = dst.slice();
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) want[r * ldDst + c] = src[r * ldSrc + c]!;
      expect(Array.from(e.f32(dstPtr, want.length))).toEqual(Array.from(want));
    },
  );
});

describe('batch staging', () => {
  it.each([1, 15, 16, 17, 784])('gather_normalize_u8 and gather_labels, D=%i', (D) => {
    const e = createEngine();
    const rng = new Rng(D);
    const rows = 9;
    const images = Uint8Array.from({ length: rows * D }, () => rng.nextInt(256));
    images[0] = 255;
    const labels = Uint8Array.from({ length: rows }, () => rng.nextInt(10));
    const indices = new Int32Array([8, 0, 3, 3, 5]);
    const ip = put(e, images);
    const lp = put(e, labels);
    const xp = put(e, indices);
    const outp = put(e, new Float32Array(indices.length * D));
    const labp = put(e, new Int32Array(indices.length));
    e.kernels.gather_normalize_u8(outp, ip, xp, indices.length, D, 1 / 255);
    e.kernels.gather_labels(labp, lp, xp, indices.length);
    expect(Array.from(e.f32(outp, indices.length * D))).toEqual(
      Array.from(gatherNormalizeRef(images, indices, D, 1 / 255)),
    );
    expect(Array.from(e.i32(labp, indices.length))).toEqual(Array.from(indices, (i) => labels[i]!));
  });

  it.each([
    [784, 0, 400],
    [784, 400, 384],
    [784, 392, 392],
    [17, 1, 15],
    [17, 16, 1],
    [40, 3, 0],
  ])('gather_normalize_u8_cols, D=%i, columns %i + %i', (D, col0, cols) => {
    const e = createEngine();
    const rng = new Rng(D * 7 + col0);
    const rows = 9;
    const images = Uint8Array.from({ length: rows * D }, () => rng.nextInt(256));
    images[col0] = 255;
    for (const indices of [
      new Int32Array([8, 0, 3, 3, 5]),
      new Int32Array([4]),
      new Int32Array(),
    ]) {
      const ip = put(e, images);
      const xp = put(e, indices);
      const n = indices.length * cols;
      // One float past the block: a sentinel the kernel must not write.
      const outp = put(e, new Float32Array(n + 1).fill(-7));
      e.kernels.gather_normalize_u8_cols(outp, ip, xp, indices.length, D, col0, cols, 1 / 255);
      expect(Array.from(e.f32(outp, n))).toEqual(
        Array.from(gatherColumnsRef(images, indices, D, col0, cols, 1 / 255)),
      );
      expect(e.f32(outp + n * 4, 1)[0]).toBe(-7);
    }
  });
});
