/**
 * Elementwise activations and dropout, forward and backward side by side, over n contiguous
 * floats. Backward kernels read the forward *output* (enough for every activation here), so a
 * layer caches one tensor. Every kernel may run in place (out == inp, dinp == dout).
 * Each has a 4-wide SIMD body; the tail computes exactly what a lane computes, so a value's
 * result never depends on its position or on n mod 4. A NaN input to a forward gives NaN.
 * exp-based kernels (ELU, sigmoid, tanh) use the f32x4 exp at the end of this file.
 */

/**
 * out = max(inp, 0). May run in place. `pmax(x, 0)` is `x < 0 ? 0 : x`: a NaN input stays NaN
 * (so divergence is seen downstream instead of being masked to 0) and it lowers to one maxps.
 */
export function relu_forward(out: usize, inp: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(out + o, f32x4.pmax(v128.load(inp + o), zero));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const x = load<f32>(inp + o);
    store<f32>(out + o, x < 0 ? 0 : x);
  }
}

/** dinp = dout where out > 0, else 0. May run in place (dinp == dout). */
export function relu_backward(dinp: usize, dout: usize, out: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const mask = f32x4.gt(v128.load(out + o), zero);
    v128.store(dinp + o, v128.and(v128.load(dout + o), mask));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    store<f32>(dinp + o, load<f32>(out + o) > 0 ? load<f32>(dout + o) : 0);
  }
}

/**
 * out = x ≥ 0 ? x : α·x. May run in place. Compare + select rather than max(x, α·x), which is
 * only right for α ≤ 1. A NaN fails `x ≥ 0` and α·NaN is NaN; α = 0 maps −Inf to NaN (0·−Inf).
 */
export function leaky_relu_forward(out: usize, inp: usize, n: i32, alpha: f32): void {
  const va = f32x4.splat(alpha);
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const x = v128.load(inp + o);
    v128.store(out + o, v128.bitselect(x, f32x4.mul(va, x), f32x4.ge(x, zero)));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const x = load<f32>(inp + o);
    store<f32>(out + o, x >= 0 ? x : alpha * x);
  }
}

/** dinp = out > 0 ? dout : α·dout (out > 0 ⇔ x > 0 for α ≥ 0). May run in place. */
export function leaky_relu_backward(
  dinp: usize,
  dout: usize,
  out: usize,
  n: i32,
  alpha: f32,
): void {
  const va = f32x4.splat(alpha);
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const d = v128.load(dout + o);
    const pos = f32x4.gt(v128.load(out + o), zero);
    v128.store(dinp + o, v128.bitselect(d, f32x4.mul(va, d), pos));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const d = load<f32>(dout + o);
    store<f32>(dinp + o, load<f32>(out + o) > 0 ? d : alpha * d);
  }
}

/**
 * out = x > 0 ? x : α·(exp(x) − 1), the negative side computed as expm1 (no cancellation near 0).
 * Max error 1 ulp for α = 1 or a power of two, 2 ulp for other α (the extra rounding of α·).
 */
export function elu_forward(out: usize, inp: usize, n: i32, alpha: f32): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(out + o, inline.always(elu_f32x4(v128.load(inp + o), va)));
  }
  if (i < n) {
    const o = (<usize>i) << 2;
    store_partial(out + o, elu_f32x4(load_partial(inp + o, n - i), va), n - i);
  }
}

/** dinp = out > 0 ? dout : dout·(out + α), since d/dx α(eˣ − 1) = αeˣ = out + α. In place OK. */
export function elu_backward(dinp: usize, dout: usize, out: usize, n: i32, alpha: f32): void {
  const va = f32x4.splat(alpha);
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const d = v128.load(dout + o);
    const y = v128.load(out + o);
    v128.store(dinp + o, v128.bitselect(d, f32x4.mul(d, f32x4.add(y, va)), f32x4.gt(y, zero)));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const d = load<f32>(dout + o);
    const y = load<f32>(out + o);
    store<f32>(dinp + o, y > 0 ? d : d * (y + alpha));
  }
}

/** out = 1/(1 + exp(−x)), max error 2.5 ulp (subnormal outputs included); ±Inf → 1/0. */
export function sigmoid_forward(out: usize, inp: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(out + o, inline.always(sigmoid_f32x4(v128.load(inp + o))));
  }
  if (i < n) {
    const o = (<usize>i) << 2;
    store_partial(out + o, sigmoid_f32x4(load_partial(inp + o, n - i)), n - i);
  }
}

/** dinp = dout·out·(1 − out). May run in place. */
export function sigmoid_backward(dinp: usize, dout: usize, out: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const y = v128.load(out + o);
    v128.store(dinp + o, f32x4.mul(f32x4.mul(v128.load(dout + o), y), f32x4.sub(one, y)));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const y = load<f32>(out + o);
    store<f32>(dinp + o, load<f32>(dout + o) * y * (1 - y));
  }
}

/** out = tanh(x), max error 2.5 ulp; ±1 for large |x|, tanh(±0) = ±0. */
export function tanh_forward(out: usize, inp: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(out + o, inline.always(tanh_f32x4(v128.load(inp + o))));
  }
  if (i < n) {
    const o = (<usize>i) << 2;
    store_partial(out + o, tanh_f32x4(load_partial(inp + o, n - i)), n - i);
  }
}

/** dinp = dout·(1 − out²). May run in place. */
export function tanh_backward(dinp: usize, dout: usize, out: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const y = v128.load(out + o);
    v128.store(dinp + o, f32x4.mul(v128.load(dout + o), f32x4.sub(one, f32x4.mul(y, y))));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const y = load<f32>(out + o);
    store<f32>(dinp + o, load<f32>(dout + o) * (1 - y * y));
  }
}

/**
 * out = inp ⊙ mask, mask ∈ {0, 1/(1−p)} drawn by the host: dropout's forward, and with the same
 * mask its backward (dinp = dout ⊙ mask). May run in place. NaN·0 stays NaN, as in PyTorch.
 */
export function dropout_apply(out: usize, inp: usize, mask: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    v128.store(out + o, f32x4.mul(v128.load(inp + o), v128.load(mask + o)));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    store<f32>(out + o, load<f32>(inp + o) * load<f32>(mask + o));
  }
}

// ---------------------------------------------------------------------------------------------
// Vector exp. WebAssembly has no exp instruction. Scalar libm per element against this f32x4
// polynomial, ns/element at n = 8192 (Node 20, AMD EPYC, min of 30 interleaved rounds; relu 0.11):
//   sigmoid  Mathf.exp 4.6 vs 1.8    tanh  Mathf.tanh 13.2 vs 1.6    elu  Mathf.expm1 6.1 vs 1.35
// Max error against f64 over every f32 input where the result is not yet constant: sigmoid 2.41
// ulp, tanh 2.498 ulp, expm1 (ELU, α = 1) 0.95 ulp. The tails of these kernels run the same
// vector function on a partly filled vector, so an element's bits do not depend on whether it
// lands in the body or the tail.

/** Cody–Waite split of ln 2 (hi has 9 significant bits, so k·hi is exact for |k| ≤ 2^15). */
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.1219444e-4;
const LOG2E: f32 = 1.44269504;

/**
 * expm1(r) for r = x − k·ln2, |r| ≤ ln2/2, as r + r²·P(r) with the polynomial of Cephes
 * `expf.c` (S. Moshier), written without its constant 1 so small results keep full precision.
 */
function expm1_reduced_f32x4(x: v128, k: v128): v128 {
  let r = f32x4.sub(x, f32x4.mul(k, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(k, f32x4.splat(LN2_LO)));
  let p = f32x4.splat(1.98756915e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.39819995e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.16657959e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.66666655e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.00000012e-1));
  return f32x4.add(r, f32x4.mul(f32x4.mul(r, r), p));
}

/** 2^k for integer-valued float lanes k ∈ [−126, 127], built in the exponent field. */
function pow2_f32x4(k: v128): v128 {
  return i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(k), i32x4.splat(127)), 23);
}

/**
 * exp(x) − 1 for lanes x ≤ 0 (NaN stays NaN): 2^k·expm1(r) + (2^k − 1), where the product and
 * 2^k − 1 are exact (k ≤ 0), so only the last add rounds; k = 0 (|x| < 0.35) returns expm1(r)
 * itself. Below −17.33 the f32 result is −1, so clamping at −60 changes nothing and keeps 2^k
 * normal. `pmax(x, c)` is `x < c ? c : x`, which passes NaN through.
 */
function expm1_nonpos_f32x4(x0: v128): v128 {
  const x = f32x4.pmax(x0, f32x4.splat(-60));
  const k = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  const q = inline.always(expm1_reduced_f32x4(x, k));
  const s = inline.always(pow2_f32x4(k));
  return f32x4.add(f32x4.mul(s, q), f32x4.sub(s, f32x4.splat(1)));
}

/**
 * exp(x) for lanes x ≤ 0 (NaN stays NaN), subnormal results included: exp(−104) already
 * rounds to 0, and 2^k (k ≥ −150) is applied as two normal factors 2^⌊k/2⌋·2^⌈k/2⌉, so only
 * the last multiply rounds.
 */
function exp_nonpos_f32x4(x0: v128): v128 {
  const x = f32x4.pmax(x0, f32x4.splat(-104));
  const k = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  const q = inline.always(expm1_reduced_f32x4(x, k));
  const k1 = f32x4.floor(f32x4.mul(k, f32x4.splat(0.5)));
  const s1 = inline.always(pow2_f32x4(k1));
  const s2 = inline.always(pow2_f32x4(f32x4.sub(k, k1)));
  return f32x4.mul(f32x4.mul(f32x4.add(q, f32x4.splat(1)), s1), s2);
}

function elu_f32x4(x: v128, va: v128): v128 {
  const zero = f32x4.splat(0);
  const neg = f32x4.mul(va, inline.always(expm1_nonpos_f32x4(f32x4.pmin(x, zero))));
  return v128.bitselect(x, neg, f32x4.gt(x, zero));
}

/**
 * With e = exp(−|x|) ∈ (0, 1]: σ(x) = 1/(1 + e) for x ≥ 0 and e/(1 + e) for x < 0. Nothing
 * overflows (±1e30, ±Inf give 1 and 0) and tiny outputs keep relative precision.
 */
function sigmoid_f32x4(x: v128): v128 {
  const one = f32x4.splat(1);
  const e = inline.always(exp_nonpos_f32x4(v128.or(x, f32x4.splat(-0.0))));
  const num = v128.bitselect(one, e, f32x4.ge(x, f32x4.splat(0)));
  return f32x4.div(num, f32x4.add(one, e));
}

/**
 * With t = expm1(−2|x|) ∈ [−1, 0]: tanh|x| = −t/(2 + t), accurate near 0 (t ≈ −2|x|) and exactly
 * 1 once t rounds to −1. The sign of x is copied back in (odd function; keeps ±0 and NaN).
 */
function tanh_f32x4(x: v128): v128 {
  const sign = f32x4.splat(-0.0);
  const t = inline.always(expm1_nonpos_f32x4(f32x4.mul(v128.or(x, sign), f32x4.splat(2))));
  const y = f32x4.div(f32x4.neg(t), f32x4.add(t, f32x4.splat(2)));
  return v128.bitselect(x, y, sign);
}

/** Lanes 0..k−1 loaded from p (k = 1..3), the rest 0; never reads past element k − 1. */
function load_partial(p: usize, k: i32): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (k > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (k > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** Store lanes 0..k−1 of v to p (k = 1..3). */
function store_partial(p: usize, v: v128, k: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (k > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (k > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}
