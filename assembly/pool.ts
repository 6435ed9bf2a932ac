/**
 * Max and average pooling, NHWC, square K×K windows, no padding:
 *   out (B, OH, OW, C)[b, oh, ow, c] = max / mean of inp[b, oh·stride + kh, ow·stride + kw, c]
 *   over kh, kw in [0, K), with OH = ⌊(H − K)/stride⌋ + 1 (likewise OW), computed by the caller.
 * Windows may overlap (K > stride). Channels are the contiguous axis, so each kernel works on
 * 4 channels per f32x4 with a scalar tail for C mod 4. Backward kernels overwrite dinp (zero
 * it, then scatter-add in output order: a fixed summation order per element).
 */

/**
 * out (B, OH, OW, C) = window max of inp (B, H, W, C); argmax (B, OH, OW, C) i32 = flat index of
 * the max within its image (h·W·C + w·C + c), the first one on ties. A NaN in the window gives
 * NaN (argmax: the first NaN). Per image, so a batch split between threads (by image ranges)
 * stores the same argmax as one call.
 */
export function maxpool2d_forward(
  out: usize,
  argmax: usize,
  inp: usize,
  B: i32,
  H: i32,
  W: i32,
  C: i32,
  K: i32,
  stride: i32,
  OH: i32,
  OW: i32,
): void {
  const lanes = i32x4(0, 1, 2, 3);
  let o: usize = 0; // byte offset of (b, oh, ow, 0) in out and argmax
  const imageBytes = (<usize>H * <usize>W * <usize>C) << 2;
  if (K == 2 && C >= 4) {
    maxpool2x2_forward(out, argmax, inp, B, H, W, C, stride, OH, OW);
    return;
  }
  for (let b = 0; b < B; b++) {
    const image = inp + <usize>b * imageBytes;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        // Flat element index within the image of the window's top-left (kh = kw = 0, c = 0).
        const e0 = (oh * stride * W + ow * stride) * C;
        let c = 0;
        // C mod 4 ≠ 0 with C ≥ 4: the last vector starts at C − 4 and recomputes a few channels
        // of the previous one. That is safe because the forward is a pure function per channel
        // (the same bits are stored twice), and it spares a scalar tail.
        for (; c < C; c += 4) {
          if (c + 4 > C) {
            if (C < 4) break;
            c = C - 4;
          }
          const first = e0 + c;
          let best = v128.load(image + ((<usize>first) << 2));
          let idx = i32x4.add(i32x4.splat(first), lanes);
          for (let kh = 0; kh < K; kh++) {
            const row = first + kh * W * C;
            for (let kw = kh == 0 ? 1 : 0; kw < K; kw++) {
              const e = row + kw * C;
              const x = v128.load(image + ((<usize>e) << 2));
              // Take x when x > best, or x is NaN and best is not: not(x ≤ best or best ≠ best).
              // Strict > keeps the first index on ties; a NaN best is never replaced.
              const take = v128.not(v128.or(f32x4.le(x, best), f32x4.ne(best, best)));
              best = v128.bitselect(x, best, take);
              idx = v128.bitselect(i32x4.add(i32x4.splat(e), lanes), idx, take);
            }
          }
          const oc = o + ((<usize>c) << 2);
          v128.store(out + oc, best);
          v128.store(argmax + oc, idx);
        }
        for (; c < C; c++) {
          const first = e0 + c;
          let best = load<f32>(image + ((<usize>first) << 2));
          let idx = first;
          for (let kh = 0; kh < K; kh++) {
            const row = first + kh * W * C;
            for (let kw = kh == 0 ? 1 : 0; kw < K; kw++) {
              const e = row + kw * C;
              const x = load<f32>(image + ((<usize>e) << 2));
              if (!(x <= best || best != best)) {
                best = x;
                idx = e;
              }
            }
          }
          const oc = o + ((<usize>c) << 2);
          store<f32>(out + oc, best);
          store<i32>(argmax + oc, idx);
        }
        o += (<usize>C) << 2;
      }
    }
  }
}

/**
 * maxpool2d_forward for 2×2 windows (LeNet-5's pools) and C ≥ 4: the same taps in the same
 * order, the same comparison and the same stores, with the four taps' addresses and argmax
 * offsets fixed per call instead of looped over (the general loop took ≈ 2× as long on LeNet-5).
 */
function maxpool2x2_forward(
  out: usize,
  argmax: usize,
  inp: usize,
  B: i32,
  H: i32,
  W: i32,
  C: i32,
  stride: i32,
  OH: i32,
  OW: i32,
): void {
  const rowElems = W * C;
  const colBytes = (<usize>C) << 2;
  const rowBytes = (<usize>rowElems) << 2;
  const lanes = i32x4(0, 1, 2, 3);
  const dCol = i32x4.splat(C);
  const dRow = i32x4.splat(rowElems);
  const dBoth = i32x4.splat(rowElems + C);
  const imageBytes = <usize>H * rowBytes;
  let o: usize = 0;
  for (let b = 0; b < B; b++) {
    const image = inp + <usize>b * imageBytes;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const e0 = (oh * stride * W + ow * stride) * C;
        for (let c = 0; c < C; c += 4) {
          if (c + 4 > C) c = C - 4; // overlaps the previous vector: same bits stored twice
          const first = e0 + c;
          const p = image + ((<usize>first) << 2);
          const i00 = i32x4.add(i32x4.splat(first), lanes);
          let best = v128.load(p);
          let idx = i00;
          // Take x when not (x ≤ best or best is NaN), as maxpool2d_forward does.
          let x = v128.load(p + colBytes);
          let take = v128.not(v128.or(f32x4.le(x, best), f32x4.ne(best, best)));
          best = v128.bitselect(x, best, take);
          idx = v128.bitselect(i32x4.add(i00, dCol), idx, take);
          x = v128.load(p + rowBytes);
          take = v128.not(v128.or(f32x4.le(x, best), f32x4.ne(best, best)));
          best = v128.bitselect(x, best, take);
          idx = v128.bitselect(i32x4.add(i00, dRow), idx, take);
          x = v128.load(p + rowBytes + colBytes);
          take = v128.not(v128.or(f32x4.le(x, best), f32x4.ne(best, best)));
          best = v128.bitselect(x, best, take);
          idx = v128.bitselect(i32x4.add(i00, dBoth), idx, take);
          const oc = o + ((<usize>c) << 2);
          v128.store(out + oc, best);
          v128.store(argmax + oc, idx);
        }
        o += colBytes;
      }
    }
  }
}

/**
 * dinp (B, H, W, C) = 0, then for every output element i in order, in its image b:
 * dinp[b, argmax[i]] += dout[i] (argmax per image, see maxpool2d_forward).
 */
export function maxpool2d_backward(
  dinp: usize,
  dout: usize,
  argmax: usize,
  B: i32,
  H: i32,
  W: i32,
  C: i32,
  OH: i32,
  OW: i32,
): void {
  zero_floats(dinp, <usize>B * <usize>H * <usize>W * <usize>C);
  const perImage = <usize>OH * <usize>OW * <usize>C;
  const imageBytes = (<usize>H * <usize>W * <usize>C) << 2;
  // A scatter: wasm SIMD has no scatter store, and overlapping windows can send two lanes of
  // one vector to the same element, so this stays scalar.
  let i: usize = 0;
  for (let b = 0; b < B; b++) {
    const image = dinp + <usize>b * imageBytes;
    const end = i + perImage;
    for (; i < end; i++) {
      const p = image + ((<usize>load<i32>(argmax + (i << 2))) << 2);
      store<f32>(p, load<f32>(p) + load<f32>(dout + (i << 2)));
    }
  }
}

/** out (B, OH, OW, C) = window mean of inp (B, H, W, C): the sum in (kh, kw) order · 1/(K·K). */
export function avgpool2d_forward(
  out: usize,
  inp: usize,
  B: i32,
  H: i32,
  W: i32,
  C: i32,
  K: i32,
  stride: i32,
  OH: i32,
  OW: i32,
): void {
  // A rounded reciprocal: exact for K = 1, 2, 4 (the usual cases), ≤ 1 ulp more otherwise.
  const scale: f32 = 1 / <f32>(K * K);
  const scaleV = f32x4.splat(scale);
  let o: usize = 0;
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const e0 = ((b * H + oh * stride) * W + ow * stride) * C;
        let c = 0;
        // As in maxpool2d_forward, the last vector may overlap the previous one (pure per channel).
        for (; c < C; c += 4) {
          if (c + 4 > C) {
            if (C < 4) break;
            c = C - 4;
          }
          let acc = f32x4.splat(0);
          for (let kh = 0; kh < K; kh++) {
            let p = inp + ((<usize>(e0 + c + kh * W * C)) << 2);
            for (let kw = 0; kw < K; kw++) {
              acc = f32x4.add(acc, v128.load(p));
              p += (<usize>C) << 2;
            }
          }
          v128.store(out + o + ((<usize>c) << 2), f32x4.mul(acc, scaleV));
        }
        for (; c < C; c++) {
          let acc: f32 = 0;
          for (let kh = 0; kh < K; kh++) {
            let p = inp + ((<usize>(e0 + c + kh * W * C)) << 2);
            for (let kw = 0; kw < K; kw++) {
              acc += load<f32>(p);
              p += (<usize>C) << 2;
            }
          }
          store<f32>(out + o + ((<usize>c) << 2), acc * scale);
        }
        o += (<usize>C) << 2;
      }
    }
  }
}

/** dinp (B, H, W, C) = 0, then every window gets dout/(K·K) added, in output order. */
export function avgpool2d_backward(
  dinp: usize,
  dout: usize,
  B: i32,
  H: i32,
  W: i32,
  C: i32,
  K: i32,
  stride: i32,
  OH: i32,
  OW: i32,
): void {
  zero_floats(dinp, <usize>B * <usize>H * <usize>W * <usize>C);
  const scale: f32 = 1 / <f32>(K * K);
  const scaleV = f32x4.splat(scale);
  const c4 = C & ~3; // no overlapping last vector here: a scatter-add is not idempotent
  let o: usize = 0;
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const e0 = ((b * H + oh * stride) * W + ow * stride) * C;
        let c = 0;
        for (; c < c4; c += 4) {
          const g = f32x4.mul(v128.load(dout + o + ((<usize>c) << 2)), scaleV);
          for (let kh = 0; kh < K; kh++) {
            let p = dinp + ((<usize>(e0 + c + kh * W * C)) << 2);
            for (let kw = 0; kw < K; kw++) {
              v128.store(p, f32x4.add(v128.load(p), g));
              p += (<usize>C) << 2;
            }
          }
        }
        for (; c < C; c++) {
          const g = load<f32>(dout + o + ((<usize>c) << 2)) * scale;
          for (let kh = 0; kh < K; kh++) {
            let p = dinp + ((<usize>(e0 + c + kh * W * C)) << 2);
            for (let kw = 0; kw < K; kw++) {
              store<f32>(p, load<f32>(p) + g);
              p += (<usize>C) << 2;
            }
          }
        }
        o += (<usize>C) << 2;
      }
    }
  }
}

/** n floats of zeros at dst. */
function zero_floats(dst: usize, n: usize): void {
  const end = dst + (n << 2);
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
