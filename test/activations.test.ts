/**
 * Activation and dropout kernels against their references (test/reference/activations.ts).
 * Tolerances:
 *  - leaky ReLU, every backward, dropout: exact (same f32 operations in the same order);
 *  - exp-based forwards, in ulps of the f32 result against f64: ELU ≤ 1 ulp (α = 1 or a power of
 *    two), ≤ 2 ulp for other α (the extra rounding of α·); sigmoid and tanh ≤ 2.5 ulp. A sweep of
 *    every f32 input found 0.95 (α = 1), 2.41 and 2.50 (see assembly/activations.ts); here every
 *    4099th f32 bit pattern (~540k values per function) re-checks the bounds.
 *  - backward vs central differences of the f64 forward (h = 1e-4, so truncation ≤ 1e-9):
 *    |dinp − dout·f′(x)| ≤ 1e-6 for |dout| ≤ 1 — the f32 rounding of `out` (≤ 2.5 ulp) carried
 *    through the derivative formula, e.g. 1 − out² for tanh (largest seen: 3e-7, tanh near 3).
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import { Rng } from '../src/engine/rng.js';
import { put, randomFloats } from './helpers.js';
import {
  bitsOf,
  dropoutApplyRef,
  elu64,
  eluBackwardRef,
  eluForwardRef,
  f32FromBits,
  leakyRelu64,
  leakyReluBackwardRef,
  leakyReluForwardRef,
  sigmoid64,
  sigmoidBackwardRef,
  sigmoidForwardRef,
  tanh64,
  tanhBackwardRef,
  tanhForwardRef,
  ulpError,
} from './reference/activations.js';

const SIZES = [0, 1, 3, 4, 5, 15, 16, 17, 33, 784, 1000];

type KernelFn = (...args: number[]) => number;
/** src/engine/kernels.ts may not list these exports yet; reach them by name. */
const kernelsOf = (e: Engine) => e.kernels as unknown as Record<string, KernelFn>;

/** Values the whole f32 range can throw at an activation, plus the edges of the exp code. */
const SPECIALS =
  '0 1e-45 1e-30 1e-7 1e-3 0.34 0.35 0.5 1 9 17.5 30 60 61 87.5 88.8 103 104 105 1e30 3.4e38'
    .split(' ')
    .concat(['Infinity', 'NaN'])
    .flatMap((v) => [Number(v), -Number(v)]);

/** n floats: every third a special, then the range [−8, 8], then log-uniform ±1e-38…1e30. */
function mixedInputs(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const sign = rng.nextFloat() < 0.5 ? -1 : 1;
    if (i % 3 === 0) out[i] = SPECIALS[(i / 3 + rng.nextInt(4)) % SPECIALS.length]!;
    else if (i % 3 === 1) out[i] = (rng.nextFloat() * 2 - 1) * 8;
    else out[i] = sign * 10 ** (rng.nextFloat() * 68 - 38);
  }
  return out;
}

interface Activation {
  name: string;
  /** Extra f32 argument (α) after n, if any. */
  alpha?: number;
  /** Exact f32 reference, or f64 reference plus ulp bound. */
  forwardRef: (x: Float32Array, alpha: number) => Float32Array | Float64Array;
  maxUlp: number | 'exact';
  backwardRef: (dout: Float32Array, out: Float32Array, alpha: number) => Float32Array;
  fn64: (x: number, alpha: number) => number;
  /** A kink to keep finite differences away from. */
  kinkAtZero: boolean;
}

const ACTIVATIONS: Activation[] = [
  ...[0.01, 0, 1.5].map((alpha) => ({
    name: 'leaky_relu',
    alpha,
    forwardRef: leakyReluForwardRef,
    maxUlp: 'exact' as const,
    backwardRef: leakyReluBackwardRef,
    fn64: leakyRelu64,
    kinkAtZero: true,
  })),
  ...[1, 0.5, 1.7].map((alpha) => ({
    name: 'elu',
    alpha,
    forwardRef: eluForwardRef,
    maxUlp: alpha === 1.7 ? 2 : 1,
    backwardRef: eluBackwardRef,
    fn64: elu64,
    kinkAtZero: alpha !== 1,
  })),
  {
    name: 'sigmoid',
    forwardRef: sigmoidForwardRef,
    maxUlp: 2.5,
    backwardRef: sigmoidBackwardRef,
    fn64: sigmoid64,
    kinkAtZero: false,
  },
  {
    name: 'tanh',
    forwardRef: tanhForwardRef,
    maxUlp: 2.5,
    backwardRef: tanhBackwardRef,
    fn64: tanh64,
    kinkAtZero: false,
  },
];

const label = (a: Activation) => (a.alpha === undefined ? a.name : `${a.name} α=${a.alpha}`);

function forward(e: Engine, a: Activation, out: number, inp: number, n: number): void {
  const k = kernelsOf(e)[`${a.name}_forward`]!;
  if (a.alpha === undefined) k(out, inp, n);
  else k(out, inp, n, a.alpha);
}

function backward(e: Engine, a: Activation, dinp: number, dout: number, out: number, n: number) {
  const k = kernelsOf(e)[`${a.name}_backward`]!;
  if (a.alpha === undefined) k(dinp, dout, out, n);
  else k(dinp, dout, out, n, a.alpha);
}

function maxUlpError(y: ArrayLike<number>, ref: ArrayLike<number>): { ulps: number; at: number } {
  let worst = { ulps: 0, at: -1 };
  for (let i = 0; i < y.length; i++) {
    const u = ulpError(y[i]!, ref[i]!);
    if (u > worst.ulps) worst = { ulps: u, at: i };
  }
  return worst;
}

function expectForward(a: Activation, x: Float32Array, y: Float32Array): void {
  const ref = a.forwardRef(x, a.alpha ?? 0);
  if (a.maxUlp === 'exact') {
    expect(bitsOf(y)).toEqual(bitsOf(ref as Float32Array));
    return;
  }
  const { ulps, at } = maxUlpError(y, ref);
  expect(ulps, `${label(a)}(${x[at]}) = ${y[at]}, want ${ref[at]}`).toBeLessThanOrEqual(a.maxUlp);
}

/** Run forward then backward on fresh buffers; returns copies of out and dinp. */
function runBoth(e: Engine, a: Activation, x: Float32Array, dout: Float32Array) {
  const n = x.length;
  const xp = put(e, x);
  const outp = put(e, new Float32Array(n));
  const doutp = put(e, dout);
  const dinp = put(e, new Float32Array(n));
  forward(e, a, outp, xp, n);
  backward(e, a, dinp, doutp, outp, n);
  return { out: e.f32(outp, n).slice(), dinp: e.f32(dinp, n).slice() };
}

describe.each(ACTIVATIONS.map((a) => [label(a), a] as const))('%s', (_, a) => {
  it.each(SIZES)('forward and backward match the reference, n=%i', (n) => {
    const e = createEngine();
    const rng = new Rng(n + 101);
    const x = mixedInputs(rng, n);
    const dout = randomFloats(rng, n);
    if (n > 2) dout[n - 2] = NaN;
    const { out, dinp } = runBoth(e, a, x, dout);
    expectForward(a, x, out);
    expect(bitsOf(dinp)).toEqual(bitsOf(a.backwardRef(dout, out, a.alpha ?? 0)));
  });

  it('propagates NaN forward in the SIMD body and in the tail', () => {
    const e = createEngine();
    const x = new Float32Array([NaN, -1, 2, -NaN, 5, -3, NaN]);
    const { out } = runBoth(e, a, x, new Float32Array(x.length));
    for (const i of [0, 3, 6]) expect(out[i]).toBeNaN();
    for (const i of [1, 2, 4, 5]) expect(out[i]).not.toBeNaN();
  });

  it('is stable for huge and infinite inputs', () => {
    const e = createEngine();
    const x = new Float32Array([1e30, -1e30, Infinity, -Infinity, 3.4e38, -3.4e38, 0, -0]);
    const { out } = runBoth(e, a, x, new Float32Array(x.length));
    const ref = a.forwardRef(x, a.alpha ?? 0);
    // Exact here, NaN included: leaky ReLU with α = 0 maps −Inf to 0·−Inf = NaN, as documented.
    for (let i = 0; i < x.length; i++) {
      expect(ulpError(out[i]!, ref[i]!), `${label(a)}(${x[i]}) = ${out[i]}`).toBe(0);
    }
    if (a.name === 'tanh') {
      expect(Object.is(out[6], 0)).toBe(true);
      expect(Object.is(out[7], -0)).toBe(true);
    }
  });

  it('backward matches central differences of the f64 forward', () => {
    const e = createEngine();
    const rng = new Rng(7);
    const n = 203;
    const x = randomFloats(rng, n, 6);
    if (a.kinkAtZero) for (let i = 0; i < n; i++) if (Math.abs(x[i]!) < 1e-3) x[i] = 0.5;
    const dout = randomFloats(rng, n);
    const { dinp } = runBoth(e, a, x, dout);
    const h = 1e-4;
    const alpha = Math.fround(a.alpha ?? 0);
    for (let i = 0; i < n; i++) {
      const fd = (a.fn64(x[i]! + h, alpha) - a.fn64(x[i]! - h, alpha)) / (2 * h);
      expect(Math.abs(dinp[i]! - dout[i]! * fd), `${label(a)}′(${x[i]})`).toBeLessThanOrEqual(1e-6);
    }
  });

  it('runs in place (out == inp, dinp == dout) with the same bits', () => {
    const e = createEngine();
    const rng = new Rng(3);
    const n = 37;
    const x = mixedInputs(rng, n);
    const dout = randomFloats(rng, n);
    const { out, dinp } = runBoth(e, a, x, dout);
    const xp = put(e, x);
    forward(e, a, xp, xp, n);
    expect(bitsOf(e.f32(xp, n))).toEqual(bitsOf(out));
    const dp = put(e, dout);
    backward(e, a, dp, dp, xp, n);
    expect(bitsOf(e.f32(dp, n))).toEqual(bitsOf(dinp));
  });

  it('gives the same bits whatever the SIMD lane or tail an element lands in', () => {
    const e = createEngine();
    const rng = new Rng(11);
    // Specials plus 40 values in the working range, where a different rounding would show.
    const x = Float32Array.of(...mixedInputs(rng, 13), ...randomFloats(rng, 40, 10));
    const dout = randomFloats(rng, x.length);
    const whole = runBoth(e, a, x, dout);
    const want = { out: bitsOf(whole.out), dinp: bitsOf(whole.dinp) };
    // Every prefix length at every lane offset: each element is, in some run, one of the last
    // n mod 4 (the tail), and sits in each of the four lanes of the body.
    for (let shift = 0; shift < 4; shift++) {
      const pad = randomFloats(rng, shift);
      for (let len = 1; len <= x.length; len++) {
        const mark = e.mark();
        const run = runBoth(
          e,
          a,
          Float32Array.of(...pad, ...x.subarray(0, len)),
          Float32Array.of(...pad, ...dout.subarray(0, len)),
        );
        e.release(mark);
        const got = {
          out: bitsOf(run.out.subarray(shift)),
          dinp: bitsOf(run.dinp.subarray(shift)),
        };
        expect(got, `shift ${shift}, length ${len}`).toEqual({
          out: want.out.slice(0, len),
          dinp: want.dinp.slice(0, len),
        });
      }
    }
  });
});

describe('exp-based forwards: strided sweep over f32 bit patterns', () => {
  // Every 4099th f32 (odd stride: varied low mantissa bits) over the range where the function is
  // not yet constant in f32, subnormal results included.
  const STRIDE = 4099;
  const sweeps: [string, number, number][] = [
    ['sigmoid', -105, 20],
    ['tanh', -10, 10],
    ['elu α=1', -20, 1],
  ];
  it.each(sweeps)('%s on [%d, %d]', (name, lo, hi) => {
    const a = ACTIVATIONS.find((act) => label(act) === name)!;
    const xs: number[] = [];
    const f32 = new Float32Array(1);
    const bits = new Uint32Array(f32.buffer);
    for (const [from, to] of [
      [-0, lo],
      [0, hi],
    ] as const) {
      f32[0] = from;
      const start = bits[0]!;
      f32[0] = to;
      for (let b = start; b <= bits[0]!; b += STRIDE) xs.push(f32FromBits(b));
    }
    const x = Float32Array.from(xs);
    const e = createEngine();
    const xp = put(e, x);
    forward(e, a, xp, xp, x.length);
    const { ulps, at } = maxUlpError(e.f32(xp, x.length), a.forwardRef(x, a.alpha ?? 0));
    expect(ulps, `at x = ${x[at]}`).toBeLessThanOrEqual(a.maxUlp as number);
  });
});

describe('dropout_apply', () => {
  it.each(SIZES)('out = inp · mask exactly, forward and backward, n=%i', (n) => {
    const e = createEngine();
    const rng = new Rng(n + 5);
    const keep = Math.fround(1 / (1 - 0.3));
    const mask = Float32Array.from({ length: n }, () => (rng.nextFloat() < 0.3 ? 0 : keep));
    const x = mixedInputs(rng, n);
    const dout = randomFloats(rng, n);
    const xp = put(e, x);
    const mp = put(e, mask);
    const outp = put(e, new Float32Array(n));
    kernelsOf(e).dropout_apply!(outp, xp, mp, n);
    expect(bitsOf(e.f32(outp, n))).toEqual(bitsOf(dropoutApplyRef(x, mask)));
    // backward with the same mask, in place (dinp == dout)
    const dp = put(e, dout);
    kernelsOf(e).dropout_apply!(dp, dp, mp, n);
    expect(bitsOf(e.f32(dp, n))).toEqual(bitsOf(dropoutApplyRef(dout, mask)));
    // forward in place, and NaN·0 stays NaN
    kernelsOf(e).dropout_apply!(xp, xp, mp, n);
    expect(bitsOf(e.f32(xp, n))).toEqual(bitsOf(dropoutApplyRef(x, mask)));
  });

  it('keeps NaN where the mask is 0, in the body and the tail', () => {
    const e = createEngine();
    const x = new Float32Array([NaN, 1, 2, 3, 4, NaN]);
    const mask = new Float32Array([0, 0, 2, 2, 2, 0]);
    const xp = put(e, x);
    kernelsOf(e).dropout_apply!(xp, xp, put(e, mask), x.length);
    const out = e.f32(xp, x.length);
    expect([out[0], out[5]]).toEqual([NaN, NaN]);
    expect(Array.from(out.subarray(1, 5))).toEqual([0, 4, 6, 8]);
  });
});
