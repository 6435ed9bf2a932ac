/**
 * 2-D convolution pieces that are not a GEMM, NHWC throughout. With a weight W (KH, KW, C, OC)
 * — a GEMM B-matrix of (KH·KW·C) × OC — and cols (B·OH·OW, KH·KW·C) whose row (b, oh, ow) is
 * the input patch under output pixel (oh, ow) in (kh, kw, c) order, a conv layer is
 *   forward:  out (B, OH, OW, OC) = cols · W + bias           → im2col, gemm_f32_nn (+ bias, ReLU)
 *   dW (KH·KW·C, OC)             = colsᵀ · dout                → gemm_f32_tn (GEMM_SPARSE_B)
 *   db (OC)                      = Σ over B·OH·OW rows of dout → dense_bias_backward
 *   dcols (B·OH·OW, KH·KW·C)     = dout · Wᵀ                   → gemm_f32_nt
 *   dinp (B, H, W, C)            = col2im(dcols)
 * where OH = ⌊(H + 2·pad − KH)/stride⌋ + 1 (likewise OW) and the input is zero outside
 * [0, H) × [0, W). The caller computes OH and OW and owns every buffer; nothing here allocates.
 *
 * Why both kernels move whole runs: in NHWC the KW·C floats of one kernel row are adjacent in
 * the input *and* in a cols row, so for one (output pixel, kh) the valid kw range [kw0, kw1) is
 * one contiguous copy (im2col) or add (col2im) of (kw1 − kw0)·C floats, 4 at a time, and the
 * parts of the window over the zero padding are plain zero stores (im2col) or skipped (col2im).
 *
 * The input gradient has a sparse route too: conv2d_backward_input_scatter visits only the
 * non-zero entries of dout (most of them are zero after ReLU and max-pool backward) and adds
 * each one's kernel rows straight into dinp, with the same bits as gemm_f32_nt + col2im.
 *
 * A single-channel first layer (C = 1, stride 1: LeNet's conv1) has direct kernels too,
 * conv2d_direct_c1_forward and conv2d_direct_c1_backward_weight, which give the same bits as
 * the im2col + GEMM route without materialising cols. Measured on LeNet's conv1 at batch 32
 * (bench/conv.ts, best of interleaved samples): forward 0.44 ms vs 0.95 ms for im2col +
 * gemm_f32_nn, dW 0.44 ms vs 0.39 ms for gemm_f32_tn on cols — which the direct forward never
 * writes (im2col alone is 0.44 ms) — so a training step's conv1 takes ≈0.9 ms instead of ≈1.5.
 * (Interior tiles of 8 pixels since then: the forward 1.12–1.20× faster again, same bits.)
 * conv1's input gradient is never needed (its input is the image), so there is no direct dinp.
 * They accumulate with the same `madd` as the GEMMs (./simd.ts: FMA in the relaxed build), so
 * the bits match the GEMM route in either build.
 */
import { GEMM_ACCUMULATE, GEMM_RELU } from './gemm';
import { madd } from './simd';
import { claim_next } from './claim';

/** cols (B·OH·OW, KH·KW·C) = the input patches of inp (B, H, W, C); 0 over the padding. */
export function conv2d_im2col(
  cols: usize,
  inp: usize,
  B: i32,
  H: i32,
  W: i32,
  C: i32,
  KH: i32,
  KW: i32,
  stride: i32,
  pad: i32,
  OH: i32,
  OW: i32,
): void {
  const pixBytes = (<usize>C) << 2;
  const inRowBytes = <usize>W * pixBytes;
  const imageBytes = <usize>H * inRowBytes;
  const segBytes = <usize>KW * pixBytes; // one kernel row of a cols row
  let dst = cols;
  for (let b = 0; b < B; b++) {
    const image = inp + <usize>b * imageBytes;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * stride - pad;
      // Kernel rows [kh0, kh1) fall inside the image; the others are all padding.
      const kh0 = min(KH, max(0, -ih0));
      const kh1 = max(kh0, min(KH, H - ih0));
      const top = <usize>kh0 * segBytes;
      const bottom = <usize>(KH - kh1) * segBytes;
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * stride - pad;
        const kw0 = min(KW, max(0, -iw0));
        const kw1 = max(kw0, min(KW, W - iw0));
        const head = <usize>kw0 * pixBytes;
        const body = <usize>(kw1 - kw0) * pixBytes;
        const tail = segBytes - head - body;
        if (top) zero_bytes(dst, top);
        dst += top;
        let src = image + <usize>(ih0 + kh0) * inRowBytes + <usize>(iw0 + kw0) * pixBytes;
        for (let kh = kh0; kh < kh1; kh++) {
          if (head) zero_bytes(dst, head);
          copy_bytes(dst + head, src, body);
          if (tail) zero_bytes(dst + head + body, tail);
          dst += segBytes;
          src += inRowBytes;
        }
        if (bottom) zero_bytes(dst, bottom);
        dst += bottom;
      }
    }
  }
}

/**
 * dinp (B, H, W, C) = col2im(dcols), the adjoint of conv2d_im2col: every dcols entry is added to
 * the input element it was copied from. Overwrites dinp (zeroes it first). Each dinp element's
 * sum runs in a fixed order: cols rows (b, oh, ow) ascending, then kh, kw ascending.
 */
export function conv2d_col2im(
  dinp: usize,
  dcols: usize,
  B: i32,
  H: i32,
  W: i32,
  C: i32,
  KH: i32,
  KW: i32,
  stride: i32,
  pad: i32,
  OH: i32,
  OW: i32,
): void {
  const pixBytes = (<usize>C) << 2;
  const inRowBytes = <usize>W * pixBytes;
  const imageBytes = <usize>H * inRowBytes;
  const segBytes = <usize>KW * pixBytes;
  zero_bytes(dinp, <usize>B * imageBytes);
  const rowBytes = <usize>KH * segBytes; // one cols row
  let src = dcols;
  for (let b = 0; b < B; b++) {
    const image = dinp + <usize>b * imageBytes;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * stride - pad;
      const kh0 = min(KH, max(0, -ih0));
      const kh1 = max(kh0, min(KH, H - ih0));
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * stride - pad;
        const kw0 = min(KW, max(0, -iw0));
        const kw1 = max(kw0, min(KW, W - iw0));
        const body = <usize>(kw1 - kw0) * pixBytes;
        if (body) {
          let d = image + <usize>(ih0 + kh0) * inRowBytes + <usize>(iw0 + kw0) * pixBytes;
          let s = src + <usize>kh0 * segBytes + <usize>kw0 * pixBytes;
          for (let kh = kh0; kh < kh1; kh++) {
            add_bytes(d, s, body);
            d += inRowBytes;
            s += segBytes;
          }
        }
        src += rowBytes;
      }
    }
  }
}

/** wT (OC, K) = w (K, OC)ᵀ: a conv weight (KH, KW, C, OC) as (OC, KH, KW, C), for the scatter. */
export function conv2d_weight_transpose(wT: usize, w: usize, K: i32, OC: i32): void {
  const ocBytes = (<usize>OC) << 2;
  for (let oc = 0; oc < OC; oc++) {
    let src = w + ((<usize>oc) << 2);
    for (let k = 0; k < K; k++) {
      store<f32>(wT, load<f32>(src));
      wT += 4;
      src += ocBytes;
    }
  }
}

/**
 * dinp (B, H, W, C) = the input gradient of a conv from its output gradient delta (B, OH, OW, OC)
 * and wT (OC, KH, KW, C) (conv2d_weight_transpose), without dcols: for each output position
 * (b, oh, ow) ascending, each kernel row kh and each run of ≤ 32 floats of that row's in-bounds
 * columns, acc = Σ delta[b, oh, ow, oc] · wT[oc, kh, run] over oc ascending in 8 vector registers,
 * then dinp[b, oh·stride − pad + kh, run] += acc. Overwrites dinp (zeroes it first).
 *
 * Why: after ReLU and max-pool backward most of delta is exact zeros (≈79% for LeNet-5's conv2
 * on MNIST batches), and a zero contributes nothing: only the oc with delta ≠ 0 (a NaN counts,
 * and propagates; ±0 does not) are visited, found with one vector compare per 4 channels, and
 * the positions where every oc is 0 cost nothing but that compare. The dense route,
 * gemm_f32_nt into dcols (B·OH·OW, KH·KW·C) then conv2d_col2im, multiplies every zero and
 * writes and reads back dcols (1.9 MB for conv2 at batch 32). Measured on conv2 at batch 32 with
 * dout from MNIST training (relaxed build, one thread, medians of interleaved runs): 0.24 ms
 * against 0.50 ms (warm caches) and 0.24 against 0.81 ms inside training steps. With every
 * dout ≠ 0 it is ≈1.8× slower than that route, so the host picks by density (src/nn/workspace.ts).
 *
 * Bits: acc is gemm_f32_nt's dcols element — one madd chain from +0 over oc ascending, where a
 * skipped term madd(±0, w, acc) would leave acc unchanged, or turn a −0 into +0 — and it is
 * added to dinp in conv2d_col2im's order (positions ascending; a skipped all-zero position would
 * add +0). dinp starts at +0 and so is never −0, and adding −0 or +0 to it gives the same bits;
 * so the result equals gemm_f32_nt + conv2d_col2im bit for bit when the weights are finite
 * (0 · ±Inf or 0 · NaN is NaN there and skipped here), in either build, and an image's bits do
 * not depend on its batch neighbours.
 *
 * Reads up to 3 floats past each run of wT (XNNPACK's XNN_OOB_READS idea: the partial last
 * vector is loaded whole), so the 3 floats after wT's OC·KH·KW·C must be addressable; their
 * lanes are never stored. dinp is read and written only inside its runs.
 */
export function conv2d_backward_input_scatter(
  dinp: usize,
  delta: usize,
  wT: usize,
  B: i32,
  H: i32,
  W: i32,
  C: i32,
  OC: i32,
  KH: i32,
  KW: i32,
  stride: i32,
  pad: i32,
  OH: i32,
  OW: i32,
): void {
  const pixBytes = (<usize>C) << 2;
  const inRowBytes = <usize>W * pixBytes;
  const imageBytes = <usize>H * inRowBytes;
  const segBytes = <usize>KW * pixBytes; // one kernel row of wT
  const ocBytes = <usize>KH * segBytes; // one output channel of wT
  const deltaPixBytes = (<usize>OC) << 2;
  zero_bytes(dinp, <usize>B * imageBytes);
  let d = delta;
  for (let b = 0; b < B; b++) {
    const image = dinp + <usize>b * imageBytes;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * stride - pad;
      const kh0 = min(KH, max(0, -ih0));
      const kh1 = max(kh0, min(KH, H - ih0));
      for (let ow = 0; ow < OW; ow++, d += deltaPixBytes) {
        const mask0 = nonzero_mask(d, min(OC, 64));
        if (mask0 == 0 && (OC <= 64 || !any_nonzero(d + 256, OC - 64))) continue;
        const iw0 = ow * stride - pad;
        const kw0 = min(KW, max(0, -iw0));
        const kw1 = max(kw0, min(KW, W - iw0));
        const n = (kw1 - kw0) * C; // floats in each kernel row's run
        if (n == 0 || kh1 == kh0) continue;
        const dst = image + <usize>(ih0 + kh0) * inRowBytes + <usize>(iw0 + kw0) * pixBytes;
        const w = wT + <usize>kh0 * segBytes + <usize>kw0 * pixBytes;
        scatter_window(dst, inRowBytes, w, segBytes, ocBytes, d, OC, mask0, kh1 - kh0, n);
      }
    }
  }
}

/**
 * One output position's share of conv2d_backward_input_scatter: for each of `rows` kernel rows
 * (dst and w step by dstRowBytes and wRowBytes) and each run of ≤ 32 of its n floats,
 * dst[run] += Σ over oc ascending with delta[oc] ≠ 0 of delta[oc] · w[oc·ocBytes + run]:
 * 8 accumulators + the broadcast delta + one weight vector = 10 vector registers. mask0 has bit
 * oc set for the oc < 64 with delta[oc] ≠ 0; later groups of 64 are scanned here. (One call per
 * position, not per kernel row: the calls cost ≈20% of the kernel's time on LeNet's conv2.)
 */
function scatter_window(
  dst: usize,
  dstRowBytes: usize,
  w: usize,
  wRowBytes: usize,
  ocBytes: usize,
  delta: usize,
  OC: i32,
  mask0: u64,
  rows: i32,
  n: i32,
): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j += 32) {
      const m = min(32, n - j);
      const vectors = (m + 3) >> 2;
      const run = dst + ((<usize>j) << 2);
      const wr = w + ((<usize>j) << 2);
      let a0 = f32x4.splat(0);
      let a1 = f32x4.splat(0);
      let a2 = f32x4.splat(0);
      let a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0);
      let a5 = f32x4.splat(0);
      let a6 = f32x4.splat(0);
      let a7 = f32x4.splat(0);
      for (let g = 0; g < OC; g += 64) {
        let mask = g == 0 ? mask0 : nonzero_mask(delta + ((<usize>g) << 2), min(OC - g, 64));
        while (mask) {
          const oc = g + <i32>ctz(mask);
          mask &= mask - 1;
          const x = v128.load32_splat(delta + ((<usize>oc) << 2));
          const p = wr + <usize>oc * ocBytes;
          // Full runs (LeNet's conv2 rows: KW·C = 30 floats, 8 vectors) take the branch-free path.
          if (vectors == 8) {
            a0 = madd(x, v128.load(p), a0);
            a1 = madd(x, v128.load(p, 16), a1);
            a2 = madd(x, v128.load(p, 32), a2);
            a3 = madd(x, v128.load(p, 48), a3);
            a4 = madd(x, v128.load(p, 64), a4);
            a5 = madd(x, v128.load(p, 80), a5);
            a6 = madd(x, v128.load(p, 96), a6);
            a7 = madd(x, v128.load(p, 112), a7);
          } else {
            a0 = madd(x, v128.load(p), a0);
            if (vectors > 1) a1 = madd(x, v128.load(p, 16), a1);
            if (vectors > 2) a2 = madd(x, v128.load(p, 32), a2);
            if (vectors > 3) a3 = madd(x, v128.load(p, 48), a3);
            if (vectors > 4) a4 = madd(x, v128.load(p, 64), a4);
            if (vectors > 5) a5 = madd(x, v128.load(p, 80), a5);
            if (vectors > 6) a6 = madd(x, v128.load(p, 96), a6);
          }
        }
      }
      if (vectors == 8) {
        v128.store(run, f32x4.add(v128.load(run), a0));
        v128.store(run, f32x4.add(v128.load(run, 16), a1), 16);
        v128.store(run, f32x4.add(v128.load(run, 32), a2), 32);
        v128.store(run, f32x4.add(v128.load(run, 48), a3), 48);
        v128.store(run, f32x4.add(v128.load(run, 64), a4), 64);
        v128.store(run, f32x4.add(v128.load(run, 80), a5), 80);
        v128.store(run, f32x4.add(v128.load(run, 96), a6), 96);
        add_floats(run + 112, a7, m - 28);
      } else {
        add_floats(run, a0, m);
        if (m > 4) add_floats(run + 16, a1, m - 4);
        if (m > 8) add_floats(run + 32, a2, m - 8);
        if (m > 12) add_floats(run + 48, a3, m - 12);
        if (m > 16) add_floats(run + 64, a4, m - 16);
        if (m > 20) add_floats(run + 80, a5, m - 20);
        if (m > 24) add_floats(run + 96, a6, m - 24);
      }
    }
    dst += dstRowBytes;
    w += wRowBytes;
  }
}

/**
 * How many of the n floats at x are ≠ 0 (NaN counts, ±0 does not): the host picks a conv's input
 * gradient route (conv2d_backward_input_scatter or the GEMM) from this count of its dout.
 */
export function count_nonzero(x: usize, n: i32): i32 {
  let counts = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    // ne gives −1 (all bits set) in each lane that is ≠ 0.
    counts = i32x4.sub(counts, f32x4.ne(v128.load(x + ((<usize>i) << 2)), f32x4.splat(0)));
  }
  let count =
    i32x4.extract_lane(counts, 0) +
    i32x4.extract_lane(counts, 1) +
    i32x4.extract_lane(counts, 2) +
    i32x4.extract_lane(counts, 3);
  for (; i < n; i++) if (load<f32>(x + ((<usize>i) << 2)) != 0) count++;
  return count;
}

/** Bit i set when the float p[i] ≠ 0 (NaN included, ±0 not), for i < n ≤ 64. */
function nonzero_mask(p: usize, n: i32): u64 {
  let mask: u64 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const nz = f32x4.ne(v128.load(p + ((<usize>i) << 2)), f32x4.splat(0));
    mask |= (<u64>i32x4.bitmask(nz)) << (<u64>i);
  }
  for (; i < n; i++) {
    if (load<f32>(p + ((<usize>i) << 2)) != 0) mask |= (<u64>1) << (<u64>i);
  }
  return mask;
}

/** Whether any of the n floats at p is ≠ 0 (NaN included, ±0 not). */
function any_nonzero(p: usize, n: i32): bool {
  for (let i = 0; i < n; i += 64) {
    if (nonzero_mask(p + ((<usize>i) << 2), min(n - i, 64))) return true;
  }
  return false;
}

/** dst[0..n) += the first n (≥ 1) lanes of v, reading and writing nothing past them. */
function add_floats(dst: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(dst, f32x4.add(v128.load(dst), v));
    return;
  }
  if (n == 2) {
    v128.store64_lane(dst, f32x4.add(v128.load64_zero(dst), v), 0);
    return;
  }
  const s = f32x4.add(load_floats(dst, n), v);
  v128.store32_lane(dst, s, 0);
  if (n > 2) {
    v128.store32_lane(dst, s, 1, 4);
    v128.store32_lane(dst, s, 2, 8);
  }
}

/**
 * dst (B, H + 2·pad, W + 2·pad, 1) = src (B, H, W, 1) with a frame of `pad` zeros: the direct
 * kernels then run with pad 0, where every tile takes the interior path (no per-tap bounds
 * tests) and the frame's zeros are skipped like the digit's own background. The products they
 * add over the frame are 0 · w = ±0, so the bits equal the padded kernels'.
 */
export function pad_images(dst: usize, src: usize, B: i32, H: i32, W: i32, pad: i32): void {
  const rowBytes = (<usize>W) << 2;
  const padBytes = (<usize>pad) << 2;
  const outRowBytes = rowBytes + (padBytes << 1);
  const frameBytes = <usize>pad * outRowBytes;
  for (let b = 0; b < B; b++) {
    zero_bytes(dst, frameBytes + padBytes);
    dst += frameBytes + padBytes;
    for (let y = 0; y < H; y++) {
      memory.copy(dst, src, rowBytes);
      dst += rowBytes;
      src += rowBytes;
      // this row's right pad and the next row's left pad (or the bottom frame's start)
      if (y + 1 < H) {
        zero_bytes(dst, padBytes << 1);
        dst += padBytes << 1;
      }
    }
    zero_bytes(dst, padBytes + frameBytes);
    dst += padBytes + frameBytes;
  }
}

/**
 * Direct convolution of a single-channel input (C = 1) with stride 1, for a network's first
 * layer: out (B, OH, OW, OC) = conv(inp (B, H, W, 1), w (KH, KW, 1, OC)) (+ old out when
 * GEMM_ACCUMULATE) (+ bias when bias ≠ 0) (ReLU when GEMM_RELU) — the result of conv2d_im2col +
 * gemm_f32_nn, bit for bit when the weights are finite, without writing cols (B·OH·OW·KH·KW
 * floats: 2.5 MB for LeNet's conv1 at batch 32, which im2col must write and the GEMM read back).
 */
export function conv2d_direct_c1_forward(
  out: usize,
  inp: usize,
  w: usize,
  bias: usize,
  B: i32,
  H: i32,
  W: i32,
  OC: i32,
  KH: i32,
  KW: i32,
  pad: i32,
  OH: i32,
  OW: i32,
  flags: i32,
): void {
  const inRowBytes = (<usize>W) << 2;
  const imageBytes = <usize>H * inRowBytes;
  const outPixBytes = (<usize>OC) << 2;
  let outRow = out;
  for (let b = 0; b < B; b++) {
    const image = inp + <usize>b * imageBytes;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh - pad;
      const kh0 = min(KH, max(0, -ih0));
      const kh1 = max(kh0, min(KH, H - ih0));
      const src = image + <usize>(ih0 + kh0) * inRowBytes;
      for (let o0 = 0; o0 < OC; o0 += 6) {
        const n = min(6, OC - o0);
        const wp = w + <usize>(kh0 * KW * OC + o0) * 4;
        const bp = bias ? bias + ((<usize>o0) << 2) : 0;
        for (let ow0 = 0; ow0 < OW; ow0 += 4) {
          const dst = outRow + <usize>ow0 * outPixBytes + ((<usize>o0) << 2);
          const col0 = ow0 - pad;
          if (OC == 6 && KW == 5 && ow0 + 8 <= OW && col0 >= 0 && col0 + 12 <= W) {
            // 8 pixels whose taps all lie inside the row (LeNet-5's conv1: 3 of 4 tiles).
            direct_c1_tile8_oc6(dst, src + ((<usize>col0) << 2), W, wp, kh1 - kh0, bp, flags);
            ow0 += 4;
            continue;
          }
          direct_c1_tile(
            dst,
            outPixBytes,
            src,
            ow0 - pad,
            W,
            wp,
            OC,
            kh1 - kh0,
            KW,
            n,
            min(4, OW - ow0),
            bp,
            flags,
          );
        }
      }
      outRow += <usize>OW * outPixBytes;
    }
  }
}

/**
 * 4 output pixels (lanes) × n ≤ 6 output channels (accumulators) of conv2d_direct_c1_forward.
 * Per tap: one load of 4 adjacent input pixels, n broadcast weights, n mul + add: 8 vector
 * registers, so nothing spills. Channels j ≥ n reuse channel n − 1's weights (in bounds) and are
 * not stored. The taps run in (kh, kw) order — the GEMM's k order — skipping only kernel rows
 * wholly in the padding: they would add 0 · w = ±0, and adding ±0 changes no bits of a sum that
 * starts at +0 (it can never become −0); lanes over the left or right padding load 0, as
 * im2col's zeros would. Then each pixel's channels are
 * regrouped (a 4×4 transpose for channels 0..3, pairs for 4..5) and finished like the GEMM.
 *   dst: out at (pixel 0, channel 0)  src: inp at (first valid kernel row, column 0)
 *   col0: input column of lane 0 at kw = 0  wp: w at (first valid kernel row, kw = 0, channel 0)
 */
function direct_c1_tile(
  dst: usize,
  outPixBytes: usize,
  src: usize,
  col0: i32,
  W: i32,
  wp: usize,
  OC: i32,
  rows: i32,
  KW: i32,
  n: i32,
  pixels: i32,
  bias: usize,
  flags: i32,
): void {
  const tapBytes = (<usize>OC) << 2;
  const w1 = (<usize>min(1, n - 1)) << 2;
  const w2 = (<usize>min(2, n - 1)) << 2;
  const w3 = (<usize>min(3, n - 1)) << 2;
  const w4 = (<usize>min(4, n - 1)) << 2;
  const w5 = (<usize>min(5, n - 1)) << 2;
  // Taps kw in [fast0, fast1) read 4 in-bounds pixels with one plain load.
  const fast0 = min(KW, max(0, -col0));
  const fast1 = max(fast0, min(KW, W - 3 - col0));
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0);
  let a5 = f32x4.splat(0);
  const rowBytes = (<usize>W) << 2;
  if (fast0 == 0 && fast1 == KW) {
    // Interior tile (5 of LeNet conv1's 7 per row): no per-tap bounds test. A test inside this
    // loop, even a well-predicted one, measured ≈40% slower for the whole kernel.
    // Zero input (most of an MNIST digit's frame): with KW = 5 a row's taps read exactly the
    // 8 pixels [col0, col0 + 8); when all 8 are +0 the row adds only ±0 to every accumulator,
    // so it is skipped with the same bits (the accumulators start at +0 and never become −0).
    const skipZeroRows = KW == 5;
    let row = src + ((<usize>col0) << 2);
    for (let r = 0; r < rows; r++) {
      let p = row;
      const end = row + ((<usize>KW) << 2);
      if (skipZeroRows && !v128.any_true(v128.or(v128.load(row), v128.load(row, 16)))) {
        wp += tapBytes * 5;
        row += rowBytes;
        continue;
      }
      while (p < end) {
        const x = v128.load(p);
        a0 = madd(x, v128.load32_splat(wp), a0);
        a1 = madd(x, v128.load32_splat(wp + w1), a1);
        a2 = madd(x, v128.load32_splat(wp + w2), a2);
        a3 = madd(x, v128.load32_splat(wp + w3), a3);
        a4 = madd(x, v128.load32_splat(wp + w4), a4);
        a5 = madd(x, v128.load32_splat(wp + w5), a5);
        wp += tapBytes;
        p += 4;
      }
      row += rowBytes;
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const row = src + <usize>r * rowBytes;
      for (let kw = 0; kw < KW; kw++) {
        const col = col0 + kw;
        const x =
          kw >= fast0 && kw < fast1
            ? v128.load(row + ((<usize>col) << 2))
            : load_row_masked(row, col, W);
        a0 = madd(x, v128.load32_splat(wp), a0);
        a1 = madd(x, v128.load32_splat(wp + w1), a1);
        a2 = madd(x, v128.load32_splat(wp + w2), a2);
        a3 = madd(x, v128.load32_splat(wp + w3), a3);
        a4 = madd(x, v128.load32_splat(wp + w4), a4);
        a5 = madd(x, v128.load32_splat(wp + w5), a5);
        wp += tapBytes;
      }
    }
  }
  const fl = flags | (bias ? HAS_BIAS : 0);
  if (n == 6 && OC == 6 && pixels == 4) {
    finish_4x6(dst, a0, a1, a2, a3, a4, a5, bias, fl);
    return;
  }
  // Pixel p's channels 0..3 = lane p of a0..a3 (a 4×4 transpose); channels 4, 5 = lane p of a4, a5.
  const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
  const t2 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
  const t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
  const q0 = v128.shuffle<f32>(t0, t2, 0, 1, 4, 5);
  const q1 = v128.shuffle<f32>(t0, t2, 2, 3, 6, 7);
  const q2 = v128.shuffle<f32>(t1, t3, 0, 1, 4, 5);
  const q3 = v128.shuffle<f32>(t1, t3, 2, 3, 6, 7);
  const p01 = v128.shuffle<f32>(a4, a5, 0, 4, 1, 5); // [p0c4 p0c5 p1c4 p1c5]
  const p23 = v128.shuffle<f32>(a4, a5, 2, 6, 3, 7);
  const lo = min(n, 4);
  const hi = n - lo;
  const bLo = bias ? load_floats(bias, lo) : f32x4.splat(0);
  const bHi = bias && hi ? load_floats(bias + 16, hi) : f32x4.splat(0);
  let p = dst;
  finish(p, q0, bLo, fl, lo);
  finish(p + 16, p01, bHi, fl, hi);
  if (pixels > 1) {
    p += outPixBytes;
    finish(p, q1, bLo, fl, lo);
    finish(p + 16, v128.shuffle<f32>(p01, p01, 2, 3, 2, 3), bHi, fl, hi);
  }
  if (pixels > 2) {
    p += outPixBytes;
    finish(p, q2, bLo, fl, lo);
    finish(p + 16, p23, bHi, fl, hi);
  }
  if (pixels > 3) {
    p += outPixBytes;
    finish(p, q3, bLo, fl, lo);
    finish(p + 16, v128.shuffle<f32>(p23, p23, 2, 3, 2, 3), bHi, fl, hi);
  }
}

/**
 * 8 output pixels × OC = 6 channels of conv2d_direct_c1_forward with KW = 5, all taps inside
 * the row (LeNet-5's conv1 on its framed 32×32 input): direct_c1_tile's interior path on two
 * 4-pixel vectors at once, so each broadcast weight feeds two madd (12 accumulators, 8 loads
 * per 12 madd instead of 7 per 6) and the per-tile work is shared by twice the pixels. The same
 * taps in the same order per output, so the same bits.
 *   dst: out at (pixel 0, channel 0)  row: inp at (first valid kernel row, column of pixel 0)
 *   wp: w at (first valid kernel row, kw = 0, channel 0)
 */
function direct_c1_tile8_oc6(
  dst: usize,
  row: usize,
  W: i32,
  wp: usize,
  rows: i32,
  bias: usize,
  flags: i32,
): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0);
  let a5 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let b2 = f32x4.splat(0);
  let b3 = f32x4.splat(0);
  let b4 = f32x4.splat(0);
  let b5 = f32x4.splat(0);
  const rowBytes = (<usize>W) << 2;
  for (let r = 0; r < rows; r++) {
    // The row's taps read the 12 pixels [0, 12): all +0 adds only ±0 (same bits), skipped.
    const any = v128.or(v128.or(v128.load(row), v128.load(row, 16)), v128.load(row, 32));
    if (v128.any_true(any)) {
      let p = row;
      const end = row + 20;
      let w = wp;
      while (p < end) {
        const x = v128.load(p);
        const y = v128.load(p, 16);
        let s = v128.load32_splat(w);
        a0 = madd(x, s, a0);
        b0 = madd(y, s, b0);
        s = v128.load32_splat(w, 4);
        a1 = madd(x, s, a1);
        b1 = madd(y, s, b1);
        s = v128.load32_splat(w, 8);
        a2 = madd(x, s, a2);
        b2 = madd(y, s, b2);
        s = v128.load32_splat(w, 12);
        a3 = madd(x, s, a3);
        b3 = madd(y, s, b3);
        s = v128.load32_splat(w, 16);
        a4 = madd(x, s, a4);
        b4 = madd(y, s, b4);
        s = v128.load32_splat(w, 20);
        a5 = madd(x, s, a5);
        b5 = madd(y, s, b5);
        w += 24;
        p += 4;
      }
    }
    wp += 120; // 5 taps × 6 channels
    row += rowBytes;
  }
  const fl = flags | (bias ? HAS_BIAS : 0);
  finish_4x6(dst, a0, a1, a2, a3, a4, a5, bias, fl);
  finish_4x6(dst + 96, b0, b1, b2, b3, b4, b5, bias, fl);
}

/**
 * The epilogue of 4 pixels × 6 channels (OC = 6, LeNet's conv1), where lane p of a_c is pixel
 * p's channel c: their 24 outputs are adjacent floats, regrouped (a 4×4 transpose for channels
 * 0..3, pairs for 4..5) into 6 full vectors and finished with 6 loads/stores instead of 8
 * partial ones (that was ⅓ of the kernel's time). The bias pattern c0..c5 repeats every 3 vectors.
 */
function finish_4x6(
  dst: usize,
  a0: v128,
  a1: v128,
  a2: v128,
  a3: v128,
  a4: v128,
  a5: v128,
  bias: usize,
  fl: i32,
): void {
  const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
  const t2 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
  const t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
  const q0 = v128.shuffle<f32>(t0, t2, 0, 1, 4, 5);
  const q1 = v128.shuffle<f32>(t0, t2, 2, 3, 6, 7);
  const q2 = v128.shuffle<f32>(t1, t3, 0, 1, 4, 5);
  const q3 = v128.shuffle<f32>(t1, t3, 2, 3, 6, 7);
  const p01 = v128.shuffle<f32>(a4, a5, 0, 4, 1, 5); // [p0c4 p0c5 p1c4 p1c5]
  const p23 = v128.shuffle<f32>(a4, a5, 2, 6, 3, 7);
  let bv0 = f32x4.splat(0);
  let bv1 = f32x4.splat(0);
  let bv2 = f32x4.splat(0);
  if (bias) {
    const lo = v128.load(bias);
    const hi = v128.load64_zero(bias + 16);
    bv0 = lo;
    bv1 = v128.shuffle<f32>(hi, lo, 0, 1, 4, 5);
    bv2 = v128.shuffle<f32>(lo, hi, 2, 3, 4, 5);
  }
  finish(dst, q0, bv0, fl, 4);
  finish(dst + 16, v128.shuffle<f32>(p01, q1, 0, 1, 4, 5), bv1, fl, 4);
  finish(dst + 32, v128.shuffle<f32>(q1, p01, 2, 3, 6, 7), bv2, fl, 4);
  finish(dst + 48, q2, bv0, fl, 4);
  finish(dst + 64, v128.shuffle<f32>(p23, q3, 0, 1, 4, 5), bv1, fl, 4);
  finish(dst + 80, v128.shuffle<f32>(q3, p23, 2, 3, 6, 7), bv2, fl, 4);
}

/**
 * Weight gradient of conv2d_direct_c1_forward: dw (KH, KW, 1, OC) = colsᵀ · dout, computed from
 * inp (B, H, W, 1) and dout (B, OH, OW, OC) without cols. Overwrites dw. Every dw element is one
 * lane summed over the output pixels (b, oh, ow) in ascending order from +0 — the k order of
 * gemm_f32_tn — so the bits equal conv2d_im2col + gemm_f32_tn when dout is finite (taps over
 * the padding are skipped: they would add 0 · dout = ±0 to a sum that is never −0).
 */
export function conv2d_direct_c1_backward_weight(
  dw: usize,
  inp: usize,
  dout: usize,
  B: i32,
  H: i32,
  W: i32,
  OC: i32,
  KH: i32,
  KW: i32,
  pad: i32,
  OH: i32,
  OW: i32,
): void {
  conv2d_direct_c1_backward_weight_shared(0, dw, inp, dout, B, H, W, OC, KH, KW, pad, OH, OW);
}

/**
 * conv2d_direct_c1_backward_weight, alone (claim = 0: kernel rows in order) or shared by threads
 * (claim.ts): the units are the KH kernel rows, whose dw elements are disjoint. Row kh is zeroed,
 * then summed image by image (the accumulators go back to dw between images: an exact f32 store
 * and reload, so every element's sum is still one sequential chain), so the bits do not depend
 * on the thread count. (Images outer, rows inner, keeping one image's dout in L1, measured the
 * same on LeNet-5's conv1: 0.46 vs 0.44–0.46 ms.)
 */
export function conv2d_direct_c1_backward_weight_shared(
  claim: usize,
  dw: usize,
  inp: usize,
  dout: usize,
  B: i32,
  H: i32,
  W: i32,
  OC: i32,
  KH: i32,
  KW: i32,
  pad: i32,
  OH: i32,
  OW: i32,
): void {
  const imageBytes = <usize>H * ((<usize>W) << 2);
  const doutImageBytes = (<usize>(OH * OW * OC)) << 2;
  const rowBytes = (<usize>(KW * OC)) << 2;
  for (let kh = claim_next(claim, 0); kh < KH; kh = claim_next(claim, kh + 1)) {
    zero_bytes(dw + <usize>kh * rowBytes, rowBytes);
    // Output rows whose input row oh − pad + kh lies inside the image.
    const oh0 = min(OH, max(0, pad - kh));
    const oh1 = max(oh0, min(OH, H + pad - kh));
    for (let b = 0; b < B; b++) {
      const image = inp + <usize>b * imageBytes;
      const doutImage = dout + <usize>b * doutImageBytes;
      for (let kw0 = 0; kw0 < KW; kw0 += 5) {
        for (let o0 = 0; o0 < OC; o0 += 8) {
          direct_c1_dw_tile(
            dw + ((<usize>((kh * KW + kw0) * OC + o0)) << 2),
            image,
            doutImage + ((<usize>o0) << 2),
            oh0,
            oh1,
            kh - pad,
            kw0 - pad,
            W,
            OC,
            OW,
            min(5, KW - kw0),
            min(8, OC - o0),
          );
        }
      }
    }
  }
}

/**
 * dw[kh, kw0 + j, o0 + c] for j < nk ≤ 5, c < n ≤ 8 over output rows [oh0, oh1) of one image:
 * 10 accumulators (5 taps × 2 vectors of 4 channels) + 2 dout vectors + 1 broadcast input
 * pixel = 13 vector registers. Per output pixel: dout[pixel, o0..o0+7] (two loads), then per
 * tap the input pixel broadcast and multiplied in. Taps j ≥ nk reuse tap nk − 1's pixel and
 * are not stored; lanes c ≥ n load 0.
 *   dwp: dw at (kh, kw0, o0)  image: inp of this image  dp0: dout of this image at channel o0
 *   dih: input row minus output row (kh − pad)  diw: input column of tap 0 minus output column
 */
function direct_c1_dw_tile(
  dwp: usize,
  image: usize,
  dp0: usize,
  oh0: i32,
  oh1: i32,
  dih: i32,
  diw: i32,
  W: i32,
  OC: i32,
  OW: i32,
  nk: i32,
  n: i32,
): void {
  const tapBytes = (<usize>OC) << 2;
  const lo = min(n, 4);
  const hi = n - lo;
  const j1 = min(1, nk - 1);
  const j2 = min(2, nk - 1);
  const j3 = min(3, nk - 1);
  const j4 = min(4, nk - 1);
  let a0 = load_floats(dwp, lo);
  let a1 = load_floats(dwp + <usize>j1 * tapBytes, lo);
  let a2 = load_floats(dwp + <usize>j2 * tapBytes, lo);
  let a3 = load_floats(dwp + <usize>j3 * tapBytes, lo);
  let a4 = load_floats(dwp + <usize>j4 * tapBytes, lo);
  let b0 = hi ? load_floats(dwp + 16, hi) : f32x4.splat(0);
  let b1 = hi ? load_floats(dwp + <usize>j1 * tapBytes + 16, hi) : f32x4.splat(0);
  let b2 = hi ? load_floats(dwp + <usize>j2 * tapBytes + 16, hi) : f32x4.splat(0);
  let b3 = hi ? load_floats(dwp + <usize>j3 * tapBytes + 16, hi) : f32x4.splat(0);
  let b4 = hi ? load_floats(dwp + <usize>j4 * tapBytes + 16, hi) : f32x4.splat(0);
  const x1 = (<usize>j1) << 2;
  const x2 = (<usize>j2) << 2;
  const x3 = (<usize>j3) << 2;
  const x4 = (<usize>j4) << 2;
  // Output columns [ow0, ow1) have all nk taps inside the image: no per-tap test there.
  const ow0 = min(OW, max(0, -diw));
  const ow1 = max(ow0, min(OW, W - nk + 1 - diw));
  const pixBytes = (<usize>OC) << 2;
  for (let oh = oh0; oh < oh1; oh++) {
    const row = image + ((<usize>((oh + dih) * W)) << 2);
    const dRow = dp0 + <usize>(oh * OW) * pixBytes;
    // Three column ranges — left edge, interior, right edge — so the interior loop (all but
    // pad columns per side) has no bounds tests. The edges go through the tested path.
    for (let ow = 0; ow < OW;) {
      const interior = ow >= ow0 && ow < ow1;
      const end = interior ? ow1 : ow < ow0 ? ow0 : OW;
      let dp = dRow + <usize>ow * pixBytes;
      let xp = row + ((<usize>(ow + diw)) << 2); // may point before the row at the left edge
      if (interior) {
        const dEnd = dRow + <usize>end * pixBytes;
        while (dp < dEnd) {
          // A pixel whose nk ≤ 5 input pixels are all +0 adds only ±0 (zero input is most of an
          // MNIST digit's frame): skipped, same bits. Reads 5 floats from xp: with nk = 5 those
          // are the taps' pixels, with fewer taps the extra ones only make the test stricter
          // (they may lie in the next row or just past the image, inside the module's memory).
          if (!v128.any_true(v128.or(v128.load(xp), v128.load32_zero(xp, 16)))) {
            dp += pixBytes;
            xp += 4;
            continue;
          }
          const dl = load_floats(dp, lo);
          // OC = 6 (LeNet's conv1): the upper half is 2 floats, one 64-bit load.
          const dh = hi == 2 ? v128.load64_zero(dp, 16) : load_floats(dp + 16, hi);
          let x = v128.load32_splat(xp);
          a0 = madd(x, dl, a0);
          b0 = madd(x, dh, b0);
          x = v128.load32_splat(xp + x1);
          a1 = madd(x, dl, a1);
          b1 = madd(x, dh, b1);
          x = v128.load32_splat(xp + x2);
          a2 = madd(x, dl, a2);
          b2 = madd(x, dh, b2);
          x = v128.load32_splat(xp + x3);
          a3 = madd(x, dl, a3);
          b3 = madd(x, dh, b3);
          x = v128.load32_splat(xp + x4);
          a4 = madd(x, dl, a4);
          b4 = madd(x, dh, b4);
          dp += pixBytes;
          xp += 4;
        }
      } else {
        for (let o = ow; o < end; o++) {
          const dl = load_floats(dp, lo);
          const dh = hi ? load_floats(dp + 16, hi) : f32x4.splat(0);
          // Only the taps inside the image contribute.
          const iw = o + diw;
          if (<u32>iw < <u32>W) {
            const x = v128.load32_splat(xp);
            a0 = madd(x, dl, a0);
            b0 = madd(x, dh, b0);
          }
          if (<u32>(iw + j1) < <u32>W) {
            const x = v128.load32_splat(xp + x1);
            a1 = madd(x, dl, a1);
            b1 = madd(x, dh, b1);
          }
          if (<u32>(iw + j2) < <u32>W) {
            const x = v128.load32_splat(xp + x2);
            a2 = madd(x, dl, a2);
            b2 = madd(x, dh, b2);
          }
          if (<u32>(iw + j3) < <u32>W) {
            const x = v128.load32_splat(xp + x3);
            a3 = madd(x, dl, a3);
            b3 = madd(x, dh, b3);
          }
          if (<u32>(iw + j4) < <u32>W) {
            const x = v128.load32_splat(xp + x4);
            a4 = madd(x, dl, a4);
            b4 = madd(x, dh, b4);
          }
          dp += pixBytes;
          xp += 4;
        }
      }
      ow = end;
    }
  }
  const zero = f32x4.splat(0);
  finish(dwp, a0, zero, 0, lo);
  finish(dwp + 16, b0, zero, 0, hi);
  if (nk > 1) {
    finish(dwp + <usize>j1 * tapBytes, a1, zero, 0, lo);
    finish(dwp + <usize>j1 * tapBytes + 16, b1, zero, 0, hi);
  }
  if (nk > 2) {
    finish(dwp + <usize>j2 * tapBytes, a2, zero, 0, lo);
    finish(dwp + <usize>j2 * tapBytes + 16, b2, zero, 0, hi);
  }
  if (nk > 3) {
    finish(dwp + <usize>j3 * tapBytes, a3, zero, 0, lo);
    finish(dwp + <usize>j3 * tapBytes + 16, b3, zero, 0, hi);
  }
  if (nk > 4) {
    finish(dwp + <usize>j4 * tapBytes, a4, zero, 0, lo);
    finish(dwp + <usize>j4 * tapBytes + 16, b4, zero, 0, hi);
  }
}

/** Internal flag of finish: add the bias vector. */
const HAS_BIAS: i32 = 4;

/**
 * The GEMM epilogue on the first n (0..4) lanes of v, stored at p: (+ old p) (+ bias) (ReLU as
 * pmax(x, 0), which keeps NaN), in gemm.ts's order so the bits match.
 */
function finish(p: usize, v: v128, biasV: v128, flags: i32, n: i32): void {
  if (n <= 0) return;
  if (flags & GEMM_ACCUMULATE) v = f32x4.add(v, load_floats(p, n));
  if (flags & HAS_BIAS) v = f32x4.add(v, biasV);
  if (flags & GEMM_RELU) v = f32x4.pmax(v, f32x4.splat(0));
  if (n >= 4) {
    v128.store(p, v);
    return;
  }
  v128.store32_lane(p, v, 0);
  if (n > 1) v128.store32_lane(p, v, 1, 4);
  if (n > 2) v128.store32_lane(p, v, 2, 8);
}

/** The first n (1..4) floats at p, zero-filled to a vector, reading nothing past them. */
function load_floats(p: usize, n: i32): v128 {
  if (n >= 4) return v128.load(p);
  let v = v128.load32_zero(p);
  if (n > 1) v = v128.load32_lane(p, v, 1, 4);
  if (n > 2) v = v128.load32_lane(p, v, 2, 8);
  return v;
}

/** Input pixels col..col+3 of the row at `row` as a vector, 0 where a column is outside [0, W). */
function load_row_masked(row: usize, col: i32, W: i32): v128 {
  const p = row + <usize>(col << 2); // before the row when col < 0: only in-bounds lanes are read
  let x = f32x4.splat(0);
  if (<u32>col < <u32>W) x = v128.load32_lane(p, x, 0);
  if (<u32>(col + 1) < <u32>W) x = v128.load32_lane(p, x, 1, 4);
  if (<u32>(col + 2) < <u32>W) x = v128.load32_lane(p, x, 2, 8);
  if (<u32>(col + 3) < <u32>W) x = v128.load32_lane(p, x, 3, 12);
  return x;
}

/** n bytes (a multiple of 4) of zeros at dst. */
function zero_bytes(dst: usize, n: usize): void {
  const end = dst + n;
  const zero = f32x4.splat(0);
  while (dst + 16 <= end) {
    v128.store(dst, zero);
    dst += 16;
  }
  while (dst < end) {
    store<f32>(dst, 0);
    dst += 4;
  }
}

/**
 * Copy n bytes (a multiple of 4) from src to dst (not overlapping). When n ≥ 16 and not a
 * multiple of 16, the last vector is the 16 bytes ending at n: it rewrites a few bytes already
 * copied (the same values) instead of running a scalar tail (KW·C = 5 or 30 floats in LeNet).
 */
function copy_bytes(dst: usize, src: usize, n: usize): void {
  if (n >= 16) {
    const last = n - 16;
    for (let o: usize = 0; o < last; o += 16) v128.store(dst + o, v128.load(src + o));
    v128.store(dst + last, v128.load(src + last));
  } else {
    for (let o: usize = 0; o < n; o += 4) store<f32>(dst + o, load<f32>(src + o));
  }
}

/** dst[i] += src[i] over n bytes (a multiple of 4) of floats. */
function add_bytes(dst: usize, src: usize, n: usize): void {
  const end = dst + n;
  while (dst + 16 <= end) {
    v128.store(dst, f32x4.add(v128.load(dst), v128.load(src)));
    dst += 16;
    src += 16;
  }
  while (dst < end) {
    store<f32>(dst, load<f32>(dst) + load<f32>(src));
    dst += 4;
    src += 4;
  }
}
