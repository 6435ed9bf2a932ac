/**
 * Multi-threaded kernels: a GEMM shared by threads that take its units from the ranges dealt to
 * them (gemm_f32_shared) equals the whole call bit for bit on awkward shapes in every layout and
 * epilogue, with 2 and 3 threads, and so do the optimizer steps shared in chunks; the shared
 * finiteness check finds every NaN and ±Inf; and
 * training with 2 or 3 threads gives the same weights, bit for bit, as one thread — in both kernel builds, for an MLP (Adam)
 * and LeNet-5 (SGD + momentum, the convolutions' GEMMs split too) — and as one thread with the
 * zero skipping (EngineOptions.sparseInput) turned off.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import type { Engine } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import {
  GEMM_ACCUMULATE,
  GEMM_A_U8,
  GEMM_RELU,
  GEMM_SPARSE_A,
  GEMM_SPARSE_B,
} from '../src/engine/kernels.js';
import { createModel } from '../src/nn/create.js';
import type { Model } from '../src/nn/model.js';
import { fit, predict, type FitOptions } from '../src/train/fit.js';
import { BUILDS } from './builds.js';
import { Rng } from '../src/engine/rng.js';
import { ThreadPool, waitChange, type SpawnHelper } from '../src/engine/threads.js';
import { put, randomFloats } from './helpers.js';

const hash = (m: Model): string => createHash('sha256').update(m.parameters()).digest('hex');

/** Room for 3 threads' slots of the work ranges (assembly/claim.ts: claim_slot_bytes each). */
const claimArea = (e: Engine): number => e.reserve(3 * e.kernels.claim_slot_bytes());

/**
 * Deal `units` out to `parties` slots at `claim` as the engine does (assembly/claim.ts: slot t,
 * claim_slot_bytes after slot t − 1, starts [lo | hi << 16, t | parties << 16]); returns each
 * slot's address.
 */
function deal(e: Engine, claim: number, units: number, parties: number): number[] {
  const stride = e.kernels.claim_slot_bytes();
  return Array.from({ length: parties }, (_, t) => {
    const slot = claim + t * stride;
    const words = e.i32(slot, 2);
    words[0] = Math.floor((t * units) / parties) | (Math.floor(((t + 1) * units) / parties) << 16);
    words[1] = t | (parties << 16);
    return slot;
  });
}

/** A slot's range [lo, hi) of units not taken yet. */
const range = (e: Engine, slot: number): [number, number] => {
  const w = e.i32(slot, 1)[0]!;
  return [w & 0xffff, w >>> 16];
};

describe('optimizer steps shared by threads (chunks from their ranges) equal one call, bit for bit', () => {
  // Awkward lengths around the 4096-float unit; from 16k floats the engine shares a call.
  const lengths = [0, 1, 17, 4095, 4097, 16384, 3 * 4096 + 5, 70001];
  const run = (threads: number, build: (typeof BUILDS)[number]) => {
    const e = createEngine({ simd: build, threads });
    const k = e.kernels;
    const out: Buffer[] = [];
    for (const n of lengths) {
      const rng = new Rng(n + 1);
      const state = () => put(e, randomFloats(rng, n + 1, 0.1));
      const [p, g, s1, s2] = [state(), state(), state(), state()];
      // Squares for the state that must stay ≥ 0 (Adam's v, RMSprop's and Adagrad's sums).
      const square = () =>
        put(
          e,
          randomFloats(rng, n + 1).map((x) => x * x),
        );
      const [q, h] = [state(), state()];
      const [sq, sum] = [square(), square()];
      k.adam_step(p, g, s1, sq, n, 1e-3, 0.9, 0.999, 1e-8, 0.19, 0.002, 1e-2);
      k.sgd_step(q, h, s2, n, 0.05, 0.9, 1, 1e-3);
      k.rmsprop_step(q, g, sum, n, 1e-3, 0.99, 1e-8, 0);
      k.adagrad_step(p, h, sum, n, 1e-2, 1e-10, 1e-3);
      k.sgd_step(p, g, 0, n, 0.1, 0, 0, 0);
      for (const ptr of [p, s1, sq, q, s2, sum])
        out.push(Buffer.from(e.f32(ptr, n + 1).slice().buffer));
    }
    return { e, out };
  };
  for (const build of BUILDS) {
    it(`${build} build: optimizer steps on 1, 2 and 3 threads, and one thread taking every range`, () => {
      const runs = [1, 2, 3].map((t) => run(t, build));
      try {
        for (const r of runs.slice(1)) {
          expect(r.out.length).toBe(runs[0]!.out.length);
          r.out.forEach((b, i) => expect(b.equals(runs[0]!.out[i]!), `buffer ${i}`).toBe(true));
        }
        // Alone, a shared step runs every unit in order: the whole call's bits; the float after
        // the last one (a sentinel) is never touched.
        const e = runs[0]!.e;
        const k = e.kernels;
        const n = 3 * 4096 + 5;
        const rng = new Rng(9);
        const init = [0, 1, 2, 3].map(() => {
          const x = randomFloats(rng, n + 1, 0.1).map(Math.abs);
          x[n] = 7;
          return x;
        });
        const whole = init.map((x) => put(e, x));
        const shared = init.map((x) => put(e, x));
        // Two threads' ranges (chunks 0–1 and 2–3), of which only the first thread runs: it
        // takes its own chunks from the front, then the other's from the back.
        const claim = claimArea(e);
        const [mine, other] = deal(e, claim, k.chunk_units(n), 2);
        const hyper = [n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001, 0] as const;
        k.adam_step(whole[0]!, whole[1]!, whole[2]!, whole[3]!, ...hyper);
        k.adam_step_shared(mine!, shared[0]!, shared[1]!, shared[2]!, shared[3]!, ...hyper);
        for (const i of [0, 2, 3]) {
          const a = Buffer.from(e.f32(whole[i]!, n).slice().buffer);
          expect(a.equals(Buffer.from(e.f32(shared[i]!, n).slice().buffer))).toBe(true);
          expect(e.f32(shared[i]!, n + 1)[n]).toBe(7);
        }
        expect(range(e, mine!)).toEqual([2, 2]); // its own 2 units from the front
        expect(range(e, other!)).toEqual([2, 2]); // the other's 2 from the back
        // Its pinned splats (β1, β2, …) went to its own slot's lines, not the other thread's
        // and not one address that every thread writes (assembly/claim.ts: claim_pins).
        const stride = k.claim_slot_bytes();
        expect(stride % 64).toBe(0);
        expect(other! - mine!).toBe(stride);
        expect(Array.from(e.f32(mine! + 64, 8))).toEqual([
          ...Array(4).fill(Math.fround(0.9)),
          ...Array(4).fill(Math.fround(0.999)),
        ]);
        expect(e.f32(other! + 64, 32).every((x) => x === 0)).toBe(true);
        // The whole step (no slot) pinned in the calling thread's slot of the engine's own ranges,
        // not in static memory, which a helper's instantiation rewrites (simd.ts: pinArea).
        const engineSlot0 = (e as unknown as { claimPtr: number }).claimPtr;
        expect(Array.from(e.f32(engineSlot0 + 64, 4))).toEqual(Array(4).fill(Math.fround(0.9)));
      } finally {
        for (const r of runs) r.e.close();
      }
    });
  }
});

describe('gemm_f32_shared: threads taking units from their ranges give the whole GEMM, bit for bit', () => {
  // Big enough to be shared (≥ 256k multiply-adds, several 128×16 units), with awkward edges.
  const shapes = [
    [32, 256, 784],
    [33, 130, 70],
    [300, 20, 50],
    [784, 24, 32],
    [1000, 10, 128],
    [130, 17, 129],
    [150, 16, 200], // LeNet-5's conv2 weight gradient is 150×16×3200: blocks of 32 rows
    [40, 100, 300], // GEMM_SPARSE_B (tn): 13 units of 8 columns
  ] as const;
  const flagSets = [
    0,
    GEMM_RELU,
    GEMM_ACCUMULATE | GEMM_RELU,
    GEMM_SPARSE_A,
    GEMM_SPARSE_B | GEMM_ACCUMULATE,
  ];
  for (const build of BUILDS) {
    it(`${build} build: 1, 2 and 3 threads, every layout and epilogue`, () => {
      const engines = [1, 2, 3].map((threads) => createEngine({ simd: build, threads }));
      try {
        for (const [M, N, K] of shapes) {
          for (const layout of [0, 1, 2]) {
            const rng = new Rng(M * 1000 + N * 10 + K + layout);
            // Mostly zeros (as MNIST pixels), so GEMM_SPARSE_A runs sparse strips too.
            const a = randomFloats(rng, M * K).map((x, i) => (i % 5 === 0 ? x : 0));
            const b = randomFloats(rng, K * N);
            // For GEMM_SPARSE_B: about 1 in 4 entries kept, as a conv's dout after max-pool.
            const bSparse = b.map((x, i) => (i % 4 === 1 ? x : 0));
            const bias = randomFloats(rng, N);
            const start = randomFloats(rng, M * N);
            for (const flags of flagSets) {
              const results = engines.map((e) => {
                const mark = e.mark();
                const k = e.kernels;
                const scratch = e.reserve(k.gemm_scratch_floats(M, N, K) * 4 * e.threads + 256);
                const C = put(e, start);
                const bOp = put(e, flags & GEMM_SPARSE_B ? bSparse : b);
                const args = [C, put(e, a), bOp, put(e, bias), M, N, K, flags, scratch];
                const fn = [k.gemm_f32_nn, k.gemm_f32_tn, k.gemm_f32_nt][layout]!;
                fn(...(args as Parameters<typeof fn>));
                const out = Buffer.from(e.f32(C, M * N).slice().buffer);
                e.release(mark);
                return out;
              });
              // Buffer.equals: a deep toEqual over every byte is slow on outputs this size.
              const what = `${M}×${N}×${K} layout ${layout} flags ${flags}`;
              for (const r of results.slice(1)) expect(r.equals(results[0]!), what).toBe(true);
            }
          }
        }
        // Alone, a shared call is the whole GEMM: its own units in order, then, when it was dealt
        // one of three ranges, the others' from their ends.
        const e = engines[0]!;
        const k = e.kernels;
        const [M, N, K] = [33, 130, 70];
        const rng = new Rng(7);
        const A = put(e, randomFloats(rng, M * K));
        const B = put(e, randomFloats(rng, K * N));
        const scratch = e.reserve(k.gemm_scratch_floats(M, N, K) * 4 + 64);
        const claim = claimArea(e);
        const C = e.reserve(M * N * 4);
        k.gemm_f32_nn(C, A, B, 0, M, N, K, GEMM_RELU, scratch);
        // 33 rows = one block of 128; 130 columns = 9 units of 16, all taken.
        const units = k.gemm_shared_units(0, M, N, 0);
        expect(units).toBe(9);
        for (const [parties, runs] of [
          [1, 0],
          [3, 0],
          [3, 2],
        ] as const) {
          const D = e.reserve(M * N * 4);
          const slots = deal(e, claim, units, parties);
          k.gemm_f32_shared(0, D, A, B, 0, M, N, K, GEMM_RELU, scratch, slots[runs]!);
          expect(Buffer.from(e.f32(D, M * N).slice().buffer)).toEqual(
            Buffer.from(e.f32(C, M * N).slice().buffer),
          );
          for (const slot of slots) {
            const [lo, hi] = range(e, slot);
            expect(lo, `${parties} ranges, slot ${slot - claim}`).toBe(hi);
          }
        }
        // A tall, narrow product is cut into blocks of fewer rows: 150 rows × 16 columns were
        // 2 units of 128 and 22 rows, now 5 of 32 (the last 22).
        expect(k.gemm_shared_units(1, 150, 16, 0)).toBe(5);
        expect(k.gemm_shared_units(0, 32, 128, GEMM_SPARSE_A)).toBe(6);
        // GEMM_SPARSE_B (tn, small C): units of 8 columns.
        expect(k.gemm_shared_units(1, 150, 16, GEMM_SPARSE_B)).toBe(2);
        expect(k.gemm_shared_units(1, 31, 16, GEMM_SPARSE_B)).toBe(
          k.gemm_shared_units(1, 31, 16, 0),
        );
        // A tall product is shared by whole row blocks, halved until there are 4 of them:
        // 784 rows in blocks of 128 (7 units, the last of 16 rows), 1000 in blocks of 128
        // (8 units), 256 in blocks of 64 (4 units), whatever N.
        expect(k.gemm_shared_units(1, 784, 256, GEMM_SPARSE_A)).toBe(7);
        expect(k.gemm_shared_units(1, 256, 128, 0)).toBe(4);
        expect(k.gemm_shared_units(0, 1000, 256, GEMM_SPARSE_A)).toBe(8);
        expect(k.gemm_shared_units(2, 1000, 17, 0)).toBe(8);
      } finally {
        for (const e of engines) e.close();
      }
    });
  }
});

describe('the first layer reading staged uint8 pixels (GEMM_A_U8) on threads', () => {
  for (const build of BUILDS) {
    it(`${build} build: 1, 2 and 3 threads give the float input's bits, and so does predict`, () => {
      const engines = [1, 2, 3].map((threads) => createEngine({ simd: build, threads }));
      try {
        // 1000 rows: 8 row blocks shared as whole blocks, each thread packing B's row panels
        // once; 300×40: row panels with a tail; 130×17: strips packed from uint8.
        for (const [M, N, K] of [
          [1000, 256, 784],
          [300, 40, 50],
          [130, 17, 129],
        ] as const) {
          const rng = new Rng(M + N + K);
          const count = M + 7;
          const pixels = Uint8Array.from({ length: count * K }, () =>
            rng.nextFloat() < 0.2 ? Math.floor(rng.nextFloat() * 256) : 0,
          );
          const order = Int32Array.from({ length: M }, () => Math.floor(rng.nextFloat() * count));
          const b = randomFloats(rng, K * N);
          const bias = randomFloats(rng, N);
          const flags = GEMM_RELU | GEMM_SPARSE_A;
          const results = engines.flatMap((e) => {
            const mark = e.mark();
            const k = e.kernels;
            const images = e.reserve(count * K);
            e.u8(images, count * K).set(pixels);
            const indices = e.reserve(M * 4);
            e.i32(indices, M).set(order);
            const record = e.reserve(16);
            e.i32(record, 2).set([images, indices]);
            e.f32(record + 8, 1)[0] = 1 / 255;
            const A = e.reserve(M * K * 4);
            k.gather_normalize_u8(A, images, indices, M, K, 1 / 255);
            const scratch = e.reserve(k.gemm_scratch_floats(M, N, K) * 4 * e.threads + 256);
            const [B, bi, C] = [put(e, b), put(e, bias), e.reserve(M * N * 4)];
            const out = [A, record].map((a) => {
              k.gemm_f32_nn(C, a, B, bi, M, N, K, flags | (a === record ? GEMM_A_U8 : 0), scratch);
              return Buffer.from(e.f32(C, M * N).slice().buffer);
            });
            e.release(mark);
            return out;
          });
          for (const r of results.slice(1))
            expect(r.equals(results[0]!), `${M}×${N}×${K}`).toBe(true);
        }
        // predict reads the test images where they are staged: the same probabilities as from
        // the float pixels (which go through the input buffer), on every thread count.
        const test = subset(loadMnistQuick().test, 0, 1500);
        const floats = Float32Array.from(test.images, (p) => Math.fround(p * Math.fround(1 / 255)));
        const probs = engines.flatMap((e) => {
          const model = createModel('mlp-256-128', { seed: 5, engine: e });
          return [test.images, floats].map((x) =>
            Buffer.from(predict(model, x, { batchSize: 1000 }).buffer),
          );
        });
        for (const p of probs.slice(1)) expect(p.equals(probs[0]!)).toBe(true);
      } finally {
        for (const e of engines) e.close();
      }
    });
  }
});

describe('kernels split between threads by image or element range equal one call, bit for bit', () => {
  // LeNet-5's layer shapes at a batch of 13 (ranges of 5, 5, 3 images on 3 threads), each large
  // enough to be split; elementwise kernels on lengths that are not multiples of 16.
  const B = 13;
  const n = 40_001;
  type Out = readonly [ptr: number, floats: number];
  const cases: [string, (e: Engine, rng: Rng) => Out[]][] = [
    [
      'pad_images, conv2d_direct_c1_forward, conv2d_direct_c1_backward_weight (rows shared)',
      (e, rng) => {
        const k = e.kernels;
        const inp = put(e, sparse(randomFloats(rng, B * 32 * 32)));
        const w = put(e, randomFloats(rng, 150));
        const bias = put(e, randomFloats(rng, 6));
        const dout = put(e, sparse(randomFloats(rng, B * 28 * 28 * 6)));
        const out = e.reserve(B * 28 * 28 * 6 * 4);
        const dw = e.reserve(150 * 4);
        const framed = e.reserve(B * 36 * 36 * 4);
        k.pad_images(framed, inp, B, 32, 32, 2);
        k.conv2d_direct_c1_forward(out, inp, w, bias, B, 32, 32, 6, 5, 5, 0, 28, 28, GEMM_RELU);
        k.conv2d_direct_c1_backward_weight(dw, inp, dout, B, 32, 32, 6, 5, 5, 0, 28, 28);
        return [
          [out, B * 28 * 28 * 6],
          [dw, 150],
          [framed, B * 36 * 36],
        ];
      },
    ],
    [
      'conv2d_im2col, conv2d_col2im, conv2d_backward_input_scatter',
      (e, rng) => {
        const k = e.kernels;
        const inp = put(e, randomFloats(rng, B * 14 * 14 * 6));
        const dcols = put(e, randomFloats(rng, B * 100 * 150));
        const delta = put(e, sparse(randomFloats(rng, B * 100 * 16)));
        const wT = put(e, randomFloats(rng, 16 * 150 + 3));
        const cols = e.reserve(B * 100 * 150 * 4);
        const dinp = e.reserve(B * 14 * 14 * 6 * 4);
        const dinp2 = e.reserve(B * 14 * 14 * 6 * 4);
        k.conv2d_im2col(cols, inp, B, 14, 14, 6, 5, 5, 1, 0, 10, 10);
        k.conv2d_col2im(dinp, dcols, B, 14, 14, 6, 5, 5, 1, 0, 10, 10);
        k.conv2d_backward_input_scatter(dinp2, delta, wT, B, 14, 14, 6, 16, 5, 5, 1, 0, 10, 10);
        return [
          [cols, B * 100 * 150],
          [dinp, B * 14 * 14 * 6],
          [dinp2, B * 14 * 14 * 6],
        ];
      },
    ],
    [
      'max and average pooling, forward and backward (3×3 windows, stride 2: overlapping)',
      (e, rng) => {
        const k = e.kernels;
        const inp = put(e, randomFloats(rng, B * 28 * 28 * 6));
        const dout = put(e, randomFloats(rng, B * 13 * 13 * 6));
        const [o, i] = [B * 13 * 13 * 6, B * 28 * 28 * 6];
        const [out, argmax, dinp, avg, davg] = [o, o, i, o, i].map((f) => e.reserve(f * 4));
        k.maxpool2d_forward(out!, argmax!, inp, B, 28, 28, 6, 3, 2, 13, 13);
        k.maxpool2d_backward(dinp!, dout, argmax!, B, 28, 28, 6, 13, 13);
        k.avgpool2d_forward(avg!, inp, B, 28, 28, 6, 3, 2, 13, 13);
        k.avgpool2d_backward(davg!, dout, B, 28, 28, 6, 3, 2, 13, 13);
        return [
          [out!, o],
          [argmax!, o],
          [dinp!, i],
          [avg!, o],
          [davg!, i],
        ];
      },
    ],
    [
      'gather_normalize_u8 (a batch of images picked by index, bytes to floats)',
      (e, rng) => {
        const k = e.kernels;
        const [count, D] = [50, 28 * 28 + 3]; // rows not a multiple of 16 bytes
        const images = e.reserve(count * D);
        e.u8(images, count * D).set(randomFloats(rng, count * D).map((x) => Math.abs(x) * 255));
        const order = Array.from({ length: 3 * B }, (_, i) => (i * 37 + 5) % count);
        const indices = e.reserve(order.length * 4);
        e.i32(indices, order.length).set(order);
        const out = e.reserve(order.length * D * 4);
        k.gather_normalize_u8(out, images, indices, order.length, D, 1 / 255);
        return [[out, order.length * D]];
      },
    ],
    [
      'elementwise activations and dropout, forward and backward',
      (e, rng) => {
        const k = e.kernels;
        const x = put(e, randomFloats(rng, n, 3));
        const d = put(e, randomFloats(rng, n));
        const mask = put(e, sparse(randomFloats(rng, n)));
        const outs: Out[] = [];
        const fresh = (): number => {
          const p = e.reserve(n * 4);
          outs.push([p, n]);
          return p;
        };
        for (const f of [k.relu_forward, k.sigmoid_forward, k.tanh_forward]) f(fresh(), x, n);
        k.leaky_relu_forward(fresh(), x, n, 0.01);
        k.elu_forward(fresh(), x, n, 1);
        for (const f of [k.relu_backward, k.sigmoid_backward, k.tanh_backward]) {
          f(fresh(), d, x, n);
        }
        k.leaky_relu_backward(fresh(), d, x, n, 0.01);
        k.elu_backward(fresh(), d, x, n, 1);
        k.dropout_apply(fresh(), x, mask, n);
        return outs;
      },
    ],
  ];
  for (const build of BUILDS) {
    it(`${build} build: 1, 2 and 3 threads`, () => {
      const engines = [1, 2, 3].map((threads) => createEngine({ simd: build, threads }));
      try {
        for (const [what, run] of cases) {
          const results = engines.map((e) => {
            const mark = e.mark();
            const outs = run(e, new Rng(11)).map(([ptr, floats]) =>
              Buffer.from(e.f32(ptr, floats).slice().buffer),
            );
            e.release(mark);
            return outs;
          });
          for (const [t, r] of results.entries()) {
            for (const [i, out] of r.entries()) {
              expect(out.equals(results[0]![i]!), `${what}: output ${i}, ${t + 1} threads`).toBe(
                true,
              );
            }
          }
        }
      } finally {
        for (const e of engines) e.close();
      }
    });
  }
});

/** About two thirds zeros, as a digit's pixels or a ReLU's gradient. */
function sparse(x: Float32Array): Float32Array {
  return x.map((v, i) => (i % 3 === 0 ? v : 0));
}

describe('the finiteness check shared by threads finds every NaN and ±Inf', () => {
  // From 16k floats the engine splits the check into chunks of 4096 taken by the threads.
  it('1, 2 and 3 threads agree with a plain scan, wherever the bad value sits', () => {
    const engines = [1, 2, 3].map((threads) => createEngine({ threads }));
    try {
      for (const n of [5, 16384, 3 * 4096 + 7, 70001]) {
        const spots = [0, 4095, 4096, n >> 1, n - 8, n - 1].filter((i) => i >= 0 && i < n);
        for (const e of engines) {
          const x = e.reserve(n * 4);
          const f = e.f32(x, n);
          f.set(randomFloats(new Rng(n), n, 1e30));
          expect(e.kernels.has_non_finite(x, n), `n ${n}, all finite`).toBe(0);
          for (const at of spots) {
            for (const bad of [NaN, Infinity, -Infinity]) {
              const keep = f[at]!;
              f[at] = bad;
              const where = `n ${n}, ${bad} at ${at}, ${e.threads} threads`;
              expect(e.kernels.has_non_finite(x, n), where).toBe(1);
              f[at] = keep;
            }
          }
          expect(e.kernels.has_non_finite(x, n), `n ${n}, finite again`).toBe(0);
        }
      }
    } finally {
      for (const e of engines) e.close();
    }
  });
});

describe('training on several threads gives the weights of one thread, bit for bit', () => {
  const quick = loadMnistQuick();
  const data = { train: subset(quick.train, 0, 1500), test: subset(quick.test, 0, 300) };
  const cases: [string, FitOptions][] = [
    ['mlp-256-128', { epochs: 1, batchSize: 32, optimizer: { type: 'adam', learningRate: 1e-3 } }],
    [
      'lenet5',
      {
        epochs: 1,
        batchSize: 50,
        optimizer: { type: 'sgd', learningRate: 0.05, momentum: 0.9 },
      },
    ],
  ];
  for (const build of BUILDS) {
    for (const [preset, options] of cases) {
      it(`${preset}, ${build} build, 1 vs 2 vs 3 threads, zero inputs skipped or not`, () => {
        // The last run also turns off zero skipping (GEMM_SPARSE_A).
        const runs = [1, 2, 3, 1].map((threads, i) => ({ threads, sparseInput: i < 3 }));
        const hashes = runs.map(({ threads, sparseInput }) => {
          const engine = createEngine({ simd: build, threads, sparseInput });
          expect(engine.threads).toBe(threads);
          expect(engine.sparseInput).toBe(sparseInput);
          const model = createModel(preset, { seed: 5, engine });
          const { history } = fit(model, data, options);
          expect(history[0]!.testAccuracy).toBeGreaterThan(0.5);
          engine.close();
          return hash(model);
        });
        expect(hashes[1]).toBe(hashes[0]);
        expect(hashes[2]).toBe(hashes[0]);
        expect(hashes[3]).toBe(hashes[0]);
      });
    }
  }

  it('refuses a thread count that is not an integer from 1 to 256', () => {
    expect(() => createEngine({ threads: 0 })).toThrow(
      'threads must be an integer from 1 to 256, got 0',
    );
    // The engine keeps one work range per thread (assembly/claim.ts) for up to 256.
    expect(() => createEngine({ threads: 257 })).toThrow(
      'threads must be an integer from 1 to 256, got 257',
    );
    expect(() => createEngine({ threads: 1.5 })).toThrow(/from 1 to 256, got 1.5/);
  });
});

describe('waitChange: the hand-off between threads spins briefly, then sleeps until woken', () => {
  it('returns at once when the value has already changed', () => {
    const control = new Int32Array(new SharedArrayBuffer(16));
    control[1] = 3;
    expect(waitChange(control, 1, 2, 50)).toBe(3);
  });

  it('sleeps past its spin and wakes with the value another thread stores', async () => {
    const control = new Int32Array(new SharedArrayBuffer(16));
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       setTimeout(() => { Atomics.store(workerData, 2, 7); Atomics.notify(workerData, 2); }, 40);`,
      { eval: true, workerData: control },
    );
    await new Promise((resolve) => worker.once('online', resolve));
    const start = performance.now();
    const value = waitChange(control, 2, 0, 50);
    const waited = performance.now() - start;
    await worker.terminate();
    expect(value).toBe(7);
    // 50 µs of spinning could not have seen a store made ~40 ms later: it slept and was woken.
    expect(waited).toBeGreaterThan(20);
  });
});

describe('ThreadPool: a helper that cannot start', () => {
  it('is marked dead, and the calling thread runs its shares instead of waiting forever', () => {
    // A module importing a function the helpers do not provide: instantiating it throws.
    const bytes = new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x02,
      0x0f, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x07, 0x6d, 0x69, 0x73, 0x73, 0x69, 0x6e, 0x67, 0x00,
      0x00,
    ]);
    const module = new WebAssembly.Module(bytes);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const spawn: SpawnHelper = (source, init) => {
      const worker = new Worker(
        `const { workerData } = require('node:worker_threads'); ${source}(workerData);`,
        { eval: true, workerData: init },
      );
      worker.on('error', () => {}); // the helper rethrows its instantiation error
      return worker;
    };
    const pool = new ThreadPool(module, memory, 3, ['step'], spawn);
    try {
      const ran: number[][] = [];
      pool.run('step', [[10], [11], [12]], (...args) => ran.push(args));
      expect(ran).toEqual([[10], [11], [12]]);
      ran.length = 0;
      pool.run('step', [[20], [21]], (...args) => ran.push(args));
      expect(ran).toEqual([[20], [21]]);
    } finally {
      pool.terminate();
    }
  });
});
