// PLACEHOLDER scalar GEMM — replaced by the register-blocked SIMD kernels.
export const GEMM_ACCUMULATE: i32 = 1;
export const GEMM_RELU: i32 = 2;

function epilogue(C: usize, idx: usize, acc: f32, bias: usize, j: i32, flags: i32): void {
  if (flags & GEMM_ACCUMULATE) acc += load<f32>(C + (idx << 2));
  if (bias) acc += load<f32>(bias + ((<usize>j) << 2));
  if (flags & GEMM_RELU) acc = max(acc, 0);
  store<f32>(C + (idx << 2), acc);
}

export function gemm_f32_nn(
  C: usize,
  A: usize,
  B: usize,
  bias: usize,
  M: i32,
  N: i32,
  K: i32,
  flags: i32,
  scratch: usize,
): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let acc: f32 = 0;
      for (let k = 0; k < K; k++)
        acc +=
          load<f32>(A + ((<usize>(i * K + k)) << 2)) * load<f32>(B + ((<usize>(k * N + j)) << 2));
      epilogue(C, <usize>(i * N + j), acc, bias, j, flags);
    }
}
export function gemm_f32_tn(
  C: usize,
  A: usize,
  B: usize,
  bias: usize,
  M: i32,
  N: i32,
  K: i32,
  flags: i32,
  scratch: usize,
): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let acc: f32 = 0;
      for (let k = 0; k < K; k++)
        acc +=
          load<f32>(A + ((<usize>(k * M + i)) << 2)) * load<f32>(B + ((<usize>(k * N + j)) << 2));
      epilogue(C, <usize>(i * N + j), acc, bias, j, flags);
    }
}
export function gemm_f32_nt(
  C: usize,
  A: usize,
  B: usize,
  bias: usize,
  M: i32,
  N: i32,
  K: i32,
  flags: i32,
  scratch: usize,
): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let acc: f32 = 0;
      for (let k = 0; k < K; k++)
        acc +=
          load<f32>(A + ((<usize>(i * K + k)) << 2)) * load<f32>(B + ((<usize>(j * K + k)) << 2));
      epilogue(C, <usize>(i * N + j), acc, bias, j, flags);
    }
}
export function gemm_scratch_floats(M: i32, N: i32, K: i32): i32 {
  return ((N + 7) & ~7) * K + 64;
}
