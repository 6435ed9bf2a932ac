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
 * out (B, N) = act((a + b) + bias) where a and b are (B, ·) with rows `ld` floats apart (ld ≥ N;
 * out is dense and may be a when ld = N), act ReLU (x < 0 ? 0 : x, as the GEMM epilogue, so NaN
 * stays NaN) when `relu` ≠ 0, bias (N) or 0 for none: a layer computed as two shard products (each
 * over half of its inputs, src/nn/workspace.ts), summed in that fixed order, then its epilogue.
 */
export function dense_sum_bias_act(
  out: usize,
  a: usize,
  b: usize,
  bias: usize,
  B: i32,
  N: i32,
  ld: i32,
  relu: i32,
): void {
  const outRow = (<usize>N) << 2;
  const inRow = (<usize>ld) << 2;
  const zero = f32x4.splat(0);
  for (let r = 0; r < B; r++) {
    const o = out + <usize>r * outRow;
    const pa = a + <usize>r * inRow;
    const pb = b + <usize>r * inRow;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const c = (<usize>j) << 2;
      let x = f32x4.add(v128.load(pa + c), v128.load(pb + c));
      if (bias) x = f32x4.add(x, v128.load(bias + c));
      if (relu) x = f32x4.pmax(x, zero);
      v128.store(o + c, x);
    }
    for (; j < N; j++) {
      const c = (<usize>j) << 2;
      let x = load<f32>(pa + c) + load<f32>(pb + c);
      if (bias) x += load<f32>(bias + c);
      if (relu && x < 0) x = 0;
      store<f32>(o + c, x);
    }
  }
}

/** dst (rows, cols), rows ldDst floats apart = src (rows, cols), rows ldSrc floats apart. */
export function copy_block(
  dst: usize,
  ldDst: i32,
  src: usize,
  ldSrc: i32,
  rows: i32,
  cols: i32,
): void {
  for (let r = 0; r < rows; r++) {
    memory.copy(
      dst + <usize>r * ((<usize>ldDst) << 2),
      src + <usize>r * ((<usize>ldSrc) << 2),
      (<usize>cols) << 2,
    );
  }
}
