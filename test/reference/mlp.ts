/**
 * A plain f64 multilayer perceptron — forward, loss and hand-written backward — used as the trusted
 * reference for the engine's gradients, and itself checked against finite differences.
 * Weights (in, out) row-major, as the engine stores them.
 */
import type { LossName } from '../../src/nn/model.js';
import { shapeSize, type ResolvedLayer } from '../../src/nn/spec.js';

export interface RefLayer {
  layer: ResolvedLayer;
  w: Float64Array;
  b: Float64Array | null;
}

/** Mean loss over the batch and (optionally) gradients of every weight and bias. */
export function refLossAndGrads(
  layers: RefLayer[],
  x: Float64Array,
  labels: Int32Array,
  B: number,
  loss: LossName,
): { loss: number; dw: Float64Array[]; db: (Float64Array | null)[] } {
  const acts: Float64Array[] = [x];
  for (const { layer, w, b } of layers) {
    const K = shapeSize(layer.inShape);
    const N = layer.outShape.c;
    const inp = acts[acts.length - 1]!;
    const out = new Float64Array(B * N);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < N; j++) {
        let s = b ? b[j]! : 0;
        for (let k = 0; k < K; k++) s += inp[i * K + k]! * w[k * N + j]!;
        out[i * N + j] = layer.activation === 'relu' ? Math.max(s, 0) : s;
      }
    }
    acts.push(out);
  }
  const last = layers[layers.length - 1]!.layer;
  const N = last.outShape.c;
  const out = acts[acts.length - 1]!;
  const dout = new Float64Array(B * N);
  let total = 0;
  for (let i = 0; i < B; i++) {
    if (loss === 'crossentropy') {
      let mx = -Infinity;
      for (let j = 0; j < N; j++) mx = Math.max(mx, out[i * N + j]!);
      let sum = 0;
      for (let j = 0; j < N; j++) sum += Math.exp(out[i * N + j]! - mx);
      total += Math.log(sum) + mx - out[i * N + labels[i]!]!;
      for (let j = 0; j < N; j++) {
        dout[i * N + j] = (Math.exp(out[i * N + j]! - mx) / sum - (j === labels[i] ? 1 : 0)) / B;
      }
    } else {
      const scale = loss === 'mse' ? 1 / N : 0.5;
      for (let j = 0; j < N; j++) {
        const diff = out[i * N + j]! - (j === labels[i] ? 1 : 0);
        total += scale * diff * diff;
        dout[i * N + j] = (2 * scale * diff) / B;
      }
    }
  }
  const dw: Float64Array[] = [];
  const db: (Float64Array | null)[] = [];
  let delta = dout;
  for (let l = layers.length - 1; l >= 0; l--) {
    const { layer, w, b } = layers[l]!;
    const K = shapeSize(layer.inShape);
    const Nl = layer.outShape.c;
    const a = acts[l + 1]!;
    if (layer.activation === 'relu') delta = delta.map((d, i) => (a[i]! > 0 ? d : 0));
    const inp = acts[l]!;
    const gW = new Float64Array(K * Nl);
    const gB = b ? new Float64Array(Nl) : null;
    const dIn = new Float64Array(B * K);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < Nl; j++) {
        const d = delta[i * Nl + j]!;
        if (gB) gB[j] += d;
        for (let k = 0; k < K; k++) {
          gW[k * Nl + j] += inp[i * K + k]! * d;
          dIn[i * K + k] += d * w[k * Nl + j]!;
        }
      }
    }
    dw[l] = gW;
    db[l] = gB;
    delta = dIn;
  }
  return { loss: total / B, dw, db };
}
