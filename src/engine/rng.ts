/**
 * The one seeded PRNG of mnist-wasm: weight init, shuffling and dropout masks all draw from it,
 * never from the platform's unseeded generator. sfc32 (Chris Doty-Humphrey's Small Fast Counting
 * generator, 128-bit state, passes PractRand) on 32-bit integer ops, seeded through splitmix32 so
 * nearby seeds give unrelated streams. Integer-only arithmetic makes every draw identical in every
 * JavaScript engine, which is what lets Node and the browser produce bit-identical weights.
 */
/** sfc32's state words a, b, c, d as unsigned integers. */
export type RngState = [number, number, number, number];

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be an integer in [0, 4294967295], got ${seed}`);
    }
    let s = seed >>> 0;
    const next = (): number => {
      // splitmix32
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 24 bits: exactly representable as f32. */
  nextFloat(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Uniform integer in [0, n) without modulo bias (rejection sampling), n ≤ 2^32. */
  nextInt(n: number): number {
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Fill with uniform values in [low, high), rounded to f32. */
  fillUniform(out: Float32Array, low: number, high: number): void {
    const width = high - low;
    for (let i = 0; i < out.length; i++) out[i] = low + width * this.nextFloat();
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle(values: Int32Array | number[]): void {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = values[i];
      values[i] = values[j];
      values[j] = t;
    }
  }

  /** The generator's whole state (four u32 words): a stream restored from it continues exactly. */
  getState(): RngState {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /** A generator that continues the stream whose state `getState` returned. */
  static fromState(state: readonly number[]): Rng {
    if (
      !Array.isArray(state) ||
      state.length !== 4 ||
      !state.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)
    ) {
      throw new RangeError(
        `RNG state must be four 32-bit unsigned integers, got ${JSON.stringify(state)}`,
      );
    }
    const rng = new Rng(0);
    [rng.a, rng.b, rng.c, rng.d] = state.map((x) => x | 0) as RngState;
    return rng;
  }

  /** An independent child stream (e.g. one per epoch), reproducible from this one. */
  fork(): Rng {
    return new Rng(this.nextU32());
  }
}
