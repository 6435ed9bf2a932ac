/**
 * Convolution and pooling kernels (assembly/conv2d.ts, assembly/pool.ts) against the scalar f64
 * references of test/reference/conv.ts, NHWC throughout.
 *
 *  - im2col is a copy: bit-exact against the reference. col2im, and the composed conv layer
 *    (im2col + gemm_f32_nn with bias/ReLU; gemm_f32_tn, dense_bias_backward, gemm_f32_nt +
 *    col2im for dW, db, dinp) are compared per element with gemmTolerance(terms, Σ|term|), the
 *    f32 rounding bound of a sequential sum: terms = KH·KW·C + 2 (forward), B·OH·OW + 2 (dW, db),
 *    OC + KH·KW + 2 (dinp: an OC-term dot product, then ≤ KH·KW adds in col2im).
 *  - Sweeps: batch 1 and 3, channels 1/3/16, kernels 1/3/5, padding 0/1/2, stride 1/2 on odd
 *    image sizes (windows that hang over the padding, all-padding windows, positions the stride
 *    leaves out), and LeNet-5's real shapes (28×28×1 → 5×5×6 pad 2, 14×14×6 → 5×5×16, 2×2/2
 *    pooling of 28×28×6 and 10×10×16).
 *  - The direct single-channel kernels (conv2d_direct_c1_forward, conv2d_direct_c1_backward_weight)
 *    must give the same bits as im2col + gemm_f32_nn / gemm_f32_tn (every epilogue, OC 1..17,
 *    kernels up to 4×11, widths below 4), and match the reference within the bounds above.
 *  - Max pooling is exact (a max rounds nothing): out and argmax bit for bit, including NaN
 *    (a NaN in the window gives NaN, argmax = the first NaN), ±Inf and ties (first index).
 *  - Finite-difference gradient checks, in two steps: the f64 references' analytic gradients
 *    against central differences of their own forward (h = 1e-6; conv and pooling are piecewise
 *    linear, so only rounding remains): relative error ‖g − g_fd‖ / (‖g‖ + ‖g_fd‖) < 1e-7; then
 *    the engine's f32 gradients against those references: the same relative error < 1e-5.
 *  - Every output has guard values before and after it (overruns), and outputs are pre-filled
 *    with NaN (kernels that must overwrite do).
 *  - The convolution suites run once per kernel build (test/builds.ts): the direct kernels use
 *    the same multiply-add as the GEMMs (assembly/simd.ts), so "same bits as im2col + GEMM" holds
 *    in the relaxed build too, and the tolerances above bound its fused rounding as well.
 */
import { describe, expect, it } from 'vitest';
import type { SimdBuild } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import { GEMM_ACCUMULATE, GEMM_RELU } from '../src/engine/kernels.js';
import { Rng } from '../src/engine/rng.js';
import { BUILDS } from './builds.js';
import { gemmTolerance } from './reference/gemm.js';
import {
  avgpoolBackwardRef,
  avgpoolForwardRef,
  col2imRef,
  conv2dBackwardRef,
  conv2dForwardRef,
  convOut,
  im2colRef,
  maxpoolBackwardRef,
  maxpoolForwardRef,
  poolOut,
  type ConvShape,
  type PoolShape,
} from './reference/conv.js';

const GUARD = 16;
const GUARD_VALUE = -12345.5;
/** Floats per region: LeNet conv1 at batch 3 needs 3·28·28·25 = 58,800 for its cols. */
const REGION_FLOATS = 1 << 18;

/** One engine with a guarded region per operand, all reserved before any view is made. */
function setup(build: SimdBuild = 'baseline') {
  const engine = createEngine({ simd: build });
  const k = engine.kernels;
  const names = [
    'inp',
    'w',
    'bias',
    'out',
    'cols',
    'dcols',
    'dout',
    'dinp',
    'dw',
    'db',
    'argmax',
    'scratch',
  ] as const;
  type Name = (typeof names)[number];
  const base = {} as Record<Name, number>;
  for (const name of names) base[name] = engine.reserve((REGION_FLOATS + 2 * GUARD) * 4, name);
  const ptr = (name: Name) => base[name] + GUARD * 4;
  const f32 = (name: Name, n: number) => engine.f32(ptr(name), n);
  const i32 = (name: Name, n: number) => engine.i32(ptr(name), n);
  const all = (name: Name) => engine.f32(base[name], REGION_FLOATS + 2 * GUARD);

  /** Guards around the first n floats of an output region; the floats themselves become NaN. */
  function arm(name: Name, n: number): void {
    if (n > REGION_FLOATS) throw new Error(`${name}: ${n} floats do not fit the test region`);
    const v = all(name);
    v.fill(GUARD_VALUE, 0, GUARD);
    v.fill(NaN, GUARD, GUARD + n);
    v.fill(GUARD_VALUE, GUARD + n, GUARD + n + GUARD);
  }
  function checkGuards(name: Name, n: number, what: string): void {
    const v = all(name);
    for (let g = 0; g < GUARD; g++) {
      if (v[g] !== GUARD_VALUE) throw new Error(`${what}: wrote before ${name} (guard ${g})`);
      if (v[GUARD + n + g] !== GUARD_VALUE) {
        throw new Error(`${what}: wrote past the ${n} floats of ${name} (guard ${g})`);
      }
    }
  }
  function put(name: Name, data: ArrayLike<number>): void {
    if (data.length > REGION_FLOATS) throw new Error(`${name}: too large for the test region`);
    f32(name, data.length).set(data);
  }
  return { k, ptr, f32, i32, arm, checkGuards, put };
}

type Env = ReturnType<typeof setup>;

function describeConv(s: ConvShape): string {
  return (
    `B=${s.B} ${s.H}×${s.W}×${s.C} → ${s.KH}×${s.KW}×${s.OC} ` + `stride ${s.stride} pad ${s.pad}`
  );
}

function convDims(s: ConvShape) {
  const OH = convOut(s.H, s.KH, s.stride, s.pad);
  const OW = convOut(s.W, s.KW, s.stride, s.pad);
  return { OH, OW, M: s.B * OH * OW, Kc: s.KH * s.KW * s.C };
}

interface ConvData {
  inp: Float32Array;
  w: Float32Array;
  bias: Float32Array;
  dout: Float32Array;
}

function randomConvData(rng: Rng, s: ConvShape): ConvData {
  const { M, Kc } = convDims(s);
  const make = (n: number) => {
    const a = new Float32Array(n);
    rng.fillUniform(a, -1, 1);
    return a;
  };
  return {
    inp: make(s.B * s.H * s.W * s.C),
    w: make(Kc * s.OC),
    bias: make(s.OC),
    dout: make(M * s.OC),
  };
}

/** The conv layer as the engine runs it; returns copies of every output. */
function engineConv(env: Env, s: ConvShape, d: ConvData, relu: boolean) {
  const { k, ptr } = env;
  const { OH, OW, M, Kc } = convDims(s);
  const { B, H, W, C, OC, KH, KW, stride, pad } = s;
  const scratchFloats = Math.max(
    k.gemm_scratch_floats(M, OC, Kc),
    k.gemm_scratch_floats(Kc, OC, M),
    k.gemm_scratch_floats(M, Kc, OC),
  );
  expect(scratchFloats).toBeLessThanOrEqual(REGION_FLOATS);
  env.put('inp', d.inp);
  env.put('w', d.w);
  env.put('bias', d.bias);
  env.put('dout', d.dout);
  const sizes = {
    cols: M * Kc,
    out: M * OC,
    dw: Kc * OC,
    db: OC,
    dcols: M * Kc,
    dinp: d.inp.length,
  };
  for (const [name, n] of Object.entries(sizes)) env.arm(name as keyof typeof sizes, n);

  k.conv2d_im2col(ptr('cols'), ptr('inp'), B, H, W, C, KH, KW, stride, pad, OH, OW);
  const flags = relu ? GEMM_RELU : 0;
  k.gemm_f32_nn(ptr('out'), ptr('cols'), ptr('w'), ptr('bias'), M, OC, Kc, flags, ptr('scratch'));
  k.gemm_f32_tn(ptr('dw'), ptr('cols'), ptr('dout'), 0, Kc, OC, M, 0, ptr('scratch'));
  k.dense_bias_backward(ptr('db'), ptr('dout'), M, OC, 0);
  k.gemm_f32_nt(ptr('dcols'), ptr('dout'), ptr('w'), 0, M, Kc, OC, 0, ptr('scratch'));
  k.conv2d_col2im(ptr('dinp'), ptr('dcols'), B, H, W, C, KH, KW, stride, pad, OH, OW);

  for (const [name, n] of Object.entries(sizes)) {
    env.checkGuards(name as keyof typeof sizes, n, describeConv(s));
  }
  return {
    cols: env.f32('cols', sizes.cols).slice(),
    out: env.f32('out', sizes.out).slice(),
    dw: env.f32('dw', sizes.dw).slice(),
    db: env.f32('db', sizes.db).slice(),
    dinp: env.f32('dinp', sizes.dinp).slice(),
  };
}

/** Element-wise |got − want| ≤ gemmTolerance(terms, absSum[i]); throws naming the first miss. */
function expectClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  terms: number,
  absSum: ArrayLike<number>,
): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = gemmTolerance(terms, absSum[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new Error(`${what}: [${i}] = ${got[i]}, reference ${want[i]} (tolerance ${tol})`);
    }
  }
}

/** Run the engine's conv layer and check every output against the direct references. */
function checkConv(env: Env, rng: Rng, s: ConvShape, relu: boolean): void {
  const { M, Kc } = convDims(s);
  const d = randomConvData(rng, s);
  const got = engineConv(env, s, d, relu);
  const what = describeConv(s);

  const colsRef = im2colRef(s, d.inp);
  expect(bits(got.cols), `${what}: im2col`).toEqual(bits(colsRef));

  const fwdAbs = new Float64Array(got.out.length);
  const out = conv2dForwardRef(s, d.inp, d.w, d.bias, relu, fwdAbs);
  expectClose(`${what}: forward`, got.out, out, Kc + 2, fwdAbs);

  const g = conv2dBackwardRef(s, d.dout, d.inp, d.w);
  expectClose(`${what}: dW`, got.dw, g.dw, M + 2, g.dwAbs);
  expectClose(`${what}: db`, got.db, g.db, M + 2, g.dbAbs);
  expectClose(`${what}: dinp`, got.dinp, g.dinp, s.OC + s.KH * s.KW + 2, g.dinpAbs);
}

function bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
}

/** The LeNet-5 convolutions (NHWC, batch 3). */
const LENET_CONVS: ConvShape[] = [
  { B: 3, H: 28, W: 28, C: 1, OC: 6, KH: 5, KW: 5, stride: 1, pad: 2 },
  { B: 3, H: 14, W: 14, C: 6, OC: 16, KH: 5, KW: 5, stride: 1, pad: 0 },
];
/** The LeNet-5 poolings (2×2, stride 2) after each convolution. */
const LENET_POOLS: PoolShape[] = [
  { B: 3, H: 28, W: 28, C: 6, K: 2, stride: 2 },
  { B: 3, H: 10, W: 10, C: 16, K: 2, stride: 2 },
];

describe.each(BUILDS)('conv2d vs the direct reference, %s build', (build) => {
  const env = setup(build);
  const rng = new Rng(20240612);

  it('sweep: batch 1/3, channels 1/3/16, kernel 1/3/5, padding 0/1/2, stride 1/2, odd sizes', () => {
    let variant = 0;
    for (const B of [1, 3]) {
      for (const C of [1, 3, 16]) {
        for (const K of [1, 3, 5]) {
          for (const pad of [0, 1, 2]) {
            for (const stride of [1, 2]) {
              // Rotate image sizes, output channels (GEMM N tails: 1, 5, 8, 13) and ReLU across
              // the sweep so each meets every other parameter without multiplying the test time.
              const v = variant++;
              const [H, W] = v % 2 ? [7, 9] : [9, 5];
              const OC = [1, 5, 8, 13][v % 4];
              checkConv(env, rng, { B, H, W, C, OC, KH: K, KW: K, stride, pad }, v % 3 === 0);
            }
          }
        }
      }
    }
  });

  it('non-square kernels and strides that skip the last rows and columns', () => {
    for (const s of [
      { B: 2, H: 8, W: 11, C: 2, OC: 3, KH: 3, KW: 5, stride: 3, pad: 1 },
      { B: 1, H: 6, W: 5, C: 7, OC: 9, KH: 1, KW: 3, stride: 2, pad: 2 },
      { B: 3, H: 5, W: 5, C: 4, OC: 4, KH: 5, KW: 5, stride: 1, pad: 0 },
      { B: 1, H: 1, W: 1, C: 5, OC: 2, KH: 3, KW: 3, stride: 1, pad: 1 },
    ]) {
      checkConv(env, rng, s, false);
    }
  });

  it("LeNet-5's shapes (batch 3)", () => {
    checkConv(env, rng, LENET_CONVS[0], true);
    checkConv(env, rng, LENET_CONVS[1], true);
  });

  it('im2col and col2im alone on every channel tail of the 4-wide copies', () => {
    // im2col exactly; col2im within its rounding bound (≤ KH·KW adds per element).
    for (const C of [1, 2, 3, 4, 5, 8, 9]) {
      for (const K of [1, 2, 3, 4]) {
        for (const stride of [1, 2, 3]) {
          for (const pad of [0, 1, 3]) {
            const s = { B: 2, H: 6, W: 7, C, OC: 1, KH: K, KW: K, stride, pad };
            const { OH, OW, M, Kc } = convDims(s);
            const inp = new Float32Array(s.B * s.H * s.W * C);
            rng.fillUniform(inp, -1, 1);
            env.put('inp', inp);
            env.arm('cols', M * Kc);
            env.k.conv2d_im2col(
              env.ptr('cols'),
              env.ptr('inp'),
              2,
              6,
              7,
              C,
              K,
              K,
              stride,
              pad,
              OH,
              OW,
            );
            env.checkGuards('cols', M * Kc, describeConv(s));
            expect(bits(env.f32('cols', M * Kc)), describeConv(s)).toEqual(bits(im2colRef(s, inp)));

            const dcols = new Float32Array(M * Kc);
            rng.fillUniform(dcols, -1, 1);
            env.put('dcols', dcols);
            env.arm('dinp', inp.length);
            env.k.conv2d_col2im(
              env.ptr('dinp'),
              env.ptr('dcols'),
              2,
              6,
              7,
              C,
              K,
              K,
              stride,
              pad,
              OH,
              OW,
            );
            env.checkGuards('dinp', inp.length, describeConv(s));
            const want = col2imRef(s, dcols);
            expectClose(
              `col2im ${describeConv(s)}`,
              env.f32('dinp', inp.length),
              want.dinp,
              K * K + 2,
              want.absSum,
            );
          }
        }
      }
    }
  });

  it('each image gives the same bits alone as inside a batch (forward and dinp)', () => {
    // GEMM rows and col2im images are independent, so an image's results must not depend on
    // its batch neighbours (what lets a later thread pool split the batch).
    for (const s of LENET_CONVS) {
      const d = randomConvData(rng, s);
      const batch = engineConv(env, s, d, true);
      const one = { ...s, B: 1 };
      const per = (a: Float32Array, n: number) => a.subarray(n, 2 * n);
      const { M } = convDims(one);
      const imageFloats = s.H * s.W * s.C;
      const single = engineConv(
        env,
        one,
        {
          inp: per(d.inp, imageFloats),
          w: d.w,
          bias: d.bias,
          dout: per(d.dout, M * s.OC),
        },
        true,
      );
      expect(bits(single.out)).toEqual(bits(per(batch.out, M * s.OC)));
      expect(bits(single.dinp)).toEqual(bits(per(batch.dinp, imageFloats)));
    }
  });
});

/**
 * The direct C = 1 kernels against im2col + GEMM on the same operands, bit for bit (the kernels
 * promise it for finite weights / dout), then against the f64 reference.
 */
function checkDirectC1(
  env: Env,
  rng: Rng,
  s: ConvShape,
  flags: number,
  withBias: boolean,
  zeroFrame = false,
): void {
  const { k, ptr } = env;
  const { OH, OW, M, Kc } = convDims(s);
  const { B, H, W, OC, KH, KW, pad } = s;
  const what = `direct ${describeConv(s)} flags ${flags} bias ${withBias} zero frame ${zeroFrame}`;
  const d = randomConvData(rng, s);
  if (zeroFrame) {
    // Like a digit: zeros outside a box, and inside it a third of the pixels 0 or −0. The
    // kernels skip all-zero inputs (same bits promised); −0 must not change anything either.
    for (let b = 0; b < B; b++) {
      const [y0, x0] = [Math.floor(H / 4), Math.floor(W / 3)];
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inBox = y >= y0 && y < H - y0 && x >= x0 && x < W - x0;
          const u = rng.nextFloat();
          const i = (b * H + y) * W + x;
          if (!inBox || u < 0.2) d.inp[i] = 0;
          else if (u < 0.33) d.inp[i] = -0;
        }
      }
    }
  }
  const old = new Float32Array(M * OC);
  rng.fillUniform(old, -1, 1);
  env.put('inp', d.inp);
  env.put('w', d.w);
  env.put('bias', d.bias);
  env.put('dout', d.dout);
  const biasPtr = withBias ? ptr('bias') : 0;
  const scratch = Math.max(k.gemm_scratch_floats(M, OC, Kc), k.gemm_scratch_floats(Kc, OC, M));
  expect(scratch).toBeLessThanOrEqual(REGION_FLOATS);

  // Via im2col + GEMM: out in 'out', dW in 'dw'.
  env.arm('cols', M * Kc);
  env.arm('out', M * OC);
  env.put('out', old);
  env.arm('dw', Kc * OC);
  k.conv2d_im2col(ptr('cols'), ptr('inp'), B, H, W, 1, KH, KW, 1, pad, OH, OW);
  k.gemm_f32_nn(ptr('out'), ptr('cols'), ptr('w'), biasPtr, M, OC, Kc, flags, ptr('scratch'));
  k.gemm_f32_tn(ptr('dw'), ptr('cols'), ptr('dout'), 0, Kc, OC, M, 0, ptr('scratch'));
  const gemmOut = env.f32('out', M * OC).slice();
  const gemmDw = env.f32('dw', Kc * OC).slice();

  // Direct: out in 'dcols', dW in 'db' (other guarded regions of the same engine).
  env.arm('dcols', M * OC);
  env.put('dcols', old);
  env.arm('db', Kc * OC);
  k.conv2d_direct_c1_forward(
    ptr('dcols'),
    ptr('inp'),
    ptr('w'),
    biasPtr,
    B,
    H,
    W,
    OC,
    KH,
    KW,
    pad,
    OH,
    OW,
    flags,
  );
  k.conv2d_direct_c1_backward_weight(
    ptr('db'),
    ptr('inp'),
    ptr('dout'),
    B,
    H,
    W,
    OC,
    KH,
    KW,
    pad,
    OH,
    OW,
  );
  env.checkGuards('dcols', M * OC, what);
  env.checkGuards('db', Kc * OC, what);
  const directOut = env.f32('dcols', M * OC).slice();
  const directDw = env.f32('db', Kc * OC).slice();
  expect(bits(directOut), `${what}: forward`).toEqual(bits(gemmOut));
  expect(bits(directDw), `${what}: dW`).toEqual(bits(gemmDw));

  if (pad > 0) {
    // The workspace's route: the input inside a frame of zeros (pad_images), then pad 0.
    const [HP, WP] = [H + 2 * pad, W + 2 * pad];
    env.arm('cols', B * HP * WP);
    k.pad_images(ptr('cols'), ptr('inp'), B, H, W, pad);
    env.checkGuards('cols', B * HP * WP, `${what}: pad_images`);
    const framed = env.f32('cols', B * HP * WP);
    for (let i = 0; i < framed.length; i++) {
      const [b, y, x] = [Math.floor(i / (HP * WP)), Math.floor(i / WP) % HP, i % WP];
      const inside = y >= pad && y < H + pad && x >= pad && x < W + pad;
      const want = inside ? d.inp[(b * H + y - pad) * W + x - pad]! : 0;
      if (!Object.is(framed[i], Math.fround(want))) {
        throw new Error(`${what}: pad_images (${b}, ${y}, ${x}) = ${framed[i]}, expected ${want}`);
      }
    }
    env.arm('out', M * OC);
    env.put('out', old);
    env.arm('dw', Kc * OC);
    k.conv2d_direct_c1_forward(
      ptr('out'),
      ptr('cols'),
      ptr('w'),
      biasPtr,
      B,
      HP,
      WP,
      OC,
      KH,
      KW,
      0,
      OH,
      OW,
      flags,
    );
    k.conv2d_direct_c1_backward_weight(
      ptr('dw'),
      ptr('cols'),
      ptr('dout'),
      B,
      HP,
      WP,
      OC,
      KH,
      KW,
      0,
      OH,
      OW,
    );
    expect(bits(env.f32('out', M * OC)), `${what}: framed forward`).toEqual(bits(gemmOut));
    expect(bits(env.f32('dw', Kc * OC)), `${what}: framed dW`).toEqual(bits(gemmDw));
  }

  // And against the definitions (old out and the flags applied by hand).
  const absSum = new Float64Array(M * OC);
  const ref = conv2dForwardRef(s, d.inp, d.w, withBias ? d.bias : null, false, absSum);
  for (let i = 0; i < ref.length; i++) {
    if (flags & GEMM_ACCUMULATE) {
      ref[i] += old[i];
      absSum[i] += Math.abs(old[i]);
    }
    if (flags & GEMM_RELU && ref[i] < 0) ref[i] = 0;
  }
  expectClose(`${what}: forward vs reference`, directOut, ref, Kc + 3, absSum);
  const g = conv2dBackwardRef(s, d.dout, d.inp, d.w);
  expectClose(`${what}: dW vs reference`, directDw, g.dw, M + 2, g.dwAbs);
}

describe.each(BUILDS)('conv2d_direct_c1_*, stride 1, %s build', (build) => {
  const env = setup(build);
  const rng = new Rng(777);

  it('bit-identical to im2col + GEMM: OC, kernel, padding and width tails, every epilogue', () => {
    let variant = 0;
    for (const OC of [1, 4, 5, 6, 7, 9, 13, 17]) {
      for (const [KH, KW] of [
        [1, 1],
        [3, 3],
        [5, 5],
        [2, 7],
        [4, 11],
      ]) {
        for (const pad of [0, 1, 2, 3]) {
          // Rotate batch, image size (widths below 4, below KW, odd) and the 8 epilogues.
          const v = variant++;
          const B = v % 3 === 0 ? 3 : 1;
          const [H, W] = [
            [9, 11],
            [6, 3],
            [7, 14],
            [5, 1],
            [12, 9],
          ][v % 5];
          if (H + 2 * pad < KH || W + 2 * pad < KW) continue;
          const e = v % 8;
          const flags = (e & 1 ? GEMM_ACCUMULATE : 0) | (e & 2 ? GEMM_RELU : 0);
          checkDirectC1(
            env,
            rng,
            { B, H, W, C: 1, OC, KH, KW, stride: 1, pad },
            flags,
            (e & 4) === 0,
          );
        }
      }
    }
  });

  it("LeNet-5's conv1 (batch 3)", () => {
    checkDirectC1(env, rng, LENET_CONVS[0], GEMM_RELU, true);
    checkDirectC1(env, rng, LENET_CONVS[0], 0, false);
  });

  it('zero frames and −0 inputs (the skipped all-zero rows and pixels): the same bits', () => {
    checkDirectC1(env, rng, LENET_CONVS[0], GEMM_RELU, true, true);
    checkDirectC1(env, rng, LENET_CONVS[0], GEMM_ACCUMULATE, false, true);
    for (const [H, W, KH, KW, pad] of [
      [16, 19, 5, 5, 2],
      [12, 13, 5, 5, 0],
      [9, 11, 3, 3, 1],
      [14, 9, 5, 2, 1],
    ]) {
      const shape = { B: 2, H, W, C: 1, OC: 6, KH, KW, stride: 1, pad };
      checkDirectC1(env, rng, shape, GEMM_RELU, true, true);
    }
  });
});

describe('pooling vs the reference', () => {
  const env = setup();
  const rng = new Rng(99);

  function describePool(s: PoolShape): string {
    return `B=${s.B} ${s.H}×${s.W}×${s.C} pool ${s.K} stride ${s.stride}`;
  }

  /** Run all four pooling kernels on inp / dout; returns copies of their outputs. */
  function enginePool(s: PoolShape, inp: Float32Array, dout: Float32Array) {
    const { k, ptr } = env;
    const { B, H, W, C, K, stride } = s;
    const OH = poolOut(H, K, stride);
    const OW = poolOut(W, K, stride);
    const n = B * OH * OW * C;
    env.put('inp', inp);
    env.put('dout', dout);
    env.arm('out', n);
    env.arm('argmax', n);
    env.arm('dinp', inp.length);
    env.arm('cols', n); // avgpool output
    env.arm('dcols', inp.length); // avgpool dinp
    k.maxpool2d_forward(ptr('out'), ptr('argmax'), ptr('inp'), B, H, W, C, K, stride, OH, OW);
    k.maxpool2d_backward(ptr('dinp'), ptr('dout'), ptr('argmax'), B, H, W, C, OH, OW);
    k.avgpool2d_forward(ptr('cols'), ptr('inp'), B, H, W, C, K, stride, OH, OW);
    k.avgpool2d_backward(ptr('dcols'), ptr('dout'), B, H, W, C, K, stride, OH, OW);
    const what = describePool(s);
    env.checkGuards('out', n, `maxpool forward ${what}`);
    env.checkGuards('argmax', n, `maxpool forward ${what}`);
    env.checkGuards('dinp', inp.length, `maxpool backward ${what}`);
    env.checkGuards('cols', n, `avgpool forward ${what}`);
    env.checkGuards('dcols', inp.length, `avgpool backward ${what}`);
    return {
      max: env.f32('out', n).slice(),
      argmax: env.i32('argmax', n).slice(),
      maxBack: env.f32('dinp', inp.length).slice(),
      avg: env.f32('cols', n).slice(),
      avgBack: env.f32('dcols', inp.length).slice(),
    };
  }

  function checkPool(s: PoolShape): void {
    const OH = poolOut(s.H, s.K, s.stride);
    const OW = poolOut(s.W, s.K, s.stride);
    const inp = new Float32Array(s.B * s.H * s.W * s.C);
    const dout = new Float32Array(s.B * OH * OW * s.C);
    rng.fillUniform(inp, -1, 1);
    rng.fillUniform(dout, -1, 1);
    const got = enginePool(s, inp, dout);
    const what = describePool(s);
    const max = maxpoolForwardRef(s, inp);
    expect(bits(got.max), `maxpool ${what}`).toEqual(bits(Float32Array.from(max.out)));
    expect(got.argmax, `maxpool argmax ${what}`).toEqual(max.argmax);
    const abs = (a: Float32Array) => a.map(Math.abs);
    const terms = s.K * s.K + 2;
    expectClose(
      `maxpool backward ${what}`,
      got.maxBack,
      maxpoolBackwardRef(s, dout, max.argmax),
      terms,
      maxpoolBackwardRef(s, abs(dout), max.argmax),
    );
    expectClose(
      `avgpool ${what}`,
      got.avg,
      avgpoolForwardRef(s, inp),
      terms,
      avgpoolForwardRef(s, abs(inp)),
    );
    expectClose(
      `avgpool backward ${what}`,
      got.avgBack,
      avgpoolBackwardRef(s, dout),
      terms,
      avgpoolBackwardRef(s, abs(dout)),
    );
  }

  it('sweep: batch 1/3, channels 1/3/4/6/16, windows 1..3 with stride 1..3 (overlapping too)', () => {
    let variant = 0;
    for (const B of [1, 3]) {
      for (const C of [1, 3, 4, 6, 16]) {
        for (const [K, stride] of [
          [1, 1],
          [2, 2],
          [2, 1],
          [3, 2],
          [3, 3],
        ]) {
          const [H, W] = variant++ % 2 ? [7, 9] : [8, 5];
          checkPool({ B, H, W, C, K, stride });
        }
      }
    }
  });

  it("LeNet-5's shapes (batch 3)", () => {
    for (const s of LENET_POOLS) checkPool(s);
  });

  it('maxpool: NaN propagates, ±Inf and ties follow the reference (first index)', () => {
    for (const [C, K] of [1, 3, 6, 16].flatMap((c) => [2, 3].map((k) => [c, k] as const))) {
      const s = { B: 2, H: 6, W: 7, C, K, stride: 2 };
      const OH = poolOut(s.H, s.K, s.stride);
      const OW = poolOut(s.W, s.K, s.stride);
      const inp = new Float32Array(s.B * s.H * s.W * C);
      // Few distinct values: many ties.
      for (let i = 0; i < inp.length; i++) inp[i] = rng.nextInt(4) - 2;
      const special = [NaN, NaN, NaN, Infinity, -Infinity, Infinity, NaN];
      for (const x of special) inp[rng.nextInt(inp.length)] = x;
      // One window made of -Inf only, and a NaN in the first tap of another window.
      for (let kh = 0; kh < 3; kh++) {
        for (let kw = 0; kw < 3; kw++) inp[((1 * s.H + kh) * s.W + kw + 2) * C] = -Infinity;
      }
      inp[(2 * s.W + 4) * C + C - 1] = NaN;
      const dout = new Float32Array(s.B * OH * OW * C).fill(1);
      const got = enginePool(s, inp, dout);
      const want = maxpoolForwardRef(s, inp);
      let nans = 0;
      for (let i = 0; i < want.out.length; i++) {
        if (Number.isNaN(want.out[i])) nans++;
        expect(Object.is(got.max[i], want.out[i]) || got.max[i] === want.out[i], `out[${i}]`).toBe(
          true,
        );
        expect(got.argmax[i], `argmax[${i}] C=${C}`).toBe(want.argmax[i]);
      }
      expect(nans).toBeGreaterThan(0);
      // Gradients follow argmax: a NaN's window routes its gradient to the NaN.
      const back = maxpoolBackwardRef(s, dout, want.argmax);
      expect(Array.from(got.maxBack)).toEqual(Array.from(back));
    }
  });
});

/** ‖a − b‖ / (‖a‖ + ‖b‖), 0 when both are zero. */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    na += a[i] ** 2;
    nb += b[i] ** 2;
  }
  const denom = Math.sqrt(na) + Math.sqrt(nb);
  return denom === 0 ? 0 : Math.sqrt(diff) / denom;
}

/** Central differences of f (a scalar function of x) with respect to every entry of x. */
function centralDifferences(x: Float64Array, f: () => number, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h;
    const up = f();
    x[i] = x0 - h;
    const down = f();
    x[i] = x0;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

describe.each(BUILDS)('finite-difference gradient checks, %s build', (build) => {
  const env = setup(build);
  const rng = new Rng(4242);
  const FD_BOUND = 1e-7;
  const ENGINE_BOUND = 1e-5;

  it('conv2d: input, weight and bias gradients', () => {
    for (const s of [
      { B: 2, H: 6, W: 5, C: 3, OC: 4, KH: 3, KW: 3, stride: 2, pad: 1 },
      { B: 1, H: 7, W: 7, C: 2, OC: 3, KH: 5, KW: 5, stride: 1, pad: 2 },
    ]) {
      const d = randomConvData(rng, s);
      // L = Σ dout ⊙ conv(inp, w, bias), in f64 on the same (f32-representable) values.
      const inp = Float64Array.from(d.inp);
      const w = Float64Array.from(d.w);
      const bias = Float64Array.from(d.bias);
      const loss = () => dot(d.dout, conv2dForwardRef(s, inp, w, bias));
      const ref = conv2dBackwardRef(s, d.dout, inp, w);
      const what = describeConv(s);
      expect(relError(ref.dinp, centralDifferences(inp, loss)), `${what} dinp`).toBeLessThan(
        FD_BOUND,
      );
      expect(relError(ref.dw, centralDifferences(w, loss)), `${what} dw`).toBeLessThan(FD_BOUND);
      expect(relError(ref.db, centralDifferences(bias, loss)), `${what} db`).toBeLessThan(FD_BOUND);

      const got = engineConv(env, s, d, false);
      expect(relError(got.dinp, ref.dinp), `${what} engine dinp`).toBeLessThan(ENGINE_BOUND);
      expect(relError(got.dw, ref.dw), `${what} engine dw`).toBeLessThan(ENGINE_BOUND);
      expect(relError(got.db, ref.db), `${what} engine db`).toBeLessThan(ENGINE_BOUND);
    }
  });

  it('max and average pooling: input gradients', () => {
    for (const s of [
      { B: 2, H: 7, W: 6, C: 5, K: 3, stride: 2 },
      { B: 1, H: 6, W: 6, C: 4, K: 2, stride: 2 },
    ]) {
      const OH = poolOut(s.H, s.K, s.stride);
      const OW = poolOut(s.W, s.K, s.stride);
      const x32 = new Float32Array(s.B * s.H * s.W * s.C);
      const dout = new Float32Array(s.B * OH * OW * s.C);
      rng.fillUniform(x32, -1, 1);
      rng.fillUniform(dout, -1, 1);
      const x = Float64Array.from(x32);
      const max = maxpoolForwardRef(s, x);
      const refMax = maxpoolBackwardRef(s, dout, max.argmax);
      const refAvg = avgpoolBackwardRef(s, dout);
      const what = `${s.K}×${s.K}/${s.stride} on ${s.H}×${s.W}×${s.C}`;
      const fdMax = centralDifferences(x, () => dot(dout, maxpoolForwardRef(s, x).out));
      const fdAvg = centralDifferences(x, () => dot(dout, avgpoolForwardRef(s, x)));
      expect(relError(refMax, fdMax), `maxpool ${what}`).toBeLessThan(FD_BOUND);
      expect(relError(refAvg, fdAvg), `avgpool ${what}`).toBeLessThan(FD_BOUND);

      const { k, ptr } = env;
      env.put('inp', x32);
      env.put('dout', dout);
      const n = dout.length;
      k.maxpool2d_forward(
        ptr('out'),
        ptr('argmax'),
        ptr('inp'),
        s.B,
        s.H,
        s.W,
        s.C,
        s.K,
        s.stride,
        OH,
        OW,
      );
      k.maxpool2d_backward(ptr('dinp'), ptr('dout'), ptr('argmax'), s.B, s.H, s.W, s.C, OH, OW);
      expect(env.i32('argmax', n)).toEqual(max.argmax);
      expect(relError(env.f32('dinp', x.length), refMax), `engine maxpool ${what}`).toBeLessThan(
        ENGINE_BOUND,
      );
      k.avgpool2d_backward(ptr('dinp'), ptr('dout'), s.B, s.H, s.W, s.C, s.K, s.stride, OH, OW);
      expect(relError(env.f32('dinp', x.length), refAvg), `engine avgpool ${what}`).toBeLessThan(
        ENGINE_BOUND,
      );
    }
  });
});

/**
 * conv2d_backward_input_scatter (with conv2d_weight_transpose and count_nonzero): dinp from only
 * the non-zero dout entries. It must match the f64 reference within the dinp bound above
 * (OC + KH·KW + 2 terms) and give the bits of gemm_f32_nt + col2im — its promise for finite
 * weights — on dout that is all zero, ≈80% zero, dense, or holds −0s and a NaN (which must
 * reach exactly the input elements under its window). Runs longer than the kernel's 32-float
 * register block (KW·C = 35, 80) and OC beyond one 64-channel mask (70) are in the sweep.
 */
describe.each(BUILDS)('conv2d_backward_input_scatter, %s build', (build) => {
  const env = setup(build);
  const rng = new Rng(31337);
  const FILLS = ['zero', 'sparse', 'dense', 'signed zeros and NaN'] as const;
  /** 'last channels': only the last 6 oc are non-zero (for OC = 70: only beyond the first mask). */
  type Fill = (typeof FILLS)[number] | 'last channels';

  /** dout (B, OH, OW, OC) of the given kind; with a NaN, also the flat index it sits at. */
  function makeDout(s: ConvShape, fill: Fill): { dout: Float32Array; nanAt: number } {
    const { M } = convDims(s);
    const dout = new Float32Array(M * s.OC);
    if (fill === 'zero') return { dout, nanAt: -1 };
    rng.fillUniform(dout, -1, 1);
    if (fill === 'dense') return { dout, nanAt: -1 };
    if (fill === 'last channels') {
      for (let i = 0; i < dout.length; i++) if (i % s.OC < s.OC - 6) dout[i] = 0;
      return { dout, nanAt: -1 };
    }
    for (let i = 0; i < dout.length; i++) {
      const u = rng.nextFloat();
      if (fill === 'sparse' ? u < 0.8 : u < 0.4) dout[i] = fill === 'sparse' || u < 0.2 ? 0 : -0;
    }
    if (fill === 'sparse') return { dout, nanAt: -1 };
    const nanAt = Math.floor(rng.nextFloat() * dout.length);
    dout[nanAt] = NaN;
    return { dout, nanAt };
  }

  /** The scatter route, wT in the cols region: checks wT and the guards, returns dinp. */
  function scatter(s: ConvShape, w: Float32Array, dout: Float32Array): Float32Array {
    const { k, ptr } = env;
    const { OH, OW, Kc } = convDims(s);
    const what = `scatter ${describeConv(s)}`;
    env.put('w', w);
    env.put('dout', dout);
    env.arm('cols', Kc * s.OC);
    k.conv2d_weight_transpose(ptr('cols'), ptr('w'), Kc, s.OC);
    env.checkGuards('cols', Kc * s.OC, `${what}: wT`);
    const wT = new Float32Array(Kc * s.OC);
    for (let o = 0; o < s.OC; o++) for (let j = 0; j < Kc; j++) wT[o * Kc + j] = w[j * s.OC + o];
    expect(bits(env.f32('cols', Kc * s.OC)), `${what}: wT`).toEqual(bits(wT));
    const n = s.B * s.H * s.W * s.C;
    env.arm('dinp', n);
    const { B, H, W, C, OC, KH, KW, stride, pad } = s;
    k.conv2d_backward_input_scatter(
      ptr('dinp'),
      ptr('dout'),
      ptr('cols'),
      B,
      H,
      W,
      C,
      OC,
      KH,
      KW,
      stride,
      pad,
      OH,
      OW,
    );
    env.checkGuards('dinp', n, what);
    return env.f32('dinp', n).slice();
  }

  /** Bits with every NaN made the same NaN (NaN payloads are not specified by wasm). */
  function bitsOrNaN(x: Float32Array): Uint32Array {
    return bits(x.map((v) => (Number.isNaN(v) ? NaN : v)));
  }

  /** Flat dinp indices under the window of dout's flat index `at` (all C channels). */
  function window(s: ConvShape, at: number): Set<number> {
    const { OH, OW } = convDims(s);
    const pixel = Math.floor(at / s.OC);
    const ow = pixel % OW;
    const oh = Math.floor(pixel / OW) % OH;
    const b = Math.floor(pixel / (OW * OH));
    const covered = new Set<number>();
    for (let kh = 0; kh < s.KH; kh++) {
      for (let kw = 0; kw < s.KW; kw++) {
        const ih = oh * s.stride - s.pad + kh;
        const iw = ow * s.stride - s.pad + kw;
        if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
        for (let c = 0; c < s.C; c++) covered.add(((b * s.H + ih) * s.W + iw) * s.C + c);
      }
    }
    return covered;
  }

  function checkScatter(s: ConvShape, fill: Fill): void {
    const what = `${describeConv(s)}, ${fill} dout`;
    const d = randomConvData(rng, s);
    const { dout, nanAt } = makeDout(s, fill);
    d.dout = dout;
    const viaGemm = engineConv(env, s, d, false).dinp;
    const got = scatter(s, d.w, dout);
    expect(bitsOrNaN(got), `${what}: bits of gemm_f32_nt + col2im`).toEqual(bitsOrNaN(viaGemm));
    const ref = conv2dBackwardRef(s, dout, d.inp, d.w);
    const terms = s.OC + s.KH * s.KW + 2;
    if (nanAt < 0) {
      expectClose(`${what}: dinp`, got, ref.dinp, terms, ref.dinpAbs);
      return;
    }
    const covered = window(s, nanAt);
    for (let i = 0; i < got.length; i++) {
      if (Number.isNaN(got[i]) !== covered.has(i)) {
        throw new Error(`${what}: dinp[${i}] = ${got[i]}, NaN expected: ${covered.has(i)}`);
      }
      const tol = gemmTolerance(terms, ref.dinpAbs[i]);
      if (!covered.has(i) && !(Math.abs(got[i] - ref.dinp[i]) <= tol)) {
        throw new Error(`${what}: [${i}] = ${got[i]}, reference ${ref.dinp[i]} (tolerance ${tol})`);
      }
    }
  }

  it('sweep: batch 1/3, channels 1/3/6/7, OC 1/5/16, kernels up to 5×5 and 2×3, 5×3, pad 0–2, stride 1/2', () => {
    let variant = 0;
    for (const B of [1, 3]) {
      for (const C of [1, 3, 6, 7]) {
        for (const [KH, KW] of [
          [1, 1],
          [3, 3],
          [5, 5],
          [2, 3],
          [5, 3],
        ]) {
          for (const pad of [0, 1, 2]) {
            for (const stride of [1, 2]) {
              // Rotate sizes (widths 9, 5, 11: not multiples of 4), OC and the kind of dout so
              // each meets every other parameter without multiplying the test time.
              const v = variant++;
              const [H, W] = [
                [7, 9],
                [9, 5],
                [6, 11],
              ][v % 3];
              const OC = [1, 5, 16][(v >> 2) % 3];
              checkScatter({ B, H, W, C, OC, KH, KW, stride, pad }, FILLS[v % 4]);
            }
          }
        }
      }
    }
  });

  it('runs longer than 32 floats, OC 64 and 70, and LeNet-5 conv2 with every kind of dout', () => {
    for (const fill of [...FILLS, 'last channels'] as const) {
      checkScatter({ B: 2, H: 8, W: 7, C: 16, OC: 3, KH: 5, KW: 5, stride: 1, pad: 2 }, fill);
      checkScatter({ B: 1, H: 6, W: 9, C: 7, OC: 70, KH: 3, KW: 5, stride: 2, pad: 1 }, fill);
      checkScatter({ B: 1, H: 5, W: 6, C: 2, OC: 64, KH: 3, KW: 3, stride: 1, pad: 1 }, fill);
      checkScatter(LENET_CONVS[1], fill);
    }
  });

  it('each image gives the same bits alone as inside a batch', () => {
    const s = LENET_CONVS[1];
    const { M } = convDims({ ...s, B: 1 });
    const imageFloats = s.H * s.W * s.C;
    const w = randomConvData(rng, s).w;
    const { dout } = makeDout(s, 'sparse');
    const batch = scatter(s, w, dout);
    for (let b = 0; b < s.B; b++) {
      const one = scatter({ ...s, B: 1 }, w, dout.subarray(b * M * s.OC, (b + 1) * M * s.OC));
      expect(bits(one), `image ${b}`).toEqual(
        bits(batch.subarray(b * imageFloats, (b + 1) * imageFloats)),
      );
    }
  });

  it('count_nonzero counts NaN and ±Inf, not ±0, on every tail length', () => {
    const specials = [0, -0, NaN, Infinity, -Infinity, 1e-45, -1e-45, 1];
    for (const n of [0, 1, 2, 3, 4, 5, 7, 8, 13, 51]) {
      const x = Float32Array.from({ length: n }, () => {
        const u = rng.nextFloat();
        return u < 0.5 ? specials[Math.floor(u * 16)] : u < 0.7 ? 0 : u - 0.6;
      });
      env.put('dout', x);
      const want = x.filter((v) => v !== 0).length;
      expect(env.k.count_nonzero(env.ptr('dout'), n), `n = ${n}`).toBe(want);
    }
  });
});
