/**
 * Plain TypeScript references for the activation and dropout kernels (assembly/activations.ts),
 * same argument order as the wasm exports but on arrays.
 *  - Kernels made of + − × and selects (leaky ReLU, every backward, dropout) are rounded to f32
 *    with Math.fround in the kernel's operation order: the wasm result must match bit for bit.
 *  - exp-based forwards (ELU, sigmoid, tanh) are the "true" values in f64, to be compared in ulps
 *    of the f32 result (`ulpError`).
 *  - `*Fn64` are the scalar f64 functions the finite-difference checks differentiate.
 */
const f = Math.fround;

export const leakyRelu64 = (x: number, alpha: number): number => (x >= 0 ? x : alpha * x);
export const elu64 = (x: number, alpha: number): number => (x > 0 ? x : alpha * Math.expm1(x));
/** Stable in f64 too: exp never sees a positive argument. */
export const sigmoid64 = (x: number): number => {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
};
export const tanh64 = Math.tanh;

export function leakyReluForwardRef(inp: Float32Array, alpha: number): Float32Array {
  const a = f(alpha);
  return inp.map((x) => (x >= 0 ? x : f(a * x)));
}

export function leakyReluBackwardRef(
  dout: Float32Array,
  out: Float32Array,
  alpha: number,
): Float32Array {
  const a = f(alpha);
  return dout.map((d, i) => (out[i]! > 0 ? d : f(a * d)));
}

/** f64 values; the kernel's f32 results are compared with `ulpError`. */
export function eluForwardRef(inp: Float32Array, alpha: number): Float64Array {
  const a = f(alpha);
  return Float64Array.from(inp, (x) => elu64(x, a));
}

export function eluBackwardRef(dout: Float32Array, out: Float32Array, alpha: number): Float32Array {
  const a = f(alpha);
  return dout.map((d, i) => (out[i]! > 0 ? d : f(d * f(out[i]! + a))));
}

export function sigmoidForwardRef(inp: Float32Array): Float64Array {
  return Float64Array.from(inp, sigmoid64);
}

export function sigmoidBackwardRef(dout: Float32Array, out: Float32Array): Float32Array {
  return dout.map((d, i) => f(f(d * out[i]!) * f(1 - out[i]!)));
}

export function tanhForwardRef(inp: Float32Array): Float64Array {
  return Float64Array.from(inp, tanh64);
}

export function tanhBackwardRef(dout: Float32Array, out: Float32Array): Float32Array {
  return dout.map((d, i) => f(d * f(1 - f(out[i]! * out[i]!))));
}

export function dropoutApplyRef(inp: Float32Array, mask: Float32Array): Float32Array {
  return inp.map((x, i) => f(x * mask[i]!));
}

/**
 * Distance of an f32 result y from the true value r, in units of the f32 spacing at r (2^-149
 * for subnormals): ≤ 0.5 is correctly rounded. 0 when both are the same infinity or both NaN;
 * Infinity when exactly one is NaN.
 */
export function ulpError(y: number, r: number): number {
  if (Number.isNaN(y) || Number.isNaN(r)) return Number.isNaN(y) && Number.isNaN(r) ? 0 : Infinity;
  if (y === r) return 0;
  return Math.abs(y - r) / ulpF32(r);
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** Spacing of f32 values at |r| (r rounded to f32 first). */
export function ulpF32(r: number): number {
  scratch[0] = Math.abs(r);
  const exponent = (scratchBits[0]! >>> 23) & 0xff;
  return exponent === 0 ? 2 ** -149 : 2 ** (exponent - 150);
}

/** The f32 with bit pattern `bits`. */
export function f32FromBits(bits: number): number {
  scratchBits[0] = bits >>> 0;
  return scratch[0]!;
}

/** Bit patterns of an f32 array for exact comparison (±0 differ); every NaN maps to 'NaN'. */
export function bitsOf(values: Float32Array): (number | string)[] {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  return Array.from(values, (v, i) => (Number.isNaN(v) ? 'NaN' : bits[i]!));
}
