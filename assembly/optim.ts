/**
 * Optimizer updates: one flat loop over a whole parameter region (params, grads and state are
 * laid out in the same order by the host), 4-wide SIMD body and scalar tail. The scalar tail
 * uses the same operation order as the SIMD lanes so a float lands identically in either path.
 * Each update also has a `_shared` twin: one thread's part of the update, in units of
 * CHUNK_FLOATS taken from its range of them (assembly/claim.ts), its pinned splats on that
 * thread's own lines (claim_pins); every float gets the same operations whichever thread
 * updates it.
 */

import { CHUNK_FLOATS, claim_next, claim_pins } from './claim';
import { pin, pin_area, use_pin_area } from './simd';

/**
 * SGD with optional L2 weight decay, momentum and Nesterov momentum (PyTorch's formulation):
 *   g = grad + wd·p;  v = μ·v + g;  p −= lr·(nesterov ? g + μ·v : v)     (μ = 0: p −= lr·g)
 * `velocity` is unused (may be 0) when momentum is 0.
 */
export function sgd_step(
  params: usize,
  grads: usize,
  velocity: usize,
  n: i32,
  lr: f32,
  momentum: f32,
  nesterov: i32,
  weightDecay: f32,
): void {
  const slots = pin_area(); // pinned splats (simd.ts: pin)
  const vlr = pin(slots, f32x4.splat(lr));
  const vmu = pin(slots + 16, f32x4.splat(momentum));
  const vwd = pin(slots + 32, f32x4.splat(weightDecay));
  let i = 0;
  if (momentum == 0) {
    for (; i + 4 <= n; i += 4) {
      const o = (<usize>i) << 2;
      const p = v128.load(params + o);
      const g = f32x4.add(v128.load(grads + o), f32x4.mul(vwd, p));
      v128.store(params + o, f32x4.sub(p, f32x4.mul(vlr, g)));
    }
    for (; i < n; i++) {
      const o = (<usize>i) << 2;
      const p = load<f32>(params + o);
      const g = load<f32>(grads + o) + weightDecay * p;
      store<f32>(params + o, p - lr * g);
    }
    return;
  }
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const p = v128.load(params + o);
    const g = f32x4.add(v128.load(grads + o), f32x4.mul(vwd, p));
    const v = f32x4.add(f32x4.mul(vmu, v128.load(velocity + o)), g);
    v128.store(velocity + o, v);
    const step = nesterov ? f32x4.add(g, f32x4.mul(vmu, v)) : v;
    v128.store(params + o, f32x4.sub(p, f32x4.mul(vlr, step)));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const p = load<f32>(params + o);
    const g = load<f32>(grads + o) + weightDecay * p;
    const v = momentum * load<f32>(velocity + o) + g;
    store<f32>(velocity + o, v);
    const step = nesterov ? g + momentum * v : v;
    store<f32>(params + o, p - lr * step);
  }
}

/**
 * Adam (Kingma & Ba) in PyTorch's form, with optional L2 weight decay added to the gradient:
 *   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 *   p −= lr · (m / bc1) / (sqrt(v / bc2) + ε)         bc1 = 1 − β1^t, bc2 = 1 − β2^t (host)
 */
export function adam_step(
  params: usize,
  grads: usize,
  m: usize,
  v: usize,
  n: i32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  biasCorrection1: f32,
  biasCorrection2: f32,
  weightDecay: f32,
): void {
  const slots = pin_area(); // pinned splats (simd.ts: pin)
  const vb1 = pin(slots, f32x4.splat(beta1));
  const vb2 = pin(slots + 16, f32x4.splat(beta2));
  const v1b1 = pin(slots + 32, f32x4.splat(1 - beta1));
  const v1b2 = pin(slots + 48, f32x4.splat(1 - beta2));
  const vStep = pin(slots + 64, f32x4.splat(lr / biasCorrection1));
  const vInvBc2 = pin(slots + 80, f32x4.splat(1 / biasCorrection2));
  const vEps = pin(slots + 96, f32x4.splat(eps));
  const vwd = pin(slots + 112, f32x4.splat(weightDecay));
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const p = v128.load(params + o);
    const g = f32x4.add(v128.load(grads + o), f32x4.mul(vwd, p));
    const mi = f32x4.add(f32x4.mul(vb1, v128.load(m + o)), f32x4.mul(v1b1, g));
    const vi = f32x4.add(f32x4.mul(vb2, v128.load(v + o)), f32x4.mul(v1b2, f32x4.mul(g, g)));
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const denom = f32x4.add(f32x4.sqrt(f32x4.mul(vi, vInvBc2)), vEps);
    v128.store(params + o, f32x4.sub(p, f32x4.div(f32x4.mul(vStep, mi), denom)));
  }
  const step = lr / biasCorrection1;
  const invBc2: f32 = 1 / biasCorrection2;
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const p = load<f32>(params + o);
    const g = load<f32>(grads + o) + weightDecay * p;
    const mi = beta1 * load<f32>(m + o) + (1 - beta1) * g;
    const vi = beta2 * load<f32>(v + o) + (1 - beta2) * (g * g);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const denom = Mathf.sqrt(vi * invBc2) + eps;
    store<f32>(params + o, p - (step * mi) / denom);
  }
}

/**
 * RMSprop in PyTorch's form (no momentum, not centered), optional L2 weight decay:
 *   g = grad + wd·p;  sq = ρ·sq + (1−ρ)·g²;  p −= lr·(g / (sqrt(sq) + ε))
 * The division comes before the lr multiply, as in PyTorch's `addcdiv_(grad, avg, value=-lr)`.
 */
export function rmsprop_step(
  params: usize,
  grads: usize,
  sq: usize,
  n: i32,
  lr: f32,
  rho: f32,
  eps: f32,
  weightDecay: f32,
): void {
  const slots = pin_area(); // pinned splats (simd.ts: pin)
  const vlr = pin(slots, f32x4.splat(lr));
  const vrho = pin(slots + 16, f32x4.splat(rho));
  const v1rho = pin(slots + 32, f32x4.splat(1 - rho));
  const vEps = pin(slots + 48, f32x4.splat(eps));
  const vwd = pin(slots + 64, f32x4.splat(weightDecay));
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const p = v128.load(params + o);
    const g = f32x4.add(v128.load(grads + o), f32x4.mul(vwd, p));
    const s = f32x4.add(f32x4.mul(vrho, v128.load(sq + o)), f32x4.mul(v1rho, f32x4.mul(g, g)));
    v128.store(sq + o, s);
    const denom = f32x4.add(f32x4.sqrt(s), vEps);
    v128.store(params + o, f32x4.sub(p, f32x4.mul(vlr, f32x4.div(g, denom))));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const p = load<f32>(params + o);
    const g = load<f32>(grads + o) + weightDecay * p;
    const s = rho * load<f32>(sq + o) + (1 - rho) * (g * g);
    store<f32>(sq + o, s);
    store<f32>(params + o, p - lr * (g / (Mathf.sqrt(s) + eps)));
  }
}

/**
 * Adagrad in PyTorch's form (lr_decay 0, initial accumulator from the host), optional L2 decay:
 *   g = grad + wd·p;  sum += g²;  p −= lr·(g / (sqrt(sum) + ε))
 */
export function adagrad_step(
  params: usize,
  grads: usize,
  sum: usize,
  n: i32,
  lr: f32,
  eps: f32,
  weightDecay: f32,
): void {
  const slots = pin_area(); // pinned splats (simd.ts: pin)
  const vlr = pin(slots, f32x4.splat(lr));
  const vEps = pin(slots + 16, f32x4.splat(eps));
  const vwd = pin(slots + 32, f32x4.splat(weightDecay));
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = (<usize>i) << 2;
    const p = v128.load(params + o);
    const g = f32x4.add(v128.load(grads + o), f32x4.mul(vwd, p));
    const s = f32x4.add(v128.load(sum + o), f32x4.mul(g, g));
    v128.store(sum + o, s);
    const denom = f32x4.add(f32x4.sqrt(s), vEps);
    v128.store(params + o, f32x4.sub(p, f32x4.mul(vlr, f32x4.div(g, denom))));
  }
  for (; i < n; i++) {
    const o = (<usize>i) << 2;
    const p = load<f32>(params + o);
    const g = load<f32>(grads + o) + weightDecay * p;
    const s = load<f32>(sum + o) + g * g;
    store<f32>(sum + o, s);
    store<f32>(params + o, p - lr * (g / (Mathf.sqrt(s) + eps)));
  }
}

/**
 * 1 if any of the n floats at x is NaN or ±Inf. x − x is 0 for finite x and NaN otherwise; four
 * independent sums of 4 vectors each keep the adds off one dependency chain (one chain made this
 * add-latency-bound: ≈50 µs for the 235k gradients of mlp-256-128, checked every step).
 */
export function has_non_finite(x: usize, n: i32): i32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + ((<usize>i) << 2);
    const a = v128.load(p);
    const b = v128.load(p, 16);
    const c = v128.load(p, 32);
    const d = v128.load(p, 48);
    acc0 = f32x4.add(acc0, f32x4.sub(a, a));
    acc1 = f32x4.add(acc1, f32x4.sub(b, b));
    acc2 = f32x4.add(acc2, f32x4.sub(c, c));
    acc3 = f32x4.add(acc3, f32x4.sub(d, d));
  }
  for (; i + 4 <= n; i += 4) {
    const a = v128.load(x + ((<usize>i) << 2));
    acc0 = f32x4.add(acc0, f32x4.sub(a, a));
  }
  let tail: f32 = 0;
  for (; i < n; i++) {
    const a = load<f32>(x + ((<usize>i) << 2));
    tail += a - a;
  }
  const acc = f32x4.add(f32x4.add(acc0, acc1), f32x4.add(acc2, acc3));
  const lanes =
    f32x4.extract_lane(acc, 0) +
    f32x4.extract_lane(acc, 1) +
    f32x4.extract_lane(acc, 2) +
    f32x4.extract_lane(acc, 3) +
    tail;
  return lanes != lanes ? 1 : 0;
}

// ---- Shared across threads: each caller runs the chunks it claims (see assembly/claim.ts).

/** Floats in unit u of a loop over n floats. */
function chunk_len(u: i32, n: i32): i32 {
  return min(CHUNK_FLOATS, n - u * CHUNK_FLOATS);
}

/** sgd_step over the chunks this thread claims at `claim`. */
export function sgd_step_shared(
  claim: usize,
  params: usize,
  grads: usize,
  velocity: usize,
  n: i32,
  lr: f32,
  momentum: f32,
  nesterov: i32,
  weightDecay: f32,
): void {
  const alone = pin_area();
  use_pin_area(claim_pins(claim));
  for (let u = claim_next(claim, 0); u * CHUNK_FLOATS < n; u = claim_next(claim, u + 1)) {
    const o = (<usize>u * <usize>CHUNK_FLOATS) << 2;
    const vel = velocity ? velocity + o : 0;
    sgd_step(params + o, grads + o, vel, chunk_len(u, n), lr, momentum, nesterov, weightDecay);
  }
  use_pin_area(alone);
}

/**
 * has_non_finite over the chunks this thread claims at `claim`: writes 1 to the i32 at `found`
 * when one of them holds NaN or ±Inf (the host zeroes it first; threads only ever write 1).
 */
export function has_non_finite_shared(claim: usize, x: usize, n: i32, found: usize): void {
  for (let u = claim_next(claim, 0); u * CHUNK_FLOATS < n; u = claim_next(claim, u + 1)) {
    const o = (<usize>u * <usize>CHUNK_FLOATS) << 2;
    if (has_non_finite(x + o, chunk_len(u, n))) store<i32>(found, 1);
  }
}

/** adam_step over the chunks this thread claims at `claim`. */
export function adam_step_shared(
  claim: usize,
  params: usize,
  grads: usize,
  m: usize,
  v: usize,
  n: i32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  biasCorrection1: f32,
  biasCorrection2: f32,
  weightDecay: f32,
): void {
  const alone = pin_area();
  use_pin_area(claim_pins(claim));
  for (let u = claim_next(claim, 0); u * CHUNK_FLOATS < n; u = claim_next(claim, u + 1)) {
    const o = (<usize>u * <usize>CHUNK_FLOATS) << 2;
    adam_step(
      params + o,
      grads + o,
      m + o,
      v + o,
      chunk_len(u, n),
      lr,
      beta1,
      beta2,
      eps,
      biasCorrection1,
      biasCorrection2,
      weightDecay,
    );
  }
  use_pin_area(alone);
}

/** rmsprop_step over the chunks this thread claims at `claim`. */
export function rmsprop_step_shared(
  claim: usize,
  params: usize,
  grads: usize,
  sq: usize,
  n: i32,
  lr: f32,
  rho: f32,
  eps: f32,
  weightDecay: f32,
): void {
  const alone = pin_area();
  use_pin_area(claim_pins(claim));
  for (let u = claim_next(claim, 0); u * CHUNK_FLOATS < n; u = claim_next(claim, u + 1)) {
    const o = (<usize>u * <usize>CHUNK_FLOATS) << 2;
    rmsprop_step(params + o, grads + o, sq + o, chunk_len(u, n), lr, rho, eps, weightDecay);
  }
  use_pin_area(alone);
}

/** adagrad_step over the chunks this thread claims at `claim`. */
export function adagrad_step_shared(
  claim: usize,
  params: usize,
  grads: usize,
  sum: usize,
  n: i32,
  lr: f32,
  eps: f32,
  weightDecay: f32,
): void {
  const alone = pin_area();
  use_pin_area(claim_pins(claim));
  for (let u = claim_next(claim, 0); u * CHUNK_FLOATS < n; u = claim_next(claim, u + 1)) {
    const o = (<usize>u * <usize>CHUNK_FLOATS) << 2;
    adagrad_step(params + o, grads + o, sum + o, chunk_len(u, n), lr, eps, weightDecay);
  }
  use_pin_area(alone);
}
