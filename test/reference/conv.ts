/**
 * Scalar references for assembly/conv2d.ts and assembly/pool.ts, written from the definitions
 * (direct convolution, no im2col), NHWC, in f64. Shapes as in the kernels:
 *   inp (B, H, W, C), weight (KH, KW, C, OC), bias (OC), out (B, OH, OW, OC)
 *   out[b, oh, ow, o] = bias[o] + Σ_{kh, kw, c} inp[b, oh·s − pad + kh, ow·s − pad + kw, c] · w[kh, kw, c, o]
 * with the input zero outside [0, H) × [0, W). Gradients are those of L = Σ dout ⊙ out. Inputs
 * may be f32 or f64 arrays, so the same functions serve the f32 kernels' tests and the f64
 * finite-difference checks.
 */

type Floats = ArrayLike<number>;

export interface ConvShape {
  B: number;
  H: number;
  W: number;
  C: number;
  OC: number;
  KH: number;
  KW: number;
  stride: number;
  pad: number;
}

export interface PoolShape {
  B: number;
  H: number;
  W: number;
  C: number;
  K: number;
  stride: number;
}

/** Output size of a convolution along one axis. */
export function convOut(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/** Output size of a pooling along one axis (no padding). */
export function poolOut(size: number, k: number, stride: number): number {
  return Math.floor((size - k) / stride) + 1;
}

/** Calls fn(ih, iw, kh, kw) for each window tap of output pixel (oh, ow) that lies inside the input. */
function forTaps(
  s: ConvShape,
  oh: number,
  ow: number,
  fn: (ih: number, iw: number, kh: number, kw: number) => void,
): void {
  for (let kh = 0; kh < s.KH; kh++) {
    const ih = oh * s.stride - s.pad + kh;
    if (ih < 0 || ih >= s.H) continue;
    for (let kw = 0; kw < s.KW; kw++) {
      const iw = ow * s.stride - s.pad + kw;
      if (iw < 0 || iw >= s.W) continue;
      fn(ih, iw, kh, kw);
    }
  }
}

/**
 * Direct convolution forward (f64), optionally with ReLU (x < 0 ? 0 : x). When `absSum` is
 * given it receives Σ |inp·w| + |bias| per output element: the scale for a rounding bound.
 */
export function conv2dForwardRef(
  s: ConvShape,
  inp: Floats,
  w: Floats,
  bias: Floats | null,
  relu = false,
  absSum?: Float64Array,
): Float64Array {
  const { B, H, W, C, OC, KH, KW, stride, pad } = s;
  const OH = convOut(H, KH, stride, pad);
  const OW = convOut(W, KW, stride, pad);
  const out = new Float64Array(B * OH * OW * OC);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const o0 = ((b * OH + oh) * OW + ow) * OC;
        for (let o = 0; o < OC; o++) {
          let acc = bias ? bias[o] : 0;
          let mag = Math.abs(acc);
          forTaps(s, oh, ow, (ih, iw, kh, kw) => {
            for (let c = 0; c < C; c++) {
              const t = inp[((b * H + ih) * W + iw) * C + c] * w[((kh * KW + kw) * C + c) * OC + o];
              acc += t;
              mag += Math.abs(t);
            }
          });
          out[o0 + o] = relu && acc < 0 ? 0 : acc;
          if (absSum) absSum[o0 + o] = mag;
        }
      }
    }
  }
  return out;
}

/**
 * Gradients of L = Σ dout ⊙ conv(inp, w, bias) (no activation): dinp (B, H, W, C),
 * dw (KH, KW, C, OC), db (OC), each with the Σ |term| of its sum for rounding bounds.
 */
export function conv2dBackwardRef(s: ConvShape, dout: Floats, inp: Floats, w: Floats) {
  const { B, H, W, C, OC, KH, KW, stride, pad } = s;
  const OH = convOut(H, KH, stride, pad);
  const OW = convOut(W, KW, stride, pad);
  const dinp = new Float64Array(B * H * W * C);
  const dinpAbs = new Float64Array(B * H * W * C);
  const dw = new Float64Array(KH * KW * C * OC);
  const dwAbs = new Float64Array(KH * KW * C * OC);
  const db = new Float64Array(OC);
  const dbAbs = new Float64Array(OC);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const o0 = ((b * OH + oh) * OW + ow) * OC;
        for (let o = 0; o < OC; o++) {
          db[o] += dout[o0 + o];
          dbAbs[o] += Math.abs(dout[o0 + o]);
        }
        forTaps(s, oh, ow, (ih, iw, kh, kw) => {
          for (let c = 0; c < C; c++) {
            const i = ((b * H + ih) * W + iw) * C + c;
            const w0 = ((kh * KW + kw) * C + c) * OC;
            for (let o = 0; o < OC; o++) {
              const g = dout[o0 + o];
              dinp[i] += g * w[w0 + o];
              dinpAbs[i] += Math.abs(g * w[w0 + o]);
              dw[w0 + o] += g * inp[i];
              dwAbs[w0 + o] += Math.abs(g * inp[i]);
            }
          }
        });
      }
    }
  }
  return { dinp, dinpAbs, dw, dwAbs, db, dbAbs };
}

/** cols (B·OH·OW, KH·KW·C): the patch under each output pixel, 0 over the padding. Exact. */
export function im2colRef(s: ConvShape, inp: Floats): Float32Array {
  const { B, H, W, C, KH, KW, stride, pad } = s;
  const OH = convOut(H, KH, stride, pad);
  const OW = convOut(W, KW, stride, pad);
  const K = KH * KW * C;
  const cols = new Float32Array(B * OH * OW * K);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const r = ((b * OH + oh) * OW + ow) * K;
        forTaps(s, oh, ow, (ih, iw, kh, kw) => {
          for (let c = 0; c < C; c++) {
            cols[r + (kh * KW + kw) * C + c] = inp[((b * H + ih) * W + iw) * C + c];
          }
        });
      }
    }
  }
  return cols;
}

/** dinp (B, H, W, C) = the adjoint of im2col applied to dcols, in f64, with Σ |term| per element. */
export function col2imRef(s: ConvShape, dcols: Floats) {
  const { B, H, W, C, KH, KW, stride, pad } = s;
  const OH = convOut(H, KH, stride, pad);
  const OW = convOut(W, KW, stride, pad);
  const K = KH * KW * C;
  const dinp = new Float64Array(B * H * W * C);
  const absSum = new Float64Array(B * H * W * C);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const r = ((b * OH + oh) * OW + ow) * K;
        forTaps(s, oh, ow, (ih, iw, kh, kw) => {
          for (let c = 0; c < C; c++) {
            const i = ((b * H + ih) * W + iw) * C + c;
            dinp[i] += dcols[r + (kh * KW + kw) * C + c];
            absSum[i] += Math.abs(dcols[r + (kh * KW + kw) * C + c]);
          }
        });
      }
    }
  }
  return { dinp, absSum };
}

/**
 * Max pooling forward: out (B, OH, OW, C) and argmax (flat index within the image). The window is
 * scanned in (kh, kw) order; a later value wins only if strictly greater (first index on ties),
 * and a NaN wins over any number and then stays (NaN propagates; argmax = the first NaN).
 */
export function maxpoolForwardRef(s: PoolShape, inp: Floats) {
  const { B, H, W, C, K, stride } = s;
  const OH = poolOut(H, K, stride);
  const OW = poolOut(W, K, stride);
  const out = new Float64Array(B * OH * OW * C);
  const argmax = new Int32Array(B * OH * OW * C);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let c = 0; c < C; c++) {
          let best = NaN;
          let arg = -1;
          for (let kh = 0; kh < K; kh++) {
            for (let kw = 0; kw < K; kw++) {
              const e = ((b * H + oh * stride + kh) * W + ow * stride + kw) * C + c;
              const x = inp[e];
              const better = arg < 0 || (!Number.isNaN(best) && (Number.isNaN(x) || x > best));
              if (better) {
                best = x;
                arg = e - b * H * W * C;
              }
            }
          }
          const o = ((b * OH + oh) * OW + ow) * C + c;
          out[o] = best;
          argmax[o] = arg;
        }
      }
    }
  }
  return { out, argmax };
}

/** Max pooling backward: dinp (B, H, W, C) with dout routed to each window's argmax. */
export function maxpoolBackwardRef(s: PoolShape, dout: Floats, argmax: Int32Array): Float64Array {
  const dinp = new Float64Array(s.B * s.H * s.W * s.C);
  const perImage = argmax.length / s.B;
  for (let i = 0; i < argmax.length; i++) {
    dinp[Math.floor(i / perImage) * s.H * s.W * s.C + argmax[i]] += dout[i];
  }
  return dinp;
}

/** Average pooling forward (f64). */
export function avgpoolForwardRef(s: PoolShape, inp: Floats): Float64Array {
  const { B, H, W, C, K, stride } = s;
  const OH = poolOut(H, K, stride);
  const OW = poolOut(W, K, stride);
  const out = new Float64Array(B * OH * OW * C);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let c = 0; c < C; c++) {
          let acc = 0;
          for (let kh = 0; kh < K; kh++) {
            for (let kw = 0; kw < K; kw++) {
              acc += inp[((b * H + oh * stride + kh) * W + ow * stride + kw) * C + c];
            }
          }
          out[((b * OH + oh) * OW + ow) * C + c] = acc / (K * K);
        }
      }
    }
  }
  return out;
}

/** Average pooling backward (f64): every window tap gets dout/(K·K). */
export function avgpoolBackwardRef(s: PoolShape, dout: Floats): Float64Array {
  const { B, H, W, C, K, stride } = s;
  const OH = poolOut(H, K, stride);
  const OW = poolOut(W, K, stride);
  const dinp = new Float64Array(B * H * W * C);
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let c = 0; c < C; c++) {
          const g = dout[((b * OH + oh) * OW + ow) * C + c] / (K * K);
          for (let kh = 0; kh < K; kh++) {
            for (let kw = 0; kw < K; kw++) {
              dinp[((b * H + oh * stride + kh) * W + ow * stride + kw) * C + c] += g;
            }
          }
        }
      }
    }
  }
  return dinp;
}
