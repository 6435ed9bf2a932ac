/**
 * Test helpers: put arrays into an engine's memory and read them back, seeded random data.
 */
import { Engine } from '../src/engine/engine.js';
import { Rng } from '../src/engine/rng.js';

/** Copy `data` into fresh engine memory; returns its byte offset. Re-read views after each call. */
export function put(engine: Engine, data: Float32Array | Int32Array | Uint8Array): number {
  const ptr = engine.reserve(Math.max(data.byteLength, 16));
  new Uint8Array(engine.memory.buffer, ptr, data.byteLength).set(
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
  return ptr;
}

export function randomFloats(rng: Rng, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  rng.fillUniform(out, -scale, scale);
  return out;
}

export function randomLabels(rng: Rng, n: number, classes: number): Int32Array {
  return Int32Array.from({ length: n }, () => rng.nextInt(classes));
}

/** Largest |a − b| over two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** ‖a − b‖ / (‖a‖ + ‖b‖): the relative error of gradient checks (0 when both are zero). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  const denom = Math.sqrt(na) + Math.sqrt(nb);
  return denom === 0 ? 0 : Math.sqrt(diff) / denom;
}
