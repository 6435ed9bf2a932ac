/**
 * Elementwise activations, forward and backward side by side, over n contiguous floats.
 * Backward kernels read the forward *output* (enough for every activation here), so a layer
 * caches one tensor. Each has a 4-wide SIMD body and a scalar tail.
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
