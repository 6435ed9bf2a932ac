/**
 * RMSprop and Adagrad kernels (assembly/optim.ts) against scalar references that round every
 * operation to f32 with Math.fround in the kernels' order: the wasm result must match bit for bit
 * over several steps, on sizes that exercise the SIMD body, the scalar tail and both. A first-step
 * check against the closed form (f64, 1e-6 relative) pins the PyTorch semantics independently.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import { Rng } from '../src/engine/rng.js';
import { put, randomFloats } from './helpers.js';
import { bitsOf } from './reference/activations.js';

const f = Math.fround;
const SIZES = [0, 1, 3, 4, 5, 15, 16, 17, 33, 784, 1000];

type KernelFn = (...args: number[]) => number;
/** src/engine/kernels.ts may not list these exports yet; reach them by name. */
const kernelsOf = (e: Engine) => e.kernels as unknown as Record<string, KernelFn>;

/**
 * RMSprop (PyTorch, no momentum, not centered) in the kernel's f32 operation order:
 * g = grad + wd·p; sq = ρ·sq + (1−ρ)·(g·g); p = p − lr·(g / (sqrt(sq) + ε)). Updates in place.
 */
export function rmspropRef(
  params: Float32Array,
  grads: Float32Array,
  sq: Float32Array,
  lr: number,
  rho: number,
  eps: number,
  wd: number,
): void {
  const [flr, frho, feps, fwd] = [f(lr), f(rho), f(eps), f(wd)];
  const oneMinusRho = f(1 - frho);
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    const g = f(grads[i]! + f(fwd * p));
    const s = f(f(frho * sq[i]!) + f(oneMinusRho * f(g * g)));
    sq[i] = s;
    params[i] = f(p - f(flr * f(g / f(f(Math.sqrt(s)) + feps))));
  }
}

/** Adagrad (PyTorch, lr_decay 0) in the kernel's f32 operation order. Updates in place. */
export function adagradRef(
  params: Float32Array,
  grads: Float32Array,
  sum: Float32Array,
  lr: number,
  eps: number,
  wd: number,
): void {
  const [flr, feps, fwd] = [f(lr), f(eps), f(wd)];
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    const g = f(grads[i]! + f(fwd * p));
    const s = f(sum[i]! + f(g * g));
    sum[i] = s;
    params[i] = f(p - f(flr * f(g / f(f(Math.sqrt(s)) + feps))));
  }
}

describe('rmsprop_step', () => {
  const configs = [
    { lr: 1e-2, rho: 0.99, eps: 1e-8, wd: 0 },
    { lr: 1e-3, rho: 0.9, eps: 1e-6, wd: 1e-2 },
  ];
  for (const c of configs) {
    it.each(SIZES)(`${JSON.stringify(c)} matches bit for bit over 5 steps, n=%i`, (n) => {
      const e = createEngine();
      const rng = new Rng(n + 31);
      const params = randomFloats(rng, n);
      const sq = new Float32Array(n);
      const pp = put(e, params);
      const sp = put(e, sq);
      for (let step = 0; step < 5; step++) {
        // Gradients over several magnitudes, and an exact 0 (sqrt(0) + ε path) every few floats.
        const grads = randomFloats(rng, n, 10 ** -step);
        for (let i = 0; i < n; i += 7) grads[i] = 0;
        const gp = put(e, grads);
        kernelsOf(e).rmsprop_step!(pp, gp, sp, n, c.lr, c.rho, c.eps, c.wd);
        rmspropRef(params, grads, sq, c.lr, c.rho, c.eps, c.wd);
      }
      expect(bitsOf(e.f32(pp, n))).toEqual(bitsOf(params));
      expect(bitsOf(e.f32(sp, n))).toEqual(bitsOf(sq));
    });
  }

  it('first step from sq = 0 moves each parameter by lr/sqrt(1 − ρ) (PyTorch semantics)', () => {
    const e = createEngine();
    const n = 7;
    const grads = Float32Array.from({ length: n }, (_, i) => (i - 3) * 0.37 + 0.01);
    const pp = put(e, new Float32Array(n));
    const gp = put(e, grads);
    const sp = put(e, new Float32Array(n));
    kernelsOf(e).rmsprop_step!(pp, gp, sp, n, 1e-3, 0.99, 1e-8, 0);
    const params = e.f32(pp, n);
    for (let i = 0; i < n; i++) {
      const g = grads[i]!;
      const want = (-1e-3 * g) / (Math.sqrt(0.01 * g * g) + 1e-8);
      expect(Math.abs(params[i]! - want)).toBeLessThan(1e-6 * Math.abs(want));
    }
  });
});

describe('adagrad_step', () => {
  const configs = [
    { lr: 1e-2, eps: 1e-10, wd: 0, init: 0 },
    { lr: 5e-2, eps: 1e-8, wd: 1e-3, init: 0.1 },
  ];
  for (const c of configs) {
    it.each(SIZES)(`${JSON.stringify(c)} matches bit for bit over 5 steps, n=%i`, (n) => {
      const e = createEngine();
      const rng = new Rng(n + 41);
      const params = randomFloats(rng, n);
      const sum = new Float32Array(n).fill(c.init);
      const pp = put(e, params);
      const sp = put(e, sum);
      for (let step = 0; step < 5; step++) {
        const grads = randomFloats(rng, n, 10 ** -step);
        for (let i = 0; i < n; i += 7) grads[i] = 0;
        const gp = put(e, grads);
        kernelsOf(e).adagrad_step!(pp, gp, sp, n, c.lr, c.eps, c.wd);
        adagradRef(params, grads, sum, c.lr, c.eps, c.wd);
      }
      expect(bitsOf(e.f32(pp, n))).toEqual(bitsOf(params));
      expect(bitsOf(e.f32(sp, n))).toEqual(bitsOf(sum));
    });
  }

  it('first step from sum = 0 moves each parameter by lr against its gradient', () => {
    const e = createEngine();
    const n = 7;
    const grads = Float32Array.from({ length: n }, (_, i) => (i - 3) * 0.37 + 0.01);
    const pp = put(e, new Float32Array(n));
    const gp = put(e, grads);
    const sp = put(e, new Float32Array(n));
    kernelsOf(e).adagrad_step!(pp, gp, sp, n, 1e-2, 1e-10, 0);
    const params = e.f32(pp, n);
    for (let i = 0; i < n; i++) {
      expect(Math.abs(params[i]! + 1e-2 * Math.sign(grads[i]!))).toBeLessThan(1e-8);
    }
  });
});

describe('optimizer tails', () => {
  // Every prefix length at every lane offset, so each element also goes through the scalar tail
  // (the sized tests above put at most 3 elements there): the same bits either way.
  const steps: Record<string, (e: Engine, p: number, g: number, s: number, n: number) => void> = {
    rmsprop_step: (e, p, g, s, n) => kernelsOf(e).rmsprop_step!(p, g, s, n, 1e-2, 0.9, 1e-8, 1e-2),
    adagrad_step: (e, p, g, s, n) => kernelsOf(e).adagrad_step!(p, g, s, n, 1e-2, 1e-10, 1e-2),
  };
  const refs: Record<string, (p: Float32Array, g: Float32Array, s: Float32Array) => void> = {
    rmsprop_step: (p, g, s) => rmspropRef(p, g, s, 1e-2, 0.9, 1e-8, 1e-2),
    adagrad_step: (p, g, s) => adagradRef(p, g, s, 1e-2, 1e-10, 1e-2),
  };
  it.each(Object.keys(steps))('%s gives the same bits in the SIMD body and the tail', (name) => {
    const e = createEngine();
    const rng = new Rng(77);
    const m = 41;
    const params = randomFloats(rng, m);
    const grads = randomFloats(rng, m);
    const state = randomFloats(rng, m).map(Math.abs);
    const [wantP, wantS] = [params.slice(), state.slice()];
    refs[name]!(wantP, grads, wantS);
    for (let shift = 0; shift < 4; shift++) {
      const pad = randomFloats(rng, shift).map(Math.abs);
      for (let len = 1; len <= m; len++) {
        const mark = e.mark();
        const pp = put(e, Float32Array.of(...pad, ...params.subarray(0, len)));
        const gp = put(e, Float32Array.of(...pad, ...grads.subarray(0, len)));
        const sp = put(e, Float32Array.of(...pad, ...state.subarray(0, len)));
        steps[name]!(e, pp, gp, sp, shift + len);
        expect(
          bitsOf(e.f32(pp, shift + len).subarray(shift)),
          `shift ${shift}, length ${len}`,
        ).toEqual(bitsOf(wantP.subarray(0, len)));
        expect(bitsOf(e.f32(sp, shift + len).subarray(shift))).toEqual(
          bitsOf(wantS.subarray(0, len)),
        );
        e.release(mark);
      }
    }
  });
});

describe('optimizer steps on a NaN gradient', () => {
  it.each(['rmsprop_step', 'adagrad_step'])(
    '%s turns the parameter NaN (seen by has_non_finite)',
    (name) => {
      const e = createEngine();
      const n = 9;
      const grads = new Float32Array(n).fill(0.5);
      grads[8] = NaN; // tail
      grads[2] = NaN; // SIMD body
      const pp = put(e, new Float32Array(n));
      const gp = put(e, grads);
      const sp = put(e, new Float32Array(n));
      if (name === 'rmsprop_step') kernelsOf(e).rmsprop_step!(pp, gp, sp, n, 1e-3, 0.99, 1e-8, 0);
      else kernelsOf(e).adagrad_step!(pp, gp, sp, n, 1e-2, 1e-10, 0);
      const params = e.f32(pp, n);
      expect([params[2], params[8]]).toEqual([NaN, NaN]);
      expect(e.kernels.has_non_finite(pp, n)).toBe(1);
    },
  );
});
