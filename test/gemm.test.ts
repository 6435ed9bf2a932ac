/**
 * GEMM kernels (assembly/gemm.ts) against the f64 scalar reference (test/reference/gemm.ts):
 * shape sweeps with tails in every dimension, every epilogue flag, the training shapes of the
 * 784-256-128-10 MLP, guards around C and after the scratch the kernel was promised, NaN
 * propagation, and bit-exact determinism across tilings (M and N tails vs full tiles).
 *
 * Every suite runs once per kernel build (test/builds.ts). One tolerance serves both:
 * gemmTolerance(K + 2, Σ|terms|) = (K + 4)·2⁻²³·Σ|terms| bounds a sequential f32 sum whose
 * products and adds each round once; the relaxed build's fused multiply-add rounds once per term
 * instead of twice, so its error is inside the same bound (and the last suite checks that it
 * really is a different rounding where the host fuses).
 */
import { describe, it, expect } from 'vitest';
import type { SimdBuild } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import {
  GEMM_ACCUMULATE,
  GEMM_A_U8,
  GEMM_RELU,
  GEMM_SPARSE_A,
  GEMM_SPARSE_B,
  type Kernels,
} from '../src/engine/kernels.js';
import { Rng } from '../src/engine/rng.js';
import { BUILDS } from './builds.js';
import { gemmRef, gemmTolerance, type GemmLayout } from './reference/gemm.js';

const LAYOUTS: GemmLayout[] = ['nn', 'tn', 'nt'];
/**
 * M tails of the 4-row strips and 16-row groups, N tails of every panel width (N mod 8 = 1..7:
 * masked 8-wide, 8×4 and 16×2 tiles), K tails of the 4×4 transposes, exact tiles, and 0.
 */
const SWEEP_DIMS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 64];
/** Every GEMM of one batch-32 training step of the MLP 784-256-128-10, plus larger oddities. */
const LARGE_SHAPES: [GemmLayout, number, number, number][] = [
  ['nn', 32, 256, 784],
  ['nn', 32, 128, 256],
  ['nn', 32, 10, 128],
  ['tn', 784, 256, 32],
  ['tn', 256, 128, 32],
  ['tn', 128, 10, 32],
  ['nt', 32, 256, 128],
  ['nt', 32, 128, 10],
  ['nt', 32, 784, 256],
  ['nn', 5, 784, 17],
  ['tn', 17, 33, 784],
  ['nt', 3, 7, 784],
  // M past one 128-row block (rows are blocked by MC = 128 in assembly/gemm.ts)
  ['nn', 300, 9, 20],
  ['nt', 257, 10, 33],
  ['tn', 131, 3, 17],
  // exactly 16 columns (nn: operands read in place, 2×16 tiles), odd M, as in LeNet-5's conv2
  ['nn', 321, 16, 150],
  ['tn', 151, 16, 1000],
];
/** Big enough for any operand above (784 × 256 floats) with room for guards. */
const MAX_FLOATS = 784 * 256;
const GUARD = 16;
const GUARD_VALUE = -12345.5;
const MAX_IMAGES = 400;

/** One engine with fixed regions for A, B, bias, C (guarded on both sides) and scratch. */
function setup(build: SimdBuild) {
  const engine = createEngine({ simd: build });
  const k: Kernels = engine.kernels;
  const aOff = engine.reserve(MAX_FLOATS * 4);
  const bOff = engine.reserve(MAX_FLOATS * 4);
  const biasOff = engine.reserve(1024 * 4);
  const cRegion = engine.reserve((MAX_FLOATS + 2 * GUARD) * 4);
  const cOff = cRegion + GUARD * 4;
  const scratchFloats = 1 << 20;
  const scratchOff = engine.reserve((scratchFloats + GUARD) * 4);
  // For GEMM_A_U8: staged uint8 images, their row indices, the U8Rows record.
  const imagesOff = engine.reserve(MAX_IMAGES * 784);
  const indicesOff = engine.reserve(MAX_IMAGES * 4);
  const recordOff = engine.reserve(16);
  const A = engine.f32(aOff, MAX_FLOATS);
  const B = engine.f32(bOff, MAX_FLOATS);
  const bias = engine.f32(biasOff, 1024);
  const cAll = engine.f32(cRegion, MAX_FLOATS + 2 * GUARD);
  const scratch = engine.f32(scratchOff, scratchFloats + GUARD);
  const fns = { nn: k.gemm_f32_nn, tn: k.gemm_f32_tn, nt: k.gemm_f32_nt };

  /**
   * Run one GEMM on the operands currently in A, B, bias and the first M·N floats of C (its old
   * value), with guards around C and right after the scratch floats the kernel asked for.
   * Returns C's view (length M·N) after checking the guards.
   */
  function run(
    layout: GemmLayout,
    M: number,
    N: number,
    K: number,
    flags: number,
    withBias: boolean,
    a = aOff,
  ) {
    const n = M * N;
    cAll.fill(GUARD_VALUE, 0, GUARD);
    cAll.fill(GUARD_VALUE, GUARD + n, GUARD + n + GUARD);
    const need = k.gemm_scratch_floats(M, N, K);
    expect(need).toBeLessThanOrEqual(scratchFloats);
    scratch.fill(GUARD_VALUE, need, need + GUARD);
    fns[layout](cOff, a, bOff, withBias ? biasOff : 0, M, N, K, flags, scratchOff);
    for (let g = 0; g < GUARD; g++) {
      if (cAll[g] !== GUARD_VALUE || cAll[GUARD + n + g] !== GUARD_VALUE) {
        throw new Error(`${layout} ${M}×${N}×${K}: wrote outside C (guard ${g})`);
      }
      if (scratch[need + g] !== GUARD_VALUE) {
        throw new Error(`${layout} ${M}×${N}×${K}: wrote past gemm_scratch_floats = ${need}`);
      }
    }
    return cAll.subarray(GUARD, GUARD + n);
  }

  return {
    engine,
    k,
    aOff,
    imagesOff,
    indicesOff,
    recordOff,
    A,
    B,
    bias,
    C: cAll.subarray(GUARD),
    run,
  };
}

type Env = ReturnType<typeof setup>;

/** Fill operands with uniform values in [-1, 1) (C too, as the old value for accumulate). */
function fillOperands(env: Env, rng: Rng, M: number, N: number, K: number) {
  rng.fillUniform(env.A.subarray(0, M * K), -1, 1);
  rng.fillUniform(env.B.subarray(0, K * N), -1, 1);
  rng.fillUniform(env.bias.subarray(0, N), -1, 1);
  rng.fillUniform(env.C.subarray(0, M * N), -1, 1);
}

/** Run kernel and reference on the current operands and compare element by element. */
function checkAgainstReference(
  env: Env,
  layout: GemmLayout,
  M: number,
  N: number,
  K: number,
  flags: number,
  withBias: boolean,
): void {
  const A = env.A.slice(0, M * K);
  const B = env.B.slice(0, K * N);
  const bias = withBias ? env.bias.slice(0, N) : null;
  const expected = env.C.slice(0, M * N);
  const absSum = new Float64Array(M * N);
  gemmRef(layout, expected, A, B, bias, M, N, K, flags, absSum);
  const got = env.run(layout, M, N, K, flags, withBias);
  for (let e = 0; e < M * N; e++) {
    const tol = gemmTolerance(K + 2, absSum[e]);
    if (!(Math.abs(got[e] - expected[e]) <= tol)) {
      const [i, j] = [Math.floor(e / N), e % N];
      throw new Error(
        `${layout} M=${M} N=${N} K=${K} flags=${flags} bias=${withBias}: C[${i},${j}] = ` +
          `${got[e]}, reference ${expected[e]} (tolerance ${tol})`,
      );
    }
  }
}

function bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
}

describe.each(BUILDS)('gemm vs the scalar reference, %s build', (build) => {
  const env = setup(build);
  const rng = new Rng(20240611);

  for (const layout of LAYOUTS) {
    it(`${layout}: sweep of M, N, K over ${SWEEP_DIMS.join(', ')} (flags rotate)`, () => {
      let variant = 0;
      for (const M of SWEEP_DIMS) {
        for (const N of SWEEP_DIMS) {
          for (const K of SWEEP_DIMS) {
            // Rotate through the 8 epilogues (bias × accumulate × relu) across the sweep so
            // every shape class meets every epilogue without an 8× longer test.
            const v = variant++ % 8;
            const flags = (v & 1 ? GEMM_ACCUMULATE : 0) | (v & 2 ? GEMM_RELU : 0);
            fillOperands(env, rng, M, N, K);
            checkAgainstReference(env, layout, M, N, K, flags, (v & 4) !== 0);
          }
        }
      }
    });

    it(`${layout}: every epilogue on tails in all dimensions`, () => {
      for (const [M, N, K] of [
        [5, 13, 7],
        [9, 10, 33],
        [3, 1, 17],
        [1, 8, 1],
        // 10 columns (nn: 3×10 tiles in place) ending on 1 or 2 rows
        [4, 10, 5],
        [2, 10, 9],
        [1, 10, 3],
      ]) {
        for (let v = 0; v < 8; v++) {
          const flags = (v & 1 ? GEMM_ACCUMULATE : 0) | (v & 2 ? GEMM_RELU : 0);
          fillOperands(env, rng, M, N, K);
          checkAgainstReference(env, layout, M, N, K, flags, (v & 4) !== 0);
        }
      }
    });
  }

  it('training shapes of the 784-256-128-10 MLP (batch 32) and larger odd shapes', () => {
    for (const [layout, M, N, K] of LARGE_SHAPES) {
      for (const [flags, withBias] of [
        [0, false],
        [GEMM_ACCUMULATE | GEMM_RELU, true],
      ] as const) {
        fillOperands(env, rng, M, N, K);
        checkAgainstReference(env, layout, M, N, K, flags, withBias);
      }
    }
  });

  it('K = 0 leaves only the epilogue: C = (accumulate ? C : 0) + bias, then ReLU', () => {
    // N = 10 and 16 (nn: the in-place 3×10 and 2×16 kernels) and 8 (one whole 4×8 panel): the
    // 4×8 and 3×10 kernels read k = 0 before their loops, so gemm must not call them.
    for (const layout of LAYOUTS) {
      for (const [M, N] of [
        [6, 11],
        [7, 10],
        [5, 16],
        [8, 8],
      ]) {
        for (let v = 0; v < 8; v++) {
          const flags = (v & 1 ? GEMM_ACCUMULATE : 0) | (v & 2 ? GEMM_RELU : 0);
          fillOperands(env, rng, M, N, 0);
          checkAgainstReference(env, layout, M, N, 0, flags, (v & 4) !== 0);
        }
      }
    }
  });

  it('M = 0 or N = 0 is a no-op (guards and C untouched)', () => {
    for (const layout of LAYOUTS) {
      for (const [M, N] of [
        [0, 7],
        [7, 0],
        [0, 0],
      ]) {
        // run() puts its guards at C[0..GUARD) (M·N = 0) and checks them; C beyond stays 7.
        env.C.fill(7, 0, 64);
        env.run(layout, M, N, 5, GEMM_ACCUMULATE | GEMM_RELU, true);
        expect(env.C.subarray(GUARD, 64).every((x) => x === 7)).toBe(true);
      }
    }
  });

  it('NaN and ±Inf propagate through the epilogue; ReLU keeps NaN and clamps negatives', () => {
    // N = 10, 11, 13: the column-9 tail lands in the 16×2, 8×4 and masked 4×8 tiles.
    for (const [layout, N] of LAYOUTS.flatMap((l) => [10, 11, 13].map((n) => [l, n] as const))) {
      const [M, K] = [6, 9];
      fillOperands(env, rng, M, N, K);
      // A[2, 3] = NaN poisons row 2; B[4, 9] = +Inf (with A ≠ 0) makes column 9 ±Inf or NaN.
      env.A[layout === 'tn' ? 3 * M + 2 : 2 * K + 3] = NaN;
      env.B[layout === 'nt' ? 9 * K + 4 : 4 * N + 9] = Infinity;
      checkNonFinite(env, layout, M, N, K, GEMM_RELU);
      fillOperands(env, rng, M, N, K);
      env.A[layout === 'tn' ? 3 * M + 2 : 2 * K + 3] = NaN;
      checkNonFinite(env, layout, M, N, K, GEMM_ACCUMULATE | GEMM_RELU);
    }
  });

  it('inputs are not modified', () => {
    for (const layout of LAYOUTS) {
      const [M, N, K] = [13, 21, 19];
      fillOperands(env, rng, M, N, K);
      const A = env.A.slice(0, M * K);
      const B = env.B.slice(0, K * N);
      const bias = env.bias.slice(0, N);
      env.run(layout, M, N, K, GEMM_ACCUMULATE | GEMM_RELU, true);
      expect(bits(env.A.subarray(0, M * K))).toEqual(bits(A));
      expect(bits(env.B.subarray(0, K * N))).toEqual(bits(B));
      expect(bits(env.bias.subarray(0, N))).toEqual(bits(bias));
    }
  });
});

/** Compare with the reference where finite, and require the same NaN / ±Inf pattern. */
function checkNonFinite(
  env: Env,
  layout: GemmLayout,
  M: number,
  N: number,
  K: number,
  flags: number,
) {
  const A = env.A.slice(0, M * K);
  const B = env.B.slice(0, K * N);
  const expected = env.C.slice(0, M * N);
  gemmRef(layout, expected, A, B, null, M, N, K, flags);
  const got = env.run(layout, M, N, K, flags, false);
  let nans = 0;
  for (let e = 0; e < M * N; e++) {
    if (Number.isNaN(expected[e])) {
      nans++;
      expect(got[e], `C[${e}] should be NaN`).toBeNaN();
    } else if (!Number.isFinite(expected[e])) {
      expect(got[e]).toBe(expected[e]);
    } else {
      expect(Math.abs(got[e] - expected[e])).toBeLessThan(1e-4);
      expect(got[e]).toBeGreaterThanOrEqual(0);
    }
  }
  expect(nans).toBeGreaterThanOrEqual(N); // the whole poisoned row
}

describe.each(BUILDS)('gemm memory bounds, %s build', (build) => {
  /**
   * Put one operand flush against the end of linear memory, so that reading (or writing) even
   * one float past it traps, and check the GEMM still runs and matches the reference. Shapes
   * have tails in every dimension (including the 1- and 2-column N tails of the 16×2 tile).
   */
  it('never touches memory past A, B, bias or C (each placed at the very end of memory)', () => {
    const shapes = [
      [5, 10, 7],
      [4, 10, 3],
      [1, 10, 2],
      [3, 3, 5],
      [17, 2, 1],
      [6, 13, 9],
      [2, 1, 3],
      [3, 9, 6],
      [4, 1, 8],
      [1, 5, 4],
    ];
    for (const layout of LAYOUTS) {
      for (const [M, N, K] of shapes) {
        for (const last of ['A', 'B', 'bias', 'C'] as const) {
          const engine = createEngine({ simd: build });
          const k: Kernels = engine.kernels;
          const sizes = { A: M * K, B: K * N, bias: N, C: M * N };
          const off = {
            A: engine.reserve(sizes.A * 4),
            B: engine.reserve(sizes.B * 4),
            bias: engine.reserve(sizes.bias * 4),
            C: engine.reserve(sizes.C * 4),
          };
          const scratch = engine.reserve(k.gemm_scratch_floats(M, N, K) * 4);
          // Move `last` into the unreserved space at the end of memory (growing it if needed).
          engine.ensure(engine.mark() + sizes[last] * 4);
          off[last] = engine.memory.buffer.byteLength - sizes[last] * 4;
          expect(off[last]).toBeGreaterThanOrEqual(engine.mark());
          const rng = new Rng(M * 1000 + N * 10 + K);
          const view = (name: keyof typeof sizes) => engine.f32(off[name], sizes[name]);
          rng.fillUniform(view('A'), -1, 1);
          rng.fillUniform(view('B'), -1, 1);
          rng.fillUniform(view('bias'), -1, 1);
          rng.fillUniform(view('C'), -1, 1);
          const flags = GEMM_ACCUMULATE | GEMM_RELU;
          const expected = view('C').slice();
          gemmRef(layout, expected, view('A'), view('B'), view('bias'), M, N, K, flags);
          const fn = { nn: k.gemm_f32_nn, tn: k.gemm_f32_tn, nt: k.gemm_f32_nt }[layout];
          fn(off.C, off.A, off.B, off.bias, M, N, K, flags, scratch);
          const got = view('C');
          for (let e = 0; e < M * N; e++) {
            expect(
              Math.abs(got[e] - expected[e]),
              `${layout} ${M}×${N}×${K} ${last} last`,
            ).toBeLessThan(1e-5);
          }
        }
      }
    }
  });
});

describe.each(BUILDS)('gemm determinism, %s build', (build) => {
  const env = setup(build);
  const rng = new Rng(7);

  it('same inputs give bit-identical outputs', () => {
    for (const layout of LAYOUTS) {
      for (const [M, N, K] of [
        [32, 10, 128],
        [33, 17, 35],
      ]) {
        fillOperands(env, rng, M, N, K);
        const c0 = env.C.slice(0, M * N);
        const first = bits(env.run(layout, M, N, K, GEMM_ACCUMULATE, true));
        env.C.set(c0);
        const second = bits(env.run(layout, M, N, K, GEMM_ACCUMULATE, true));
        expect(second).toEqual(first);
      }
    }
  });

  /**
   * A row computed in an M tail (and a column in an N tail) must have the same bits as when it
   * falls in a full tile: run a small problem and a large one whose leading rows / columns are
   * the same data, then compare the overlap bit for bit. Small dims cover the 4-row and 8- / 4-
   * column tails; the large M cases cross the 128-row MC block (and its tail). Each pair runs
   * with a bias and without: nt with K ≤ 16, no bias, whole tiles and panels packs all panels
   * at once (run_panels_nt), so its large cases take that path and the small ones the general.
   */
  for (const layout of LAYOUTS) {
    it(`${layout}: M and N tails give the same bits as full tiles`, () => {
      for (const [Ms, Ns, Ml, Nl, K] of [
        [5, 10, 8, 16, 37],
        [3, 2, 12, 24, 784],
        [9, 7, 300, 8, 300],
        [140, 10, 300, 16, 50],
        [1, 1, 4, 8, 5],
        // 16 columns (nn) run 2×16 tiles on operands read in place (an odd M ends on one row)
        [7, 16, 9, 24, 150],
        [151, 16, 160, 17, 64],
        // 10 columns (nn) run 3×10 tiles in place: 1 and 2 rows left over, against whole tiles
        // of 10 columns and against 16 columns
        [1, 10, 32, 10, 128],
        [2, 10, 33, 16, 37],
        [4, 10, 131, 10, 9],
        [5, 10, 6, 24, 20],
        // short K (nt: every panel packed at once when the product allows it)
        [6, 13, 32, 128, 10],
        [30, 16, 32, 16, 16],
        [32, 12, 32, 24, 1],
        [7, 9, 36, 40, 17],
      ]) {
        const a = new Float32Array(Ml * K);
        const b = new Float32Array(K * Nl);
        const bias = new Float32Array(Nl);
        const cOld = new Float32Array(Ml * Nl);
        rng.fillUniform(a, -1, 1);
        rng.fillUniform(b, -1, 1);
        rng.fillUniform(bias, -1, 1);
        rng.fillUniform(cOld, -1, 1);
        // Logical op(A)[i, k] and op(B)[k, j], stored per layout, for a problem of size M×N.
        const store = (M: number, N: number) => {
          for (let i = 0; i < M; i++) {
            for (let kk = 0; kk < K; kk++) {
              env.A[layout === 'tn' ? kk * M + i : i * K + kk] = a[i * K + kk];
            }
          }
          for (let kk = 0; kk < K; kk++) {
            for (let j = 0; j < N; j++) {
              env.B[layout === 'nt' ? j * K + kk : kk * N + j] = b[kk * Nl + j];
            }
          }
          env.bias.set(bias.subarray(0, N));
          for (let i = 0; i < M; i++) env.C.set(cOld.subarray(i * Nl, i * Nl + N), i * N);
        };
        const flags = GEMM_ACCUMULATE | GEMM_RELU;
        for (const withBias of [true, false]) {
          store(Ms, Ns);
          const small = env.run(layout, Ms, Ns, K, flags, withBias).slice();
          store(Ml, Nl);
          const large = env.run(layout, Ml, Nl, K, flags, withBias).slice();
          for (let i = 0; i < Ms; i++) {
            const rowSmall = bits(small.subarray(i * Ns, (i + 1) * Ns));
            const rowLarge = bits(large.subarray(i * Nl, i * Nl + Ns));
            const what = `${layout} row ${i} of ${Ms}×${Ns} vs ${Ml}×${Nl}, bias ${withBias}`;
            expect(rowSmall, what).toEqual(rowLarge);
          }
        }
      }
    });
  }
});

/**
 * GEMM_SPARSE_A skips, per row of A (nn, sparse blocks) or per 4-row strip, the k where A is
 * zero. The promise is stronger than the tolerance: the same bits as the dense kernel. A is made
 * of strips of every kind — all zero, MNIST-like (≈80% zeros), dense (past the sparse
 * threshold), with −0 and NaN — on shapes with M, N and K tails, past one 128-row block, and
 * with each epilogue.
 */
describe.each(BUILDS)('GEMM_SPARSE_A, %s build', (build) => {
  const env = setup(build);
  const rng = new Rng(8088);

  /** Logical A (M, K) with zero patterns that vary by 4-row strip. */
  function sparseA(M: number, K: number): Float32Array {
    const a = new Float32Array(M * K);
    for (let i = 0; i < M; i++) {
      const kind = Math.floor(i / 4) % 5;
      for (let kk = 0; kk < K; kk++) {
        const u = rng.nextFloat();
        const v = rng.nextFloat() * 2 - 1;
        a[i * K + kk] =
          kind === 0 ? 0 : kind === 1 ? (u < 0.8 ? 0 : v) : kind === 2 ? v : u < 0.5 ? -0 : v;
      }
    }
    return a;
  }

  function both(
    layout: 'nn' | 'tn',
    M: number,
    N: number,
    K: number,
    flags: number,
    a: Float32Array,
  ) {
    for (let i = 0; i < M; i++) {
      for (let kk = 0; kk < K; kk++)
        env.A[layout === 'tn' ? kk * M + i : i * K + kk] = a[i * K + kk];
    }
    rng.fillUniform(env.B.subarray(0, K * N), -1, 1);
    rng.fillUniform(env.bias.subarray(0, N), -1, 1);
    const old = new Float32Array(M * N);
    rng.fillUniform(old, -1, 1);
    env.C.set(old);
    const dense = bits(env.run(layout, M, N, K, flags, true).slice());
    env.C.set(old);
    const sparse = bits(env.run(layout, M, N, K, flags | GEMM_SPARSE_A, true).slice());
    return { dense, sparse };
  }

  for (const layout of ['nn', 'tn'] as const) {
    it(`${layout}: the same bits as the dense kernel on zero, sparse, dense and −0 strips`, () => {
      const shapes: [number, number, number][] = [
        [32, 256, 784],
        [784, 256, 32],
        [1, 8, 5],
        [7, 17, 33],
        [21, 40, 9],
        [300, 24, 19],
        [32, 10, 128],
        [40, 3, 50],
        [20, 0, 5],
        [20, 16, 0],
      ];
      let e = 0;
      for (const [M, N, K] of shapes) {
        const flags = [0, GEMM_RELU, GEMM_ACCUMULATE, GEMM_ACCUMULATE | GEMM_RELU][e++ % 4]!;
        const { dense, sparse } = both(layout, M, N, K, flags, sparseA(M, K));
        expect(sparse, `${layout} ${M}×${N}×${K} flags ${flags}`).toEqual(dense);
      }
    });
  }

  it('nn row by row: sparse, dense and all-zero blocks in one call, with N and K tails', () => {
    // Rows 0..127 keep ≈15% of k (the row-by-row path), 128..255 are dense (4-row strips),
    // 256.. keep ≈10% with whole zero and −0 rows; N runs whole 24-column panels and tails.
    const row = (i: number, K: number, a: Float32Array) => {
      const keep = i < 128 ? 0.15 : i < 256 ? 1 : i % 7 === 0 ? 0 : 0.1;
      for (let kk = 0; kk < K; kk++) {
        const u = rng.nextFloat();
        const v = rng.nextFloat() * 2 - 1;
        a[i * K + kk] = u < keep ? v : i % 3 === 0 ? -0 : 0;
      }
    };
    const shapes: [number, number, number][] = [
      [300, 24, 37],
      [300, 50, 5],
      [260, 73, 130],
      [129, 48, 784],
      [1, 30, 17],
    ];
    let e = 0;
    for (const [M, N, K] of shapes) {
      const a = new Float32Array(M * K);
      for (let i = 0; i < M; i++) row(i, K, a);
      for (let f = 0; f < 2; f++) {
        const flags = [0, GEMM_RELU, GEMM_ACCUMULATE, GEMM_ACCUMULATE | GEMM_RELU][e++ % 4]!;
        const { dense, sparse } = both('nn', M, N, K, flags, a);
        expect(sparse, `nn ${M}×${N}×${K} flags ${flags}`).toEqual(dense);
      }
    }
  });

  it('a NaN in A still propagates (NaN ≠ 0 is kept), in strips and row by row', () => {
    const [M, K] = [8, 12];
    const a = new Float32Array(M * K); // all zero but one NaN
    a[5 * K + 7] = NaN;
    for (const [layout, N] of [
      ['nn', 16],
      ['tn', 17],
      ['nn', 30],
    ] as const) {
      const { sparse } = both(layout, M, N, K, 0, a);
      const c = new Float32Array(new Uint32Array(sparse).buffer);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          expect(Number.isNaN(c[i * N + j]), `${layout} N ${N} C[${i},${j}]`).toBe(i === 5);
        }
      }
    }
  });
});

/**
 * GEMM_SPARSE_B (tn): each column of C sums over B's non-zero entries only, in k-blocks with
 * running sums in scratch. Promise: the dense kernel's bits. B's columns range from empty to
 * full (with −0 among the zeros); shapes cover one and several k-blocks, M with and without a
 * tail past its whole 32-row blocks, the largest C it takes (M·N = 4096), and M < 32 or a larger
 * C, where the flag is ignored.
 */
describe.each(BUILDS)('GEMM_SPARSE_B, %s build', (build) => {
  const env = setup(build);
  const rng = new Rng(3203);
  const DENSITY = [0, 0.05, 0.2, 0.6, 1];

  /** B (K, N) whose column j keeps DENSITY[j % 5] of its entries; the rest ±0. */
  function sparseB(N: number, K: number): void {
    for (let kk = 0; kk < K; kk++) {
      for (let j = 0; j < N; j++) {
        const v = rng.nextFloat() * 2 - 1;
        env.B[kk * N + j] = rng.nextFloat() < DENSITY[j % 5]! ? v : kk % 3 === 0 ? -0 : 0;
      }
    }
  }

  it('the same bits as the dense kernel, and the reference within tolerance, on every epilogue', () => {
    // M·K and K·N stay within the test's regions (MAX_FLOATS).
    const shapes: [number, number, number][] = [
      [150, 16, 1300], // LeNet-5's conv2 weight gradient (K = 3200 there): 8 k-blocks of 163
      [32, 1, 5],
      [33, 3, 40],
      [64, 64, 700], // M·N = 4096, the largest C it takes
      [95, 17, 1000],
      [40, 100, 300],
      [150, 16, 0],
      [31, 16, 50], // M < 32: flag ignored
      [70, 60, 20], // M·N > 4096: flag ignored
    ];
    let e = 0;
    for (const [M, N, K] of shapes) {
      rng.fillUniform(env.A.subarray(0, M * K), -1, 1);
      sparseB(N, K);
      rng.fillUniform(env.bias.subarray(0, N), -1, 1);
      const old = new Float32Array(M * N);
      rng.fillUniform(old, -1, 1);
      for (let f = 0; f < 2; f++) {
        const flags = [0, GEMM_RELU, GEMM_ACCUMULATE, GEMM_ACCUMULATE | GEMM_RELU][e++ % 4]!;
        const withBias = f === 1;
        const what = `tn ${M}×${N}×${K} flags ${flags} bias ${withBias}`;
        env.C.set(old);
        const dense = bits(env.run('tn', M, N, K, flags, withBias).slice());
        env.C.set(old);
        const got = env.run('tn', M, N, K, flags | GEMM_SPARSE_B, withBias).slice();
        expect(bits(got), what).toEqual(dense);
        const expected = old.slice();
        const absSum = new Float64Array(M * N);
        const a = env.A.slice(0, M * K);
        const b = env.B.slice(0, K * N);
        const bias = withBias ? env.bias.slice(0, N) : null;
        gemmRef('tn', expected, a, b, bias, M, N, K, flags, absSum);
        for (let i = 0; i < M * N; i++) {
          const tol = gemmTolerance(K + 2, absSum[i]!);
          expect(Math.abs(got[i]! - expected[i]!), `${what} C[${i}]`).toBeLessThanOrEqual(tol);
        }
      }
    }
  });

  it('a NaN in B poisons its column (NaN ≠ 0 is listed); zero columns give the epilogue only', () => {
    const [M, N, K] = [40, 6, 300];
    rng.fillUniform(env.A.subarray(0, M * K), -1, 1);
    env.B.fill(0, 0, K * N);
    for (let kk = 0; kk < K; kk += 7) env.B[kk * N + 1] = rng.nextFloat() - 0.5;
    env.B[250 * N + 4] = NaN;
    rng.fillUniform(env.bias.subarray(0, N), -1, 1);
    const c = env.run('tn', M, N, K, GEMM_SPARSE_B | GEMM_RELU, true);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        const x = c[i * N + j]!;
        const what = `C[${i},${j}]`;
        if (j === 4) expect(Number.isNaN(x), what).toBe(true);
        else if (j !== 1) expect(x, what).toBe(Math.max(env.bias[j]!, 0));
        else expect(Number.isFinite(x), what).toBe(true);
      }
    }
  });

  it('never reads past A or B placed at the very end of memory', () => {
    for (const [M, N, K] of [
      [33, 3, 7],
      [150, 16, 400],
    ]) {
      for (const last of ['A', 'B'] as const) {
        const engine = createEngine({ simd: build });
        const k = engine.kernels;
        const sizes = { A: M * K, B: K * N };
        const off = { A: engine.reserve(sizes.A * 4), B: engine.reserve(sizes.B * 4) };
        const C = engine.reserve(M * N * 4);
        const scratch = engine.reserve(k.gemm_scratch_floats(M, N, K) * 4);
        engine.ensure(engine.mark() + sizes[last] * 4);
        off[last] = engine.memory.buffer.byteLength - sizes[last] * 4;
        const a = engine.f32(off.A, sizes.A);
        const b = engine.f32(off.B, sizes.B);
        rng.fillUniform(a, -1, 1);
        for (let i = 0; i < b.length; i++) b[i] = rng.nextFloat() < 0.2 ? rng.nextFloat() : 0;
        b[b.length - 1] = 0.5; // the last row of A is listed
        const expected = new Float32Array(M * N);
        gemmRef('tn', expected, a.slice(), b.slice(), null, M, N, K, 0);
        k.gemm_f32_tn(C, off.A, off.B, 0, M, N, K, GEMM_SPARSE_B, scratch);
        const got = engine.f32(C, M * N);
        for (let e = 0; e < M * N; e++) {
          expect(Math.abs(got[e]! - expected[e]!), `${M}×${N}×${K} ${last} last`).toBeLessThan(
            1e-4,
          );
        }
      }
    }
  });
});

describe.each(BUILDS)('GEMM_A_U8 (A as staged uint8 rows), %s build', (build) => {
  const env = setup(build);
  const { engine, k, imagesOff: images, indicesOff: indices, recordOff: record } = env;
  const rng = new Rng(2551);

  /**
   * Stage `count` images of K pixels whose rows keep `keep(i)` of their pixels (the rest 0),
   * pick M of them in a shuffled order with repeats, write the U8Rows record, and write the
   * float rows gather_normalize_u8 makes of them into A.
   */
  function stage(M: number, K: number, keep: (i: number) => number, scale: number) {
    const count = M + 3;
    const px = engine.u8(images, count * K);
    for (let i = 0; i < count; i++) {
      const p = keep(i);
      for (let kk = 0; kk < K; kk++)
        px[i * K + kk] = rng.nextFloat() < p ? 1 + Math.floor(rng.nextFloat() * 255) : 0;
    }
    const idx = engine.i32(indices, M);
    for (let i = 0; i < M; i++) idx[i] = Math.floor(rng.nextFloat() * count);
    engine.i32(record, 2).set([images, indices]);
    engine.f32(record + 8, 1)[0] = scale;
    k.gather_normalize_u8(env.aOff, images, indices, M, K, scale);
  }

  it('the same bits as gather_normalize_u8 and the float GEMM, row by row, in strips and dense', () => {
    // [M, N, K, row densities]: whole 24-column panels and tails, K not a multiple of 4 or 16,
    // several 128-row blocks (B's row panels packed once) with sparse, dense and empty blocks,
    // N below a row panel and N = 16 (strips from uint8), batch 1 and empty products.
    const sparse = () => 0.15;
    const mixed = (i: number) => (i < 128 ? 0.15 : i < 256 ? 1 : i % 7 === 0 ? 0 : 0.1);
    const shapes: [number, number, number, (i: number) => number][] = [
      [32, 256, 784, sparse],
      [300, 73, 130, mixed],
      [260, 24, 37, mixed],
      [129, 48, 784, mixed],
      [1, 30, 17, sparse],
      [13, 10, 19, sparse],
      [37, 16, 33, mixed],
      [21, 3, 50, () => 0.6],
      [40, 200, 23, () => 1],
      [7, 25, 5, () => 0],
      [0, 24, 5, sparse],
      [20, 0, 5, sparse],
      [20, 30, 0, sparse],
    ];
    let e = 0;
    for (const [M, N, K, keep] of shapes) {
      for (const sparseFlag of [GEMM_SPARSE_A, 0]) {
        const flags =
          [0, GEMM_RELU, GEMM_ACCUMULATE, GEMM_ACCUMULATE | GEMM_RELU][e++ % 4]! | sparseFlag;
        const scale = e % 3 === 0 ? 0.5 : 1 / 255;
        stage(M, K, keep, scale);
        rng.fillUniform(env.B.subarray(0, K * N), -1, 1);
        rng.fillUniform(env.bias.subarray(0, N), -1, 1);
        const old = new Float32Array(M * N);
        rng.fillUniform(old, -1, 1);
        env.C.set(old);
        const floats = bits(env.run('nn', M, N, K, flags, e % 2 === 0).slice());
        env.C.set(old);
        const pixels = bits(env.run('nn', M, N, K, flags | GEMM_A_U8, e % 2 === 0, record).slice());
        expect(pixels, `${M}×${N}×${K} flags ${flags}`).toEqual(floats);
      }
    }
  });
});

describe('the two builds', () => {
  it('relaxed rounds differently where the host fuses multiply-add, within the same bound', () => {
    if (!BUILDS.includes('relaxed')) return;
    const fusedMadd = createEngine({ simd: 'relaxed' }).fusedMadd;
    const [M, N, K] = [32, 256, 784];
    const rng = new Rng(11);
    const A = new Float32Array(M * K);
    const B = new Float32Array(K * N);
    rng.fillUniform(A, -1, 1);
    rng.fillUniform(B, -1, 1);
    const run = (build: SimdBuild) => {
      const env = setup(build);
      env.A.set(A);
      env.B.set(B);
      return env.run('nn', M, N, K, 0, false).slice();
    };
    const base = run('baseline');
    const fused = run('relaxed');
    const expected = new Float32Array(M * N);
    const absSum = new Float64Array(M * N);
    gemmRef('nn', expected, A, B, null, M, N, K, 0, absSum);
    let differ = 0;
    for (let e = 0; e < M * N; e++) {
      if (base[e] !== fused[e]) differ++;
      const tol = gemmTolerance(K + 2, absSum[e]);
      expect(Math.abs(fused[e] - expected[e])).toBeLessThanOrEqual(tol);
      expect(Math.abs(base[e] - expected[e])).toBeLessThanOrEqual(tol);
    }
    if (fusedMadd) expect(differ).toBeGreaterThan(M * N * 0.5);
    else expect(differ).toBe(0);
  });
});
