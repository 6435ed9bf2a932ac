/**
 * Multi-threaded kernels: a GEMM computed as column shares (gemm_f32_cols) equals the whole call
 * bit for bit on awkward shapes in every layout and epilogue, and training with 2 or 3 threads
 * gives the same weights, bit for bit, as one thread — in both kernel builds, for an MLP (Adam)
 * and LeNet-5 (SGD + momentum, the convolutions' GEMMs split too) — and as one thread with the
 * first layer's zero skipping (EngineOptions.sparseInput) turned off.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import { splitRange } from '../src/engine/threads.js';
import { GEMM_ACCUMULATE, GEMM_RELU } from '../src/engine/kernels.js';
import { createModel } from '../src/nn/create.js';
import type { Model } from '../src/nn/model.js';
import { fit, type FitOptions } from '../src/train/fit.js';
import { BUILDS } from './builds.js';
import { Rng } from '../src/engine/rng.js';
import { put, randomFloats } from './helpers.js';

const hash = (m: Model): string => createHash('sha256').update(m.parameters()).digest('hex');

describe('splitRange', () => {
  it('covers [0, n) with aligned, ordered, non-empty ranges', () => {
    for (const n of [0, 1, 7, 8, 10, 16, 17, 128, 256, 784, 1000])
      for (const parts of [1, 2, 3, 4])
        for (const align of [1, 8, 16]) {
          const ranges = splitRange(n, parts, align);
          expect(ranges.length).toBeLessThanOrEqual(parts);
          let next = 0;
          for (const [a, b] of ranges) {
            expect(a).toBe(next);
            expect(a % align).toBe(0);
            expect(b).toBeGreaterThan(a);
            next = b;
          }
          expect(next).toBe(n);
        }
  });
});

describe('gemm_f32_cols: column shares are bit-identical to the whole GEMM', () => {
  const engine = createEngine({ simd: 'baseline' });
  const k = engine.kernels;
  const shapes = [
    [1, 16, 1],
    [3, 17, 5],
    [32, 256, 784],
    [33, 40, 7],
    [5, 130, 33],
    [784, 24, 32],
  ] as const;
  for (const [M, N, K] of shapes) {
    for (const layout of [0, 1, 2]) {
      it(`layout ${['nn', 'tn', 'nt'][layout]} ${M}×${N}×${K}`, () => {
        const mark = engine.mark();
        const rng = new Rng(M * 1000 + N * 10 + K);
        const A = put(engine, randomFloats(rng, M * K));
        const B = put(engine, randomFloats(rng, K * N));
        const bias = put(engine, randomFloats(rng, N));
        const start = randomFloats(rng, M * N);
        const scratch = engine.reserve(k.gemm_scratch_floats(M, N, K) * 4 + 64);
        const C = engine.reserve(M * N * 4);
        const D = engine.reserve(M * N * 4);
        const whole = [k.gemm_f32_nn, k.gemm_f32_tn, k.gemm_f32_nt][layout]!;
        for (const flags of [0, GEMM_RELU, GEMM_ACCUMULATE | GEMM_RELU]) {
          engine.f32(C, M * N).set(start);
          engine.f32(D, M * N).set(start);
          whole(C, A, B, bias, M, N, K, flags, scratch);
          for (const parts of [2, 3]) {
            if (parts === 3) engine.f32(D, M * N).set(start);
            for (const [j0, j1] of splitRange(N, parts, 8))
              k.gemm_f32_cols(layout, D, A, B, bias, M, N, K, flags, scratch, j0, j1);
            expect(Buffer.from(engine.f32(D, M * N).slice().buffer)).toEqual(
              Buffer.from(engine.f32(C, M * N).slice().buffer),
            );
          }
        }
        engine.release(mark);
      });
    }
  }
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
        // The last run also turns off the first layer's zero skipping (GEMM_SPARSE_A).
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

  it('refuses a thread count that is not a positive integer', () => {
    expect(() => createEngine({ threads: 0 })).toThrow('threads must be a positive integer, got 0');
    expect(() => createEngine({ threads: 1.5 })).toThrow(/positive integer, got 1.5/);
  });
});
