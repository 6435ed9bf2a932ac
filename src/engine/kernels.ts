/**
 * The kernel ABI: every export of `assembly/index.ts`, typed for the host. Pointers are byte
 * offsets into the engine's linear memory; outputs first, then inputs, then dimensions.
 */
export interface Kernels {
  /** First byte after the module's static data. */
  heap_base(): number;
  /** 1 in the relaxed-SIMD build (FMA), 0 in the baseline build (assembly/simd.ts). */
  simd_relaxed(): number;
  /** a·b + c through the build's multiply-add, for runtime values (fused or not: see Engine). */
  simd_madd_probe(a: number, b: number, c: number): number;

  // peak.ts — register-only arithmetic loops for the benchmarks' "% of peak".
  /** `iters` × 12 chains of x·m + c (madd of the build): 96 flops each. */
  peak_f32x4(iters: number): number;
  /** `iters` × (6 mul chains + 6 add chains): 48 flops each; pass m = 1, c = 0. */
  peak_f32x4_split(iters: number, m: number, c: number): number;

  // gemm.ts — C[M×N] (= or +=) op(A)·op(B) (+ bias[N]) (ReLU); see GEMM_* flags.
  /** A (M×K) · B (K×N), all row-major and dense. */
  gemm_f32_nn(
    C: number,
    A: number,
    B: number,
    bias: number,
    M: number,
    N: number,
    K: number,
    flags: number,
    scratch: number,
  ): void;
  /** Aᵀ · B with A stored K×M and B stored K×N. */
  gemm_f32_tn(
    C: number,
    A: number,
    B: number,
    bias: number,
    M: number,
    N: number,
    K: number,
    flags: number,
    scratch: number,
  ): void;
  /** A · Bᵀ with A stored M×K and B stored N×K. */
  gemm_f32_nt(
    C: number,
    A: number,
    B: number,
    bias: number,
    M: number,
    N: number,
    K: number,
    flags: number,
    scratch: number,
  ): void;
  /** Floats of scratch any of the three GEMMs needs for these dimensions. */
  gemm_scratch_floats(M: number, N: number, K: number): number;
  /**
   * Units (128 rows × 16 columns, or × 24 for an nn call with GEMM_SPARSE_A and N ≥ 24)
   * gemm_f32_shared cuts an M×N product into.
   */
  gemm_shared_units(layout: number, M: number, N: number, flags: number): number;
  /**
   * One thread's part of a GEMM whose units (see gemm_shared_units) the host dealt out as one
   * range per thread: `claim` is this thread's slot (assembly/claim.ts); each thread passes its
   * own `scratch`.
   */
  gemm_f32_shared(
    layout: number,
    C: number,
    A: number,
    B: number,
    bias: number,
    M: number,
    N: number,
    K: number,
    flags: number,
    scratch: number,
    claim: number,
  ): void;

  // dense.ts
  /** dbias[N] (= or +=) Σ_b dout[b, :]; flags as GEMM (only GEMM_ACCUMULATE is read). */
  dense_bias_backward(dbias: number, dout: number, B: number, N: number, flags: number): void;

  /**
   * out (B, N) = act((a + b) + bias), act ReLU (x < 0 ? 0 : x) when relu ≠ 0, bias (N) or 0 for
   * none; a and b have rows `ld` floats apart, out is dense (and may be a when ld = N): the sum
   * of a layer's two shard products and its epilogue (Workspace).
   */
  dense_sum_bias_act(
    out: number,
    a: number,
    b: number,
    bias: number,
    B: number,
    N: number,
    ld: number,
    relu: number,
  ): void;
  /** dst (rows, cols) with rows ldDst floats apart = src (rows, cols) with rows ldSrc apart. */
  copy_block(
    dst: number,
    ldDst: number,
    src: number,
    ldSrc: number,
    rows: number,
    cols: number,
  ): void;

  // activations.ts
  relu_forward(out: number, inp: number, n: number): void;
  /** dinp = dout ⊙ (out > 0); `out` is the forward output (ReLU's derivative is readable from it). */
  relu_backward(dinp: number, dout: number, out: number, n: number): void;

  leaky_relu_forward(out: number, inp: number, n: number, alpha: number): void;
  leaky_relu_backward(dinp: number, dout: number, out: number, n: number, alpha: number): void;
  elu_forward(out: number, inp: number, n: number, alpha: number): void;
  elu_backward(dinp: number, dout: number, out: number, n: number, alpha: number): void;
  sigmoid_forward(out: number, inp: number, n: number): void;
  sigmoid_backward(dinp: number, dout: number, out: number, n: number): void;
  tanh_forward(out: number, inp: number, n: number): void;
  tanh_backward(dinp: number, dout: number, out: number, n: number): void;
  /** out = inp ⊙ mask (dropout forward and backward; mask holds 0 or 1/(1−p)). */
  dropout_apply(out: number, inp: number, mask: number, n: number): void;

  // conv2d.ts — NHWC; cols (B·OH·OW, KH·KW·C)
  conv2d_im2col(
    cols: number,
    inp: number,
    B: number,
    H: number,
    W: number,
    C: number,
    KH: number,
    KW: number,
    stride: number,
    pad: number,
    OH: number,
    OW: number,
  ): void;
  /** dinp (B,H,W,C) = adjoint of im2col applied to dcols; overwrites dinp. */
  conv2d_col2im(
    dinp: number,
    dcols: number,
    B: number,
    H: number,
    W: number,
    C: number,
    KH: number,
    KW: number,
    stride: number,
    pad: number,
    OH: number,
    OW: number,
  ): void;

  /** wT (OC, K) = w (K, OC)ᵀ: conv weights (KH, KW, C, OC) as (OC, KH, KW, C) for the scatter. */
  conv2d_weight_transpose(wT: number, w: number, K: number, OC: number): void;
  /**
   * dinp (B,H,W,C) = input gradient from delta (B,OH,OW,OC) and wT (OC,KH,KW,C), visiting only
   * delta ≠ 0; the bits of gemm_f32_nt + conv2d_col2im for finite weights. Overwrites dinp; reads
   * up to 3 floats past wT.
   */
  conv2d_backward_input_scatter(
    dinp: number,
    delta: number,
    wT: number,
    B: number,
    H: number,
    W: number,
    C: number,
    OC: number,
    KH: number,
    KW: number,
    stride: number,
    pad: number,
    OH: number,
    OW: number,
  ): void;
  /** How many of the n floats at x are ≠ 0 (NaN included): picks a conv's input-gradient route. */
  count_nonzero(x: number, n: number): number;
  /** dst (B, H + 2·pad, W + 2·pad, 1) = src (B, H, W, 1) inside a frame of zeros. */
  pad_images(dst: number, src: number, B: number, H: number, W: number, pad: number): void;
  /** Direct conv for one input channel and stride 1 (conv1 of MNIST nets); flags as GEMM. */
  conv2d_direct_c1_forward(
    out: number,
    inp: number,
    w: number,
    bias: number,
    B: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    pad: number,
    OH: number,
    OW: number,
    flags: number,
  ): void;
  /** dw (KH, KW, 1, OC) = weight gradient of the direct conv; overwrites dw. */
  conv2d_direct_c1_backward_weight(
    dw: number,
    inp: number,
    dout: number,
    B: number,
    H: number,
    W: number,
    OC: number,
    KH: number,
    KW: number,
    pad: number,
    OH: number,
    OW: number,
  ): void;

  /**
   * conv2d_direct_c1_backward_weight shared by threads: each passes the same arguments after its
   * range's slot `claim` (assembly/claim.ts) and computes the kernel rows (kh) it takes.
   */
  conv2d_direct_c1_backward_weight_shared(
    claim: number,
    ...args: Parameters<Kernels['conv2d_direct_c1_backward_weight']>
  ): void;

  // pool.ts — NHWC, no padding
  maxpool2d_forward(
    out: number,
    /** i32 (B, OH, OW, C): each max's flat index within its image. */
    argmax: number,
    inp: number,
    B: number,
    H: number,
    W: number,
    C: number,
    K: number,
    stride: number,
    OH: number,
    OW: number,
  ): void;
  maxpool2d_backward(
    dinp: number,
    dout: number,
    argmax: number,
    B: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
  ): void;
  avgpool2d_forward(
    out: number,
    inp: number,
    B: number,
    H: number,
    W: number,
    C: number,
    K: number,
    stride: number,
    OH: number,
    OW: number,
  ): void;
  avgpool2d_backward(
    dinp: number,
    dout: number,
    B: number,
    H: number,
    W: number,
    C: number,
    K: number,
    stride: number,
    OH: number,
    OW: number,
  ): void;

  // loss.ts
  /** Row-wise numerically stable softmax of logits (B×N) into probs (may alias logits). */
  softmax_forward(probs: number, logits: number, B: number, N: number): void;
  /**
   * Fused softmax + cross-entropy: probs = softmax(logits), dlogits = gradScale·(probs − onehot),
   * returns Σ_b −log p[b, label_b] (f64). dlogits may be 0 (no gradient) and may alias logits.
   */
  softmax_xent_forward_backward(
    dlogits: number,
    probs: number,
    logits: number,
    labels: number,
    B: number,
    N: number,
    gradScale: number,
  ): number;
  /**
   * Squared error against one-hot targets: returns scale·Σ (out − onehot)², and, when dout ≠ 0,
   * writes dout = 2·scale·gradScale·(out − onehot).
   */
  mse_forward_backward(
    dout: number,
    out: number,
    labels: number,
    B: number,
    N: number,
    scale: number,
    gradScale: number,
  ): number;
  /** Number of rows whose argmax equals the label. */
  count_correct(scores: number, labels: number, B: number, N: number): number;
  /** out[b] = argmax scores[b, :] (first index on ties). */
  argmax_rows(out: number, scores: number, B: number, N: number): void;

  // optim.ts — flat loops over a parameter region of n floats.
  sgd_step(
    params: number,
    grads: number,
    velocity: number,
    n: number,
    lr: number,
    momentum: number,
    nesterov: number,
    weightDecay: number,
  ): void;
  adam_step(
    params: number,
    grads: number,
    m: number,
    v: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    biasCorrection1: number,
    biasCorrection2: number,
    weightDecay: number,
  ): void;
  rmsprop_step(
    params: number,
    grads: number,
    sq: number,
    n: number,
    lr: number,
    rho: number,
    eps: number,
    weightDecay: number,
  ): void;
  adagrad_step(
    params: number,
    grads: number,
    sum: number,
    n: number,
    lr: number,
    eps: number,
    weightDecay: number,
  ): void;
  /** 1 if any of the n floats is NaN or ±Inf, else 0. */
  has_non_finite(x: number, n: number): number;

  // Shared by threads (claim.ts): each thread passes the same arguments after its range's slot
  // `claim` and runs the chunks of CHUNK_FLOATS floats it takes.
  /** Units of 4096 floats in an elementwise loop over n floats. */
  chunk_units(n: number): number;
  /** Bytes between two threads' slots of the work ranges (each on cache lines of its own). */
  claim_slot_bytes(): number;
  /** This thread's optimizer steps run alone pin their splats in slot `claim` (claim.ts). */
  pin_to_slot(claim: number): void;
  sgd_step_shared(claim: number, ...args: Parameters<Kernels['sgd_step']>): void;
  adam_step_shared(claim: number, ...args: Parameters<Kernels['adam_step']>): void;
  rmsprop_step_shared(claim: number, ...args: Parameters<Kernels['rmsprop_step']>): void;
  adagrad_step_shared(claim: number, ...args: Parameters<Kernels['adagrad_step']>): void;
  /** has_non_finite over the chunks taken: writes 1 to the i32 at `found` on NaN or ±Inf. */
  has_non_finite_shared(claim: number, x: number, n: number, found: number): void;

  // data.ts
  /** dst[b, :] = images[indices[b], :] · scale (uint8 → f32), D bytes per image. */
  gather_normalize_u8(
    dst: number,
    images: number,
    indices: number,
    B: number,
    D: number,
    scale: number,
  ): void;
  /**
   * dst (B, cols) = bytes col0 … col0 + cols − 1 of images[indices[b]] (D bytes each) · scale:
   * one block of pixel columns of the batch (the first layer's input shards, Workspace).
   */
  gather_normalize_u8_cols(
    dst: number,
    images: number,
    indices: number,
    B: number,
    D: number,
    col0: number,
    cols: number,
    scale: number,
  ): void;
  /** dst[b] = labels[indices[b]] (uint8 → i32). */
  gather_labels(dst: number, labels: number, indices: number, B: number): void;
}

/** GEMM epilogue flags. */
export const GEMM_ACCUMULATE = 1;
export const GEMM_RELU = 2;
/**
 * GEMM flag: A is mostly zeros (nn and tn skip the k where a 4-row strip of A is all zero; same
 * results, bit for bit). The first layer sets it: MNIST pixels are ≈81% zeros.
 */
export const GEMM_SPARSE_A = 8;
/**
 * GEMM flag (nn): A is a 12-byte U8Rows record — u32 pointer to uint8 rows of K pixels, u32
 * pointer to M i32 row numbers, f32 scale — instead of a float matrix; row i of A is
 * f32(pixel) · scale, the same bits gather_normalize_u8 writes. The first dense layer reads a
 * staged batch's pixels this way in inference (Workspace.forward with `pixels`).
 */
export const GEMM_A_U8 = 16;
/**
 * GEMM flag (tn): B is mostly zeros (a conv's dout after ReLU and max-pool backward); each column
 * of C sums over B's non-zero entries only — the same bits. Runs when M ≥ 32 and M·N ≤ 4096
 * (its running sums live in scratch), otherwise ignored.
 */
export const GEMM_SPARSE_B = 32;
