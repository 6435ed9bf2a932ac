/**
 * Dense (fully connected) layer pieces that are not a GEMM. The layer itself is
 *   forward:  out (B, N) = inp (B, K) · W (K, N) + b (N)            → gemm_f32_nn with bias
 *   backward: dW (K, N)  = inpᵀ · dout,  dinp (B, K) = dout · Wᵀ    → gemm_f32_tn, gemm_f32_nt
 *             db (N)     = Σ_b dout[b, :]                           → dense_bias_backward
 * A layer cut into two input shards sums their products with dense_sum_bias_act.
 */
import { GEMM_ACCUMULATE } from './gemm';

/** dbias[N] (= or +=) column sums of dout (B, N), summed in row order b = 0..B-1. */
export function dense_bias_backward(dbias: usize, dout: usize, B: i32, N: i32, flags: i32): void {
  const accumulate = (flags & GEMM_ACCUMULATE) != 0;
  const rowBytes = (<usize>N) << 2;
  let j = 0;
  for (; j + 4 <= N; j += 4) {
    const col = (<usize>j) << 2;
    let acc = accumulate ? v128.load(dbias + col) : f32x4.splat(0);
    let p = dout + col;
    for (let b = 0; b < B; b++) {
      acc = f32x4.add(acc, v128.load(p));
      p += rowBytes;
    }
    v128.store(dbias + col, acc);
  }
  for (; j < N; j++) {
    const col = (<usize>j) << 2;
    let acc: f32 = accumulate ? load<f32>(dbias + col) : 0;
    let p = dout + col;
    for (let b = 0; b < B; b++) {
      acc += load<f32>(p);
      p += rowBytes;
    }
    store<f32>(dbias + col, acc);
  }
}

/**
 * out (B, N) = act((out + other) + bias), act ReLU (x < 0 ? 0 : x, as the GEMM epilogue, so NaN
 * stays NaN) when `relu` ≠ 0, bias 0 for none: a layer computed as two shard products (each over
 * half of its inputs, src/nn/workspace.ts), summed in that fixed order, then its epilogue.
 */
export function dense_sum_bias_act(
  out: usize,
  other: usize,
  bias: usize,
  B: i32,
  N: i32,
  relu: i32,
): void {
  const rowBytes = (<usize>N) << 2;
  const zero = f32x4.splat(0);
  for (let b = 0; b < B; b++) {
    const o = out + <usize>b * rowBytes;
    const p = other + <usize>b * rowBytes;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const c = (<usize>j) << 2;
      let x = f32x4.add(v128.load(o + c), v128.load(p + c));
      if (bias) x = f32x4.add(x, v128.load(bias + c));
      if (relu) x = f32x4.pmax(x, zero);
      v128.store(o + c, x);
    }
    for (; j < N; j++) {
      const c = (<usize>j) << 2;
      let x = load<f32>(o + c) + load<f32>(p + c);
      if (bias) x += load<f32>(bias + c);
      if (relu && x < 0) x = 0;
      store<f32>(o + c, x);
    }
  }
}
