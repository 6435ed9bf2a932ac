/**
 * Packed, register-blocked f32x4 GEMM with a fused epilogue, in three storage layouts:
 *   gemm_f32_nn  C (M, N) = A (M, K) · B (K, N)
 *   gemm_f32_tn  C (M, N) = Aᵀ · B   with A stored (K, M), B stored (K, N)
 *   gemm_f32_nt  C (M, N) = A · Bᵀ   with A stored (M, K), B stored (N, K)
 * then, in this order: (+ old C when GEMM_ACCUMULATE) (+ bias[j] when bias ≠ 0) (ReLU when
 * GEMM_RELU). Everything is row-major and dense; pointers are byte offsets into linear memory.
 *
 * Loop order (GotoBLAS-like, but K is never split):
 *   for each block of MC rows of C:
 *     pack the A block into 4-row strips, k-major: (K, 4) per strip, zero-padded to 16 rows
 *       [tn: a copy of A's columns, no transpose needed; with ≤ 16 columns of C to reuse it,
 *        A stored (K, M) is read in place and only its last < 16 rows are copied and padded]
 *     for each panel of 8 columns of C (then one tail panel of 4 or 2):
 *       pack B's panel k-major: (K, 8), zero-padded — nn/tn pack two panels per pass over B,
 *       and read a B narrower than 16 columns in place (a whole panel steps one row of B per k);
 *       nt with K ≤ NT_SHORT_K packs all the panels first (run_panels_nt)
 *       for each 4-row strip of the block: 4×8 tile over all K, then the epilogue
 * In both packed operands the kernel's next k is one fixed pointer step away and the values it
 * needs for one k sit at constant offsets, so every layout runs the same inner loop.
 * GEMM_SPARSE_A (nn) runs a mostly-zero block row by row instead: each row's list of non-zero k
 * (list_rows), then per panel of ROW_COLS columns of B, packed (K, ROW_COLS) — all of them once
 * per call when it spans several row blocks (row_panels_once) — a 1×24 kernel over each row's
 * own list (ukernel_1x24_rows); a denser block, and tn, skip per 4-row strip.
 * GEMM_A_U8 (nn): A is a batch of uint8 rows (a U8Rows record), listed (list_rows_u8) or packed
 * (pack_a_rowmajor_u8) straight from the pixels, with the float input's bits.
 * GEMM_SPARSE_B (tn, C of at most SPARSE_B_MAX_C floats): column by column over B's non-zero
 * entries only, K in L2-sized blocks, running sums in scratch (gemm_tn_sparse_b) — a conv's
 * weight gradient, whose B (dout after max-pool backward) keeps about 1 entry in 5.
 * (Splitting K into L1-sized blocks, with partial sums kept in C, was measured on fwd L1's
 * K = 784 and gave nothing measurable here, so K stays whole.)
 * Threads (gemm_f32_shared): the same loops over units of one row block × 16 columns (× ROW_COLS
 * for a call that may run row by row; × all columns for a tall product), which the threads
 * sharing a call take from their ranges of them (claim.ts); each packs (or lists) a block's A
 * the first time it works in that block.
 *
 * nn with exactly 16 columns (LeNet-5's conv2) packs nothing: 2×16 tiles read A's rows and B's
 * 64-byte rows in place (ukernel_2x16).
 *
 * nn with exactly 10 columns (every model's output layer) packs nothing either: 3×10 tiles read
 * A's rows and B's 40-byte rows in place (ukernel_10).
 *
 * Tiles: 4×8 for the body (ukernel_4x8); an N tail of 3..4 columns uses 8×4 (ukernel_8x4) and
 * one of 1..2 columns uses 16×2 with rows in the vector lanes (ukernel_16x2), so a 10-wide
 * product in the other layouts does not compute 16 columns to keep 10. Partial tiles (an N tail
 * of 5..7, the last rows of an M tail) run the same kernels into a small buffer and are finished
 * from there (run_panel), which keeps every kernel free of calls.
 *
 * Multiply-add: `madd` (./simd.ts) is mul then add in the baseline build and relaxed_madd (FMA
 * where the hardware has it) in the relaxed build; this file is the same source for both.
 *
 * Determinism: every C element is one lane of one accumulator that starts at 0 and takes
 * acc = madd(A[i,k], B[k,j], acc) for k = 0..K-1 in order, followed by the same epilogue ops in
 * the same order. Tails differ only in which lane holds the element and in where the raw sum
 * waits before its epilogue, so an element's bits do not depend on M, N, MC or the tile it falls
 * in — nor on which thread computes it (gemm_f32_shared). Within one build;
 * the two builds round differently (one rounding per term with FMA, two without).
 *
 * Constraints: no allocation; `scratch` holds at least gemm_scratch_floats(M, N, K) floats,
 * 16-byte aligned. C must not overlap A, B, bias or scratch. Missing rows/columns of a packed
 * tail are zero-filled (never read from past the end of an operand).
 */

import { madd } from './simd';
import { claim_next } from './claim';

/** flags bit 0: C += result instead of C = result. */
export const GEMM_ACCUMULATE: i32 = 1;
/** flags bit 1: apply max(x, 0) last (NaN propagates). */
export const GEMM_RELU: i32 = 2;
/**
 * flags bit 3: A is mostly zeros (a batch of MNIST pixels is ≈81% zeros, a ReLU output about
 * half): nn skips each row's zero k (list_rows) when a block is sparse enough, and otherwise nn
 * and tn skip, per 4-row strip of A, every k where all four rows are zero (see compact_strips).
 * The results are the same bits: a skipped term is a product with an exact 0 (B finite), which
 * adds ±0 to a running sum that starts at +0.
 */
export const GEMM_SPARSE_A: i32 = 8;
/**
 * flags bit 4 (nn only): A is not a float matrix but a U8Rows record at A — u32 `images`
 * (uint8 rows of K pixels each), u32 `indices` (M i32 row numbers), f32 `scale` — and row i of
 * A is images[indices[i]·K + k] · scale, converted as gather_normalize_u8 converts it (the same
 * bits). The first layer of an MLP then reads a batch's pixels where they are staged: no float
 * copy of the batch is written, and a row's non-zero pixels are found in K bytes instead of 4K.
 */
export const GEMM_A_U8: i32 = 16;
/**
 * flags bit 5 (tn only): B is mostly zeros — a conv layer's output gradient after ReLU and
 * max-pool backward (LeNet-5's conv2 weight gradient keeps about 1 k in 5 per column). Column j
 * of C is then summed over the non-zero B[k, j] only (gemm_tn_sparse_b), and the zero terms are
 * never multiplied. The same bits as the dense route: a skipped term is A·(±0) = ±0 (A finite),
 * which changes nothing in a sum that starts at +0. Ignored unless M ≥ SPARSE_B_ROWS and
 * M·N ≤ SPARSE_B_MAX_C (sparse_b_fits).
 */
export const GEMM_SPARSE_B: i32 = 32;
/** Internal flag: a bias vector is present (the exported ABI signals it with bias ≠ 0). */
const HAS_BIAS: i32 = 4;

/**
 * A strip runs sparse when at most this fraction (in 1/16ths) of its k are kept: the sparse
 * kernel loads each kept k's offset, so a nearly dense strip runs the dense kernel instead.
 */
const SPARSE_MAX_16THS: i32 = 13;

const LAYOUT_NN: i32 = 0;
const LAYOUT_TN: i32 = 1;
const LAYOUT_NT: i32 = 2;

/**
 * tn packs A into strips only when more than this many columns of C reuse it; a narrower C
 * reads A in place (for dW3, N = 10, copying A cost more than it saved). Reading A (K, M) in
 * place steps M·4 bytes per k, which for M = 256 (dW2) maps a strip's rows onto a few L1 sets:
 * packing made dW2 ≈10% faster.
 */
const TN_PACK_MIN_N: i32 = 16;

/**
 * Rows of C per outer block (a multiple of 16). 128 rows of packed A is 16 KiB at K = 32 (the
 * tn shapes, half of L1); for K = 784 the batch (M = 32) is one block anyway. Smaller blocks
 * would repack B more often: repacking costs K·N per block against 2·MC·N·K flops. (Measured:
 * MC = 32…4096 were within noise of each other on the MLP's shapes.)
 */
const MC: i32 = 128;

/** C = A·B (+ old C) (+ bias) (ReLU); A (M, K), B (K, N). See the file header. */
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
  gemm(C, A, B, bias, M, N, K, flags, scratch, LAYOUT_NN, 0);
}

/** C = Aᵀ·B (+ old C) (+ bias) (ReLU); A stored (K, M), B (K, N). */
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
  gemm(C, A, B, bias, M, N, K, flags, scratch, LAYOUT_TN, 0);
}

/** C = A·Bᵀ (+ old C) (+ bias) (ReLU); A (M, K), B stored (N, K). */
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
  gemm(C, A, B, bias, M, N, K, flags, scratch, LAYOUT_NT, 0);
}

/**
 * One thread's part of a GEMM shared by threads: every thread that shares the call passes the
 * same arguments except `scratch` (its own) and `claim`, its slot of the ranges of units the
 * host dealt out (claim.ts). Each takes units — blocks of shared_block_rows rows × unit_cols
 * columns — from the front of its range, then from the ends of the others', until none is
 * left, so a thread that starts late or runs slower simply does fewer units. Every
 * element is computed exactly as the whole GEMM computes it (see Determinism above): the result
 * is bit-identical to one call whichever thread did which unit. Alone (one thread) it is the
 * whole GEMM in a different order.
 */
export function gemm_f32_shared(
  layout: i32,
  C: usize,
  A: usize,
  B: usize,
  bias: usize,
  M: i32,
  N: i32,
  K: i32,
  flags: i32,
  scratch: usize,
  claim: usize,
): void {
  gemm(C, A, B, bias, M, N, K, flags, scratch, layout, claim);
}

/** Columns per claimed unit: two packed B panels (pack_b_kn_pair), 2·K·8 floats. */
const CLAIM_COLS: i32 = 16;

/**
 * Columns per claimed unit of a shared call. A tall product (M ≥ ROW_UNITS_MIN_M) is shared by
 * whole row blocks (all N columns): each block's A is then packed or listed by the one thread
 * that runs it, where column units had both threads prepare every block (the first layer's
 * weight gradient, tn 784×256×32, and inference at batch 1000). Otherwise CLAIM_COLS, or one
 * row panel (ROW_COLS) when the call may run row by row (nn, GEMM_SPARSE_A, N ≥ ROW_COLS), so
 * that its units are whole row panels whichever way each block runs.
 */
function unit_cols(layout: i32, M: i32, N: i32, flags: i32): i32 {
  if (M >= ROW_UNITS_MIN_M) return N;
  const rowCapable = (flags & GEMM_SPARSE_A) != 0 && layout == LAYOUT_NN && N >= ROW_COLS;
  return rowCapable ? ROW_COLS : CLAIM_COLS;
}

/**
 * Rows per block of a shared call: MC, halved (down to 16) while M spans more than one block and
 * the call has fewer than SHARED_MIN_UNITS units, so that a tall, narrow product splits evenly:
 * LeNet-5's conv2 weight gradient (tn, 150×16×3200) was two units of 128 and 22 rows, now five
 * of 32. The bits do not depend on the block size (see Determinism above).
 */
function shared_block_rows(M: i32, groups: i32): i32 {
  let mc = MC;
  while (mc > 16 && M > mc && ((M + mc - 1) / mc) * groups < SHARED_MIN_UNITS) mc >>= 1;
  return mc;
}

/**
 * Rows from which a shared call is split into whole row blocks (unit_cols): with blocks of at
 * least 16 rows (shared_block_rows) that makes SHARED_MIN_UNITS units; the batch-32 products keep
 * column units.
 */
const ROW_UNITS_MIN_M: i32 = 128;

/**
 * Units below which a shared call cuts its rows into smaller blocks (shared_block_rows). Each
 * row unit packs its own B panels, so more units pack B more often: with 8 (until 2026-11-23)
 * the second layer's weight gradient, tn 256×128×32, ran as 8 units of 32 rows and took 0.076 s
 * of a two-thread `mlp-256-128` epoch, with 4 (4 units of 64) 0.062 s; LeNet-5's conv2 weight
 * gradient 0.341 against 0.317 s (throwaway per-kernel profile, medians of 8 and 6 rounds).
 */
const SHARED_MIN_UNITS: i32 = 4;

/** Units gemm_f32_shared cuts an M×N product into: the host shares only calls with several. */
export function gemm_shared_units(layout: i32, M: i32, N: i32, flags: i32): i32 {
  if (sparse_b_runs(layout, M, N, flags)) {
    return (N + SPARSE_B_UNIT_COLS - 1) / SPARSE_B_UNIT_COLS;
  }
  const cols = unit_cols(layout, M, N, flags);
  const groups = (N + cols - 1) / cols;
  const mc = shared_block_rows(M, groups);
  return ((M + mc - 1) / mc) * groups;
}

/** Floats of scratch that any of the three GEMMs needs for these dimensions. */
export function gemm_scratch_floats(M: i32, N: i32, K: i32): i32 {
  if (M <= 0 || N <= 0) return TMP_FLOATS;
  // partial-tile buffer + one or two packed B panels (K, 8) (two when pack_b_kn_pair can run) +
  // packed A block (min(M, MC) rows rounded up to 16, K)
  // + for GEMM_SPARSE_A: one B offset per k and one count per 4-row strip
  const rows = min((M + 15) & ~15, MC);
  // + for the row-sparse path (N ≥ ROW_COLS): a second row block, its lists hold (k, value) pairs
  const lists = N >= ROW_COLS ? rows : 0;
  const dense =
    TMP_FLOATS + (panel_floats(M, N, K) + rows + (rows >> 2) + lists) * max(K, 0) + rows;
  // GEMM_SPARSE_B (gemm_tn_sparse_b): N columns of running sums + one column's list for a k-block
  const sparseB = sparse_b_fits(M, N)
    ? N * sparse_b_sums_col(M) + 2 * min(max(K, 0), sparse_b_kc(M))
    : 0;
  return max(dense, sparseB) + 16;
}

/**
 * Floats per k of the B panel area: two (K, 8) panels (pack_b_kn_pair, N ≥ 16) or one, or for
 * N ≥ ROW_COLS the row-sparse path's (K, ROW_COLS) panels (pack_b_rowpanel): one, or all
 * ⌈N / ROW_COLS⌉ of them when M spans several row blocks (see row_panels_once); with
 * K ≤ NT_SHORT_K at least all of N's 8-wide panels.
 */
function panel_floats(M: i32, N: i32, K: i32): i32 {
  let f = N < ROW_COLS ? (N >= 16 ? 16 : 8) : ROW_COLS;
  if (row_panels_once(M, N)) f = ((N + ROW_COLS - 1) / ROW_COLS) * ROW_COLS;
  // nt with a short K packs every panel of a unit at once (run_panels_nt): N rounded up to 8.
  return K <= NT_SHORT_K ? max(f, (N + 7) & ~7) : f;
}

/**
 * Whether the row-sparse path packs each row panel of B once per call and keeps them all (when a
 * unit spans all N columns: alone, or a tall shared call) instead of once per row block: at
 * batch 1000, eight blocks of 128 rows had each repacked all of B (K·N floats), ≈ 10% of the
 * 1000×784×256 inference GEMM.
 */
function row_panels_once(M: i32, N: i32): bool {
  return N >= ROW_COLS && M > MC;
}

/** nt with K at most this packs all of a unit's panels at once (run_panels_nt). */
const NT_SHORT_K: i32 = 16;

/** Scratch floats for one partial tile (see run_panel): 16 rows × 2 … 4 rows × 8, plus reach. */
const TMP_FLOATS: i32 = 64;

function gemm(
  C: usize,
  A: usize,
  B: usize,
  bias: usize,
  M: i32,
  N: i32,
  K: i32,
  flags: i32,
  scratch: usize,
  layout: i32,
  claim: usize,
): void {
  if (M <= 0 || N <= 0) return;
  if (K < 0) K = 0;
  const f = (flags & (GEMM_ACCUMULATE | GEMM_RELU)) | (bias != 0 ? HAS_BIAS : 0);
  if (sparse_b_runs(layout, M, N, flags)) {
    gemm_tn_sparse_b(C, A, B, bias, M, N, K, f, scratch, claim);
    return;
  }
  const ldc = (<usize>N) << 2;
  const kBytes = (<usize>K) << 2;
  const tmp = scratch; // one partial tile
  const panelB = tmp + (TMP_FLOATS << 2); // (K, 8)
  const panelB2 = panelB + (kBytes << 3); // (K, 8), the next panel (pack_b_kn_pair, N ≥ 16)
  const packA = panelB + kBytes * <usize>panel_floats(M, N, K); // ⌈mb/16⌉·4 strips of (K, 4)
  const ldb = layout == LAYOUT_NT ? kBytes : ldc; // B's row stride
  // GEMM_SPARSE_A (nn, and tn when it packs A; only when every panel is 8 wide: only the 4×8
  // kernel has a sparse twin): after packed A, each strip's list of non-zero k, then one count
  // per strip (−1: the strip runs dense).
  const blockRows = min((M + 15) & ~15, MC);
  const sparseOffs = packA + <usize>blockRows * kBytes;
  const sparseCounts = sparseOffs + <usize>(blockRows >> 2) * kBytes;
  const sparseA =
    (flags & GEMM_SPARSE_A) != 0 &&
    K > 0 &&
    (layout == LAYOUT_NN || (layout == LAYOUT_TN && N > TN_PACK_MIN_N));
  // nn with at least one whole row panel may run a block row by row (list_rows): then
  // packA holds each row's list of (k, A[r, k]) pairs for its non-zero k, 8K bytes per row,
  // and rowCounts, after blockRows of them, one count per row.
  const rowCapable = sparseA && layout == LAYOUT_NN && N >= ROW_COLS;
  const rowCounts = packA + <usize>blockRows * (kBytes << 1);
  let panelsReady = false; // every row panel of B is packed at panelB (row_panels_once)

  // Work units: blocks of MC rows × groups of columns, block-major. Alone (claim = 0) a call runs
  // one group of all its columns per block, in order; shared (claim ≠ 0), the threads take
  // units (unit_cols columns of a row block) from their ranges (claim.ts) as they finish the
  // last, each packing a block's A when it first works in that block.
  const groupCols = claim ? unit_cols(layout, M, N, flags) : N;
  const groups = (N + groupCols - 1) / groupCols;
  const mc = claim ? shared_block_rows(M, groups) : MC;
  const units = ((M + mc - 1) / mc) * groups;
  // The strip kernel's sparse twin runs units whose columns are whole 8-wide panels only (see
  // `sparse` below): a unit of N columns (alone) or of groupCols and the last N % groupCols.
  const stripSparse = sparseA && ((N & 7) == 0 || (N > groupCols && (groupCols & 7) == 0));
  // nn with exactly 16 columns (LeNet-5's conv2 has 16 filters) and no zero skipping: A and B
  // are read in place by 2×16 tiles (ukernel_2x16) — B's rows are 64 bytes each, one panel row
  // — so nothing is packed. Units are then whole row blocks (unit_cols gives N = 16 columns).
  // (tn, whose rows of Aᵀ are columns of A, ran 0.43× as fast this way on conv2's weight
  // gradient, 150×16×3200: each pass over K reads two floats per 64-byte line of A.)
  const inPlace16 = N == 16 && layout == LAYOUT_NN && (flags & (GEMM_SPARSE_A | GEMM_A_U8)) == 0;
  // 10 columns run ukernel_10 (see the file header). GEMM_SPARSE_A never skips anything there
  // (10 columns are not whole 8-wide panels), so only uint8 rows keep the packed path.
  const inPlace10 = N == 10 && layout == LAYOUT_NN && (flags & GEMM_A_U8) == 0;
  const u8 = (flags & GEMM_A_U8) != 0;
  let packed = -1;
  let a: usize = 0;
  let aStep: usize = 0;
  let sStride: usize = 0;
  let rowsA = 0;
  let rowsT = 0;
  let byRow = false;
  let cA: usize = 0;
  let cT: usize = 0;
  for (let u = claim_next(claim, 0); u < units; u = claim_next(claim, u + 1)) {
    const block = u / groups;
    if (inPlace16) {
      const i0 = block * mc;
      const mb = min(mc, M - i0);
      const pairs = mb >> 1;
      const c = C + <usize>i0 * ldc;
      const ai = A + <usize>i0 * kBytes;
      ukernel_2x16(c, ldc, ai, kBytes, pairs, B, K, bias, f);
      if (mb & 1) {
        // The last row alone: the kernel with both rows on it writes raw sums to tmp, finished
        // into C with the same epilogue as a whole tile.
        const r = <usize>(mb - 1);
        ukernel_2x16(tmp, 64, ai + r * kBytes, 0, 1, B, K, 0, 0);
        const cr = c + r * ldc;
        const zero = f32x4.splat(0);
        for (let v: usize = 0; v < 64; v += 16) {
          store_full(cr + v, v128.load(tmp + v), bias ? v128.load(bias + v) : zero, f);
        }
      }
      continue;
    }
    if (inPlace10) {
      const i0 = block * mc;
      ukernel_10(
        C + <usize>i0 * ldc,
        A + <usize>i0 * kBytes,
        kBytes,
        min(mc, M - i0),
        B,
        K,
        bias,
        f,
      );
      continue;
    }
    if (block != packed) {
      packed = block;
      const i0 = block * mc;
      const mb = min(mc, M - i0);
      // Rows [0, rowsA) of the block: 4-row strip s at a + s·sStride, its 4 floats for k at
      // + k·aStep. Packed A is zero-padded to 16 rows, so it serves every row. tn with a narrow
      // C reads A in place for whole 16-row groups (A[k, i..i+15] are adjacent floats) and a
      // zero-padded copy (K, 16) for the last rowsT < 16.
      // Row by row (nn, sparse enough): the rows' lists of non-zero k and their values go to
      // packA; A is not read again.
      rowsA = mb;
      rowsT = 0;
      byRow =
        rowCapable &&
        (u8
          ? list_rows_u8(packA, A, i0, mb, K, rowCounts)
          : list_rows(packA, A + <usize>i0 * kBytes, mb, K, rowCounts));
      if (byRow) {
        a = 0;
      } else if (layout == LAYOUT_TN && N > TN_PACK_MIN_N) {
        pack_a_colmajor(packA, A + ((<usize>i0) << 2), M, K, mb);
        a = packA;
        aStep = 16;
        sStride = kBytes << 2;
      } else if (layout == LAYOUT_TN) {
        a = A + ((<usize>i0) << 2);
        aStep = (<usize>M) << 2;
        sStride = 16;
        rowsT = mb & 15;
        rowsA = mb - rowsT;
        if (rowsT) pack_a_kmajor_tail(packA, a + ((<usize>rowsA) << 2), M, K, rowsT);
      } else if (u8) {
        pack_a_rowmajor_u8(packA, A, i0, mb, K);
        a = packA;
        aStep = 16;
        sStride = kBytes << 2;
      } else {
        pack_a_rowmajor(packA, A + <usize>i0 * kBytes, mb, K);
        a = packA;
        aStep = 16;
        sStride = kBytes << 2;
      }
      cA = C + <usize>i0 * ldc;
      cT = cA + <usize>rowsA * ldc;
      if (stripSparse && !byRow) compact_strips(packA, K, mb >> 2, sparseOffs, sparseCounts);
    }
    const g = u - block * groups;
    const jFirst = g * groupCols;
    const jLast = min(N, jFirst + groupCols);
    if (K == 0) {
      // No k at all: C = the epilogue of 0 (the strip kernels read k = 0 unconditionally).
      const j = (<usize>jFirst) << 2;
      epilogue_only(cA + j, ldc, min(mc, M - block * mc), jLast - jFirst, bias ? bias + j : 0, f);
      continue;
    }
    if (byRow) {
      const once = groupCols == N && row_panels_once(M, N);
      let panel = panelB;
      for (let j0 = jFirst; j0 < jLast; j0 += ROW_COLS) {
        // A last panel narrower than ROW_COLS runs as a whole panel ending at N when it may:
        // alone (no other thread writes those columns) and without GEMM_ACCUMULATE, it
        // recomputes the columns it shares with the panel before it, with the same bits.
        if (jLast - j0 < ROW_COLS && !claim && (f & GEMM_ACCUMULATE) == 0) j0 = N - ROW_COLS;
        const cols = min(jLast - j0, ROW_COLS);
        if (!panelsReady) pack_b_rowpanel(panel, B + ((<usize>j0) << 2), ldc, K, cols);
        const bj = bias ? bias + ((<usize>j0) << 2) : 0;
        const c = cA + ((<usize>j0) << 2);
        if (cols == ROW_COLS) {
          ukernel_1x24_rows(c, ldc, packA, kBytes << 1, rowCounts, rowsA, panel, bj, f);
        } else {
          // A partial panel: each row's raw sums into tmp, then the epilogue on `cols` of them.
          const zero = f32x4.splat(0);
          for (let r = 0; r < rowsA; r++) {
            const rl = <usize>r;
            const lists = packA + rl * (kBytes << 1);
            const counts = rowCounts + (rl << 2);
            ukernel_1x24_rows(tmp, 0, lists, 0, counts, 1, panel, 0, 0);
            const cr = c + rl * ldc;
            for (let v = 0; v < cols; v += 4) {
              const n = min(cols - v, 4);
              const vb = (<usize>v) << 2;
              const bv = bias ? load_partial(bj + vb, n) : zero;
              store_partial(cr + vb, v128.load(tmp + vb), bv, f, n);
            }
          }
        }
        if (once) panel += kBytes * <usize>ROW_COLS;
      }
      if (once) panelsReady = true;
      continue;
    }
    panelsReady = false; // the strip path below packs its own panels over them
    if (layout == LAYOUT_NT) {
      run_panels_nt(
        cA,
        ldc,
        a,
        aStep,
        sStride,
        rowsA,
        B,
        ldb,
        K,
        jFirst,
        jLast,
        bias,
        f,
        panelB,
        tmp,
      );
      continue;
    }
    // The sparse kernel exists for 4×8 tiles only: every panel of the unit must be 8 wide.
    const sparse = stripSparse && ((jLast - jFirst) & 7) == 0;
    // B stored (K, N) with N < 16 is read in place: its rows are short, and a copy would be
    // used by a single panel.
    const bInPlace = layout != LAYOUT_NT && N < 16 && !sparse;

    // nn, tn: the panel at j0 may already sit in panelB2, packed along with the one before.
    let havePanel2 = false;
    for (let j0 = jFirst; j0 < jLast;) {
      const left = jLast - j0;
      const nr = left > 4 ? 8 : left > 2 ? 4 : 2;
      const cols = min(left, nr);
      let panel = panelB;
      let bStep = (<usize>nr) << 2;
      if (havePanel2) {
        panel = panelB2;
        havePanel2 = false;
      } else if (bInPlace && cols == nr) {
        panel = B + ((<usize>j0) << 2);
        bStep = ldb;
      } else if (layout == LAYOUT_NT) {
        pack_b_nk(panelB, B + <usize>j0 * ldb, ldb, K, cols, nr);
      } else if (left >= 16) {
        pack_b_kn_pair(panelB, panelB2, B + ((<usize>j0) << 2), ldb, K);
        havePanel2 = true;
      } else {
        pack_b_kn(panelB, B + ((<usize>j0) << 2), N, K, cols, nr);
      }
      let bias0 = f32x4.splat(0);
      let bias1 = f32x4.splat(0);
      if (bias) {
        const bp = bias + ((<usize>j0) << 2);
        bias0 = load_partial(bp, min(cols, 4));
        if (cols > 4) bias1 = load_partial(bp + 16, cols - 4);
      }
      const j = (<usize>j0) << 2;
      if (sparse) {
        // Whole strips one by one, each sparse or dense; the last rows < 4 as run_panel does.
        const strips = rowsA >> 2;
        for (let st = 0; st < strips; st++) {
          const n = load<i32>(sparseCounts + ((<usize>st) << 2));
          const c = cA + j + <usize>(st << 2) * ldc;
          const ofs = <usize>st * kBytes;
          if (n >= 0) {
            const vals = a + <usize>st * sStride;
            ukernel_4x8_sparse(c, ldc, vals, sparseOffs + ofs, n, panel, bias0, bias1, f);
          } else {
            ukernel_4x8(
              c,
              ldc,
              a + <usize>st * sStride,
              aStep,
              sStride,
              1,
              panel,
              bStep,
              K,
              bias0,
              bias1,
              f,
            );
          }
        }
        rows_after_strips(
          nr,
          cA + j,
          ldc,
          a,
          aStep,
          sStride,
          strips,
          rowsA,
          panel,
          bStep,
          K,
          bias0,
          bias1,
          f,
          cols,
          tmp,
        );
      } else if (rowsA) {
        run_panel(
          nr,
          cA + j,
          ldc,
          a,
          aStep,
          sStride,
          rowsA,
          panel,
          bStep,
          K,
          bias0,
          bias1,
          f,
          cols,
          tmp,
        );
      }
      if (rowsT) {
        run_panel(
          nr,
          cT + j,
          ldc,
          packA,
          64,
          16,
          rowsT,
          panel,
          bStep,
          K,
          bias0,
          bias1,
          f,
          cols,
          tmp,
        );
      }
      j0 += nr;
    }
  }
}

/** Rows of C per pass over a column's list in gemm_tn_sparse_b: 8 accumulators of 4. */
const SPARSE_B_ROWS: i32 = 32;

/** Largest C (M·N floats) gemm_tn_sparse_b takes: its running sums live in scratch (and L1). */
const SPARSE_B_MAX_C: i32 = 4096;

/** Bytes of A's rows per k-block of gemm_tn_sparse_b: every column's pass reuses them from L2. */
const SPARSE_B_BLOCK_BYTES: i32 = 96 << 10;

/** Whether gemm_tn_sparse_b takes an M×N product: at least SPARSE_B_ROWS rows, a small C. */
function sparse_b_fits(M: i32, N: i32): bool {
  return M >= SPARSE_B_ROWS && M * N <= SPARSE_B_MAX_C;
}

/** Whether a call runs gemm_tn_sparse_b (GEMM_SPARSE_B, tn, sparse_b_fits). */
function sparse_b_runs(layout: i32, M: i32, N: i32, flags: i32): bool {
  return layout == LAYOUT_TN && (flags & GEMM_SPARSE_B) != 0 && sparse_b_fits(M, N);
}

/** Columns per unit of a shared gemm_tn_sparse_b: each unit reads its k-blocks of A once. */
const SPARSE_B_UNIT_COLS: i32 = 8;

/**
 * C = Aᵀ·B (tn) over B's non-zero entries only (GEMM_SPARSE_B). K runs in blocks whose rows of A
 * fit in L2 (SPARSE_B_BLOCK_BYTES); per block, per column j of the unit, list_column writes the
 * block's non-zero B[k, j] with the byte offset of A's row k, and each SPARSE_B_ROWS rows of
 * column j run ukernel_32x1_sparse over that list, continuing the running sums kept in scratch
 * (sums (N, M): column j's rows adjacent) — an exact f32 store and reload, so every element is
 * still one chain over its listed k in ascending order from +0, as the dense kernels sum all k.
 * Rows past the last whole block of 32 run as the block that ends at M, with running sums of
 * their own (its first rows repeat the last whole block's with the same bits, unused). Last,
 * the epilogue writes each sum to C as store_full would. Units are groups of
 * SPARSE_B_UNIT_COLS columns when shared (alone, one unit of all N).
 */
function gemm_tn_sparse_b(
  C: usize,
  A: usize,
  B: usize,
  bias: usize,
  M: i32,
  N: i32,
  K: i32,
  flags: i32,
  scratch: usize,
  claim: usize,
): void {
  const ldc = (<usize>N) << 2;
  const aRow = (<usize>M) << 2;
  const whole = M & ~(SPARSE_B_ROWS - 1); // rows in whole blocks
  const tail = M - SPARSE_B_ROWS; // first row of the block that ends at M
  const sumsCol = (<usize>sparse_b_sums_col(M)) << 2; // bytes per column of running sums
  const sums = scratch;
  const kc = sparse_b_kc(M);
  const list = sums + <usize>N * sumsCol; // (A row offset, B value) pairs, 8 bytes per k
  const unitCols = claim ? SPARSE_B_UNIT_COLS : N;
  const units = (N + unitCols - 1) / unitCols;
  for (let u = claim_next(claim, 0); u < units; u = claim_next(claim, u + 1)) {
    const j0 = u * unitCols;
    const j1 = min(N, j0 + unitCols);
    memory.fill(sums + <usize>j0 * sumsCol, 0, <usize>(j1 - j0) * sumsCol);
    for (let k0 = 0; k0 < K; k0 += kc) {
      const kb = min(kc, K - k0);
      const a = A + <usize>k0 * aRow;
      const b = B + <usize>k0 * ldc;
      for (let j = j0; j < j1; j++) {
        const n = list_column(list, b + ((<usize>j) << 2), ldc, kb, aRow);
        if (n == 0) continue;
        const col = sums + <usize>j * sumsCol;
        for (let i = 0; i < whole; i += SPARSE_B_ROWS) {
          const ib = (<usize>i) << 2;
          ukernel_32x1_sparse(col + ib, a + ib, list, n);
        }
        if (whole < M) {
          ukernel_32x1_sparse(col + ((<usize>whole) << 2), a + ((<usize>tail) << 2), list, n);
        }
      }
    }
    for (let j = j0; j < j1; j++) {
      const jb = (<usize>j) << 2;
      const bj: f32 = bias ? load<f32>(bias + jb) : 0;
      const col = sums + <usize>j * sumsCol;
      let c = C + jb;
      for (let i = 0; i < M; i++) {
        // Row i's sum: in the whole blocks, or at its place in the tail block's sums.
        let x = load<f32>(col + ((<usize>(i < whole ? i : whole + i - tail)) << 2));
        // store_full's epilogue, one lane: (sum + old C) + bias, then pmax(x, 0).
        if (flags & GEMM_ACCUMULATE) x += load<f32>(c);
        if (flags & HAS_BIAS) x += bj;
        if (flags & GEMM_RELU) x = x < 0 ? 0 : x;
        store<f32>(c, x);
        c += ldc;
      }
    }
  }
}

/** k per block of gemm_tn_sparse_b: the block's rows of A (M floats each) fill its L2 budget. */
function sparse_b_kc(M: i32): i32 {
  return max(16, SPARSE_B_BLOCK_BYTES / (M << 2));
}

/** Floats of running sums per column in gemm_tn_sparse_b: the whole blocks, then the tail's. */
function sparse_b_sums_col(M: i32): i32 {
  const whole = M & ~(SPARSE_B_ROWS - 1);
  return whole < M ? whole + SPARSE_B_ROWS : whole;
}

/**
 * Column j of B (K floats `ldb` bytes apart, starting at b) as a list of its non-zero entries:
 * (u32 byte offset k·aRow of A's row k, f32 B[k, j]) pairs, k ascending. Returns their count.
 * Branch-free: every k writes its pair at the list's end, which only a non-zero value advances
 * (NaN counts as non-zero and is kept; −0 is skipped, as +0 is).
 */
function list_column(list: usize, b: usize, ldb: usize, K: i32, aRow: usize): i32 {
  let n = 0;
  let off: usize = 0;
  for (let k = 0; k < K; k++) {
    const v = load<f32>(b);
    const p = list + ((<usize>n) << 3);
    store<u32>(p, <u32>off);
    store<f32>(p, v, 4);
    n += i32(v != 0);
    b += ldb;
    off += aRow;
  }
  return n;
}

/**
 * SPARSE_B_ROWS rows of one column of C: sums[r] += Σ over the n listed k of A[k, r] · B[k, j],
 * in list order, where `a` points at A's row 0 at the block's first column and each list pair
 * holds A's row offset and B[k, j]. Per pair: one broadcast, 8 loads of 4 adjacent A values, 8
 * madd into the 8 running sums.
 */
function ukernel_32x1_sparse(sums: usize, a: usize, list: usize, n: i32): void {
  let a0 = v128.load(sums);
  let a1 = v128.load(sums, 16);
  let a2 = v128.load(sums, 32);
  let a3 = v128.load(sums, 48);
  let a4 = v128.load(sums, 64);
  let a5 = v128.load(sums, 80);
  let a6 = v128.load(sums, 96);
  let a7 = v128.load(sums, 112);
  let p = list;
  const end = list + ((<usize>n) << 3);
  while (p < end) {
    const r = a + <usize>load<u32>(p);
    const s = v128.load32_splat(p, 4);
    a0 = madd(v128.load(r), s, a0);
    a1 = madd(v128.load(r, 16), s, a1);
    a2 = madd(v128.load(r, 32), s, a2);
    a3 = madd(v128.load(r, 48), s, a3);
    a4 = madd(v128.load(r, 64), s, a4);
    a5 = madd(v128.load(r, 80), s, a5);
    a6 = madd(v128.load(r, 96), s, a6);
    a7 = madd(v128.load(r, 112), s, a7);
    p += 8;
  }
  v128.store(sums, a0);
  v128.store(sums, a1, 16);
  v128.store(sums, a2, 32);
  v128.store(sums, a3, 48);
  v128.store(sums, a4, 64);
  v128.store(sums, a5, 80);
  v128.store(sums, a6, 96);
  v128.store(sums, a7, 112);
}

/**
 * nt's columns jFirst … jLast−1 of one row block: each panel of B's rows transposed into
 * `panel` (pack_b_nk), then run against the block's `rows` rows of packed A; whole 8-wide panels
 * go straight to ukernel_4x8. With K ≤ NT_SHORT_K (and whole panels and tiles, no bias) all of
 * the unit's panels are packed first in one call (pack_b_nk_panels), then run one after another.
 * nt never skips zeros nor reads B in place, so it has this loop of its own, with few live
 * values, instead of gemm's general one. The MLP's last dX (32×128×10: 16 panels of 10 k, 8
 * tiles each) spends as much on per-panel work as on 2 of its 10 k: this loop, the direct kernel
 * call and the one packing call made it ×1.03–1.04 faster each (throwaway A/B, both builds, 41
 * interleaved rounds, the same bits), from 69% to 77% of the peak loop with the peeled k.
 */
function run_panels_nt(
  c: usize,
  ldc: usize,
  a: usize,
  aStep: usize,
  sStride: usize,
  rows: i32,
  B: usize,
  ldb: usize,
  K: i32,
  jFirst: i32,
  jLast: i32,
  bias: usize,
  flags: i32,
  panel: usize,
  tmp: usize,
): void {
  const zero = f32x4.splat(0);
  if (K <= NT_SHORT_K && bias == 0 && (rows & 3) == 0 && ((jLast - jFirst) & 7) == 0) {
    const panels = (jLast - jFirst) >> 3;
    const pb = (<usize>K) << 5;
    pack_b_nk_panels(panel, B + <usize>jFirst * ldb, ldb, K, panels);
    const tiles = rows >> 2;
    let cp = c + ((<usize>jFirst) << 2);
    for (let p = 0; p < panels; p++) {
      ukernel_4x8(cp, ldc, a, aStep, sStride, tiles, panel, 32, K, zero, zero, flags);
      panel += pb;
      cp += 32;
    }
    return;
  }
  for (let j0 = jFirst; j0 < jLast;) {
    const left = jLast - j0;
    const nr = left > 4 ? 8 : left > 2 ? 4 : 2;
    const cols = min(left, nr);
    pack_b_nk(panel, B + <usize>j0 * ldb, ldb, K, cols, nr);
    let bias0 = zero;
    let bias1 = zero;
    if (bias) {
      const bp = bias + ((<usize>j0) << 2);
      bias0 = load_partial(bp, min(cols, 4));
      if (cols > 4) bias1 = load_partial(bp + 16, cols - 4);
    }
    const j = (<usize>j0) << 2;
    if (cols == 8) {
      // A whole 8-wide panel: its whole tiles straight to the kernel, then the last rows < 4
      // (if any) through run_panel.
      const tiles = rows >> 2;
      ukernel_4x8(c + j, ldc, a, aStep, sStride, tiles, panel, 32, K, bias0, bias1, flags);
      rows_after_strips(
        8,
        c + j,
        ldc,
        a,
        aStep,
        sStride,
        tiles,
        rows,
        panel,
        32,
        K,
        bias0,
        bias1,
        flags,
        8,
        tmp,
      );
    } else {
      const bStep = (<usize>nr) << 2;
      run_panel(
        nr,
        c + j,
        ldc,
        a,
        aStep,
        sStride,
        rows,
        panel,
        bStep,
        K,
        bias0,
        bias1,
        flags,
        cols,
        tmp,
      );
    }
    j0 += nr;
  }
}

/** After `strips` whole 4-row strips of a panel at c, the rows left of `rows` through run_panel. */
function rows_after_strips(
  nr: i32,
  c: usize,
  ldc: usize,
  a: usize,
  aStep: usize,
  sStride: usize,
  strips: i32,
  rows: i32,
  panel: usize,
  bStep: usize,
  K: i32,
  bias0: v128,
  bias1: v128,
  flags: i32,
  cols: i32,
  tmp: usize,
): void {
  const done = strips << 2;
  if (done >= rows) return;
  const s = a + <usize>strips * sStride;
  run_panel(
    nr,
    c + <usize>done * ldc,
    ldc,
    s,
    aStep,
    sStride,
    rows - done,
    panel,
    bStep,
    K,
    bias0,
    bias1,
    flags,
    cols,
    tmp,
  );
}

/**
 * One B panel of width nr (8, 4 or 2) against `rows` rows of packed A. Whole tiles go straight
 * to C through the panel's micro-kernel; a partial tile (the last rows of an M tail, or every
 * tile of a panel narrower than nr) is computed by the same kernel into `tmp` (flags 0: the raw
 * sums) and then finished into C by finish_tile with the same epilogue operations, so its bits
 * match a whole tile's. Keeping tails out of the kernels keeps calls out of them: V8 spills all
 * live vectors around a call, and did so on the fast path too when a kernel contained one.
 */
function run_panel(
  nr: i32,
  c: usize,
  ldc: usize,
  a: usize,
  aStep: usize,
  sStride: usize,
  rows: i32,
  b: usize,
  bStep: usize,
  K: i32,
  bias0: v128,
  bias1: v128,
  flags: i32,
  cols: i32,
  tmp: usize,
): void {
  const h = nr == 8 ? 4 : nr == 4 ? 8 : 16; // rows per tile
  const tiles = cols == nr ? rows / h : 0;
  if (tiles)
    inline.always(
      run_tiles(nr, c, ldc, a, aStep, sStride, tiles, b, bStep, K, bias0, bias1, flags),
    );
  const zero = f32x4.splat(0);
  const tmpStride = (<usize>nr) << 2;
  for (let r = tiles * h; r < rows; r += h) {
    const s = a + <usize>(r >> 2) * sStride;
    run_tiles(nr, tmp, tmpStride, s, aStep, sStride, 1, b, bStep, K, zero, zero, 0);
    const n = min(h, rows - r);
    finish_tile(c + <usize>r * ldc, ldc, tmp, tmpStride, n, cols, bias0, bias1, flags);
  }
}

function run_tiles(
  nr: i32,
  c: usize,
  ldc: usize,
  a: usize,
  aStep: usize,
  sStride: usize,
  tiles: i32,
  b: usize,
  bStep: usize,
  K: i32,
  bias0: v128,
  bias1: v128,
  flags: i32,
): void {
  if (nr == 8) {
    ukernel_4x8(c, ldc, a, aStep, sStride, tiles, b, bStep, K, bias0, bias1, flags);
  } else if (nr == 4) {
    ukernel_8x4(c, ldc, a, aStep, sStride, tiles, b, bStep, K, bias0, flags);
  } else {
    ukernel_16x2(c, ldc, a, aStep, sStride, tiles, b, bStep, K, bias0, flags);
  }
}

/**
 * The 4×8 micro-kernel, run down one (K, 8) B panel: `tiles` whole 4×8 tiles of C, one 4-row
 * strip of A each. 8 f32x4 accumulators + 2 B vectors + 1 broadcast A = 11 of the 15 vector
 * registers V8 gives wasm. Bigger tiles (5×8, 6×8, 4×12, 8×6 with rows in lanes) ran at about
 * half this kernel's speed in an isolated micro-benchmark (AMD EPYC, Node 20): TurboFan
 * schedules all of an iteration's loads first, so 10+ accumulators plus the loaded operands
 * exceed 15 registers and two accumulators spill every iteration. On its own (A and B in L1)
 * this kernel runs at 94–96% of the peak loop of assembly/peak.ts in both builds. A is broadcast
 * with `load32_splat`, which V8 emits as one vbroadcastss load; f32.load + f32x4.splat, or one
 * v128.load + 4 lane shuffles, measured 8–15% slower. The k loop is not unrolled by hand (V8
 * already unrolls it twice; a hand-unrolled K = 10 let TurboFan hoist all 60 loads and spill),
 * but k = 0 is peeled out of it, as the same madd onto 0 (so the same bits): every batch-32
 * shape of the MLP ran ×1.02–1.09 faster in the baseline build and the last dX (K = 10) ×1.07 in
 * the relaxed one (throwaway A/B of both engines in one process, 31 interleaved rounds). Hence
 * K ≥ 1: gemm finishes K = 0 itself (epilogue_only). The strip loop lives here rather than in
 * the caller so a short K (10 in the MLP's last dX) pays one call per panel, not per tile.
 * Strip s's A: a + s·sStride, then + aStep per k.  B[k, c] at b + k·bStep + 4c (bStep 32 for a
 * packed panel).
 */
function ukernel_4x8(
  c: usize,
  ldc: usize,
  a: usize,
  aStep: usize,
  sStride: usize,
  tiles: i32,
  b: usize,
  bStep: usize,
  K: i32,
  bias0: v128,
  bias1: v128,
  flags: i32,
): void {
  const bEnd = b + <usize>K * bStep;
  const zero = f32x4.splat(0);
  for (let t = 0; t < tiles; t++) {
    let ap = a;
    let bp = b;
    let c00 = zero;
    let c01 = zero;
    let c10 = zero;
    let c11 = zero;
    let c20 = zero;
    let c21 = zero;
    let c30 = zero;
    let c31 = zero;
    // k = 0 out of the loop, with the same madd onto 0 as in it (the same bits).
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let av = v128.load32_splat(ap);
    c00 = madd(av, b0, zero);
    c01 = madd(av, b1, zero);
    av = v128.load32_splat(ap, 4);
    c10 = madd(av, b0, zero);
    c11 = madd(av, b1, zero);
    av = v128.load32_splat(ap, 8);
    c20 = madd(av, b0, zero);
    c21 = madd(av, b1, zero);
    av = v128.load32_splat(ap, 12);
    c30 = madd(av, b0, zero);
    c31 = madd(av, b1, zero);
    ap += aStep;
    bp += bStep;
    while (bp < bEnd) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let av = v128.load32_splat(ap);
      c00 = madd(av, b0, c00);
      c01 = madd(av, b1, c01);
      av = v128.load32_splat(ap, 4);
      c10 = madd(av, b0, c10);
      c11 = madd(av, b1, c11);
      av = v128.load32_splat(ap, 8);
      c20 = madd(av, b0, c20);
      c21 = madd(av, b1, c21);
      av = v128.load32_splat(ap, 12);
      c30 = madd(av, b0, c30);
      c31 = madd(av, b1, c31);
      ap += aStep;
      bp += bStep;
    }
    inline.always(store_4x8(c, ldc, c00, c01, c10, c11, c20, c21, c30, c31, bias0, bias1, flags));
    a += sStride;
    c += ldc << 2;
  }
}

/**
 * Columns of C per row-sparse panel (ukernel_1x24_rows): 6 accumulators of 4. TurboFan loads
 * all of an iteration's B vectors before its multiply-adds, so accumulators + B vectors + the
 * broadcast must fit V8's 15 vector registers: 6 + 6 + 1. With 8 (32 columns) one accumulator
 * went through the stack every k, and the kernel ran ≈ 1.4× slower per flop (measured).
 */
const ROW_COLS: i32 = 24;

/**
 * A block runs row by row when its rows keep at most this fraction (in 1/16ths) of their k on
 * average. Per kept k the row kernel loads 8 values for 6 vector multiply-adds where the strip
 * kernel loads 7 for 8, but a strip keeps the union of 4 rows' k: on MNIST pixels (19% of a
 * row's k are non-zero, 38% of a strip's) rows ran the 1000×784×256 GEMM 1.3× faster; on random
 * A they won up to ≈ 45% density and lost from ≈ 60% (measured), so a denser block packs strips.
 */
const ROW_MAX_16THS: i32 = 8;

/**
 * Row-sparse lists for mb rows of A stored (M, K) (lda = 4K bytes): row r's list at
 * lists + r·8K holds, in increasing k, one pair (u32 byte offset 4k, f32 A[r, k]) per non-zero
 * A[r, k]; counts[r] is its length. The kernel then reads each value next to its offset instead
 * of from A's row, which a block of 128 rows (400 KB at K = 784) had evicted from L1 by the
 * next panel: with the values in the lists the 1000×784×256 inference GEMM on test images ran
 * 1.09–1.13× faster and batch 32's forward GEMMs 1.10–1.18× (throwaway A/B, medians, same bits).
 * Returns whether the block should run row by row (ROW_MAX_16THS); if not, the
 * caller packs strips over the lists. Scans 4 k per vector and writes only where one is
 * non-zero; NaN ≠ 0 is listed, −0 is left out like 0.
 */
function list_rows(lists: usize, A: usize, mb: i32, K: i32, counts: usize): bool {
  const lda = (<usize>K) << 2;
  const whole = lda & ~(<usize>15);
  const zero = f32x4.splat(0);
  let total: i64 = 0;
  for (let r = 0; r < mb; r++) {
    const row = A + <usize>r * lda;
    const first = lists + <usize>r * (lda << 1);
    let o = first;
    let k: usize = 0;
    for (; k < whole; k += 16) {
      const v = v128.load(row + k);
      const m = i32x4.bitmask(f32x4.ne(v, zero));
      if (m) {
        const kk = <u32>k;
        store<u32>(o, kk);
        store<f32>(o, f32x4.extract_lane(v, 0), 4);
        o += (<usize>(m & 1)) << 3;
        store<u32>(o, kk + 4);
        store<f32>(o, f32x4.extract_lane(v, 1), 4);
        o += (<usize>((m >> 1) & 1)) << 3;
        store<u32>(o, kk + 8);
        store<f32>(o, f32x4.extract_lane(v, 2), 4);
        o += (<usize>((m >> 2) & 1)) << 3;
        store<u32>(o, kk + 12);
        store<f32>(o, f32x4.extract_lane(v, 3), 4);
        o += (<usize>(m >> 3)) << 3;
      }
    }
    for (; k < lda; k += 4) {
      const x = load<f32>(row + k);
      store<u32>(o, <u32>k);
      store<f32>(o, x, 4);
      o += (<usize>(x != 0)) << 3;
    }
    const n = <i32>((o - first) >> 3);
    store<i32>(counts + ((<usize>r) << 2), n);
    total += n;
  }
  return total * 16 <= <i64>mb * <i64>K * ROW_MAX_16THS;
}

/**
 * list_rows for rows i0 … i0+mb−1 of a U8Rows A (GEMM_A_U8): the same lists and counts, with
 * values f32(pixel) · scale. Scans 16 pixels per vector and skips a vector of zeros (an MNIST
 * image's borders) with one branch.
 */
function list_rows_u8(lists: usize, rec: usize, i0: i32, mb: i32, K: i32, counts: usize): bool {
  const images = <usize>load<u32>(rec);
  const indices = <usize>load<u32>(rec, 4) + ((<usize>i0) << 2);
  const scale = load<f32>(rec, 8);
  const vscale = f32x4.splat(scale);
  const ldb = <usize>K; // bytes per image
  const whole = ldb & ~(<usize>15);
  const zero = i8x16.splat(0);
  const step = i32x4.splat(64);
  let total: i64 = 0;
  for (let r = 0; r < mb; r++) {
    const row = images + <usize>load<i32>(indices + ((<usize>r) << 2)) * ldb;
    const first = lists + <usize>r * (ldb << 3);
    let o = first;
    let k: usize = 0;
    let kv = i32x4(0, 4, 8, 12);
    for (; k < whole; k += 16) {
      const bytes = v128.load(row + k);
      const m = i8x16.bitmask(i8x16.ne(bytes, zero));
      if (m) {
        // Lanes 0–3, 4–7, 8–11, 12–15 of the 16 pixels: offsets kv + 0, 16, 32, 48 bytes.
        const lo = i16x8.extend_low_i8x16_u(bytes);
        const hi = i16x8.extend_high_i8x16_u(bytes);
        const x0 = to_f32(i32x4.extend_low_i16x8_u(lo), vscale);
        const x1 = to_f32(i32x4.extend_high_i16x8_u(lo), vscale);
        const x2 = to_f32(i32x4.extend_low_i16x8_u(hi), vscale);
        const x3 = to_f32(i32x4.extend_high_i16x8_u(hi), vscale);
        o = inline.always(list_pairs(o, kv, x0, m));
        o = inline.always(list_pairs(o, i32x4.add(kv, i32x4.splat(16)), x1, m >> 4));
        o = inline.always(list_pairs(o, i32x4.add(kv, i32x4.splat(32)), x2, m >> 8));
        o = inline.always(list_pairs(o, i32x4.add(kv, i32x4.splat(48)), x3, m >> 12));
      }
      kv = i32x4.add(kv, step);
    }
    for (; k < ldb; k++) {
      const x = <f32>load<u8>(row + k) * scale;
      store<u32>(o, <u32>(k << 2));
      store<f32>(o, x, 4);
      o += (<usize>(x != 0)) << 3;
    }
    const n = <i32>((o - first) >> 3);
    store<i32>(counts + ((<usize>r) << 2), n);
    total += n;
  }
  return total * 16 <= <i64>mb * <i64>K * ROW_MAX_16THS;
}

/**
 * Write the (offset, value) pairs of lanes 0…3 — offsets kv, values v — at o, advancing past
 * each lane whose bit in m (bits 0…3) is set; returns the new position. Every pair is written
 * (no branch per lane: which lanes are zero is unpredictable).
 */
function list_pairs(o: usize, kv: v128, v: v128, m: i32): usize {
  const p01 = i32x4.shuffle(kv, v, 0, 4, 1, 5);
  const p23 = i32x4.shuffle(kv, v, 2, 6, 3, 7);
  v128.store64_lane(o, p01, 0);
  o += (<usize>(m & 1)) << 3;
  v128.store64_lane(o, p01, 1);
  o += (<usize>((m >> 1) & 1)) << 3;
  v128.store64_lane(o, p23, 0);
  o += (<usize>((m >> 2) & 1)) << 3;
  v128.store64_lane(o, p23, 1);
  return o + ((<usize>((m >> 3) & 1)) << 3);
}

/**
 * `rows` rows of C, ROW_COLS columns each, from row-sparse A (list_rows) and a (K, ROW_COLS) B
 * panel (pack_b_rowpanel): row r's accumulators take madd(A[r, k], B[k, ·]) over its listed k only, in
 * increasing k, so every element gets the dense kernel's bits (each skipped term is an exact
 * ±0 added to a sum that starts at +0). Per listed k: its offset, one broadcast of its value and
 * 6 B vectors for 6 multiply-adds (13 vector registers, see ROW_COLS). Row r's list at
 * lists + r·listStride, its count at counts + 4r; C row r at c + r·ldc; bias (when HAS_BIAS)
 * ROW_COLS floats at `bias`.
 */
function ukernel_1x24_rows(
  c: usize,
  ldc: usize,
  lists: usize,
  listStride: usize,
  counts: usize,
  rows: i32,
  b: usize,
  bias: usize,
  flags: i32,
): void {
  for (let r = 0; r < rows; r++) {
    let offs = lists;
    const end = offs + ((<usize>load<i32>(counts)) << 3);
    let c0 = f32x4.splat(0);
    let c1 = f32x4.splat(0);
    let c2 = f32x4.splat(0);
    let c3 = f32x4.splat(0);
    let c4 = f32x4.splat(0);
    let c5 = f32x4.splat(0);
    while (offs < end) {
      const av = v128.load32_splat(offs, 4);
      const bp = b + <usize>load<u32>(offs) * ROW_COLS;
      c0 = madd(av, v128.load(bp), c0);
      c1 = madd(av, v128.load(bp, 16), c1);
      c2 = madd(av, v128.load(bp, 32), c2);
      c3 = madd(av, v128.load(bp, 48), c3);
      c4 = madd(av, v128.load(bp, 64), c4);
      c5 = madd(av, v128.load(bp, 80), c5);
      offs += 8;
    }
    if (flags == 0) {
      v128.store(c, c0);
      v128.store(c, c1, 16);
      v128.store(c, c2, 32);
      v128.store(c, c3, 48);
      v128.store(c, c4, 64);
      v128.store(c, c5, 80);
    } else {
      const has = (flags & HAS_BIAS) != 0;
      const zero = f32x4.splat(0);
      store_full(c, c0, has ? v128.load(bias) : zero, flags);
      store_full(c + 16, c1, has ? v128.load(bias, 16) : zero, flags);
      store_full(c + 32, c2, has ? v128.load(bias, 32) : zero, flags);
      store_full(c + 48, c3, has ? v128.load(bias, 48) : zero, flags);
      store_full(c + 64, c4, has ? v128.load(bias, 64) : zero, flags);
      store_full(c + 80, c5, has ? v128.load(bias, 80) : zero, flags);
    }
    lists += listStride;
    counts += 4;
    c += ldc;
  }
}

/**
 * Pack `cols` (1..ROW_COLS) columns of B (rows ldb bytes apart) into dst (K, ROW_COLS), zero
 * beyond them: the row kernel's B for one k is then 96 contiguous bytes, where B's own rows (N·4 bytes
 * apart) would map onto a few L1 sets.
 */
function pack_b_rowpanel(dst: usize, B: usize, ldb: usize, K: i32, cols: i32): void {
  const width = (<usize>ROW_COLS) << 2;
  if (cols == ROW_COLS) {
    for (let k = 0; k < K; k++) {
      v128.store(dst, v128.load(B));
      v128.store(dst, v128.load(B, 16), 16);
      v128.store(dst, v128.load(B, 32), 32);
      v128.store(dst, v128.load(B, 48), 48);
      v128.store(dst, v128.load(B, 64), 64);
      v128.store(dst, v128.load(B, 80), 80);
      B += ldb;
      dst += width;
    }
    return;
  }
  for (let k = 0; k < K; k++) {
    for (let v = 0; v < ROW_COLS; v += 4) {
      const vb = (<usize>v) << 2;
      v128.store(dst + vb, load_partial(B + vb, max(0, min(cols - v, 4))));
    }
    B += ldb;
    dst += width;
  }
}

/**
 * GEMM_SPARSE_A: for each of `strips` packed 4-row strips of A ((K, 4) each, see
 * pack_a_rowmajor), list the k where any of the 4 rows is non-zero, in increasing k, as byte
 * offsets k·16 into the strip (offs: strip s at s·K·4 bytes). counts[s] = the list's length, or
 * −1 when more than SPARSE_MAX_16THS/16 of K are listed and the strip runs the dense kernel.
 * NaN ≠ 0, so a NaN in A is listed and propagates as in the dense product; −0 is left out like
 * 0. One branch-free pass: every k is written, and the write position only advances when it is
 * kept.
 */
function compact_strips(packA: usize, K: i32, strips: i32, offs: usize, counts: usize): void {
  const stripBytes = (<usize>K) << 4;
  const limit = (K * SPARSE_MAX_16THS) >> 4;
  const zero = f32x4.splat(0);
  for (let s = 0; s < strips; s++) {
    const v = packA + <usize>s * stripBytes;
    let o = offs + ((<usize>s * stripBytes) >> 2);
    const first = o;
    for (let k: u32 = 0; k < <u32>stripBytes; k += 16) {
      store<u32>(o, k);
      o += (<usize>v128.any_true(f32x4.ne(v128.load(v + <usize>k), zero))) << 2;
    }
    const kept = <i32>((o - first) >> 2);
    store<i32>(counts + ((<usize>s) << 2), kept > limit ? -1 : kept);
  }
}

/**
 * ukernel_4x8 for one strip of sparse A (compact_strips): the same accumulators and epilogue
 * over the listed k only, in increasing k, so every element gets the dense kernel's bits (each
 * skipped term is an exact ±0). A listed offset o = k·16 is A's 4 values at a + o and B's row
 * at b + 2o in the (K, 8) panel.
 */
function ukernel_4x8_sparse(
  c: usize,
  ldc: usize,
  a: usize,
  offs: usize,
  n: i32,
  b: usize,
  bias0: v128,
  bias1: v128,
  flags: i32,
): void {
  const end = offs + ((<usize>n) << 2);
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  while (offs < end) {
    const o = <usize>load<u32>(offs);
    const ap = a + o;
    const bp = b + (o << 1);
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let av = v128.load32_splat(ap);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(ap, 4);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    av = v128.load32_splat(ap, 8);
    c20 = madd(av, b0, c20);
    c21 = madd(av, b1, c21);
    av = v128.load32_splat(ap, 12);
    c30 = madd(av, b0, c30);
    c31 = madd(av, b1, c31);
    offs += 4;
  }
  inline.always(store_4x8(c, ldc, c00, c01, c10, c11, c20, c21, c30, c31, bias0, bias1, flags));
}

/**
 * Epilogue of a 4×8 tile (rows 0..3 × accumulators for columns 0..3 and 4..7), always inlined
 * into its kernels. flags 0 (the backward GEMMs): plain stores, no epilogue tests.
 */
function store_4x8(
  c: usize,
  ldc: usize,
  c00: v128,
  c01: v128,
  c10: v128,
  c11: v128,
  c20: v128,
  c21: v128,
  c30: v128,
  c31: v128,
  bias0: v128,
  bias1: v128,
  flags: i32,
): void {
  const c1 = c + ldc;
  const c2 = c1 + ldc;
  const c3 = c2 + ldc;
  if (flags == 0) {
    v128.store(c, c00);
    v128.store(c, c01, 16);
    v128.store(c1, c10);
    v128.store(c1, c11, 16);
    v128.store(c2, c20);
    v128.store(c2, c21, 16);
    v128.store(c3, c30);
    v128.store(c3, c31, 16);
  } else {
    store_full(c, c00, bias0, flags);
    store_full(c + 16, c01, bias1, flags);
    store_full(c1, c10, bias0, flags);
    store_full(c1 + 16, c11, bias1, flags);
    store_full(c2, c20, bias0, flags);
    store_full(c2 + 16, c21, bias1, flags);
    store_full(c3, c30, bias0, flags);
    store_full(c3 + 16, c31, bias1, flags);
  }
}

/**
 * nn with exactly 10 columns, both operands read in place: `rows` rows of C = A (rows, K) · B
 * (K, 10) (+ old C) (+ bias) (ReLU), A's rows lda bytes apart, B's and C's 40. Whole 3-row tiles
 * (ukernel_3x10), then the last 1 or 2 rows (ukernel_2x10). Columns 0..7 of a row are two
 * accumulators, as in ukernel_4x8; columns 8 and 9 of two rows share one,
 * [C(r,8) C(r,9) C(r+1,8) C(r+1,9)], so almost no lane is wasted, and nothing is packed: the
 * strip path packed A for an 8-wide panel and a 2-wide one (16×2 tiles). A batch-32 output
 * layer, nn 32×10×128, went from 72 to 77% of the peak loop in the baseline build and from 70
 * to 78% in the relaxed one; at batch 1000 from 73 to 79% and 67 to 82% (throwaway A/B of the
 * two engines in one process, 61 interleaved rounds, medians; the same bits).
 * Each element takes the same madd sequence as in ukernel_4x8, so the bits are the same.
 */
function ukernel_10(
  c: usize,
  a: usize,
  lda: usize,
  rows: i32,
  b: usize,
  K: i32,
  bias: usize,
  flags: i32,
): void {
  const zero = f32x4.splat(0);
  const bias0 = bias ? v128.load(bias) : zero;
  const bias1 = bias ? v128.load(bias, 16) : zero;
  const bias2 = bias ? v128.load64_splat(bias + 32) : zero; // [b8 b9 b8 b9]
  const tiles = rows / 3;
  ukernel_3x10(c, a, lda, tiles, b, K, bias0, bias1, bias2, flags);
  const left = rows - tiles * 3;
  if (left) {
    const r = <usize>(tiles * 3);
    const two = left == 2;
    ukernel_2x10(c + r * 40, a + r * lda, two ? lda : 0, two, b, K, bias0, bias1, bias2, flags);
  }
}

/**
 * `tiles` tiles of 3 rows × 10 columns (see ukernel_10): 6 accumulators for columns 0..7, one
 * for columns 8, 9 of rows 0 and 1 (their broadcasts interleaved by one shuffle) and one for
 * row 2's (its broadcast against [B(k,8) B(k,9) B(k,8) B(k,9)], half of it unused). 8
 * accumulators + 3 B vectors + 3 broadcasts + the shuffle = 15 vector registers. In a throwaway
 * micro-benchmark, 4×10 tiles (10 accumulators + 3 + 4 > 15: spills) ran at 0.67× (baseline) and
 * 0.47× (relaxed) this kernel's speed, 2×10 tiles at 0.94× and 0.76×.
 */
function ukernel_3x10(
  c: usize,
  a: usize,
  lda: usize,
  tiles: i32,
  b: usize,
  K: i32,
  bias0: v128,
  bias1: v128,
  bias2: v128,
  flags: i32,
): void {
  const lda2 = lda << 1;
  const bEnd = b + <usize>K * 40;
  for (let t = 0; t < tiles; t++) {
    let ap = a;
    let bp = b;
    let c00 = f32x4.splat(0);
    let c01 = f32x4.splat(0);
    let c10 = f32x4.splat(0);
    let c11 = f32x4.splat(0);
    let c20 = f32x4.splat(0);
    let c21 = f32x4.splat(0);
    let d01 = f32x4.splat(0);
    let d2 = f32x4.splat(0);
    while (bp < bEnd) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      const b2 = v128.load64_splat(bp + 32);
      const a0 = v128.load32_splat(ap);
      const a1 = v128.load32_splat(ap + lda);
      const a2 = v128.load32_splat(ap + lda2);
      c00 = madd(a0, b0, c00);
      c01 = madd(a0, b1, c01);
      c10 = madd(a1, b0, c10);
      c11 = madd(a1, b1, c11);
      d01 = madd(v128.shuffle<f32>(a0, a1, 0, 0, 4, 4), b2, d01);
      c20 = madd(a2, b0, c20);
      c21 = madd(a2, b1, c21);
      d2 = madd(a2, b2, d2);
      ap += 4;
      bp += 40;
    }
    store_full(c, c00, bias0, flags);
    store_full(c + 16, c01, bias1, flags);
    store_full(c + 40, c10, bias0, flags);
    store_full(c + 56, c11, bias1, flags);
    store_full(c + 80, c20, bias0, flags);
    store_full(c + 96, c21, bias1, flags);
    inline.always(store_cols89(c, d01, bias2, flags, true));
    inline.always(store_cols89(c + 80, d2, bias2, flags, false));
    a += lda * 3;
    c += 120;
  }
}

/**
 * The last 1 or 2 rows of ukernel_10: ukernel_3x10 without row 2. One row (`two` false, lda 0)
 * runs as two copies of it and stores one. (ukernel_3x10 itself with a row count, its missing
 * rows pointed at row 0, computed a third row for nothing at M = 32: 32×10×128 at 74.5 / 75.8%
 * of peak against 77 / 78% this way, throwaway A/B.)
 */
function ukernel_2x10(
  c: usize,
  a: usize,
  lda: usize,
  two: bool,
  b: usize,
  K: i32,
  bias0: v128,
  bias1: v128,
  bias2: v128,
  flags: i32,
): void {
  const bEnd = b + <usize>K * 40;
  let ap = a;
  let bp = b;
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let d01 = f32x4.splat(0);
  while (bp < bEnd) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    const b2 = v128.load64_splat(bp + 32);
    const a0 = v128.load32_splat(ap);
    const a1 = v128.load32_splat(ap + lda);
    c00 = madd(a0, b0, c00);
    c01 = madd(a0, b1, c01);
    c10 = madd(a1, b0, c10);
    c11 = madd(a1, b1, c11);
    d01 = madd(v128.shuffle<f32>(a0, a1, 0, 0, 4, 4), b2, d01);
    ap += 4;
    bp += 40;
  }
  store_full(c, c00, bias0, flags);
  store_full(c + 16, c01, bias1, flags);
  if (two) {
    store_full(c + 40, c10, bias0, flags);
    store_full(c + 56, c11, bias1, flags);
  }
  store_cols89(c, d01, bias2, flags, two);
}

/**
 * Columns 8 and 9 of a 10-wide C for row r (lanes 0, 1) and, when `both`, row r + 1 (lanes 2,
 * 3) at p = &C[r, 0], finished like store_full: (acc + old C) + bias, then ReLU.
 */
function store_cols89(p: usize, acc: v128, bias2: v128, flags: i32, both: bool): void {
  if (flags & GEMM_ACCUMULATE) {
    let old = v128.load64_zero(p + 32);
    if (both) old = v128.load64_lane(p + 72, old, 1);
    acc = f32x4.add(acc, old);
  }
  if (flags & HAS_BIAS) acc = f32x4.add(acc, bias2);
  if (flags & GEMM_RELU) acc = f32x4.pmax(acc, f32x4.splat(0));
  v128.store64_lane(p + 32, acc, 0);
  if (both) v128.store64_lane(p + 72, acc, 1);
}

/**
 * The 2×16 micro-kernel for nn with exactly 16 columns, reading both operands in place: `pairs`
 * pairs of rows of A (row r at a + r·aNext, 4 bytes per k; aNext = 0 runs one row twice), B
 * (K, 16) row-major, 64 bytes per k. 8 accumulators + 4 B vectors + 1 broadcast = 13 vector
 * registers; per k 6 loads and 8 multiply-adds, as in the 4×8 kernel, but nothing is packed:
 * LeNet-5's conv2 forward (3200×16×150) had packed A into strips that served only two 8-column
 * panels; this way it ran 1.47× faster (throwaway A/B, medians, same bits). Each element takes
 * the same madd sequence as in ukernel_4x8, so the bits are the same. bias (HAS_BIAS): 16
 * floats.
 */
function ukernel_2x16(
  c: usize,
  ldc: usize,
  a: usize,
  aNext: usize,
  pairs: i32,
  b: usize,
  K: i32,
  bias: usize,
  flags: i32,
): void {
  const bEnd = b + ((<usize>K) << 6);
  for (let t = 0; t < pairs; t++) {
    let ap = a;
    let aq = a + aNext;
    let bp = b;
    let c00 = f32x4.splat(0);
    let c01 = f32x4.splat(0);
    let c02 = f32x4.splat(0);
    let c03 = f32x4.splat(0);
    let c10 = f32x4.splat(0);
    let c11 = f32x4.splat(0);
    let c12 = f32x4.splat(0);
    let c13 = f32x4.splat(0);
    while (bp < bEnd) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      const b2 = v128.load(bp, 32);
      const b3 = v128.load(bp, 48);
      let av = v128.load32_splat(ap);
      c00 = madd(av, b0, c00);
      c01 = madd(av, b1, c01);
      c02 = madd(av, b2, c02);
      c03 = madd(av, b3, c03);
      av = v128.load32_splat(aq);
      c10 = madd(av, b0, c10);
      c11 = madd(av, b1, c11);
      c12 = madd(av, b2, c12);
      c13 = madd(av, b3, c13);
      ap += 4;
      aq += 4;
      bp += 64;
    }
    const c1 = c + ldc;
    if (flags == 0) {
      v128.store(c, c00);
      v128.store(c, c01, 16);
      v128.store(c, c02, 32);
      v128.store(c, c03, 48);
      v128.store(c1, c10);
      v128.store(c1, c11, 16);
      v128.store(c1, c12, 32);
      v128.store(c1, c13, 48);
    } else {
      const has = (flags & HAS_BIAS) != 0;
      const zero = f32x4.splat(0);
      const bias0 = has ? v128.load(bias) : zero;
      const bias1 = has ? v128.load(bias, 16) : zero;
      const bias2 = has ? v128.load(bias, 32) : zero;
      const bias3 = has ? v128.load(bias, 48) : zero;
      store_full(c, c00, bias0, flags);
      store_full(c + 16, c01, bias1, flags);
      store_full(c + 32, c02, bias2, flags);
      store_full(c + 48, c03, bias3, flags);
      store_full(c1, c10, bias0, flags);
      store_full(c1 + 16, c11, bias1, flags);
      store_full(c1 + 32, c12, bias2, flags);
      store_full(c1 + 48, c13, bias3, flags);
    }
    a += aNext << 1;
    c += ldc << 1;
  }
}

/**
 * The 8×4 micro-kernel for a (K, 4) B panel (an N tail of cols = 3 or 4): `tiles` whole 8×4
 * tiles, two strips each: 8 accumulators as in 4×8, but one B vector and eight broadcasts per
 * k. A 4×4 tile has only 4 independent add chains to hide the add latency and measured ≈30%
 * slower per flop. Strips 2t and 2t+1: a + 2t·sStride and one sStride further, + aStep per k.
 * B[k, c] at b + k·bStep + 4c.
 */
function ukernel_8x4(
  c: usize,
  ldc: usize,
  a: usize,
  aStep: usize,
  sStride: usize,
  tiles: i32,
  b: usize,
  bStep: usize,
  K: i32,
  bias0: v128,
  flags: i32,
): void {
  const bEnd = b + <usize>K * bStep;
  for (let t = 0; t < tiles; t++) {
    let ap = a;
    let aq = a + sStride;
    let bp = b;
    let c0 = f32x4.splat(0);
    let c1 = f32x4.splat(0);
    let c2 = f32x4.splat(0);
    let c3 = f32x4.splat(0);
    let c4 = f32x4.splat(0);
    let c5 = f32x4.splat(0);
    let c6 = f32x4.splat(0);
    let c7 = f32x4.splat(0);
    while (bp < bEnd) {
      const b0 = v128.load(bp);
      c0 = madd(v128.load32_splat(ap), b0, c0);
      c1 = madd(v128.load32_splat(ap, 4), b0, c1);
      c2 = madd(v128.load32_splat(ap, 8), b0, c2);
      c3 = madd(v128.load32_splat(ap, 12), b0, c3);
      c4 = madd(v128.load32_splat(aq), b0, c4);
      c5 = madd(v128.load32_splat(aq, 4), b0, c5);
      c6 = madd(v128.load32_splat(aq, 8), b0, c6);
      c7 = madd(v128.load32_splat(aq, 12), b0, c7);
      ap += aStep;
      aq += aStep;
      bp += bStep;
    }
    let cp = c;
    store_full(cp, c0, bias0, flags);
    store_full((cp += ldc), c1, bias0, flags);
    store_full((cp += ldc), c2, bias0, flags);
    store_full((cp += ldc), c3, bias0, flags);
    store_full((cp += ldc), c4, bias0, flags);
    store_full((cp += ldc), c5, bias0, flags);
    store_full((cp += ldc), c6, bias0, flags);
    store_full((cp += ldc), c7, bias0, flags);
    a += sStride << 1;
    c += ldc << 3;
  }
}

/**
 * The 16×2 micro-kernel for a (K, 2) B panel (an N tail of cols = 1 or 2): `tiles` whole 16×2
 * tiles with rows in the vector lanes: per k, 4 A vectors (A[i..i+3, k] of 4 strips) and 2
 * broadcast B values feed 8 accumulators, so every lane is useful where a 4-wide row tile would
 * waste half of them on the 2-column tail of the MLP's 10 outputs (8 + 2). Lanes are regrouped
 * into (row, 2 columns) pairs for the epilogue (store_rows4x2).
 * Strips 4t..4t+3: a + (4t + q)·sStride, + aStep per k.  B[k, c] at b + k·bStep + 4c.
 */
function ukernel_16x2(
  c: usize,
  ldc: usize,
  a: usize,
  aStep: usize,
  sStride: usize,
  tiles: i32,
  b: usize,
  bStep: usize,
  K: i32,
  bias0: v128,
  flags: i32,
): void {
  const bEnd = b + <usize>K * bStep;
  // [bias j, bias j+1, bias j, bias j+1]: the layout of a regrouped pair of rows.
  const bias2 = v128.shuffle<f32>(bias0, bias0, 0, 1, 0, 1);
  const ldc4 = ldc << 2;
  for (let t = 0; t < tiles; t++) {
    let ap = a;
    let bp = b;
    let c0 = f32x4.splat(0); // column j, rows 0..3
    let c1 = f32x4.splat(0); // column j, rows 4..7
    let c2 = f32x4.splat(0);
    let c3 = f32x4.splat(0);
    let c4 = f32x4.splat(0); // column j+1, rows 0..3
    let c5 = f32x4.splat(0);
    let c6 = f32x4.splat(0);
    let c7 = f32x4.splat(0);
    while (bp < bEnd) {
      const a0 = v128.load(ap);
      const a1 = v128.load(ap + sStride);
      const a2 = v128.load(ap + sStride * 2);
      const a3 = v128.load(ap + sStride * 3);
      let bv = v128.load32_splat(bp);
      c0 = madd(a0, bv, c0);
      c1 = madd(a1, bv, c1);
      c2 = madd(a2, bv, c2);
      c3 = madd(a3, bv, c3);
      bv = v128.load32_splat(bp, 4);
      c4 = madd(a0, bv, c4);
      c5 = madd(a1, bv, c5);
      c6 = madd(a2, bv, c6);
      c7 = madd(a3, bv, c7);
      ap += aStep;
      bp += bStep;
    }
    inline.always(store_rows4x2(c, ldc, c0, c4, bias2, flags));
    inline.always(store_rows4x2(c + ldc4, ldc, c1, c5, bias2, flags));
    inline.always(store_rows4x2(c + (ldc4 << 1), ldc, c2, c6, bias2, flags));
    inline.always(store_rows4x2(c + ldc4 * 3, ldc, c3, c7, bias2, flags));
    a += sStride << 2;
    c += ldc4 << 2;
  }
}

/**
 * Epilogue of 4 rows × 2 columns of ukernel_16x2: x = column j, y = column j+1 of rows 0..3.
 * Rows are regrouped as [C(0,j) C(0,j+1) C(1,j) C(1,j+1)] and [rows 2, 3], then finished like
 * store_full: (acc + old C) + bias, then ReLU.
 */
function store_rows4x2(p: usize, ldc: usize, x: v128, y: v128, bias2: v128, flags: i32): void {
  let lo = v128.shuffle<f32>(x, y, 0, 4, 1, 5); // rows 0, 1
  let hi = v128.shuffle<f32>(x, y, 2, 6, 3, 7); // rows 2, 3
  const p1 = p + ldc;
  const p2 = p1 + ldc;
  const p3 = p2 + ldc;
  if (flags & GEMM_ACCUMULATE) {
    lo = f32x4.add(lo, v128.load64_lane(p1, v128.load64_zero(p), 1));
    hi = f32x4.add(hi, v128.load64_lane(p3, v128.load64_zero(p2), 1));
  }
  if (flags & HAS_BIAS) {
    lo = f32x4.add(lo, bias2);
    hi = f32x4.add(hi, bias2);
  }
  if (flags & GEMM_RELU) {
    lo = f32x4.pmax(lo, f32x4.splat(0));
    hi = f32x4.pmax(hi, f32x4.splat(0));
  }
  v128.store64_lane(p, lo, 0);
  v128.store64_lane(p1, lo, 1);
  v128.store64_lane(p2, hi, 0);
  v128.store64_lane(p3, hi, 1);
}

/**
 * Finish a partial tile: rows 0..n-1, columns 0..cols-1 (cols ≤ 8) of raw sums at tmp
 * (tmpStride bytes per row) into C with the epilogue. Reads up to 32 bytes per tmp row; tmp
 * has room for that (gemm_scratch_floats).
 */
function finish_tile(
  c: usize,
  ldc: usize,
  tmp: usize,
  tmpStride: usize,
  n: i32,
  cols: i32,
  bias0: v128,
  bias1: v128,
  flags: i32,
): void {
  const lo = min(cols, 4);
  for (let i = 0; i < n; i++) {
    store_partial(c, v128.load(tmp), bias0, flags, lo);
    if (cols > 4) store_partial(c + 16, v128.load(tmp, 16), bias1, flags, cols - 4);
    c += ldc;
    tmp += tmpStride;
  }
}

/**
 * Epilogue of 4 adjacent outputs: (acc + old C) + bias, then ReLU as pmax(x, 0) = x < 0 ? 0 : x,
 * which keeps NaN (a NaN-dropping max would hide a diverged run) and lowers to one maxps.
 */
function store_full(p: usize, acc: v128, bias: v128, flags: i32): void {
  if (flags & GEMM_ACCUMULATE) acc = f32x4.add(acc, v128.load(p));
  if (flags & HAS_BIAS) acc = f32x4.add(acc, bias);
  if (flags & GEMM_RELU) acc = f32x4.pmax(acc, f32x4.splat(0));
  v128.store(p, acc);
}

/** `rows` rows of `cols` outputs, ldc bytes apart, set to the epilogue of 0 (K = 0). */
function epilogue_only(c: usize, ldc: usize, rows: i32, cols: i32, bias: usize, flags: i32): void {
  const zero = f32x4.splat(0);
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < cols; v += 4) {
      const n = min(cols - v, 4);
      const o = (<usize>v) << 2;
      store_partial(c + o, zero, bias ? load_partial(bias + o, n) : zero, flags, n);
    }
    c += ldc;
  }
}

/** store_full for the first n (0..4) lanes only: never reads or writes past them. */
function store_partial(p: usize, acc: v128, bias: v128, flags: i32, n: i32): void {
  if (n >= 4) {
    store_full(p, acc, bias, flags);
    return;
  }
  if (n <= 0) return;
  if (flags & GEMM_ACCUMULATE) acc = f32x4.add(acc, load_partial(p, n));
  if (flags & HAS_BIAS) acc = f32x4.add(acc, bias);
  if (flags & GEMM_RELU) acc = f32x4.pmax(acc, f32x4.splat(0));
  v128.store32_lane(p, acc, 0);
  if (n > 1) v128.store32_lane(p, acc, 1, 4);
  if (n > 2) v128.store32_lane(p, acc, 2, 8);
}

/** The first n (0..4) floats at p, zero-filled to a vector, without touching memory past them. */
function load_partial(p: usize, n: i32): v128 {
  if (n >= 4) return v128.load(p);
  let v = f32x4.splat(0);
  if (n > 0) v = v128.load32_zero(p);
  if (n > 1) v = v128.load32_lane(p, v, 1, 4);
  if (n > 2) v = v128.load32_lane(p, v, 2, 8);
  return v;
}

/**
 * Pack nr (8, 4 or 2) columns of B stored (K, N) into dst (K, nr): dst[k·nr + c] = B[k, c] for
 * the `cols` valid columns, 0 beyond. A k-major panel turns the kernel's B reads into one
 * sequential stream that stays in L1, instead of K rows N·4 bytes apart (with N = 256 every row
 * maps to the same few L1 sets).
 */
function pack_b_kn(dst: usize, B: usize, N: i32, K: i32, cols: i32, nr: i32): void {
  const ldb = (<usize>N) << 2;
  if (nr == 8 && cols == 8) {
    for (let k = 0; k < K; k++) {
      v128.store(dst, v128.load(B));
      v128.store(dst, v128.load(B, 16), 16);
      B += ldb;
      dst += 32;
    }
  } else if (nr == 2) {
    for (let k = 0; k < K; k++) {
      const v = cols == 2 ? v128.load64_zero(B) : v128.load32_zero(B);
      v128.store64_lane(dst, v, 0);
      B += ldb;
      dst += 8;
    }
  } else {
    const lo = min(cols, 4);
    const hi = cols - lo;
    for (let k = 0; k < K; k++) {
      v128.store(dst, load_partial(B, lo));
      if (nr == 8) v128.store(dst, load_partial(B + 16, hi), 16);
      B += ldb;
      dst += (<usize>nr) << 2;
    }
  }
}

/**
 * Two whole panels at once: dst0 (K, 8) = B[k, 0..7], dst1 (K, 8) = B[k, 8..15], B's rows ldb
 * bytes apart. 16 floats are one 64-byte line when B is 64-byte aligned, so each line of B is
 * fetched once instead of once per panel: packing the panels of fwd L1's 784 × 256 weights one
 * at a time took 16% of that GEMM (every line was evicted before the next panel reused it).
 */
function pack_b_kn_pair(dst0: usize, dst1: usize, B: usize, ldb: usize, K: i32): void {
  for (let k = 0; k < K; k++) {
    v128.store(dst0, v128.load(B));
    v128.store(dst0, v128.load(B, 16), 16);
    v128.store(dst1, v128.load(B, 32));
    v128.store(dst1, v128.load(B, 48), 16);
    B += ldb;
    dst0 += 32;
    dst1 += 32;
  }
}

/** `panels` whole 8-row panels of B stored (N, K), each transposed to (K, 8), one after another. */
function pack_b_nk_panels(dst: usize, B: usize, ldb: usize, K: i32, panels: i32): void {
  const pb = (<usize>K) << 5;
  for (let p = 0; p < panels; p++) {
    inline.always(transpose_8xk(dst, B, ldb, K));
    dst += pb;
    B += ldb << 3;
  }
}

/**
 * Pack nr (8, 4 or 2) rows of B stored (N, K) — columns of Bᵀ — into dst (K, nr), zero-filling
 * rows beyond `cols`. Transposes 4×4 blocks in registers (4 loads, 8 shuffles, 4 stores):
 * DESIGN.md measured that ≈25% faster than a scalar gather on the whole nt GEMM.
 */
function pack_b_nk(dst: usize, B: usize, ldb: usize, K: i32, cols: i32, nr: i32): void {
  if (nr == 8 && cols == 8) {
    transpose_8xk(dst, B, ldb, K);
  } else if (nr == 4 && cols == 4) {
    transpose_4xk(dst, B, ldb, K);
  } else if (nr == 2) {
    // Interleave rows j and j+1: [B(j,k) B(j+1,k) B(j,k+1) B(j+1,k+1)] per vector.
    const r1 = B + ldb;
    let k = 0;
    let o: usize = 0;
    for (; k + 4 <= K; k += 4) {
      const x = v128.load(B + o);
      const y = cols > 1 ? v128.load(r1 + o) : f32x4.splat(0);
      v128.store(dst, v128.shuffle<f32>(x, y, 0, 4, 1, 5));
      v128.store(dst, v128.shuffle<f32>(x, y, 2, 6, 3, 7), 16);
      dst += 32;
      o += 16;
    }
    for (; k < K; k++) {
      store<f32>(dst, load<f32>(B + o));
      store<f32>(dst, cols > 1 ? load<f32>(r1 + o) : 0, 4);
      dst += 8;
      o += 4;
    }
  } else {
    // Partial 8- or 4-wide tail panel. cols > nr - 4 (see gemm's choice of nr), so every
    // 4-row group has at least one row.
    const dstStride = (<usize>nr) << 2;
    for (let g = 0; g < nr; g += 4) {
      const d = dst + ((<usize>g) << 2);
      transpose_partial(d, dstStride, B + <usize>g * ldb, ldb, K, min(cols - g, 4));
    }
  }
}

/**
 * Pack mb rows of A stored (M, K) into 4-row strips, each (K, 4) k-major:
 * dst[s·4K + 4k + r] = A[4s + r, k], zero-filled up to a multiple of 16 rows (the 8- and
 * 16-row tail tiles read whole strip pairs / quads). A strip is contiguous: the 4×8 kernel
 * streams 16 bytes per k from one place, which keeps a K = 784 strip (12.5 KiB) within L1.
 */
function pack_a_rowmajor(dst: usize, A: usize, mb: i32, K: i32): void {
  const lda = (<usize>K) << 2;
  const strips = ((mb + 15) & ~15) >> 2;
  const stripBytes = lda << 2;
  for (let s = 0; s < strips; s++) {
    const n = mb - (s << 2);
    const src = A + <usize>(s << 2) * lda;
    if (n >= 4) {
      transpose_4xk(dst, src, lda, K);
    } else if (n > 0) {
      transpose_partial(dst, 16, src, lda, K, n);
    } else {
      zero_kmajor(dst, 16, K);
    }
    dst += stripBytes;
  }
}

/**
 * pack_a_rowmajor for rows i0 … i0+mb−1 of a U8Rows A (GEMM_A_U8): the same strips, zero-filled
 * the same way, with values f32(pixel) · scale. Per 4 k of a strip, the 4 rows' 4 pixels are
 * one vector, transposed by one byte shuffle and widened to 4 k-major vectors. (A block too
 * dense to run row by row, or a product narrower than ROW_COLS, comes here.)
 */
function pack_a_rowmajor_u8(dst: usize, rec: usize, i0: i32, mb: i32, K: i32): void {
  const images = <usize>load<u32>(rec);
  const indices = <usize>load<u32>(rec, 4) + ((<usize>i0) << 2);
  const vscale = f32x4.splat(load<f32>(rec, 8));
  const ldb = <usize>K;
  const strips = ((mb + 15) & ~15) >> 2;
  const stripBytes = ldb << 4;
  const whole = ldb & ~(<usize>3);
  for (let s = 0; s < strips; s++) {
    const n = mb - (s << 2);
    if (n <= 0) {
      zero_kmajor(dst, 16, K);
      dst += stripBytes;
      continue;
    }
    // Rows past mb read the strip's first row and are masked to +0.
    const idx = indices + ((<usize>(s << 2)) << 2);
    const r0 = images + <usize>load<i32>(idx) * ldb;
    const r1 = n > 1 ? images + <usize>load<i32>(idx, 4) * ldb : r0;
    const r2 = n > 2 ? images + <usize>load<i32>(idx, 8) * ldb : r0;
    const r3 = n > 3 ? images + <usize>load<i32>(idx, 12) * ldb : r0;
    const keep = i32x4.gt_s(i32x4.splat(n), i32x4(0, 1, 2, 3));
    let k: usize = 0;
    for (; k < whole; k++) {
      let w = i32x4.splat(load<i32>(r0 + k));
      w = i32x4.replace_lane(w, 1, load<i32>(r1 + k));
      w = i32x4.replace_lane(w, 2, load<i32>(r2 + k));
      w = i32x4.replace_lane(w, 3, load<i32>(r3 + k));
      k += 3;
      const t = i8x16.shuffle(w, w, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
      const lo = i16x8.extend_low_i8x16_u(t);
      const hi = i16x8.extend_high_i8x16_u(t);
      const p = dst + ((k - 3) << 4);
      v128.store(p, v128.and(to_f32(i32x4.extend_low_i16x8_u(lo), vscale), keep));
      v128.store(p, v128.and(to_f32(i32x4.extend_high_i16x8_u(lo), vscale), keep), 16);
      v128.store(p, v128.and(to_f32(i32x4.extend_low_i16x8_u(hi), vscale), keep), 32);
      v128.store(p, v128.and(to_f32(i32x4.extend_high_i16x8_u(hi), vscale), keep), 48);
    }
    for (; k < ldb; k++) {
      let w = i32x4.splat(<i32>load<u8>(r0 + k));
      w = i32x4.replace_lane(w, 1, <i32>load<u8>(r1 + k));
      w = i32x4.replace_lane(w, 2, <i32>load<u8>(r2 + k));
      w = i32x4.replace_lane(w, 3, <i32>load<u8>(r3 + k));
      v128.store(dst + (k << 4), v128.and(to_f32(w, vscale), keep));
    }
    dst += stripBytes;
  }
}

/** f32(x) · scale for pixel values x in i32 lanes, as gather_normalize_u8 converts them. */
function to_f32(x: v128, vscale: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(x), vscale);
}

/**
 * Pack mb columns of A stored (K, M) — rows of Aᵀ — into 4-row strips as pack_a_rowmajor does:
 * dst[s·4K + 4k + r] = A[k, 4s + r], zero-filled up to a multiple of 16 rows. No transpose is
 * needed (A[k, 4s..4s+3] are adjacent); the copy makes each strip one sequential stream where
 * reading A in place steps M·4 bytes per k, which for M = 256 maps all of a strip's K rows onto
 * a few L1 sets.
 */
function pack_a_colmajor(dst: usize, A: usize, M: i32, K: i32, mb: i32): void {
  const lda = (<usize>M) << 2;
  const stripBytes = (<usize>K) << 4;
  const strips = ((mb + 15) & ~15) >> 2;
  const full = mb >> 2;
  for (let k = 0; k < K; k++) {
    let d = dst + ((<usize>k) << 4);
    let src = A + <usize>k * lda;
    for (let s = 0; s < full; s++) {
      v128.store(d, v128.load(src));
      d += stripBytes;
      src += 16;
    }
    for (let s = full; s < strips; s++) {
      v128.store(d, load_partial(src, mb - (s << 2)));
      d += stripBytes;
      src += 16;
    }
  }
}

/**
 * dst (K, 4) = the 4 rows at src (srcStride bytes apart), transposed: dst[4k + r] = row r[k].
 * Each 4×4 block is 4 loads, 8 shuffles (unpcklps/unpckhps/movlhps/movhlps) and 4 stores at
 * constant offsets; one source pointer plus constant row offsets keeps the loop free of spills.
 */
function transpose_4xk(dst: usize, src: usize, srcStride: usize, K: i32): void {
  const s2 = srcStride << 1;
  const s3 = s2 + srcStride;
  const end = src + ((<usize>(K & ~3)) << 2);
  while (src < end) {
    const x0 = v128.load(src);
    const x1 = v128.load(src + srcStride);
    const x2 = v128.load(src + s2);
    const x3 = v128.load(src + s3);
    const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
    const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
    const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
    v128.store(dst, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
    v128.store(dst, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
    v128.store(dst, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32);
    v128.store(dst, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
    src += 16;
    dst += 64;
  }
  let k = K & ~3;
  if (K - k >= 2) {
    transpose_4x2(dst, 16, src, srcStride);
    src += 8;
    dst += 32;
    k += 2;
  }
  if (k < K) {
    let v = v128.load32_zero(src);
    v = v128.load32_lane(src + srcStride, v, 1);
    v = v128.load32_lane(src + s2, v, 2);
    v = v128.load32_lane(src + s3, v, 3);
    v128.store(dst, v);
  }
}

/**
 * Two columns k, k+1 of 4 rows at src (srcStride bytes apart) into dst = rows at k and
 * dst + step = rows at k+1: one 64-bit load per row and 4 shuffles, where lane loads would take
 * 8 loads and 6 inserts (K = 10 in the MLP's last dX leaves 2 columns after the 4×4 blocks).
 */
function transpose_4x2(dst: usize, step: usize, src: usize, srcStride: usize): void {
  const x0 = v128.load64_zero(src);
  const x1 = v128.load64_zero(src + srcStride);
  const x2 = v128.load64_zero(src + srcStride * 2);
  const x3 = v128.load64_zero(src + srcStride * 3);
  const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5); // r0k r1k r0k' r1k'
  const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5); // r2k r3k r2k' r3k'
  v128.store(dst, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(dst + step, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
}

/** dst (K, 8) = the 8 rows at src (srcStride bytes apart), transposed: two 4×4 blocks per 4 k. */
function transpose_8xk(dst: usize, src: usize, srcStride: usize, K: i32): void {
  const s2 = srcStride << 1;
  const s3 = s2 + srcStride;
  const end = src + ((<usize>(K & ~3)) << 2);
  let hi = src + (srcStride << 2);
  while (src < end) {
    let x0 = v128.load(src);
    let x1 = v128.load(src + srcStride);
    let x2 = v128.load(src + s2);
    let x3 = v128.load(src + s3);
    let t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
    let t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
    let t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
    let t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
    v128.store(dst, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
    v128.store(dst, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 32);
    v128.store(dst, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 64);
    v128.store(dst, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 96);
    x0 = v128.load(hi);
    x1 = v128.load(hi + srcStride);
    x2 = v128.load(hi + s2);
    x3 = v128.load(hi + s3);
    t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
    t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
    t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
    t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
    v128.store(dst, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), 16);
    v128.store(dst, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 48);
    v128.store(dst, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 80);
    v128.store(dst, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 112);
    src += 16;
    hi += 16;
    dst += 128;
  }
  let k = K & ~3;
  if (K - k >= 2) {
    transpose_4x2(dst, 32, src, srcStride);
    transpose_4x2(dst + 16, 32, hi, srcStride);
    src += 8;
    hi += 8;
    dst += 64;
    k += 2;
  }
  if (k < K) {
    let v = v128.load32_zero(src);
    v = v128.load32_lane(src + srcStride, v, 1);
    v = v128.load32_lane(src + s2, v, 2);
    v = v128.load32_lane(src + s3, v, 3);
    v128.store(dst, v);
    v = v128.load32_zero(hi);
    v = v128.load32_lane(hi + srcStride, v, 1);
    v = v128.load32_lane(hi + s2, v, 2);
    v = v128.load32_lane(hi + s3, v, 3);
    v128.store(dst, v, 16);
  }
}

/**
 * Tail version of transpose_4xk for n (1..4) rows and any destination stride: 4 floats per k
 * at dst + k·dstStride, lanes r ≥ n zero. Missing rows are read from row 0 (always valid) and
 * masked after the transpose, so the block loop has no per-row branches.
 */
function transpose_partial(
  dst: usize,
  dstStride: usize,
  src: usize,
  srcStride: usize,
  K: i32,
  n: i32,
): void {
  const r0 = src;
  const r1 = n > 1 ? src + srcStride : src;
  const r2 = n > 2 ? src + srcStride * 2 : src;
  const r3 = n > 3 ? src + srcStride * 3 : src;
  // Lane r is all ones when r < n.
  const mask = i32x4.gt_s(i32x4.splat(n), i32x4(0, 1, 2, 3));
  let k = 0;
  let o: usize = 0;
  for (; k + 4 <= K; k += 4) {
    const x0 = v128.load(r0 + o);
    const x1 = v128.load(r1 + o);
    const x2 = v128.load(r2 + o);
    const x3 = v128.load(r3 + o);
    const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
    const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
    const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
    v128.store(dst, v128.and(v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), mask));
    dst += dstStride;
    v128.store(dst, v128.and(v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), mask));
    dst += dstStride;
    v128.store(dst, v128.and(v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), mask));
    dst += dstStride;
    v128.store(dst, v128.and(v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), mask));
    dst += dstStride;
    o += 16;
  }
  for (; k < K; k++) {
    let v = v128.load32_zero(r0 + o);
    v = v128.load32_lane(r1 + o, v, 1);
    v = v128.load32_lane(r2 + o, v, 2);
    v = v128.load32_lane(r3 + o, v, 3);
    v128.store(dst, v128.and(v, mask));
    dst += dstStride;
    o += 4;
  }
}

/** 4 zero floats per k at dst + k·dstStride (the padding rows of a packed A group). */
function zero_kmajor(dst: usize, dstStride: usize, K: i32): void {
  for (let k = 0; k < K; k++) {
    v128.store(dst, f32x4.splat(0));
    dst += dstStride;
  }
}

/**
 * tn's last partial group: rows (A's columns) 0..n-1 (n < 16) of A stored (K, M) into one
 * (K, 16) group, zero-padded, so the kernels can read 16 floats per k without running past A.
 */
function pack_a_kmajor_tail(dst: usize, A: usize, M: i32, K: i32, n: i32): void {
  const lda = (<usize>M) << 2;
  for (let k = 0; k < K; k++) {
    v128.store(dst, load_partial(A, n));
    v128.store(dst, n > 4 ? load_partial(A + 16, n - 4) : f32x4.splat(0), 16);
    v128.store(dst, n > 8 ? load_partial(A + 32, n - 8) : f32x4.splat(0), 32);
    v128.store(dst, n > 12 ? load_partial(A + 48, n - 12) : f32x4.splat(0), 48);
    A += lda;
    dst += 64;
  }
}
