/**
 * Scalar reference for assembly/gemm.ts: the same contract, written the obvious way.
 *   C (M, N) = op(A) · op(B) (+ old C if GEMM_ACCUMULATE) (+ bias[j]) (ReLU if GEMM_RELU)
 * with op per layout: nn A (M, K)·B (K, N); tn A stored (K, M); nt B stored (N, K). Row-major,
 * dense. Sums run in f64 (every f32·f32 product is exact in f64), so the reference is accurate to
 * well below the kernel's f32 rounding and the tests can bound the kernel's error from the terms.
 */
import { GEMM_ACCUMULATE, GEMM_RELU } from '../../src/engine/kernels.js';

export type GemmLayout = 'nn' | 'tn' | 'nt';

/**
 * C = the GEMM above, rounded once to f32. When `absSum` is given it receives, per element,
 * Σ_k |a·b| + |old C| + |bias|: the scale of the terms, from which a rounding bound follows.
 */
export function gemmRef(
  layout: GemmLayout,
  C: Float32Array,
  A: Float32Array,
  B: Float32Array,
  bias: Float32Array | null,
  M: number,
  N: number,
  K: number,
  flags: number,
  absSum?: Float64Array,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        const a = layout === 'tn' ? A[k * M + i] : A[i * K + k];
        const b = layout === 'nt' ? B[j * K + k] : B[k * N + j];
        acc += a * b;
        mag += Math.abs(a * b);
      }
      if (flags & GEMM_ACCUMULATE) {
        acc += C[i * N + j];
        mag += Math.abs(C[i * N + j]);
      }
      if (bias) {
        acc += bias[j];
        mag += Math.abs(bias[j]);
      }
      // x < 0 ? 0 : x, like the kernel's pmax: NaN stays NaN.
      if (flags & GEMM_RELU && acc < 0) acc = 0;
      C[i * N + j] = acc;
      if (absSum) absSum[i * N + j] = mag;
    }
  }
}

/**
 * Error bound for an f32 sum of `terms` terms computed in order: each add rounds by at most
 * 2⁻²⁴ of the running magnitude ≤ absSum, products add one more rounding each, and the f64
 * reference's own f32 rounding adds half an ulp: (terms + 2)·2⁻²³·absSum covers all of it.
 */
export function gemmTolerance(terms: number, absSum: number): number {
  return (terms + 2) * 2 ** -23 * absSum + 1e-30;
}
