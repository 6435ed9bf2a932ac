/**
 * Plain TypeScript references for the non-GEMM kernels, same argument order as the wasm exports
 * but on arrays. Reductions run in f64 (the "true" value); the optimizer references round every
 * operation to f32 with Math.fround in the kernels' order, so the wasm result must match bit for bit.
 */
const f = Math.fround;

export function reluForwardRef(inp: Float32Array): Float32Array {
  return inp.map((x) => (x < 0 ? 0 : x));
}

export function reluBackwardRef(dout: Float32Array, out: Float32Array): Float32Array {
  return dout.map((d, i) => (out[i]! > 0 ? d : 0));
}

export function biasBackwardRef(dout: Float32Array, B: number, N: number): Float64Array {
  const db = new Float64Array(N);
  for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) db[j] += dout[b * N + j]!;
  return db;
}

export function softmaxRef(logits: Float32Array, B: number, N: number): Float64Array {
  const p = new Float64Array(B * N);
  for (let b = 0; b < B; b++) {
    let mx = -Infinity;
    for (let j = 0; j < N; j++) mx = Math.max(mx, logits[b * N + j]!);
    let sum = 0;
    for (let j = 0; j < N; j++) sum += Math.exp(logits[b * N + j]! - mx);
    for (let j = 0; j < N; j++) p[b * N + j] = Math.exp(logits[b * N + j]! - mx) / sum;
  }
  return p;
}

export function softmaxXentRef(
  logits: Float32Array,
  labels: Int32Array,
  B: number,
  N: number,
  gradScale: number,
): { loss: number; dlogits: Float64Array } {
  const p = softmaxRef(logits, B, N);
  let loss = 0;
  const d = new Float64Array(B * N);
  for (let b = 0; b < B; b++) {
    let mx = -Infinity;
    for (let j = 0; j < N; j++) mx = Math.max(mx, logits[b * N + j]!);
    let sum = 0;
    for (let j = 0; j < N; j++) sum += Math.exp(logits[b * N + j]! - mx);
    loss += Math.log(sum) + mx - logits[b * N + labels[b]!]!;
    for (let j = 0; j < N; j++)
      d[b * N + j] = gradScale * (p[b * N + j]! - (j === labels[b] ? 1 : 0));
  }
  return { loss, dlogits: d };
}

export function mseRef(
  out: Float32Array,
  labels: Int32Array,
  B: number,
  N: number,
  scale: number,
  gradScale: number,
): { loss: number; dout: Float64Array } {
  let loss = 0;
  const d = new Float64Array(B * N);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < N; j++) {
      const diff = out[b * N + j]! - (j === labels[b] ? 1 : 0);
      loss += scale * diff * diff;
      d[b * N + j] = 2 * scale * gradScale * diff;
    }
  }
  return { loss, dout: d };
}

export function argmaxRef(scores: Float32Array, B: number, N: number): Int32Array {
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let j = 1; j < N; j++) if (scores[b * N + j]! > scores[b * N + best]!) best = j;
    out[b] = best;
  }
  return out;
}

/** SGD in the kernel's f32 operation order (see assembly/optim.ts). Updates arrays in place. */
export function sgdRef(
  params: Float32Array,
  grads: Float32Array,
  velocity: Float32Array,
  lr: number,
  momentum: number,
  nesterov: boolean,
  wd: number,
): void {
  const [flr, fmu, fwd] = [f(lr), f(momentum), f(wd)];
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    const g = f(grads[i]! + f(fwd * p));
    if (momentum === 0) {
      params[i] = f(p - f(flr * g));
      continue;
    }
    const v = f(f(fmu * velocity[i]!) + g);
    velocity[i] = v;
    const step = nesterov ? f(g + f(fmu * v)) : v;
    params[i] = f(p - f(flr * step));
  }
}

/** Adam in the kernel's f32 operation order. Updates arrays in place. */
export function adamRef(
  params: Float32Array,
  grads: Float32Array,
  m: Float32Array,
  v: Float32Array,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  bc1: number,
  bc2: number,
  wd: number,
): void {
  const [b1, b2, e, fwd] = [f(beta1), f(beta2), f(eps), f(wd)];
  const step = f(f(lr) / f(bc1));
  const invBc2 = f(1 / f(bc2));
  const [c1, c2] = [f(1 - b1), f(1 - b2)];
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    const g = f(grads[i]! + f(fwd * p));
    const mi = f(f(b1 * m[i]!) + f(c1 * g));
    const vi = f(f(b2 * v[i]!) + f(c2 * f(g * g)));
    m[i] = mi;
    v[i] = vi;
    const denom = f(f(Math.sqrt(f(vi * invBc2))) + e);
    params[i] = f(p - f(f(step * mi) / denom));
  }
}

export function gatherNormalizeRef(
  images: Uint8Array,
  indices: Int32Array,
  D: number,
  scale: number,
): Float32Array {
  return gatherColumnsRef(images, indices, D, 0, D, scale);
}

/** Columns col0 … col0 + cols − 1 of each gathered row: gather_normalize_u8_cols. */
export function gatherColumnsRef(
  images: Uint8Array,
  indices: Int32Array,
  D: number,
  col0: number,
  cols: number,
  scale: number,
): Float32Array {
  const out = new Float32Array(indices.length * cols);
  const s = f(scale);
  indices.forEach((row, b) => {
    for (let j = 0; j < cols; j++) out[b * cols + j] = f(images[row * D + col0 + j]! * s);
  });
  return out;
}

/** act((a + b) + bias) per element of (B, N), a and b rows `ld` apart, f32 at each step. */
export function sumBiasActRef(
  a: Float32Array,
  b: Float32Array,
  bias: Float32Array | undefined,
  B: number,
  N: number,
  ld: number,
  relu: boolean,
): Float32Array {
  const out = new Float32Array(B * N);
  for (let r = 0; r < B; r++) {
    for (let j = 0; j < N; j++) {
      let x = f(a[r * ld + j]! + b[r * ld + j]!);
      if (bias) x = f(x + bias[j]!);
      out[r * N + j] = relu && x < 0 ? 0 : x;
    }
  }
  return out;
}
