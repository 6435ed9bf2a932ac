/**
 * Output losses over a batch of rows: scores (B, N) row-major, labels (B) i32 class indices.
 * The softmax + cross-entropy pair is fused: its gradient w.r.t. the logits is p − onehot, which
 * is both cheaper and better conditioned than chaining a softmax Jacobian.
 * Helpers are inlined with `inline.always(...)` at the call site rather than an `@inline`
 * decorator, which standard TypeScript tooling (ESLint, Prettier) cannot parse on a function.
 * Sums run in f64 over rows in order b = 0..B-1, so the result does not depend on batching tricks.
 */

/** probs (B, N) = softmax(logits) row-wise, max-subtracted for stability. probs may alias logits. */
export function softmax_forward(probs: usize, logits: usize, B: i32, N: i32): void {
  const rowBytes = (<usize>N) << 2;
  for (let b = 0; b < B; b++) {
    softmax_row(probs + <usize>b * rowBytes, logits + <usize>b * rowBytes, N);
  }
}

/** Softmax of one row; returns log Σ exp(x − max) + max (the log-partition) for the loss. */
function softmax_row(p: usize, x: usize, N: i32): f64 {
  let mx = load<f32>(x);
  for (let j = 1; j < N; j++) mx = max(mx, load<f32>(x + ((<usize>j) << 2)));
  let sum: f64 = 0;
  for (let j = 0; j < N; j++) {
    const e = Mathf.exp(load<f32>(x + ((<usize>j) << 2)) - mx);
    store<f32>(p + ((<usize>j) << 2), e);
    sum += <f64>e;
  }
  const inv = <f32>(1.0 / sum);
  for (let j = 0; j < N; j++) {
    const o = (<usize>j) << 2;
    store<f32>(p + o, load<f32>(p + o) * inv);
  }
  return Math.log(sum) + <f64>mx;
}

/**
 * probs = softmax(logits); when dlogits ≠ 0, dlogits = gradScale·(probs − onehot(labels)).
 * Returns Σ_b −log softmax(logits)[b, label_b] computed from the log-partition (no log(0)).
 * Any of probs / dlogits may alias logits.
 */
export function softmax_xent_forward_backward(
  dlogits: usize,
  probs: usize,
  logits: usize,
  labels: usize,
  B: i32,
  N: i32,
  gradScale: f32,
): f64 {
  const rowBytes = (<usize>N) << 2;
  let loss: f64 = 0;
  for (let b = 0; b < B; b++) {
    const row = <usize>b * rowBytes;
    const label = load<i32>(labels + ((<usize>b) << 2));
    const target = <f64>load<f32>(logits + row + ((<usize>label) << 2));
    const logZ = inline.always(softmax_row(probs + row, logits + row, N));
    loss += logZ - target;
    if (dlogits) {
      for (let j = 0; j < N; j++) {
        const o = (<usize>j) << 2;
        const onehot: f32 = j == label ? 1 : 0;
        store<f32>(dlogits + row + o, gradScale * (load<f32>(probs + row + o) - onehot));
      }
    }
  }
  return loss;
}

/**
 * Squared error against one-hot targets: returns scale·Σ_{b,j} (out − onehot)²; when dout ≠ 0,
 * dout = 2·scale·gradScale·(out − onehot). With scale = 1/N this is Keras/PyTorch `mse`
 * (mean over classes); with scale = 1/2 it is the textbook ½‖y − t‖² whose gradient is y − t.
 */
export function mse_forward_backward(
  dout: usize,
  out: usize,
  labels: usize,
  B: i32,
  N: i32,
  scale: f32,
  gradScale: f32,
): f64 {
  const rowBytes = (<usize>N) << 2;
  const g: f32 = 2 * scale * gradScale;
  let loss: f64 = 0;
  for (let b = 0; b < B; b++) {
    const row = <usize>b * rowBytes;
    const label = load<i32>(labels + ((<usize>b) << 2));
    let rowSum: f64 = 0;
    for (let j = 0; j < N; j++) {
      const o = row + ((<usize>j) << 2);
      const diff = load<f32>(out + o) - (j == label ? <f32>1 : <f32>0);
      rowSum += <f64>diff * <f64>diff;
      if (dout) store<f32>(dout + o, g * diff);
    }
    loss += rowSum * <f64>scale;
  }
  return loss;
}

/** Index of the largest score in a row, first on ties; NaN never wins. */
function argmax_row(x: usize, N: i32): i32 {
  let best = 0;
  let bestValue = load<f32>(x);
  for (let j = 1; j < N; j++) {
    const v = load<f32>(x + ((<usize>j) << 2));
    if (v > bestValue || bestValue != bestValue) {
      best = j;
      bestValue = v;
    }
  }
  return best;
}

export function count_correct(scores: usize, labels: usize, B: i32, N: i32): i32 {
  const rowBytes = (<usize>N) << 2;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    if (
      inline.always(argmax_row(scores + <usize>b * rowBytes, N)) ==
      load<i32>(labels + ((<usize>b) << 2))
    )
      correct++;
  }
  return correct;
}

export function argmax_rows(out: usize, scores: usize, B: i32, N: i32): void {
  const rowBytes = (<usize>N) << 2;
  for (let b = 0; b < B; b++) {
    store<i32>(out + ((<usize>b) << 2), argmax_row(scores + <usize>b * rowBytes, N));
  }
}
