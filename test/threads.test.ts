/**
 * Multi-threaded kernels: a GEMM shared by threads that take its units from a counter
 * (gemm_f32_shared) equals the whole call bit for bit on awkward shapes in every layout and
 * epilogue, with 2 and 3 threads, and so do the optimizer steps shared in chunks; and
 * training with 2 or 3 threads gives the same weights, bit for bit, as one thread — in both kernel builds, for an MLP (Adam)
 * and LeNet-5 (SGD + momentum, the convolutions' GEMMs split too) — and as one thread with the
 * zero skipping (EngineOptions.sparseInput) turned off.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import { GEMM_ACCUMULATE, GEMM_RELU, GEMM_SPARSE_A } from '../src/engine/kernels.js';
import { createModel } from '../src/nn/create.js';
import type { Model } from '../src/nn/model.js';
import { fit, type FitOptions } from '../src/train/fit.js';
import { BUILDS } from './builds.js';
import { Rng } from '../src/engine/rng.js';
import { waitChange } from '../src/engine/threads.js';
import { put, randomFloats } from './helpers.js';

const hash = (m: Model): string => createHash('sha256').update(m.parameters()).digest('hex');

describe('optimizer steps shared by threads (chunks from a counter) equal one call, bit for bit', () => {
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
    it(`${build} build: optimizer steps on 1, 2 and 3 threads, and alone through the counter`, () => {
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
        const claim = e.reserve(64);
        e.i32(claim, 1)[0] = 0;
        const hyper = [n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001, 0] as const;
        k.adam_step(whole[0]!, whole[1]!, whole[2]!, whole[3]!, ...hyper);
        k.adam_step_shared(claim, shared[0]!, shared[1]!, shared[2]!, shared[3]!, ...hyper);
        for (const i of [0, 2, 3]) {
          const a = Buffer.from(e.f32(whole[i]!, n).slice().buffer);
          expect(a.equals(Buffer.from(e.f32(shared[i]!, n).slice().buffer))).toBe(true);
          expect(e.f32(shared[i]!, n + 1)[n]).toBe(7);
        }
        expect(e.i32(claim, 1)[0]).toBe(k.chunk_units(n) + 1); // 4 units taken, then the end
      } finally {
        for (const r of runs) r.e.close();
      }
    });
  }
});

describe('gemm_f32_shared: threads taking units from a counter give the whole GEMM, bit for bit', () => {
  // Big enough to be shared (≥ 256k multiply-adds, several 128×16 units), with awkward edges.
  const shapes = [
    [32, 256, 784],
    [33, 130, 70],
    [300, 20, 50],
    [784, 24, 32],
    [1000, 10, 128],
    [130, 17, 129],
  ] as const;
  const flagSets = [0, GEMM_RELU, GEMM_ACCUMULATE | GEMM_RELU, GEMM_SPARSE_A];
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
            const bias = randomFloats(rng, N);
            const start = randomFloats(rng, M * N);
            for (const flags of flagSets) {
              const results = engines.map((e) => {
                const mark = e.mark();
                const k = e.kernels;
                const scratch = e.reserve(k.gemm_scratch_floats(M, N, K) * 4 * e.threads + 256);
                const C = put(e, start);
                const args = [C, put(e, a), put(e, b), put(e, bias), M, N, K, flags, scratch];
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
        // Alone, a shared call is the whole GEMM (units in order).
        const e = engines[0]!;
        const k = e.kernels;
        const [M, N, K] = [33, 130, 70];
        const rng = new Rng(7);
        const A = put(e, randomFloats(rng, M * K));
        const B = put(e, randomFloats(rng, K * N));
        const scratch = e.reserve(k.gemm_scratch_floats(M, N, K) * 4 + 64);
        const claim = e.reserve(64);
        const C = e.reserve(M * N * 4);
        const D = e.reserve(M * N * 4);
        k.gemm_f32_nn(C, A, B, 0, M, N, K, GEMM_RELU, scratch);
        e.i32(claim, 1)[0] = 0;
        k.gemm_f32_shared(0, D, A, B, 0, M, N, K, GEMM_RELU, scratch, claim);
        expect(Buffer.from(e.f32(D, M * N).slice().buffer)).toEqual(
          Buffer.from(e.f32(C, M * N).slice().buffer),
        );
        // 33 rows = one block of 128; 130 columns = 9 units of 16, all taken.
        expect(e.i32(claim, 1)[0]).toBeGreaterThanOrEqual(9);
      } finally {
        for (const e of engines) e.close();
      }
    });
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

  it('refuses a thread count that is not a positive integer', () => {
    expect(() => createEngine({ threads: 0 })).toThrow('threads must be a positive integer, got 0');
    expect(() => createEngine({ threads: 1.5 })).toThrow(/positive integer, got 1.5/);
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
