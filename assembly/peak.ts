/**
 * The machine's f32x4 arithmetic peak as WebAssembly sees it, for benchmarks to quote GEMM speed
 * as a fraction of it. Register-only: no loads or stores in the loop, so only the vector units
 * (and how V8 schedules onto them) set the pace.
 *
 * peak_f32x4(iters) runs `iters` iterations of 12 independent chains x ← x·m + c, each a mul then
 * an add in the baseline build, or one relaxed_madd in the relaxed build (see madd in ./simd.ts):
 * 12 × 8 = 96 flops per iteration. Twelve chains cover a 6-cycle mul→add latency at two pairs per
 * cycle (or a 4-cycle FMA latency at two per cycle), and 12 accumulators + 2 constants = 14 of
 * the 15 vector registers V8 gives wasm on x64, so nothing spills. With m = 0.5 and c = 1 every
 * chain converges to 2: no overflow or subnormals ever slow a lane down. The sum of the chains is
 * returned so the work cannot be optimised away.
 *
 * Measured on the CI machine kind (AMD EPYC, Zen 4, Node 20, ≈3.7 GHz): relaxed ≈59 GFLOP/s, i.e.
 * 16 flop/cycle, two FMAs per cycle; baseline ≈47 GFLOP/s (≈12.7 flop/cycle), occasionally 57:
 * forwarding each product into its add costs more than the two pipes' issue rate. The split loop
 * below reached ≈43 in both builds. A build's peak is the faster of the two loops (bench/gemm.ts).
 */
import { madd } from './simd';

/** Run the register-only throughput loop `iters` times; returns a checksum (24 once converged). */
export function peak_f32x4(iters: i32): f32 {
  const m = f32x4.splat(0.5);
  const c = f32x4.splat(1);
  let x0 = f32x4.splat(0);
  let x1 = f32x4.splat(0.1);
  let x2 = f32x4.splat(0.2);
  let x3 = f32x4.splat(0.3);
  let x4 = f32x4.splat(0.4);
  let x5 = f32x4.splat(0.5);
  let x6 = f32x4.splat(0.6);
  let x7 = f32x4.splat(0.7);
  let x8 = f32x4.splat(0.8);
  let x9 = f32x4.splat(0.9);
  let x10 = f32x4.splat(1.0);
  let x11 = f32x4.splat(1.1);
  for (let i = 0; i < iters; i++) {
    x0 = madd(x0, m, c);
    x1 = madd(x1, m, c);
    x2 = madd(x2, m, c);
    x3 = madd(x3, m, c);
    x4 = madd(x4, m, c);
    x5 = madd(x5, m, c);
    x6 = madd(x6, m, c);
    x7 = madd(x7, m, c);
    x8 = madd(x8, m, c);
    x9 = madd(x9, m, c);
    x10 = madd(x10, m, c);
    x11 = madd(x11, m, c);
  }
  let s = f32x4.add(f32x4.add(f32x4.add(x0, x1), f32x4.add(x2, x3)), f32x4.add(x4, x5));
  s = f32x4.add(s, f32x4.add(f32x4.add(x6, x7), f32x4.add(x8, x9)));
  s = f32x4.add(s, f32x4.add(x10, x11));
  return f32x4.extract_lane(s, 0);
}

/**
 * The same peak with mul and add in separate chains: 6 chains x ← x·m and 6 chains y ← y + c,
 * 12 × 4 = 48 flops per iteration, no mul result feeding an add. Where forwarding a product
 * into an add costs extra cycles (AMD Zen: FMUL and FADD are separate pipes), the chained loop
 * above measures that latency rather than throughput; this one measures the issue rate of the
 * two units, which is what a GEMM's independent products and add chains can use. Pass m = 1 and
 * c = 0 (runtime values, so nothing folds): the lanes then never change.
 */
export function peak_f32x4_split(iters: i32, m: f32, c: f32): f32 {
  const vm = f32x4.splat(m);
  const vc = f32x4.splat(c);
  let x0 = f32x4.splat(1);
  let x1 = f32x4.splat(2);
  let x2 = f32x4.splat(3);
  let x3 = f32x4.splat(4);
  let x4 = f32x4.splat(5);
  let x5 = f32x4.splat(6);
  let y0 = f32x4.splat(1);
  let y1 = f32x4.splat(2);
  let y2 = f32x4.splat(3);
  let y3 = f32x4.splat(4);
  let y4 = f32x4.splat(5);
  let y5 = f32x4.splat(6);
  for (let i = 0; i < iters; i++) {
    x0 = f32x4.mul(x0, vm);
    y0 = f32x4.add(y0, vc);
    x1 = f32x4.mul(x1, vm);
    y1 = f32x4.add(y1, vc);
    x2 = f32x4.mul(x2, vm);
    y2 = f32x4.add(y2, vc);
    x3 = f32x4.mul(x3, vm);
    y3 = f32x4.add(y3, vc);
    x4 = f32x4.mul(x4, vm);
    y4 = f32x4.add(y4, vc);
    x5 = f32x4.mul(x5, vm);
    y5 = f32x4.add(y5, vc);
  }
  let s = f32x4.add(f32x4.add(f32x4.add(x0, x1), f32x4.add(x2, x3)), f32x4.add(x4, x5));
  s = f32x4.add(s, f32x4.add(f32x4.add(y0, y1), f32x4.add(y2, y3)));
  s = f32x4.add(s, f32x4.add(y4, y5));
  return f32x4.extract_lane(s, 0);
}
