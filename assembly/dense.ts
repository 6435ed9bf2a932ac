/**
 * Dense (fully connected) layer pieces that are not a GEMM. The layer itself is
 *   forward:  out (B, N) = inp (B, K) · W (K, N) + b (N)            → gemm_f32_nn with bias
 *   backward: dW (K, N)  = inpᵀ · dout,  dinp (B, K) = dout · Wᵀ    → gemm_f32_tn, gemm_f32_nt
 *             db (N)     = Σ_b dout[b, :]                           → dense_bias_backward
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
